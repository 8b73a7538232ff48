//! [`StoreError`]: what can go wrong in any store, backend or sealing
//! layer, as the services see it.

use super::data_dir::DataDirError;

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique constraint was violated (e.g. the username is taken).
    #[error("already exists")]
    Conflict,
    /// No room left (disk, quota or file size limit): nothing was written.
    #[error("storage full: {0}")]
    Full(String),
    /// The storage refused the write or cannot be reached (read-only, I/O
    /// error, database server down): nothing was written.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// The data directory cannot be used (found when opening the store).
    #[error(transparent)]
    DataDir(#[from] DataDirError),
    /// The store cannot be opened as configured (a bad `database_url`, a
    /// server that refuses us, a missing or wrong master key); the message
    /// is one line naming the problem.
    #[error("{0}")]
    Config(String),
    #[error("storage error: {0}")]
    Backend(String),
}

pub type StoreResult<T> = Result<T, StoreError>;
