//! Staff pages: users (activate, deactivate, delete face data), the
//! recent login attempts and the probe images kept with them. The audit
//! trail, also for staff, is `audit.rs`.

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use minijinja::context;
use time::OffsetDateTime;
use tower_sessions::Session;

use crate::domain::{AuditKind, NewAuditEvent, User};
use crate::service::{ServiceError, ServiceResult};
use crate::web::error::user_message;
use crate::web::extract::{CheckedForm, CsrfForm, StaffUser};
use crate::web::render::{
    account_label, count_of, error_page, fmt_time, render, server_error_page, PageResult,
};
use crate::web::session::{self as sess};
use crate::web::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/users", get(users))
        .route("/admin/users/{id}/{action}", post(user_action))
        .route("/admin/attempts", get(attempts))
        .route("/admin/attempts/{id}/probe", get(probe))
}

async fn users(
    State(st): State<AppState>,
    session: Session,
    StaffUser(user): StaffUser,
) -> PageResult {
    let now = OffsetDateTime::now_utc();
    let list = st
        .services
        .list_users()
        .await
        .map_err(|e| server_error_page(&st, &e))?;
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
    let extra = context! { title => "Users", active => "users", users => rows };
    Ok(render(&st, &session, Some(&user), "admin_users.html", extra).await)
}

/// Activates, deactivates (never oneself) or deletes the face data of a
/// user; every attempt is audited with the staff member as actor.
async fn user_action(
    State(st): State<AppState>,
    session: Session,
    Path((id, action)): Path<(i64, String)>,
    StaffUser(me): StaffUser,
    CheckedForm(_): CheckedForm<CsrfForm>,
) -> Response {
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
            .map(|n| format!("Deleted {} of the user.", count_of(n, "face photo"))),
        _ => return error_page(&st, StatusCode::NOT_FOUND, "No such action."),
    };
    audit_action(&st, &me, id, &action, &result).await;
    match result {
        Ok(msg) => sess::flash(&session, "success", msg).await,
        Err(e) => sess::flash(&session, "danger", user_message(&e)).await,
    }
    Redirect::to("/admin/users").into_response()
}

async fn audit_action(
    st: &AppState,
    me: &User,
    subject: i64,
    action: &str,
    result: &ServiceResult<String>,
) {
    let mut event = NewAuditEvent::new(
        AuditKind::AdminAction,
        if result.is_ok() { "success" } else { "failure" },
    )
    .detail(format!("action={action}"));
    // The subject by name too, readable after the account is gone.
    if let Ok(mut names) = st.services.usernames([subject]).await {
        if let Some(name) = names.remove(&subject) {
            event.detail = format!("action={action} subject={name}");
        }
    }
    event.actor_user_id = Some(me.id);
    event.username = Some(me.username.clone());
    event.subject_user_id = Some(subject);
    st.services.record_event(event).await;
}

async fn attempts(
    State(st): State<AppState>,
    session: Session,
    StaffUser(user): StaffUser,
) -> PageResult {
    let list = st
        .services
        .recent_attempts(200)
        .await
        .map_err(|e| server_error_page(&st, &e))?;
    let names = st
        .services
        .usernames(list.iter().filter_map(|a| a.user_id).collect::<Vec<_>>())
        .await
        .map_err(|e| server_error_page(&st, &e))?;
    let rows: Vec<_> = list
        .iter()
        .map(|a| {
            let account = a.user_id.map(|id| account_label(&names, id));
            context! { id => a.id, at => fmt_time(a.at), claimed_username => a.claimed_username, account => account,
                client_addr => a.client_addr, method => a.method, outcome => a.outcome,
                best_score => a.best_score.map(|s| format!("{s:.3}")), reason => a.reason,
                has_probe => a.has_probe() }
        })
        .collect();
    let extra = context! { title => "Login attempts", active => "attempts", attempts => rows };
    Ok(render(&st, &session, Some(&user), "admin_attempts.html", extra).await)
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
