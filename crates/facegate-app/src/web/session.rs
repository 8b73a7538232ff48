//! Session keys and helpers: the logged-in user and how they proved who
//! they are ([`Authn`], for OpenID Connect's `acr`/`amr`/`auth_time`), the
//! pending second-factor user, the CSRF token and one-shot flash messages.
//!
//! A session also keeps the account's session epoch from its login: when
//! the account's epoch moved on (a password change, a deactivation, "log
//! out everywhere"), the session is over (issue 16, finding 6). Sensitive
//! changes need a fresh authentication: a login or password confirmation
//! within `reauth_seconds` ([`require_fresh`]).

use rand::RngCore;
use serde::{Deserialize, Serialize};
use tower_sessions::Session;

use crate::domain::oidc::Authn;
use crate::domain::User;
use crate::service::{ServiceError, ServiceResult, Services};

const USER_ID: &str = "user_id";
const PENDING_USER_ID: &str = "pending_user_id";
const CSRF: &str = "csrf_token";
const FLASH: &str = "flash";
const AUTHN: &str = "authn";
const EPOCH: &str = "session_epoch";

/// A session that cannot be read or written: the store behind it is
/// unreachable (a session that does not decode is dropped by
/// tower-sessions, not reported).
fn internal(e: tower_sessions::session::Error) -> ServiceError {
    ServiceError::StorageUnavailable(format!("session: {e}"))
}

/// How a login step proved who the person is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Password,
    /// A face match; `liveness`: while passing an active challenge.
    Face {
        liveness: bool,
    },
}

/// What the session knows of how `user_id` authenticated, with this step
/// added: steps of the same person in one session add up (a password,
/// then a face, is both); a face after the second-factor password step
/// counts the password.
async fn add_step(session: &Session, user_id: i64, method: Method) -> Authn {
    let prior: Option<(i64, Authn)> = session.get(AUTHN).await.ok().flatten();
    let mut authn = match prior {
        Some((id, a)) if id == user_id => a,
        _ => Authn {
            auth_time: 0,
            password: false,
            face: false,
            liveness: false,
        },
    };
    authn.auth_time = time::OffsetDateTime::now_utc().unix_timestamp();
    match method {
        Method::Password => authn.password = true,
        Method::Face { liveness } => {
            authn.face = true;
            authn.liveness = liveness;
            if pending(session).await == Some(user_id) {
                authn.password = true;
            }
        }
    }
    authn
}

/// How the logged-in `user_id` authenticated (a session from before this
/// was recorded counts as a password login at an unknown time).
pub async fn authn(session: &Session, user_id: i64) -> Authn {
    match session.get::<(i64, Authn)>(AUTHN).await.ok().flatten() {
        Some((id, a)) if id == user_id => a,
        _ => Authn {
            auth_time: 0,
            password: true,
            face: false,
            liveness: false,
        },
    }
}

/// Logs `user` in by `method`: a new session id (no fixation), then the
/// user, how they authenticated and the account's session epoch.
pub async fn log_in(session: &Session, user: &User, method: Method) -> ServiceResult<()> {
    let user_id = user.id;
    let authn = add_step(session, user_id, method).await;
    session.cycle_id().await.map_err(internal)?;
    session
        .insert(AUTHN, (user_id, authn))
        .await
        .map_err(internal)?;
    session
        .insert(EPOCH, user.session_epoch)
        .await
        .map_err(internal)?;
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

/// The logged-in, still active user, if any; a session whose account
/// ended its sessions since it logged in is ended.
pub async fn current_user(services: &Services, session: &Session) -> ServiceResult<Option<User>> {
    let Some(id) = session.get::<i64>(USER_ID).await.map_err(internal)? else {
        return Ok(None);
    };
    let Some(user) = services.active_user(id).await? else {
        return Ok(None);
    };
    let epoch = session.get::<i64>(EPOCH).await.map_err(internal)?;
    if epoch.unwrap_or(0) != user.session_epoch {
        session.flush().await.map_err(internal)?;
        return Ok(None);
    }
    Ok(Some(user))
}

/// Keeps this session of `user_id` after the account ended all its
/// sessions (the one that changed the password, or asked to log out
/// everywhere): a new id, and the account's new epoch.
pub async fn keep_after_ending_others(
    services: &Services,
    session: &Session,
    user_id: i64,
) -> ServiceResult<()> {
    let user = services
        .active_user(user_id)
        .await?
        .ok_or(ServiceError::NotAuthenticated)?;
    session.cycle_id().await.map_err(internal)?;
    session
        .insert(EPOCH, user.session_epoch)
        .await
        .map_err(internal)
}

/// Tells `user`, just logged in by `method`, that a face was added to the
/// account since they were last told: a warning on the next page, and the
/// text for the API's answer.
pub async fn notice_face_added(
    services: &Services,
    session: &Session,
    user: &User,
    method: Method,
) -> Option<String> {
    let told = method == Method::Password;
    let at = match services.face_added_notice(user, told).await {
        Ok(at) => at?,
        Err(e) => {
            tracing::warn!(error = %e, "could not read the face-added notice");
            return None;
        }
    };
    let day = at
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let text = format!(
        "A face photo was added to your account ({day} UTC). If that was not you, delete \
         your face data on the profile page and change your password."
    );
    flash(session, "warning", &text).await;
    Some(text)
}

/// `Ok` when `user_id` authenticated (logged in, or confirmed their
/// password) within the last `reauth_seconds`; else `ReauthRequired`.
pub async fn require_fresh(
    services: &Services,
    session: &Session,
    user_id: i64,
) -> ServiceResult<()> {
    let window = services.config.reauth_seconds.max(1);
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let at = authn(session, user_id).await.auth_time;
    if at > 0 && now - at < window {
        Ok(())
    } else {
        Err(ServiceError::ReauthRequired)
    }
}

/// Records that `user_id` just confirmed their password (a fresh
/// authentication; no new session id: it is the same person).
pub async fn reauthenticated(session: &Session, user_id: i64) -> ServiceResult<()> {
    let authn = add_step(session, user_id, Method::Password).await;
    session
        .insert(AUTHN, (user_id, authn))
        .await
        .map_err(internal)
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

/// True when `provided` equals the session's token (constant time); an
/// error when the session cannot be read (the store is unreachable).
pub async fn csrf_ok(session: &Session, provided: Option<&str>) -> ServiceResult<bool> {
    let Some(expected) = session.get::<String>(CSRF).await.map_err(internal)? else {
        return Ok(false);
    };
    let Some(provided) = provided else {
        return Ok(false);
    };
    let (a, b) = (expected.as_bytes(), provided.as_bytes());
    Ok(a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0)
}

/// A message shown once on the next page.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Flash {
    /// `success`, `info`, `warning` or `danger` (Bootstrap alert classes).
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
