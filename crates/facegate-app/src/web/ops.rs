//! Operations endpoints: `/healthz` (the process answers), `/readyz` (the
//! database answers and the face engine is loaded), `/metrics` (Prometheus
//! text: with the configured bearer token, or without one only for a
//! direct loopback client), and the middleware counting responses by route
//! and status.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
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

/// Whether a request may read `/metrics`: it carries the configured
/// bearer token (compared in constant time), or no token is configured and
/// the request comes straight from loopback (not forwarded by a proxy on
/// the same host, which would make it public again).
pub fn metrics_allowed(token: Option<&str>, peer: Option<IpAddr>, headers: &HeaderMap) -> bool {
    let forwarded = headers.contains_key("x-forwarded-for") || headers.contains_key("forwarded");
    match token {
        Some(expected) => headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|given| {
                let (a, b) = (given.trim().as_bytes(), expected.as_bytes());
                a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
            }),
        None => peer.is_some_and(|ip| ip.is_loopback()) && !forwarded,
    }
}

async fn metrics(State(st): State<AppState>, req: Request) -> Response {
    let token = st
        .services
        .config
        .metrics_token
        .as_ref()
        .map(|t| t.0.as_str());
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    if !metrics_allowed(token, peer, req.headers()) {
        let message = if token.is_some() {
            "Send the metrics token: Authorization: Bearer <metrics_token>."
        } else {
            "The metrics are only served to this host; set metrics_token to scrape them from elsewhere."
        };
        let body = Json(json!({"error": "not_authenticated", "message": message}));
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            body,
        )
            .into_response();
    }
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
    fn metrics_need_the_token_or_a_direct_loopback_client() {
        let local: Option<IpAddr> = Some("127.0.0.1".parse().unwrap());
        let remote: Option<IpAddr> = Some("192.0.2.1".parse().unwrap());
        let none = HeaderMap::new();
        assert!(metrics_allowed(None, local, &none));
        assert!(!metrics_allowed(None, remote, &none));
        let mut proxied = HeaderMap::new();
        proxied.insert("x-forwarded-for", "192.0.2.1".parse().unwrap());
        assert!(!metrics_allowed(None, local, &proxied));
        let mut bearer = HeaderMap::new();
        bearer.insert(header::AUTHORIZATION, "Bearer s3cret".parse().unwrap());
        assert!(metrics_allowed(Some("s3cret"), remote, &bearer));
        assert!(!metrics_allowed(Some("other"), remote, &bearer));
        assert!(
            !metrics_allowed(Some("s3cret"), local, &none),
            "the token is needed"
        );
    }

    #[test]
    fn only_standard_methods_are_labels() {
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(method_label(&Method::DELETE), "DELETE");
        let invented = Method::from_bytes(b"M00001AAAA").unwrap();
        assert_eq!(method_label(&invented), "other");
    }
}
