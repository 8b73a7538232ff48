//! Error answers that carry no page of their own (an unknown URL, a wrong
//! method, a body too large, a timeout, a bare status from a handler) get
//! one: the styled error page on the site's pages, the API's JSON error
//! under `/api/`. Answers that already are a page or JSON pass unchanged.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::render::error_page;
use super::state::AppState;

/// What a person is told for a status, in plain words.
pub fn plain_message(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "The request could not be understood. Go back and try again.",
        401 => "Please log in first.",
        403 => "You are not allowed to open this page.",
        404 => {
            "There is no page at this address. Check the link, or start again from the start page."
        }
        405 => "This address does not accept that kind of request.",
        408 => "That took too long. Please try again.",
        413 => "What was sent is too large.",
        415 => "What was sent is not in a form this page accepts.",
        422 => "What was sent could not be used. Go back and try again.",
        429 => "Too many tries in a short time. Wait a minute, then try again.",
        503 => "The service is busy or starting. Please try again in a moment.",
        _ if status.is_server_error() => "Something went wrong on our side. Please try again.",
        _ => "That did not work. Go back and try again.",
    }
}

/// The API's error code for a status.
fn api_code(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "invalid",
        401 => "not_authenticated",
        403 => "forbidden",
        404 => "not_found",
        405 => "method_not_allowed",
        408 => "timeout",
        413 => "too_large",
        415 => "unsupported_media_type",
        429 => "rate_limited",
        503 => "unavailable",
        _ if status.is_server_error() => "internal",
        _ => "invalid",
    }
}

/// Whether an answer already is a page, JSON (the API, the operations
/// endpoints) or an image.
fn has_own_body(res: &Response) -> bool {
    let ctype = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    ["text/html", "application/json", "image/"]
        .iter()
        .any(|t| ctype.starts_with(t))
}

/// Middleware: gives an error answer without a page or JSON body one.
pub async fn fill(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    let api = path == "/api" || path.starts_with("/api/");
    let res = next.run(req).await;
    let status = res.status();
    if !(status.is_client_error() || status.is_server_error()) || has_own_body(&res) {
        return res;
    }
    let filled = if api {
        ApiError::new(status, api_code(status), plain_message(status)).into_response()
    } else {
        error_page(&st, status, plain_message(status))
    };
    let (mut parts, _) = res.into_parts();
    let (new_parts, body) = filled.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    let ctype = new_parts
        .headers
        .get(header::CONTENT_TYPE)
        .cloned()
        .unwrap_or(HeaderValue::from_static("text/plain; charset=utf-8"));
    parts.headers.insert(header::CONTENT_TYPE, ctype);
    Response::from_parts(parts, Body::new(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_has_words_and_a_code() {
        for s in [400u16, 404, 405, 413, 500, 503, 418] {
            let s = StatusCode::from_u16(s).unwrap();
            assert!(!plain_message(s).is_empty());
            assert!(!api_code(s).is_empty());
        }
        assert_eq!(
            api_code(StatusCode::METHOD_NOT_ALLOWED),
            "method_not_allowed"
        );
    }
}
