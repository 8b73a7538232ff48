//! Persistence, in three layers:
//!
//! - [`records`] and [`biometrics`]: the concerns the services use (users,
//!   lockouts, attempts, audit, sessions, health; templates with their
//!   photos, probes, key rotation), one trait each, gathered by [`Store`];
//! - [`sealing`]: the one layer that seals biometric data with the master
//!   key ([`crate::crypto`]) on its way to any backend and opens it on its
//!   way back, refusing anything that is not sealed;
//! - the backends ([`backend`] says what they implement): [`sqlite`], the
//!   embedded default in the data directory, and [`postgres`], chosen by
//!   the `database_url` setting. A backend knows nothing of crypto.
//!
//! [`open`] is the one way in: it picks the backend from the
//! configuration, runs its migrations (once per start), unlocks it with
//! the keys and, for SQLite, imports what older versions left outside the
//! database. A full or refusing disk, or an unreachable database, is a
//! typed [`StoreError`] ([`fault`]).

pub mod backend;
pub mod biometrics;
mod blob;
mod data_dir;
pub mod error;
pub mod fault;
pub mod oidc;
pub(crate) mod oidc_sql;
pub mod postgres;
pub mod records;
pub mod sealing;
mod sessions;
pub mod shared;
pub(crate) mod signing_sql;
pub mod sqlite;

use std::sync::Arc;

use crate::config::Config;

pub use biometrics::{DynStore, KeyRotation, Probes, Resealed, Store, Templates};
pub use data_dir::{prepare_data_dir, DataDirError};
pub use error::{StoreError, StoreResult};
pub use oidc::{OidcRecords, SigningKeys};
pub use records::{Attempts, Audit, FaceFailure, Health, Lockouts, Sessions, Users};
pub use sealing::{Keys, SealingStore};
pub use sessions::SessionBackend;
pub use shared::{
    Challenges, Change, Coordination, ExclusiveLock, RateHit, RateLimits, StoredChallenge,
};

/// The database file inside the data directory (the SQLite backend).
pub const DB_FILE: &str = "facegate.sqlite3";

/// The keys `config` names: the `master_key` setting, else the key file
/// in the data directory.
pub fn configured_keys(config: &Config) -> Keys {
    Keys::Configured {
        data_dir: config.data_dir.clone(),
        master_key: config.master_key.as_ref().map(|k| k.0.clone()),
    }
}

/// Opens the store `config` names (see the module documentation).
pub async fn open(config: &Config) -> StoreResult<DynStore> {
    open_with_keys(config, configured_keys(config)).await
}

/// Like [`open`] with explicit keys (key rotation).
pub async fn open_with_keys(config: &Config, keys: Keys) -> StoreResult<DynStore> {
    let store = match config.database_url() {
        None => {
            prepare_data_dir(&config.data_dir)?;
            let file = config.data_dir.join(DB_FILE);
            let _starting = sqlite::SqliteBackend::start_lock(&file).await?;
            let backend = sqlite::SqliteBackend::open(&file).await?;
            let vault = sealing::unlock(&backend, keys).await?;
            sealing::legacy::seal_legacy(&backend, &vault, &config.data_dir).await?;
            SealingStore::new(Arc::new(backend), vault)
        }
        Some(url) => {
            let backend = postgres::PostgresBackend::open(url).await?;
            let vault = sealing::unlock(&backend, keys).await?;
            SealingStore::new(Arc::new(backend), vault)
        }
    };
    Ok(Arc::new(store))
}

#[cfg(test)]
mod tests {
    /// Opening a store can run on any task (`tokio::spawn` needs `Send`):
    /// a compile-time check.
    #[allow(dead_code)]
    fn open_is_send(config: &super::Config) {
        fn is_send<T: Send>(_: T) {}
        is_send(super::open(config));
    }
}
