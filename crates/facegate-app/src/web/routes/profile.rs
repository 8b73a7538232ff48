//! The profile pages: e-mail and password changes, face photo upload
//! (several at once; a full disk answers with the error page), listing,
//! deletion, and the protected photo route.

use axum::extract::{DefaultBodyLimit, Multipart, Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use minijinja::context;
use serde::Deserialize;
use tower_sessions::Session;

use super::pages::{check_form_csrf, error_page, form_user, page_user, render, CsrfForm};
use super::read_upload;
use crate::config::Config;
use crate::web::error::{classify, user_message};
use crate::web::session::{self as sess};
use crate::web::AppState;

pub fn router(config: &Config) -> Router<AppState> {
    let many = config.engine.decode.max_bytes * config.max_upload_files + 64 * 1024;
    Router::new()
        .route("/profile", get(profile))
        .route("/profile/email", post(change_email))
        .route("/profile/password", post(change_password))
        .route(
            "/profile/faces",
            post(upload).layer(DefaultBodyLimit::max(many)),
        )
        .route("/profile/faces/{id}/delete", post(delete_face))
        .route("/profile/faces/delete-all", post(delete_all))
        .route("/media/faces/{id}", get(face_image))
}

fn back() -> Response {
    Redirect::to("/profile").into_response()
}

async fn profile(State(st): State<AppState>, session: Session) -> Response {
    let user = match page_user(&st, &session).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let faces: Vec<_> = match st.services.faces(user.id).await {
        Ok(f) => f
            .iter()
            .map(|t| context! { id => t.id, quality => format!("{:.2}", t.quality) })
            .collect(),
        Err(e) => return error_page(&st, StatusCode::INTERNAL_SERVER_ERROR, &user_message(&e)),
    };
    render(
        &st,
        &session,
        Some(&user),
        "profile.html",
        context! { title => "Profile", active => "profile", faces => faces },
    )
    .await
}

#[derive(Deserialize)]
struct EmailForm {
    #[serde(default)]
    csrf_token: String,
    email: String,
}

async fn change_email(
    State(st): State<AppState>,
    session: Session,
    Form(f): Form<EmailForm>,
) -> Response {
    let user = match form_user(&st, &session, &f.csrf_token).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    match st.services.change_email(&user, &f.email).await {
        Ok(()) => sess::flash(&session, "success", "Your e-mail address was saved.").await,
        Err(e) => sess::flash(&session, "danger", user_message(&e)).await,
    }
    back()
}

#[derive(Deserialize)]
struct PasswordForm {
    #[serde(default)]
    csrf_token: String,
    current_password: String,
    password: String,
    password2: String,
}

async fn change_password(
    State(st): State<AppState>,
    session: Session,
    Form(f): Form<PasswordForm>,
) -> Response {
    let user = match form_user(&st, &session, &f.csrf_token).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    if f.password != f.password2 {
        sess::flash(&session, "danger", "The two new passwords differ.").await;
        return back();
    }
    match st
        .services
        .change_password(&user, &f.current_password, &f.password)
        .await
    {
        Ok(()) => sess::flash(&session, "success", "Your password was changed.").await,
        Err(e) => sess::flash(&session, "danger", user_message(&e)).await,
    }
    back()
}

async fn upload(State(st): State<AppState>, session: Session, mp: Multipart) -> Response {
    let user = match page_user(&st, &session).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let cfg = &st.services.config;
    let up = match read_upload(mp, cfg.engine.decode.max_bytes, cfg.max_upload_files).await {
        Ok(u) => u,
        Err(e) => {
            sess::flash(&session, "danger", e.message).await;
            return back();
        }
    };
    if let Err(r) = check_form_csrf(&st, &session, up.field("csrf_token").unwrap_or_default()).await
    {
        return r;
    }
    if up.images.is_empty() {
        sess::flash(&session, "danger", "Choose at least one photo.").await;
        return back();
    }
    let total = up.images.len();
    let mut added = 0;
    let mut errors = Vec::new();
    // A full or refusing disk stops the upload.
    let mut storage = None;
    for (i, image) in up.images.into_iter().enumerate() {
        match st.services.enrol(&user, image).await {
            Ok(_) => added += 1,
            Err(e) => {
                let message = user_message(&e);
                errors.push(match total {
                    1 => message,
                    _ => format!("Photo {}: {message}", i + 1),
                });
                if e.is_storage() {
                    storage = Some(classify(&e).0);
                    break;
                }
            }
        }
    }
    if let Some(status) = storage {
        // The flash message would need a session write, which the disk
        // cannot take now: answer with the error page itself.
        let prefix = match added {
            0 => String::new(),
            n => format!("Added {n} of {total}. "),
        };
        return error_page(&st, status, &format!("{prefix}{}", errors.join(" ")));
    }
    if errors.is_empty() {
        let s = if added == 1 { "" } else { "s" };
        sess::flash(&session, "success", format!("Added {added} face photo{s}.")).await;
    } else {
        let prefix = if added > 0 {
            format!("Added {added} of {total}. ")
        } else {
            String::new()
        };
        sess::flash(&session, "danger", format!("{prefix}{}", errors.join(" "))).await;
    }
    back()
}

async fn delete_face(
    State(st): State<AppState>,
    session: Session,
    Path(id): Path<i64>,
    Form(f): Form<CsrfForm>,
) -> Response {
    let user = match form_user(&st, &session, &f.csrf_token).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    match st.services.delete_face(&user, id).await {
        Ok(()) => sess::flash(&session, "success", "The photo was deleted.").await,
        Err(e) => sess::flash(&session, "danger", user_message(&e)).await,
    }
    back()
}

async fn delete_all(
    State(st): State<AppState>,
    session: Session,
    Form(f): Form<CsrfForm>,
) -> Response {
    let user = match form_user(&st, &session, &f.csrf_token).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    match st.services.delete_all_faces(user.id).await {
        Ok(n) => {
            sess::flash(
                &session,
                "success",
                format!("All your face data was deleted ({n} photos)."),
            )
            .await
        }
        Err(e) => sess::flash(&session, "danger", user_message(&e)).await,
    }
    back()
}

/// A stored face photo, for its owner and for staff only.
async fn face_image(State(st): State<AppState>, session: Session, Path(id): Path<i64>) -> Response {
    let user = match sess::current_user(&st.services, &session).await {
        Ok(Some(u)) => u,
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    match st.services.face_image(&user, id).await {
        Ok(bytes) => (
            [
                (header::CONTENT_TYPE, "image/jpeg"),
                (header::CACHE_CONTROL, "private, no-store"),
            ],
            bytes,
        )
            .into_response(),
        Err(_) => StatusCode::NOT_FOUND.into_response(),
    }
}
