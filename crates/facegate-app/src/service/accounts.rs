//! Accounts: registration, password login (with per-address and
//! per-account limits), password and e-mail changes, admin actions.

use std::collections::{BTreeSet, HashMap};
use std::sync::LazyLock;

use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;

use super::attempt::Stop;
use super::error::{ServiceError, ServiceResult};
use super::services::{Client, Services};
use crate::config::FaceLoginMode;
use crate::domain::{
    claimed_username, AuditKind, Email, LoginAttempt, LoginMethod, NewAuditEvent, NewLoginAttempt,
    NewUser, Password, User, UserSummary, Username, ValidationError,
};
use crate::store::{DynStore, RateHit};

/// Hashes a password with argon2id (the crate's default parameters).
pub fn hash_password(password: &str) -> ServiceResult<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| ServiceError::Internal(format!("hashing failed: {e}")))
}

/// Checks a password against a stored PHC hash.
pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

/// A hash to verify against when the user does not exist, so both paths
/// take the same time.
static DUMMY_HASH: LazyLock<String> =
    LazyLock::new(|| hash_password("not a real password, only for timing").unwrap_or_default());

async fn blocking_hash(password: String) -> ServiceResult<String> {
    tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|e| ServiceError::Internal(e.to_string()))?
}

async fn blocking_verify(password: String, hash: Option<String>) -> ServiceResult<bool> {
    tokio::task::spawn_blocking(move || {
        let real = hash.is_some();
        let ok = verify_password(&password, hash.as_deref().unwrap_or(&DUMMY_HASH));
        ok && real
    })
    .await
    .map_err(|e| ServiceError::Internal(e.to_string()))
}

/// Creates an account directly in a store (also used by `createsuperuser`,
/// which needs no face engine).
pub async fn create_account(
    store: &DynStore,
    username: &str,
    email: &str,
    password: &str,
    superuser: bool,
) -> ServiceResult<User> {
    let username = Username::parse(username)?;
    let email = Email::parse(email)?;
    let password = Password::parse(password)?;
    if store.user_by_email(email.as_str()).await?.is_some() {
        return Err(email_taken());
    }
    let password_hash = blocking_hash(password.expose().to_string()).await?;
    let new = NewUser {
        username,
        email,
        password_hash,
        is_staff: superuser,
        is_superuser: superuser,
    };
    store.create_user(&new).await.map_err(|e| match e {
        crate::store::StoreError::Conflict => {
            ServiceError::Conflict("That username is already taken.".into())
        }
        other => other.into(),
    })
}

/// The refusal of an e-mail address another account already has (compared
/// case-insensitively, as usernames are).
fn email_taken() -> ServiceError {
    ServiceError::Conflict("That e-mail address is already used by another account.".into())
}

/// Creates a staff superuser.
pub async fn create_superuser(
    store: DynStore,
    username: &str,
    email: &str,
    password: &str,
) -> ServiceResult<User> {
    create_account(&store, username, email, password, true).await
}

/// The result of a successful password check.
#[derive(Debug, Clone)]
pub struct PasswordLogin {
    pub user: User,
    /// In `second_factor` mode, true when the face step must follow.
    pub face_required: bool,
}

impl Services {
    /// Creates an ordinary account. Registrations count against the
    /// address limit of logins (each costs an argon2 hash and tells whether
    /// a username is taken); a refusal is audited once per minute.
    pub async fn register(
        &self,
        username: &str,
        email: &str,
        password: &str,
        client: &Client,
    ) -> ServiceResult<User> {
        if let RateHit::Refused { report } = self.address_hit(client).await? {
            if let Some(n) = report {
                let mut event = NewAuditEvent::new(AuditKind::Registration, "rate_limited")
                    .detail(format!("refused={n}"));
                event.client_addr = Some(client.addr.to_string());
                self.record_event(event).await;
            }
            return Err(ServiceError::RateLimited);
        }
        let user = self
            .create_account(username, email, password, false)
            .await?;
        self.record_event(
            NewAuditEvent::new(AuditKind::Registration, "success").by(user.id, &user.username),
        )
        .await;
        Ok(user)
    }

    /// Creates an account; `superuser` also makes it staff.
    pub async fn create_account(
        &self,
        username: &str,
        email: &str,
        password: &str,
        superuser: bool,
    ) -> ServiceResult<User> {
        create_account(&self.store, username, email, password, superuser).await
    }

    /// Checks a username and password. Every attempt is audited; the error
    /// never tells whether the username exists.
    pub async fn login_password(
        &self,
        username: &str,
        password: &str,
        client: &Client,
    ) -> ServiceResult<PasswordLogin> {
        // Over-long input is refused before it is counted, hashed or logged.
        let claimed = claimed_username(username)?.unwrap_or_default();
        Password::within_limit(password)?;
        let mut attempt = NewLoginAttempt::rate_limited(
            Some(claimed.clone()),
            client.addr.to_string(),
            LoginMethod::Password,
        );
        let result = self
            .check_password_login(&claimed, password, client, &mut attempt)
            .await;
        self.finish(attempt, result).await
    }

    async fn check_password_login(
        &self,
        claimed: &str,
        password: &str,
        client: &Client,
        attempt: &mut NewLoginAttempt,
    ) -> Result<PasswordLogin, Stop> {
        self.limit_address(client).await?;
        self.limit_account(claimed).await?;
        let user = self.store.user_by_username(claimed).await?;
        attempt.user_id = user.as_ref().map(|u| u.id);
        let ok = blocking_verify(
            password.to_string(),
            user.as_ref().map(|u| u.password_hash.clone()),
        )
        .await?;
        let user = match user {
            Some(u) if ok && u.is_active => u,
            Some(u) if ok && !u.is_active => {
                return Err(Stop::refused("inactive", ServiceError::InvalidCredentials))
            }
            _ => {
                let e = ServiceError::InvalidCredentials;
                return Err(Stop::refused("bad_credentials", e));
            }
        };
        let face_required = self.config.face_login == FaceLoginMode::SecondFactor
            && self.has_faces(user.id).await?;
        attempt.reason = if face_required { "face_required" } else { "ok" }.into();
        Ok(PasswordLogin {
            user,
            face_required,
        })
    }

    /// Whether the user has a template of the current model.
    pub async fn has_faces(&self, user_id: i64) -> ServiceResult<bool> {
        let model = self.engine.model_id().to_string();
        Ok(self
            .store
            .templates_for_user(user_id)
            .await?
            .iter()
            .any(|t| t.model_id == model))
    }

    /// An active user by id (sessions of deactivated users stop working).
    pub async fn active_user(&self, id: i64) -> ServiceResult<Option<User>> {
        Ok(self.store.user_by_id(id).await?.filter(|u| u.is_active))
    }

    pub async fn change_password(
        &self,
        user: &User,
        current: &str,
        new: &str,
    ) -> ServiceResult<()> {
        let ok = blocking_verify(current.to_string(), Some(user.password_hash.clone())).await?;
        if !ok {
            return Err(ValidationError {
                field: "current_password",
                message: "Your current password is not correct.".into(),
            }
            .into());
        }
        let new = Password::parse(new)?;
        let hash = blocking_hash(new.expose().to_string()).await?;
        self.store.set_password_hash(user.id, &hash).await?;
        // A stolen session must not outlive the password change.
        self.store.end_sessions(user.id).await?;
        self.record_event(
            NewAuditEvent::new(AuditKind::PasswordChanged, "success").by(user.id, &user.username),
        )
        .await;
        Ok(())
    }

    /// Confirms that the logged-in `user` knows their password (a fresh
    /// authentication): a password login of the same account, so limited,
    /// recorded and audited as one.
    pub async fn confirm_password(
        &self,
        user: &User,
        password: &str,
        client: &Client,
    ) -> ServiceResult<()> {
        let ok = self
            .login_password(&user.username, password, client)
            .await?;
        if ok.user.id != user.id {
            return Err(ServiceError::InvalidCredentials);
        }
        Ok(())
    }

    /// Whether `password` is the user's (re-authentication before erasure).
    pub async fn check_password(&self, user: &User, password: &str) -> ServiceResult<bool> {
        blocking_verify(password.to_string(), Some(user.password_hash.clone())).await
    }

    pub async fn change_email(&self, user: &User, email: &str) -> ServiceResult<()> {
        let email = Email::parse(email)?;
        if let Some(other) = self.store.user_by_email(email.as_str()).await? {
            if other.id != user.id {
                return Err(email_taken());
            }
        }
        self.store.set_email(user.id, &email).await?;
        Ok(())
    }

    pub async fn list_users(&self) -> ServiceResult<Vec<UserSummary>> {
        Ok(self.store.list_users().await?)
    }

    pub async fn set_active(&self, user_id: i64, active: bool) -> ServiceResult<()> {
        self.store
            .user_by_id(user_id)
            .await?
            .ok_or(ServiceError::NotFound)?;
        self.store.set_active(user_id, active).await?;
        if !active {
            // Sessions stay over when the account is activated again.
            self.store.end_sessions(user_id).await?;
        }
        self.templates_changed(user_id).await;
        Ok(())
    }

    /// Ends every session of `user` ("log out everywhere"); the caller
    /// keeps its own session by taking the new epoch into it.
    pub async fn end_sessions(&self, user: &User) -> ServiceResult<()> {
        self.store.end_sessions(user.id).await?;
        Ok(())
    }

    /// When a face was added to `user`'s account since they were last
    /// told; a login with the password (`told`) counts as telling them, so
    /// that someone who added their own face and logs in with it cannot
    /// make the notice go away.
    pub async fn face_added_notice(
        &self,
        user: &User,
        told: bool,
    ) -> ServiceResult<Option<time::OffsetDateTime>> {
        let Some(at) = user.face_added_at else {
            return Ok(None);
        };
        if told {
            self.store.set_face_added(user.id, None).await?;
        }
        Ok(Some(at))
    }

    /// The usernames of the accounts `ids` that still exist (for the staff
    /// pages, which show names, not ids).
    pub async fn usernames(
        &self,
        ids: impl IntoIterator<Item = i64>,
    ) -> ServiceResult<HashMap<i64, String>> {
        let mut names = HashMap::new();
        for id in ids.into_iter().collect::<BTreeSet<_>>() {
            if let Some(u) = self.store.user_by_id(id).await? {
                names.insert(id, u.username);
            }
        }
        Ok(names)
    }

    pub async fn recent_attempts(&self, limit: i64) -> ServiceResult<Vec<LoginAttempt>> {
        Ok(self.store.recent_attempts(limit).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argon2id_round_trip() {
        let h = hash_password("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse battery", &h));
        assert!(!verify_password("wrong", &h));
        assert!(!verify_password("x", "not a hash"));
    }
}
