//! Operations endpoints: `/healthz` (the process answers), `/readyz` (the
//! database answers and the face engine is loaded), `/metrics` (Prometheus
//! text), and the middleware counting responses by route and status.

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use super::state::AppState;

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

/// The `method` label of a request: one of the standard methods, else
/// `other`. Labels come from a fixed set, so a client inventing methods
/// cannot grow the metrics.
pub fn method_label(method: &Method) -> &'static str {
    const KNOWN: [Method; 9] = [
        Method::GET,
        Method::HEAD,
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::PATCH,
        Method::OPTIONS,
        Method::CONNECT,
        Method::TRACE,
    ];
    KNOWN
        .iter()
        .find(|m| *m == method)
        .map_or("other", Method::as_str)
}

/// Counts every response by method, matched route template (`unmatched`
/// for any path no route matched) and status.
pub async fn track(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let method = method_label(req.method());
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let res = next.run(req).await;
    st.services
        .metrics
        .observe_request(method, &route, res.status().as_u16());
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_standard_methods_are_labels() {
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(method_label(&Method::DELETE), "DELETE");
        let invented = Method::from_bytes(b"M00001AAAA").unwrap();
        assert_eq!(method_label(&invented), "other");
    }
}
