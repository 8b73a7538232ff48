//! The axum extractors of the web layer. Each one's rejection is the
//! response the request gets when it fails: the login redirect, the styled
//! 403 page, the CSRF error page, or the API's JSON error.
//!
//! - [`PageUser`]: the logged-in, active user of a page (else a redirect
//!   to `/login`);
//! - [`StaffUser`]: the same, and staff (else the 403 page);
//! - [`CheckedForm`]: a form whose `csrf_token` field matches the session's
//!   (else the 403 page that says the form expired);
//! - [`ApiMultipart`]: a multipart body of the JSON API (else a JSON 4xx).
//!
//! Path and query extractors listed before a user extractor run first;
//! a form (the body) is always read last.

use axum::extract::multipart::Multipart;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use tower_sessions::Session;

use super::error::ApiError;
use super::render::{error_page, server_error_page};
use super::session as sess;
use super::state::AppState;
use crate::domain::User;

/// The logged-in user of a page; a visitor is sent to `/login`.
pub struct PageUser(pub User);

/// A logged-in staff member; anyone else logged in gets the styled 403
/// page, a visitor is sent to `/login`.
pub struct StaffUser(pub User);

async fn session(parts: &mut Parts, st: &AppState) -> Result<Session, Response> {
    Session::from_request_parts(parts, st)
        .await
        .map_err(IntoResponse::into_response)
}

impl FromRequestParts<AppState> for PageUser {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, Response> {
        let session = session(parts, st).await?;
        match sess::current_user(&st.services, &session).await {
            Ok(Some(u)) => Ok(PageUser(u)),
            Ok(None) => Err(Redirect::to("/login").into_response()),
            Err(e) => Err(server_error_page(st, &e)),
        }
    }
}

impl FromRequestParts<AppState> for StaffUser {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, Response> {
        let PageUser(user) = PageUser::from_request_parts(parts, st).await?;
        if !user.is_staff {
            return Err(error_page(
                st,
                StatusCode::FORBIDDEN,
                "This page is for staff only.",
            ));
        }
        Ok(StaffUser(user))
    }
}

/// A form that carries the session's CSRF token in its `csrf_token` field.
pub trait CsrfToken {
    fn csrf_token(&self) -> &str;
}

/// A form that carries only the CSRF token (logout, delete buttons, admin actions).
#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    pub csrf_token: String,
}

impl CsrfToken for CsrfForm {
    fn csrf_token(&self) -> &str {
        &self.csrf_token
    }
}

/// Checks a submitted CSRF token against the session's; the error page
/// when it is wrong or missing.
pub async fn check_csrf(st: &AppState, session: &Session, token: &str) -> Result<(), Response> {
    match sess::csrf_ok(session, Some(token)).await {
        Ok(true) => Ok(()),
        Ok(false) => Err(error_page(
            st,
            StatusCode::FORBIDDEN,
            "The form expired or was not sent from this site. Go back, reload and try again.",
        )),
        Err(e) => Err(error_page(
            st,
            StatusCode::SERVICE_UNAVAILABLE,
            &e.to_string(),
        )),
    }
}

/// A URL-encoded form whose CSRF token is right. A body that is not such a
/// form gets axum's own rejection, a wrong token the error page.
pub struct CheckedForm<T>(pub T);

impl<T> FromRequest<AppState> for CheckedForm<T>
where
    T: DeserializeOwned + CsrfToken + Send,
{
    type Rejection = Response;

    async fn from_request(req: Request, st: &AppState) -> Result<Self, Response> {
        let (mut parts, body) = req.into_parts();
        let session = session(&mut parts, st).await?;
        let Form(form) = Form::<T>::from_request(Request::from_parts(parts, body), st)
            .await
            .map_err(IntoResponse::into_response)?;
        check_csrf(st, &session, form.csrf_token()).await?;
        Ok(CheckedForm(form))
    }
}

/// A multipart body for the JSON API: like axum's [`Multipart`], but a
/// request that is not `multipart/form-data` with a valid boundary is
/// refused with the API's JSON error, not axum's plain-text rejection.
pub struct ApiMultipart(pub Multipart);

impl<S: Send + Sync> FromRequest<S> for ApiMultipart {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        Multipart::from_request(req, state)
            .await
            .map(ApiMultipart)
            .map_err(|e| {
                ApiError::new(
                    e.status(),
                    "invalid",
                    format!("Malformed upload: {}", e.body_text()),
                )
            })
    }
}
