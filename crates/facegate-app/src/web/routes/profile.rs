//! The profile pages: e-mail and password changes, face photo upload
//! (several at once; a full disk answers with the error page), listing,
//! deletion, and the protected photo route.
//!
//! Adding faces, deleting all face data and changing the e-mail address
//! need a fresh authentication (issue 16, finding 6): otherwise the page
//! asks for the password (`/profile/reauth`). A password change and "log
//! out everywhere" end every other session of the account.

use axum::extract::{DefaultBodyLimit, Multipart, Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use minijinja::context;
use serde::Deserialize;
use tower_sessions::Session;

use crate::config::Config;
use crate::domain::User;
use crate::service::ServiceResult;
use crate::web::client::ClientAddr;
use crate::web::error::{classify, user_message};
use crate::web::extract::{check_csrf, CheckedForm, CsrfForm, CsrfToken, PageUser};
use crate::web::render::{
    count_of, error_page, quality_words, render, server_error_page, PageResult,
};
use crate::web::session::{self as sess};
use crate::web::state::{AppState, MULTIPART_OVERHEAD};
use crate::web::upload::read_upload;

pub fn router(config: &Config) -> Router<AppState> {
    let many = config.engine.decode.max_bytes * config.max_upload_files + MULTIPART_OVERHEAD;
    Router::new()
        .route("/profile", get(profile))
        .route("/profile/email", post(change_email))
        .route("/profile/password", post(change_password))
        .route("/profile/reauth", post(reauth))
        .route("/profile/logout-everywhere", post(logout_everywhere))
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

async fn profile(
    State(st): State<AppState>,
    session: Session,
    PageUser(user): PageUser,
) -> PageResult {
    let faces: Vec<_> = st
        .services
        .faces(user.id)
        .await
        .map_err(|e| server_error_page(&st, &e))?
        .iter()
        .map(|t| {
            let (words, good) = quality_words(t.quality);
            context! { id => t.id, quality => format!("{:.2}", t.quality), quality_words => words, good => good }
        })
        .collect();
    let fresh = sess::require_fresh(&st.services, &session, user.id).await;
    let extra = context! {
        title => "Profile", active => "profile", faces => faces, reauth_needed => fresh.is_err()
    };
    Ok(render(&st, &session, Some(&user), "profile.html", extra).await)
}

#[derive(Deserialize)]
struct EmailForm {
    #[serde(default)]
    csrf_token: String,
    email: String,
}

impl CsrfToken for EmailForm {
    fn csrf_token(&self) -> &str {
        &self.csrf_token
    }
}

async fn change_email(
    State(st): State<AppState>,
    session: Session,
    PageUser(user): PageUser,
    CheckedForm(f): CheckedForm<EmailForm>,
) -> Response {
    if let Err(r) = fresh_or_ask(&st, &session, &user).await {
        return r;
    }
    let saved = st.services.change_email(&user, &f.email).await;
    report(&session, saved, "Your e-mail address was saved.").await
}

#[derive(Deserialize)]
struct PasswordForm {
    #[serde(default)]
    csrf_token: String,
    current_password: String,
    password: String,
    password2: String,
}

impl CsrfToken for PasswordForm {
    fn csrf_token(&self) -> &str {
        &self.csrf_token
    }
}

async fn change_password(
    State(st): State<AppState>,
    session: Session,
    PageUser(user): PageUser,
    CheckedForm(f): CheckedForm<PasswordForm>,
) -> Response {
    if f.password != f.password2 {
        sess::flash(&session, "danger", "The two new passwords differ.").await;
        return back();
    }
    let changed = st
        .services
        .change_password(&user, &f.current_password, &f.password)
        .await;
    if changed.is_ok() {
        if let Err(e) = sess::keep_after_ending_others(&st.services, &session, user.id).await {
            return server_error_page(&st, &e);
        }
    }
    let text = "Your password was changed; every other session was logged out.";
    report(&session, changed, text).await
}

/// The outcome of a change as a message on the profile page: `done`, or
/// what went wrong.
async fn report(session: &Session, outcome: ServiceResult<()>, done: &str) -> Response {
    match outcome {
        Ok(()) => sess::flash(session, "success", done).await,
        Err(e) => sess::flash(session, "danger", user_message(&e)).await,
    }
    back()
}

/// Asks for the password (a message, back to the profile page) unless
/// `user` authenticated recently.
async fn fresh_or_ask(st: &AppState, session: &Session, user: &User) -> Result<(), Response> {
    match sess::require_fresh(&st.services, session, user.id).await {
        Ok(()) => Ok(()),
        Err(e) => {
            sess::flash(session, "warning", user_message(&e)).await;
            Err(back())
        }
    }
}

#[derive(Deserialize)]
struct ReauthForm {
    #[serde(default)]
    csrf_token: String,
    password: String,
}

impl CsrfToken for ReauthForm {
    fn csrf_token(&self) -> &str {
        &self.csrf_token
    }
}

/// The password confirmation that makes the session fresh again.
async fn reauth(
    State(st): State<AppState>,
    ClientAddr(client): ClientAddr,
    session: Session,
    PageUser(user): PageUser,
    CheckedForm(f): CheckedForm<ReauthForm>,
) -> Response {
    let confirmed = match st
        .services
        .confirm_password(&user, &f.password, &client)
        .await
    {
        Ok(()) => sess::reauthenticated(&session, user.id).await,
        refused => refused,
    };
    let text = "Thank you: your password is confirmed.";
    report(&session, confirmed, text).await
}

/// Ends every other session of the account; this one stays.
async fn logout_everywhere(
    State(st): State<AppState>,
    session: Session,
    PageUser(user): PageUser,
    CheckedForm(_): CheckedForm<CsrfForm>,
) -> Response {
    let ended = match st.services.end_sessions(&user).await {
        Ok(()) => sess::keep_after_ending_others(&st.services, &session, user.id).await,
        failed => failed,
    };
    let text = "Every other session of your account was logged out.";
    report(&session, ended, text).await
}

/// The CSRF token of the upload form, sent in its URL so that it is
/// checked before the (large) body is read.
#[derive(Deserialize)]
struct UploadQuery {
    #[serde(default)]
    csrf_token: String,
}

/// A photo upload from the profile page. The CSRF token (in the form's
/// URL) is checked and a reading slot taken before any of the body is
/// read: a forged or excess upload costs no buffering.
async fn upload(
    State(st): State<AppState>,
    session: Session,
    PageUser(user): PageUser,
    Query(q): Query<UploadQuery>,
    mp: Multipart,
) -> Response {
    if let Err(r) = check_csrf(&st, &session, &q.csrf_token).await {
        return r;
    }
    if let Err(r) = fresh_or_ask(&st, &session, &user).await {
        return r;
    }
    let Ok(_slot) = st.page_uploads.clone().acquire_owned().await else {
        return error_page(
            &st,
            StatusCode::SERVICE_UNAVAILABLE,
            "The server is shutting down.",
        );
    };
    let cfg = &st.services.config;
    let up = match read_upload(mp, cfg.engine.decode.max_bytes, cfg.max_upload_files).await {
        Ok(u) => u,
        Err(e) => {
            sess::flash(&session, "danger", e.message).await;
            return back();
        }
    };
    if up.images.is_empty() {
        sess::flash(&session, "danger", "Choose at least one photo.").await;
        return back();
    }
    let done = enrol_all(&st, &user, up.images).await;
    if let Some(status) = done.storage {
        // The flash message would need a session write, which the disk
        // cannot take now: answer with the error page itself.
        return error_page(&st, status, &done.summary());
    }
    if done.errors.is_empty() {
        let text = format!("Added {}.", count_of(done.added, "face photo"));
        sess::flash(&session, "success", text).await;
    } else if done.added > 0 {
        // Some were added: a warning, not a failure.
        sess::flash(&session, "warning", done.summary()).await;
    } else {
        sess::flash(&session, "danger", done.summary()).await;
    }
    back()
}

/// What became of the photos of one upload.
struct Enrolled {
    total: usize,
    added: usize,
    /// One message per refused photo.
    errors: Vec<String>,
    /// Set when the disk refused a write (which stopped the upload).
    storage: Option<StatusCode>,
}

impl Enrolled {
    /// "Added 2 of 3. Photo 3: …" (no count when none was added).
    fn summary(&self) -> String {
        let prefix = match self.added {
            0 => String::new(),
            n => format!("Added {n} of {}. ", self.total),
        };
        format!("{prefix}{}", self.errors.join(" "))
    }
}

/// Enrols the photos in order; a full or refusing disk stops the upload.
async fn enrol_all(st: &AppState, user: &User, images: Vec<Vec<u8>>) -> Enrolled {
    let total = images.len();
    let mut done = Enrolled {
        total,
        added: 0,
        errors: Vec::new(),
        storage: None,
    };
    for (i, image) in images.into_iter().enumerate() {
        let Err(e) = st.services.enrol(user, image).await else {
            done.added += 1;
            continue;
        };
        let message = user_message(&e);
        done.errors.push(match total {
            1 => message,
            _ => format!("Photo {}: {message}", i + 1),
        });
        if e.is_storage() {
            done.storage = Some(classify(&e).0);
            break;
        }
    }
    done
}

async fn delete_face(
    State(st): State<AppState>,
    session: Session,
    Path(id): Path<i64>,
    PageUser(user): PageUser,
    CheckedForm(_): CheckedForm<CsrfForm>,
) -> Response {
    match st.services.delete_face(&user, id).await {
        Ok(()) => sess::flash(&session, "success", "The photo was deleted.").await,
        Err(e) => sess::flash(&session, "danger", user_message(&e)).await,
    }
    back()
}

async fn delete_all(
    State(st): State<AppState>,
    session: Session,
    PageUser(user): PageUser,
    CheckedForm(_): CheckedForm<CsrfForm>,
) -> Response {
    if let Err(r) = fresh_or_ask(&st, &session, &user).await {
        return r;
    }
    match st.services.delete_all_faces(user.id).await {
        Ok(0) => sess::flash(&session, "info", "You had no face data to delete.").await,
        Ok(n) => {
            let text = format!("All your face data was deleted ({}).", count_of(n, "photo"));
            sess::flash(&session, "success", text).await
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
