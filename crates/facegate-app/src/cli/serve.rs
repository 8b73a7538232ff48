//! `facegate serve` (the web application, with its hourly housekeeping)
//! and `facegate migrate`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use super::common::{load_engine, prepare_data_dir, runtime, CommonArgs};
use crate::service::Services;
use crate::store;
use crate::web::server::{self, ServerLimits};

/// `facegate serve`: run the web application.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:8000]
    #[arg(long, value_name = "ADDR")]
    pub addr: Option<SocketAddr>,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// `facegate migrate`: apply pending database migrations.
#[derive(Debug, Clone, clap::Args)]
pub struct MigrateArgs {
    #[command(flatten)]
    pub common: CommonArgs,
}

/// Runs the server until ctrl-c or SIGTERM. ONNX Runtime must already be
/// initialised by the caller.
pub fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let mut config = args.common.load()?;
    prepare_data_dir(&config)?;
    if let Some(addr) = args.addr {
        config.addr = addr;
    }
    config.resolve_models_dir();
    runtime()?.block_on(async move {
        let engine = load_engine(&config).await?;
        tracing::info!(
            detector = engine.detector_backend(),
            embedder = engine.embedder_backend(),
            "face engine loaded"
        );
        let addr = config.addr;
        let limits = ServerLimits {
            header_timeout: Duration::from_secs(config.header_timeout_seconds.max(1)),
            ..Default::default()
        };
        let (router, state) = crate::build_app(config, engine).await?;
        let cleanup = tokio::spawn(housekeeping(state.services.clone()));
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding {addr}"))?;
        tracing::info!(%addr, mode = state.services.config.face_login.as_str(), "facegate listening");
        println!("facegate listening on http://{}", listener.local_addr()?);
        server::serve(listener, router, crate::shutdown_signal(), limits).await?;
        cleanup.abort();
        Ok(())
    })
}

/// Housekeeping at start, then hourly: expired sessions, and login
/// attempts and probes past their retention.
async fn housekeeping(services: Arc<Services>) {
    let mut tick = tokio::time::interval(Duration::from_secs(3600));
    loop {
        tick.tick().await;
        if let Err(e) = services.store.delete_expired_sessions().await {
            tracing::warn!(error = %e, "could not delete expired sessions");
        }
        let now = time::OffsetDateTime::now_utc();
        if let Err(e) = services.sweep_retention(now).await {
            tracing::warn!(error = %e, "retention sweep failed");
        }
    }
}

/// Applies pending migrations (opening the store does) and exits.
pub fn migrate(args: MigrateArgs) -> anyhow::Result<()> {
    let config = args.common.load()?;
    runtime()?.block_on(async move {
        let store = store::open(&config).await?;
        println!("migrations applied to {}", store.describe());
        Ok(())
    })
}
