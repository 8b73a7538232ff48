//! facegate-app: the face-login web application — accounts, face
//! enrolment, webcam face login, staff pages and a JSON API over embedded
//! SQLite or PostgreSQL. [`build_app`] assembles the router; [`cli`]
//! exposes the `serve`, `migrate`, `createsuperuser`, … commands to the
//! binary.

pub mod cli;
pub mod config;
mod config_load;
mod config_oidc;
pub mod crypto;
pub mod domain;
pub mod service;
pub mod store;
pub mod web;

use std::future::Future;
use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use facegate_vision::{EngineConfig, FaceEngine};

pub use config::{Config, FaceLoginMode, GalleryConfig, Liveness};
pub use web::AppState;

use service::Services;
use web::views::Views;

/// Opens the store (running its migrations, once) and builds the router
/// around an already loaded engine. The engine is injected so tests and
/// tools can share one.
pub async fn build_app(
    config: Config,
    engine: Arc<FaceEngine>,
) -> anyhow::Result<(Router, AppState)> {
    tracing::info!(liveness = config.liveness.as_str(), "liveness policy");
    let store = store::open(&config).await.context("opening the database")?;
    tracing::info!(store = %store.describe(), "store opened");
    let sessions = store.session_store();
    let services = Arc::new(Services::new(store, engine, Arc::new(config)));
    services.follow_changes();
    let views = Arc::new(Views::new().context("loading templates")?);
    let state = AppState {
        services,
        views,
        page_uploads: Arc::new(tokio::sync::Semaphore::new(
            web::state::PAGE_UPLOADS_AT_ONCE,
        )),
    };
    Ok((web::router(state.clone(), sessions), state))
}

/// Loads the face engine (blocking, about a second). ONNX Runtime must be
/// initialised first.
pub fn load_engine(config: &EngineConfig) -> anyhow::Result<Arc<FaceEngine>> {
    let engine = FaceEngine::load(config.clone()).with_context(|| {
        format!(
            "loading the face models from {}",
            config.models_dir.display()
        )
    })?;
    Ok(Arc::new(engine))
}

/// Serves `router` on `listener` with client addresses available to the
/// handlers and the default connection limits, until `shutdown` completes;
/// in-flight requests then finish. See [`web::server`].
pub async fn run_server(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    web::server::serve(listener, router, shutdown, Default::default()).await
}

/// Completes on ctrl-c or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for ctrl-c");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down");
}
