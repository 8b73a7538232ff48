//! Session keys and helpers: the logged-in user, the pending second-factor
//! user, the CSRF token and one-shot flash messages.

use rand::RngCore;
use serde::{Deserialize, Serialize};
use tower_sessions::Session;

use crate::domain::User;
use crate::service::{ServiceError, ServiceResult, Services};

const USER_ID: &str = "user_id";
const PENDING_USER_ID: &str = "pending_user_id";
const CSRF: &str = "csrf_token";
const FLASH: &str = "flash";

fn internal(e: tower_sessions::session::Error) -> ServiceError {
    ServiceError::Internal(format!("session: {e}"))
}

/// Logs `user_id` in: a new session id (no fixation), then the user.
pub async fn log_in(session: &Session, user_id: i64) -> ServiceResult<()> {
    session.cycle_id().await.map_err(internal)?;
    session
        .remove::<i64>(PENDING_USER_ID)
        .await
        .map_err(internal)?;
    session.insert(USER_ID, user_id).await.map_err(internal)
}

/// Remembers that `user_id` passed the password step and owes a face.
pub async fn set_pending(session: &Session, user_id: i64) -> ServiceResult<()> {
    session.cycle_id().await.map_err(internal)?;
    session.remove::<i64>(USER_ID).await.map_err(internal)?;
    session
        .insert(PENDING_USER_ID, user_id)
        .await
        .map_err(internal)
}

pub async fn pending(session: &Session) -> Option<i64> {
    session.get::<i64>(PENDING_USER_ID).await.ok().flatten()
}

/// Ends the session entirely.
pub async fn log_out(session: &Session) -> ServiceResult<()> {
    session.flush().await.map_err(internal)
}

/// The logged-in, still active user, if any.
pub async fn current_user(services: &Services, session: &Session) -> ServiceResult<Option<User>> {
    let Some(id) = session.get::<i64>(USER_ID).await.map_err(internal)? else {
        return Ok(None);
    };
    services.active_user(id).await
}

/// The logged-in user or `NotAuthenticated`.
pub async fn require_user(services: &Services, session: &Session) -> ServiceResult<User> {
    current_user(services, session)
        .await?
        .ok_or(ServiceError::NotAuthenticated)
}

/// The session's CSRF token, created on first use.
pub async fn csrf_token(session: &Session) -> ServiceResult<String> {
    if let Some(t) = session.get::<String>(CSRF).await.map_err(internal)? {
        return Ok(t);
    }
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    let token = hex::encode(bytes);
    session.insert(CSRF, &token).await.map_err(internal)?;
    Ok(token)
}

/// True when `provided` equals the session's token (constant time).
pub async fn csrf_ok(session: &Session, provided: Option<&str>) -> bool {
    let Ok(Some(expected)) = session.get::<String>(CSRF).await else {
        return false;
    };
    let Some(provided) = provided else {
        return false;
    };
    let (a, b) = (expected.as_bytes(), provided.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A message shown once on the next page.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Flash {
    /// `success` or `danger` (Bootstrap alert classes).
    pub kind: String,
    pub text: String,
}

pub async fn flash(session: &Session, kind: &str, text: impl Into<String>) {
    let f = Flash {
        kind: kind.into(),
        text: text.into(),
    };
    if let Err(e) = session.insert(FLASH, f).await {
        tracing::warn!(error = %e, "could not store a flash message");
    }
}

pub async fn take_flash(session: &Session) -> Option<Flash> {
    session.remove::<Flash>(FLASH).await.ok().flatten()
}
