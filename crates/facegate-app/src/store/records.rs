//! The concerns of the store that hold no biometric data, one trait each:
//! accounts ([`Users`]), face-login lockout ([`Lockouts`]), login attempts
//! ([`Attempts`]), the audit trail ([`Audit`]), server-side sessions
//! ([`Sessions`]) and liveness of the database ([`Health`]). Every backend
//! implements them as they are, and the sealing layer passes them through
//! untouched. What instances share beyond records (challenges, rate
//! limits, coordination) is in [`super::shared`].

use async_trait::async_trait;
use time::OffsetDateTime;

use super::error::StoreResult;
use super::sessions::SessionBackend;
use crate::domain::{
    AuditEvent, AuditFilter, Email, LoginAttempt, NewAuditEvent, NewUser, User, UserSummary,
};

/// Accounts.
#[async_trait]
pub trait Users: Send + Sync {
    async fn create_user(&self, new: &NewUser) -> StoreResult<User>;
    /// Creates many accounts in one transaction (bulk provisioning,
    /// seeding); returns their ids in order. All or none are created.
    async fn create_users(&self, new: &[NewUser]) -> StoreResult<Vec<i64>>;
    async fn user_by_id(&self, id: i64) -> StoreResult<Option<User>>;
    /// Case-insensitive lookup.
    async fn user_by_username(&self, username: &str) -> StoreResult<Option<User>>;
    /// The account with this e-mail address, compared case-insensitively.
    async fn user_by_email(&self, email: &str) -> StoreResult<Option<User>>;
    async fn list_users(&self) -> StoreResult<Vec<UserSummary>>;
    async fn count_users(&self) -> StoreResult<i64>;
    async fn set_active(&self, id: i64, active: bool) -> StoreResult<()>;
    async fn set_password_hash(&self, id: i64, hash: &str) -> StoreResult<()>;
    async fn set_email(&self, id: i64, email: &Email) -> StoreResult<()>;
    /// Ends every session of the account: increments its session epoch.
    async fn end_sessions(&self, id: i64) -> StoreResult<()>;
    /// Records when a face was added (`None`: the owner was told).
    async fn set_face_added(&self, id: i64, at: Option<OffsetDateTime>) -> StoreResult<()>;
    /// Deletes an account with its templates and photos, login attempts
    /// and kept probes, in one transaction, leaving no copy in the
    /// database where the backend can promise it (SQLite). Returns how
    /// many templates it had. Its sessions stop working at once (user ids
    /// are never reused).
    async fn delete_user(&self, id: i64) -> StoreResult<usize>;
}

/// What counting a failed face attempt did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaceFailure {
    /// Counted; the account is not locked.
    Counted,
    /// Counted, and this failure locked the account.
    Locked,
    /// Not counted: the account was locked already (or is gone).
    AlreadyLocked,
}

/// Consecutive failed face logins and the lock they lead to. Each call is
/// one atomic step in the database, so the lock is exact however many
/// instances count failures at once.
#[async_trait]
pub trait Lockouts: Send + Sync {
    /// Counts one more consecutive failed face attempt unless the account
    /// is locked at `now`; when the count reaches `threshold` the account
    /// is locked until `lock_until` and the count restarts. Concurrent
    /// failures are neither lost nor lock twice, and none is counted once
    /// the account is locked.
    async fn record_face_failure(
        &self,
        id: i64,
        threshold: u32,
        lock_until: OffsetDateTime,
        now: OffsetDateTime,
    ) -> StoreResult<FaceFailure>;
    /// Clears the failure count and any lock that ended by `now` (after a
    /// successful face login); false, changing nothing, when the account is
    /// locked at `now` (or gone).
    async fn reset_face_failures(&self, id: i64, now: OffsetDateTime) -> StoreResult<bool>;
}

/// Login attempts (recorded through [`super::Probes::record_attempt`],
/// which seals the probe an attempt may keep) and their retention.
#[async_trait]
pub trait Attempts: Send + Sync {
    /// The most recent attempts, newest first.
    async fn recent_attempts(&self, limit: i64) -> StoreResult<Vec<LoginAttempt>>;
    /// A user's login attempts, oldest first (data export).
    async fn attempts_for_user(&self, user_id: i64) -> StoreResult<Vec<LoginAttempt>>;
    async fn attempt(&self, id: i64) -> StoreResult<Option<LoginAttempt>>;
    /// Deletes the login attempts made before `cutoff` with their probes;
    /// returns how many attempts and how many probes.
    async fn delete_attempts_before(&self, cutoff: OffsetDateTime) -> StoreResult<(u64, u64)>;
    /// Deletes the probes kept with attempts made before `cutoff` (the
    /// attempts stay); returns how many.
    async fn clear_probes_before(&self, cutoff: OffsetDateTime) -> StoreResult<u64>;
    /// Deletes the probes kept with a user's attempts; returns how many.
    async fn delete_probes_for_user(&self, user_id: i64) -> StoreResult<u64>;
}

/// The security audit trail: append-only (the backend refuses updates and
/// deletes).
#[async_trait]
pub trait Audit: Send + Sync {
    async fn append_audit(&self, event: &NewAuditEvent) -> StoreResult<()>;
    /// Audit events matching `filter`, newest first.
    async fn audit_events(&self, filter: &AuditFilter) -> StoreResult<Vec<AuditEvent>>;
}

/// Server-side sessions, kept in the same database.
#[async_trait]
pub trait Sessions: Send + Sync {
    /// The session store for the web layer.
    fn session_store(&self) -> SessionBackend;
    /// Removes expired sessions.
    async fn delete_expired_sessions(&self) -> StoreResult<()>;
}

/// Whether the database answers, and what it is.
#[async_trait]
pub trait Health: Send + Sync {
    async fn ping(&self) -> StoreResult<()>;
    /// The backend and where it is, without credentials (for messages).
    fn describe(&self) -> String;
}
