//! Persistence behind one interface, [`Store`]. Everything above this
//! module talks to `dyn Store` only; [`SqliteStore`] is the embedded
//! backend (a PostgreSQL one can be added beside it).

mod sessions;
mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::domain::{
    Email, LoginAttempt, MatchTemplate, NewLoginAttempt, NewTemplate, NewUser, Template, User,
    UserSummary,
};

pub use sessions::SessionBackend;
pub use sqlite::SqliteStore;

/// Opens the embedded SQLite store in `data_dir` (creating the directory).
pub async fn open_sqlite(data_dir: &std::path::Path) -> StoreResult<DynStore> {
    std::fs::create_dir_all(data_dir)
        .map_err(|e| StoreError::Backend(format!("{}: {e}", data_dir.display())))?;
    let store = SqliteStore::open(&data_dir.join("facegate.sqlite3")).await?;
    Ok(Arc::new(store))
}

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique constraint was violated (e.g. the username is taken).
    #[error("already exists")]
    Conflict,
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
