//! Page rendering: a template with the common context (user, CSRF token,
//! flash message, face-login mode), the styled error page, and the small
//! formatters the page templates share.

use axum::http::StatusCode;
use axum::response::Response;
use minijinja::{context, Value};
use time::OffsetDateTime;
use tower_sessions::Session;

use super::error::user_message;
use super::session as sess;
use super::state::AppState;
use crate::domain::User;
use crate::service::ServiceError;

/// What a page handler answers: the page, or an error page or redirect
/// that ends the request early (`?` on a helper that returns one).
pub type PageResult = Result<Response, Response>;

/// The user as templates see it.
pub fn user_value(u: &User) -> Value {
    context! { id => u.id, username => u.username, email => u.email, is_staff => u.is_staff }
}

/// Renders `name` with the common context (user, CSRF token, flash) plus `extra`.
pub async fn render(
    st: &AppState,
    session: &Session,
    user: Option<&User>,
    name: &str,
    extra: Value,
) -> Response {
    render_status(st, session, user, StatusCode::OK, name, extra).await
}

/// Like [`render`], with another status (a form shown again with its error).
pub async fn render_status(
    st: &AppState,
    session: &Session,
    user: Option<&User>,
    status: StatusCode,
    name: &str,
    extra: Value,
) -> Response {
    let csrf = match sess::csrf_token(session).await {
        Ok(t) => t,
        Err(e) => return server_error_page(st, &e),
    };
    let flash = sess::take_flash(session).await;
    let ctx = context! {
        user => user.map(user_value),
        csrf => csrf,
        flash => flash,
        mode => st.services.config.face_login.as_str(),
        ..extra
    };
    st.views.render_status(status, name, ctx)
}

/// A minimal error page (no session needed).
pub fn error_page(st: &AppState, status: StatusCode, message: &str) -> Response {
    st.views.render_status(
        status,
        "error.html",
        context! { title => status.canonical_reason().unwrap_or("Error"), message => message },
    )
}

/// The error page for a service failure a page cannot recover from: 500
/// with the message safe to show.
pub fn server_error_page(st: &AppState, e: &ServiceError) -> Response {
    error_page(st, StatusCode::INTERNAL_SERVER_ERROR, &user_message(e))
}

/// A time as the staff pages show it (UTC, to the second).
pub fn fmt_time(t: OffsetDateTime) -> String {
    let f = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    t.format(&f).unwrap_or_default()
}
