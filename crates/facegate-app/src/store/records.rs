//! The concerns of the store that hold no biometric data, one trait each:
//! accounts ([`Users`]), face-login lockout ([`Lockouts`]), login attempts
//! ([`Attempts`]), the audit trail ([`Audit`]), server-side sessions
//! ([`Sessions`]) and liveness of the database ([`Health`]). Every backend
//! implements them as they are, and the sealing layer passes them through
//! untouched. Shared state that more instances will need (liveness
//! challenges, rate-limit counters) is meant to join as further traits of
//! this kind.

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
    async fn list_users(&self) -> StoreResult<Vec<UserSummary>>;
    async fn count_users(&self) -> StoreResult<i64>;
    async fn set_active(&self, id: i64, active: bool) -> StoreResult<()>;
    async fn set_password_hash(&self, id: i64, hash: &str) -> StoreResult<()>;
    async fn set_email(&self, id: i64, email: &Email) -> StoreResult<()>;
    /// Deletes an account with its templates and photos, login attempts
    /// and kept probes, in one transaction, leaving no copy in the
    /// database where the backend can promise it (SQLite). Returns how
    /// many templates it had. Its sessions stop working at once (user ids
    /// are never reused).
    async fn delete_user(&self, id: i64) -> StoreResult<usize>;
}

/// Consecutive failed face logins and the lock they lead to.
#[async_trait]
pub trait Lockouts: Send + Sync {
    /// Counts one more consecutive failed face attempt; when the count
    /// reaches `threshold` the account is locked until `lock_until` and the
    /// count restarts. Returns true when this call locked the account. One
    /// atomic step: concurrent failures are neither lost nor lock twice.
    async fn record_face_failure(
        &self,
        id: i64,
        threshold: u32,
        lock_until: OffsetDateTime,
    ) -> StoreResult<bool>;
    /// Clears the failure count and any lock (after a successful face login).
    async fn reset_face_failures(&self, id: i64) -> StoreResult<()>;
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
