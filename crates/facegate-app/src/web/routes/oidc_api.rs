//! The OpenID Connect endpoints machines call: discovery, the JWK set,
//! the token endpoint, userinfo and revocation. Errors are RFC 6749 JSON
//! (`{"error": …, "error_description": …}`) with the RFC's status; token
//! and userinfo answers are never cached.

use std::collections::HashMap;

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::json;

use crate::service::oidc::{paths, ClientCredentials, OAuthError, TokenRequest};
use crate::web::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(paths::DISCOVERY, get(discovery))
        .route(paths::JWKS, get(jwks))
        .route(paths::TOKEN, post(token))
        .route(paths::USERINFO, get(userinfo).post(userinfo))
        .route(paths::REVOKE, post(revoke))
}

fn no_store(mut res: Response) -> Response {
    let h = res.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    res
}

fn oauth_error(e: OAuthError) -> Response {
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST);
    let body = Json(json!({"error": e.code, "error_description": e.description}));
    let mut res = (status, body).into_response();
    if e.code == "invalid_client" {
        res.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"facegate\""),
        );
    }
    if e.code == "invalid_token" {
        res.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer error=\"invalid_token\""),
        );
    }
    no_store(res)
}

async fn discovery(State(st): State<AppState>) -> Response {
    match st.services.discovery() {
        Ok(doc) => Json(doc).into_response(),
        Err(e) => oauth_error(e.into()),
    }
}

async fn jwks(State(st): State<AppState>) -> Response {
    match st.services.jwks().await {
        Ok(set) => Json(set).into_response(),
        Err(e) => oauth_error(e.into()),
    }
}

/// A form-urlencoded component of HTTP Basic credentials (RFC 6749 §2.3.1).
fn form_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("v={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// The client's credentials: `Authorization: Basic`, else the body's
/// `client_id` and `client_secret`; both at once is refused.
fn credentials(
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Result<ClientCredentials, OAuthError> {
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "));
    match basic {
        Some(b64) => {
            if form.contains_key("client_secret") {
                return Err(OAuthError::invalid_request(
                    "use one client authentication method",
                ));
            }
            let bad = || OAuthError::invalid_client("malformed Basic credentials");
            let raw = STANDARD.decode(b64.trim()).map_err(|_| bad())?;
            let text = String::from_utf8(raw).map_err(|_| bad())?;
            let (id, secret) = text.split_once(':').ok_or_else(bad)?;
            let id = form_decode(id);
            if form.get("client_id").is_some_and(|f| *f != id) {
                return Err(OAuthError::invalid_client(
                    "client_id differs from the credentials",
                ));
            }
            Ok(ClientCredentials {
                client_id: Some(id),
                client_secret: Some(form_decode(secret)),
                basic: true,
            })
        }
        None => Ok(ClientCredentials {
            client_id: form.get("client_id").cloned(),
            client_secret: form.get("client_secret").cloned(),
            basic: false,
        }),
    }
}

fn grant(form: &HashMap<String, String>) -> Result<TokenRequest, OAuthError> {
    let need = |k: &str| {
        form.get(k)
            .cloned()
            .ok_or_else(|| OAuthError::invalid_request(format!("{k} is missing")))
    };
    match form.get("grant_type").map(String::as_str) {
        Some("authorization_code") => Ok(TokenRequest::Code {
            code: need("code")?,
            redirect_uri: form.get("redirect_uri").cloned(),
            code_verifier: form.get("code_verifier").cloned(),
        }),
        Some("refresh_token") => Ok(TokenRequest::Refresh {
            refresh_token: need("refresh_token")?,
        }),
        Some(_) => Err(OAuthError::new(
            "unsupported_grant_type",
            400,
            "only authorization_code and refresh_token",
        )),
        None => Err(OAuthError::invalid_request("grant_type is missing")),
    }
}

async fn token(
    State(st): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let answer = async {
        let creds = credentials(&headers, &form)?;
        let req = grant(&form)?;
        let client = st.services.authenticate_client(&creds).await?;
        st.services.token(&client, req).await
    };
    match answer.await {
        Ok(t) => no_store(Json(t).into_response()),
        Err(e) => oauth_error(e),
    }
}

async fn userinfo(State(st): State<AppState>, headers: HeaderMap) -> Response {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let Some(bearer) = bearer else {
        return oauth_error(OAuthError::invalid_token(
            "send the access token as a Bearer token",
        ));
    };
    match st.services.userinfo(bearer.trim()).await {
        Ok(claims) => no_store(Json(claims).into_response()),
        Err(e) => oauth_error(e),
    }
}

async fn revoke(
    State(st): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let answer = async {
        let creds = credentials(&headers, &form)?;
        let client = st.services.authenticate_client(&creds).await?;
        let token = form
            .get("token")
            .ok_or_else(|| OAuthError::invalid_request("token is missing"))?;
        st.services.revoke(&client, token).await
    };
    match answer.await {
        Ok(()) => no_store(StatusCode::OK.into_response()),
        Err(e) => oauth_error(e),
    }
}
