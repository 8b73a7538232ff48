//! The HTTP layer: one axum router for the JSON API and the server-rendered
//! pages, over the shared [`crate::service::Services`]. This file only
//! assembles the router; nothing in `web/` imports it.
//!
//! Where things live: handlers in `routes/` (one file per group of URLs);
//! the shared state in `state.rs`; extractors (logged-in user, staff,
//! CSRF-checked form, API multipart) in `extract.rs`; page rendering and
//! the error page in `render.rs` (and for answers without a body,
//! `error_pages.rs`); session keys in `session.rs`; JSON
//! errors in `error.rs`; multipart reading in `upload.rs`.

pub mod assets;
pub mod client;
pub mod error;
pub mod error_pages;
pub mod extract;
pub mod openapi;
pub mod ops;
pub mod render;
pub mod routes;
pub mod security;
pub mod server;
pub mod session;
pub mod state;
pub mod upload;
pub mod views;

use axum::extract::DefaultBodyLimit;
use axum::Router;
use tower_sessions::cookie::SameSite;
use tower_sessions::{Expiry, SessionManagerLayer};

use crate::store::SessionBackend;
pub use state::{AppState, FORM_BODY_LIMIT, MULTIPART_OVERHEAD};

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
        .merge(routes::audit::router())
        .merge(routes::oidc::router())
        .merge(routes::oidc_api::router())
        .merge(routes::oidc_pages::router())
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
            error_pages::fill,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            ops::track,
        ))
        .layer(axum::middleware::from_fn(security::headers))
        .with_state(state)
}
