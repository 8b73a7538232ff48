//! The HTTP layer: one axum router for the JSON API and the server-rendered
//! pages, over the shared [`crate::service::Services`].

pub mod assets;
pub mod client;
pub mod error;
pub mod openapi;
pub mod ops;
pub mod routes;
pub mod security;
pub mod server;
pub mod session;
pub mod views;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::Router;
use tower_sessions::cookie::SameSite;
use tower_sessions::{Expiry, SessionManagerLayer};

use crate::service::Services;
use crate::store::SessionBackend;
use views::Views;

/// Shared state of every handler.
#[derive(Clone)]
pub struct AppState {
    pub services: Arc<Services>,
    pub views: Arc<Views>,
}

/// Multipart framing allowance on top of the image bytes.
pub const MULTIPART_OVERHEAD: usize = 64 * 1024;

/// Body limit of every request that carries no image (forms, JSON): far
/// above any valid form, far below what could fill a disk or a log.
pub const FORM_BODY_LIMIT: usize = 64 * 1024;

/// Builds the complete router.
pub fn router(state: AppState, sessions: SessionBackend) -> Router {
    let config = state.services.config.clone();
    let sessions = SessionManagerLayer::new(sessions)
        .with_name("facegate_session")
        .with_secure(config.secure_cookies)
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
        .with_path("/")
        .with_expiry(Expiry::OnInactivity(time::Duration::minutes(
            config.session_idle_minutes.max(1),
        )));
    Router::new()
        .merge(routes::api::router(&config))
        .merge(routes::pages::router())
        .merge(routes::profile::router(&config))
        .merge(routes::admin::router())
        .merge(assets::router(&config))
        .layer(DefaultBodyLimit::max(FORM_BODY_LIMIT))
        .layer(sessions)
        .merge(ops::router())
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            std::time::Duration::from_secs(config.request_timeout_seconds.max(1)),
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            ops::track,
        ))
        .layer(axum::middleware::from_fn(security::headers))
        .with_state(state)
}
