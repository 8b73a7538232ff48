//! Page rendering: a template with the common context (user, CSRF token,
//! flash message, face-login mode), the styled error page, and the small
//! formatters the page templates share (times, counts, quality in words).

use std::collections::HashMap;

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

/// An account as staff read it: its name and id, or only the id of an
/// account deleted since.
pub fn account_label(names: &HashMap<i64, String>, id: i64) -> String {
    match names.get(&id) {
        Some(name) => format!("{name} (#{id})"),
        None => format!("#{id} (deleted)"),
    }
}

/// "1 photo", "3 photos": a count with its noun in the right number.
pub fn count_of(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// A face photo's quality score in words, and whether it is a good one.
pub fn quality_words(quality: f32) -> (&'static str, bool) {
    if quality >= 0.6 {
        ("good photo", true)
    } else {
        ("blurry or small, consider another", false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_words() {
        assert_eq!(count_of(1, "photo"), "1 photo");
        assert_eq!(count_of(0, "photo"), "0 photos");
        assert_eq!(count_of(2, "photo"), "2 photos");
        assert_eq!(quality_words(0.81), ("good photo", true));
        assert!(!quality_words(0.3).1);
    }
}
