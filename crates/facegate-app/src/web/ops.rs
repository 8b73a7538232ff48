//! Operations endpoints: `/healthz` (the process answers), `/readyz` (the
//! database answers and the face engine is loaded), `/metrics` (Prometheus
//! text), and the middleware counting responses by route and status.

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use super::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
}

async fn healthz() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

async fn readyz(State(st): State<AppState>) -> Response {
    let db = st.services.store.ping().await;
    let engine = !st.services.engine.model_id().is_empty();
    let ready = db.is_ok() && engine;
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "status": if ready { "ready" } else { "not_ready" },
        "database": db.map(|_| "ok".to_string()).unwrap_or_else(|e| e.to_string()),
        "engine": if engine { "loaded" } else { "missing" },
        "model": st.services.engine.model_id(),
    });
    (status, Json(body)).into_response()
}

async fn metrics(State(st): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        st.services.metrics.render(),
    )
        .into_response()
}

/// Counts every response by method, matched route and status.
pub async fn track(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let method = req.method().to_string();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let res = next.run(req).await;
    st.services
        .metrics
        .observe_request(&method, &route, res.status().as_u16());
    res
}
