//! Persistence behind one interface, [`Store`]. Everything above this
//! module talks to `dyn Store` only; [`SqliteStore`] is the embedded
//! backend (a PostgreSQL one can be added beside it). The data directory
//! is checked before it is opened ([`prepare_data_dir`]), and a full or
//! refusing disk is a typed [`StoreError`] ([`fault`]).

mod data_dir;
pub mod fault;
mod sessions;
mod sqlite;
mod sqlite_attempts;
mod sqlite_audit;
mod sqlite_sealed;

use std::sync::Arc;

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::crypto::Vault;
use crate::domain::{
    AuditEvent, AuditFilter, Email, LoginAttempt, MatchTemplate, NewAuditEvent, NewLoginAttempt,
    NewTemplate, NewUser, Template, User, UserSummary,
};

pub use data_dir::{prepare_data_dir, DataDirError};
pub use sessions::SessionBackend;
pub use sqlite::SqliteStore;

/// Where the encryption keys come from.
#[derive(Debug, Clone)]
pub enum Keys {
    /// The `master_key` setting, else `<data_dir>/master.key` (created at
    /// first start); see [`crate::crypto::load_keys`].
    Configured {
        data_dir: std::path::PathBuf,
        master_key: Option<String>,
    },
    /// Exactly these keys (key rotation).
    Vault(Vault),
}

/// Opens the embedded SQLite store in `data_dir` (creating the directory
/// and checking that it can be written, see [`prepare_data_dir`]), applies the migrations and unlocks it with `master_key` (or the key
/// file). A key that does not open the stored data is an error.
pub async fn open_sqlite(
    data_dir: &std::path::Path,
    master_key: Option<&str>,
) -> StoreResult<DynStore> {
    let keys = Keys::Configured {
        data_dir: data_dir.to_path_buf(),
        master_key: master_key.map(str::to_string),
    };
    open_sqlite_with(data_dir, keys).await
}

/// Like [`open_sqlite`] with explicit keys.
pub async fn open_sqlite_with(data_dir: &std::path::Path, keys: Keys) -> StoreResult<DynStore> {
    prepare_data_dir(data_dir)?;
    let store = SqliteStore::open(&data_dir.join(DB_FILE), keys).await?;
    Ok(Arc::new(store))
}

/// The database file inside the data directory.
pub const DB_FILE: &str = "facegate.sqlite3";

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique constraint was violated (e.g. the username is taken).
    #[error("already exists")]
    Conflict,
    /// No room left (disk, quota or file size limit): nothing was written.
    #[error("storage full: {0}")]
    Full(String),
    /// The storage refused the write (read-only, I/O error): nothing was
    /// written.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// The data directory cannot be used (found when opening the store).
    #[error(transparent)]
    DataDir(#[from] DataDirError),
    #[error("storage error: {0}")]
    Backend(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Everything the application persists.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Applies pending schema migrations (including the sessions table).
    async fn migrate(&self) -> StoreResult<()>;
    /// Removes expired server-side sessions.
    async fn delete_expired_sessions(&self) -> StoreResult<()>;
    /// The server-side session store kept in the same database.
    fn session_store(&self) -> SessionBackend;

    async fn create_user(&self, new: &NewUser) -> StoreResult<User>;
    async fn user_by_id(&self, id: i64) -> StoreResult<Option<User>>;
    /// Case-insensitive lookup.
    async fn user_by_username(&self, username: &str) -> StoreResult<Option<User>>;
    async fn list_users(&self) -> StoreResult<Vec<UserSummary>>;
    async fn count_users(&self) -> StoreResult<i64>;
    async fn set_active(&self, id: i64, active: bool) -> StoreResult<()>;
    async fn set_password_hash(&self, id: i64, hash: &str) -> StoreResult<()>;
    async fn set_email(&self, id: i64, email: &Email) -> StoreResult<()>;

    /// Counts one more consecutive failed face attempt; when the count
    /// reaches `threshold` the account is locked until `lock_until` and the
    /// count restarts. Returns true when this call locked the account.
    async fn record_face_failure(
        &self,
        id: i64,
        threshold: u32,
        lock_until: OffsetDateTime,
    ) -> StoreResult<bool>;
    /// Clears the failure count and any lock (after a successful face login).
    async fn reset_face_failures(&self, id: i64) -> StoreResult<()>;

    async fn add_template(&self, new: &NewTemplate) -> StoreResult<Template>;
    async fn template(&self, id: i64) -> StoreResult<Option<Template>>;
    async fn templates_for_user(&self, user_id: i64) -> StoreResult<Vec<Template>>;
    async fn delete_template(&self, id: i64) -> StoreResult<()>;
    /// Deletes and returns all templates of a user.
    async fn delete_templates_for_user(&self, user_id: i64) -> StoreResult<Vec<Template>>;
    /// Templates of `model_id` belonging to active users (for 1:N search).
    async fn active_templates(&self, model_id: &str) -> StoreResult<Vec<MatchTemplate>>;

    async fn record_attempt(&self, attempt: &NewLoginAttempt) -> StoreResult<()>;
    /// The most recent attempts, newest first.
    async fn recent_attempts(&self, limit: i64) -> StoreResult<Vec<LoginAttempt>>;
    /// A user's login attempts, oldest first (data export).
    async fn attempts_for_user(&self, user_id: i64) -> StoreResult<Vec<LoginAttempt>>;
    async fn attempt(&self, id: i64) -> StoreResult<Option<LoginAttempt>>;
    /// Deletes the login attempts made before `cutoff`; returns how many,
    /// and the probe paths they held (the caller removes those files).
    async fn delete_attempts_before(
        &self,
        cutoff: OffsetDateTime,
    ) -> StoreResult<(u64, Vec<String>)>;
    /// Unlinks the probes of attempts made before `cutoff`; returns their
    /// paths (the caller removes the files).
    async fn clear_probes_before(&self, cutoff: OffsetDateTime) -> StoreResult<Vec<String>>;
    /// Unlinks the probes of a user's attempts; returns their paths.
    async fn take_probes_for_user(&self, user_id: i64) -> StoreResult<Vec<String>>;
    /// Paths of all kept probes.
    async fn probe_paths(&self) -> StoreResult<Vec<String>>;
    /// Attempts whose probe is not sealed with `key_id`, as (id, path).
    async fn probes_not_on_key(&self, key_id: &str) -> StoreResult<Vec<(i64, String)>>;
    /// Records that the probe of attempt `id` is now sealed with `key_id`.
    async fn set_probe_key(&self, id: i64, key_id: &str) -> StoreResult<()>;

    /// The keys sealing biometric data (also used for the photos).
    fn vault(&self) -> Arc<Vault>;
    /// Whether the database answers.
    async fn ping(&self) -> StoreResult<()>;
    /// Templates not sealed with `key_id` (including legacy plaintext ones).
    async fn template_ids_not_on_key(&self, key_id: &str) -> StoreResult<Vec<i64>>;
    /// Re-seals one template with the primary key in its own transaction;
    /// false when it already was.
    async fn reseal_template(&self, id: i64) -> StoreResult<bool>;
    /// Deletes an account with its templates (returned) and login
    /// attempts, leaving no copy in the database file. Its sessions stop
    /// working at once (ids are never reused).
    async fn delete_user(&self, id: i64) -> StoreResult<Vec<Template>>;
    /// Photo paths of all templates.
    async fn image_paths(&self) -> StoreResult<Vec<String>>;

    /// Appends to the audit trail (which refuses updates and deletes).
    async fn append_audit(&self, event: &NewAuditEvent) -> StoreResult<()>;
    /// Audit events matching `filter`, newest first.
    async fn audit_events(&self, filter: &AuditFilter) -> StoreResult<Vec<AuditEvent>>;
}

/// A shared store handle.
pub type DynStore = Arc<dyn Store>;

/// Encodes an embedding as little-endian f32 bytes.
pub fn embedding_to_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Decodes little-endian f32 bytes.
pub fn embedding_from_bytes(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedding_round_trip() {
        let v = vec![0.5f32, -1.25, 3.0e-7, f32::MAX];
        let b = embedding_to_bytes(&v);
        assert_eq!(b.len(), 16);
        assert_eq!(&b[..4], &0.5f32.to_le_bytes());
        assert_eq!(embedding_from_bytes(&b), v);
    }
}
