//! Staff pages: users (activate, deactivate, delete face data), the
//! recent login attempts and the probe images kept with them.

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use minijinja::context;
use time::OffsetDateTime;
use tower_sessions::Session;

use super::pages::{check_form_csrf, error_page, page_user, render, CsrfForm};
use crate::domain::{AuditKind, NewAuditEvent, User};
use crate::service::ServiceError;
use crate::web::error::user_message;
use crate::web::session::{self as sess};
use crate::web::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/users", get(users))
        .route("/admin/users/{id}/{action}", post(user_action))
        .route("/admin/attempts", get(attempts))
        .route("/admin/attempts/{id}/probe", get(probe))
        .merge(super::audit::router())
}

pub(super) fn fmt_time(t: OffsetDateTime) -> String {
    let f = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    t.format(&f).unwrap_or_default()
}

pub(super) async fn staff(st: &AppState, session: &Session) -> Result<User, Response> {
    let user = page_user(st, session).await?;
    if !user.is_staff {
        return Err(error_page(
            st,
            StatusCode::FORBIDDEN,
            "This page is for staff only.",
        ));
    }
    Ok(user)
}

async fn users(State(st): State<AppState>, session: Session) -> Response {
    let user = match staff(&st, &session).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let now = OffsetDateTime::now_utc();
    let list = match st.services.list_users().await {
        Ok(l) => l,
        Err(e) => return error_page(&st, StatusCode::INTERNAL_SERVER_ERROR, &user_message(&e)),
    };
    let rows: Vec<_> = list
        .iter()
        .map(|s| {
            let u = &s.user;
            let locked = match u.face_locked_until {
                Some(t) if t > now => format!("until {}", fmt_time(t)),
                _ => String::new(),
            };
            context! { id => u.id, username => u.username, email => u.email, is_active => u.is_active,
                is_staff => u.is_staff, faces => s.faces, locked => locked }
        })
        .collect();
    render(
        &st,
        &session,
        Some(&user),
        "admin_users.html",
        context! { title => "Users", active => "users", users => rows },
    )
    .await
}

async fn user_action(
    State(st): State<AppState>,
    session: Session,
    Path((id, action)): Path<(i64, String)>,
    Form(f): Form<CsrfForm>,
) -> Response {
    let me = match staff(&st, &session).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    if let Err(r) = check_form_csrf(&st, &session, &f.csrf_token).await {
        return r;
    }
    let result = match action.as_str() {
        "activate" => st
            .services
            .set_active(id, true)
            .await
            .map(|_| "The user was activated.".to_string()),
        "deactivate" if id == me.id => {
            sess::flash(&session, "danger", "You cannot deactivate yourself.").await;
            return Redirect::to("/admin/users").into_response();
        }
        "deactivate" => st
            .services
            .set_active(id, false)
            .await
            .map(|_| "The user was deactivated.".to_string()),
        "delete-faces" => st
            .services
            .delete_all_faces(id)
            .await
            .map(|n| format!("Deleted {n} face photos of the user.")),
        _ => return error_page(&st, StatusCode::NOT_FOUND, "No such action."),
    };
    let mut event = NewAuditEvent::new(
        AuditKind::AdminAction,
        if result.is_ok() { "success" } else { "failure" },
    )
    .detail(format!("action={action}"));
    event.actor_user_id = Some(me.id);
    event.username = Some(me.username.clone());
    event.subject_user_id = Some(id);
    st.services.record_event(event).await;
    match result {
        Ok(msg) => sess::flash(&session, "success", msg).await,
        Err(e) => sess::flash(&session, "danger", user_message(&e)).await,
    }
    Redirect::to("/admin/users").into_response()
}

async fn attempts(State(st): State<AppState>, session: Session) -> Response {
    let user = match staff(&st, &session).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let list = match st.services.recent_attempts(200).await {
        Ok(l) => l,
        Err(e) => return error_page(&st, StatusCode::INTERNAL_SERVER_ERROR, &user_message(&e)),
    };
    let rows: Vec<_> = list
        .iter()
        .map(|a| {
            context! { id => a.id, at => fmt_time(a.at), claimed_username => a.claimed_username, user_id => a.user_id,
                client_addr => a.client_addr, method => a.method, outcome => a.outcome,
                best_score => a.best_score.map(|s| format!("{s:.3}")), reason => a.reason,
                has_probe => a.has_probe() }
        })
        .collect();
    render(
        &st,
        &session,
        Some(&user),
        "admin_attempts.html",
        context! { title => "Login attempts", active => "attempts", attempts => rows },
    )
    .await
}

/// The probe image kept with a login attempt: staff only (other users get
/// 403, visitors 404); each view is audited by the service.
async fn probe(State(st): State<AppState>, session: Session, Path(id): Path<i64>) -> Response {
    let user = match sess::current_user(&st.services, &session).await {
        Ok(Some(u)) => u,
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    match st.services.probe_image(&user, id).await {
        Ok(bytes) => (
            [
                (header::CONTENT_TYPE, "image/jpeg"),
                (header::CACHE_CONTROL, "private, no-store"),
            ],
            bytes,
        )
            .into_response(),
        Err(ServiceError::Forbidden) => StatusCode::FORBIDDEN.into_response(),
        Err(ServiceError::NotFound) => StatusCode::NOT_FOUND.into_response(),
        Err(e) => {
            tracing::error!(error = %e, attempt = id, "could not read a login probe");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}
