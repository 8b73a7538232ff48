//! [`SessionBackend`]: a type-erased server-side session store, so that the
//! web layer does not depend on which database keeps the sessions, which
//! keeps only a hash of each session id: the ids in the database are not
//! the ones in the cookies, so a copy of the database (a backup, a stolen
//! file) holds no usable session (issue 16, finding 5).

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use sha2::{Digest, Sha256};
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{Result, SessionStore};
use tower_sessions::ExpiredDeletion;

/// The removal of expired sessions, as a trait object ([`ExpiredDeletion`]
/// itself cannot be one).
#[async_trait]
trait DeleteExpired: Send + Sync {
    async fn delete_expired(&self) -> Result<()>;
}

#[async_trait]
impl<T: ExpiredDeletion> DeleteExpired for T {
    async fn delete_expired(&self) -> Result<()> {
        ExpiredDeletion::delete_expired(self).await
    }
}

/// Any session store that can also remove expired sessions.
#[derive(Clone)]
pub struct SessionBackend {
    sessions: Arc<dyn SessionStore>,
    expiry: Arc<dyn DeleteExpired>,
}

impl SessionBackend {
    pub fn new(store: impl ExpiredDeletion + Clone) -> Self {
        SessionBackend {
            sessions: Arc::new(store.clone()),
            expiry: Arc::new(store),
        }
    }
}

impl fmt::Debug for SessionBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionBackend")
    }
}

/// The id a session is kept under: the first 128 bits of the SHA-256 of
/// its (random, 128-bit) id. One-way, so the stored id cannot be turned
/// back into a cookie.
fn stored_id(id: &Id) -> Id {
    let digest = Sha256::digest(id.0.to_le_bytes());
    let mut first = [0u8; 16];
    first.copy_from_slice(&digest[..16]);
    Id(i128::from_le_bytes(first))
}

/// `record` as kept: under its stored id.
fn stored(record: &Record) -> Record {
    Record {
        id: stored_id(&record.id),
        ..record.clone()
    }
}

#[async_trait]
impl SessionStore for SessionBackend {
    async fn create(&self, record: &mut Record) -> Result<()> {
        // A new id while the one drawn is taken (as the stores themselves
        // do; with 128 random bits it does not happen).
        while self.sessions.load(&stored_id(&record.id)).await?.is_some() {
            record.id = Id::default();
        }
        self.sessions.save(&stored(record)).await
    }

    async fn save(&self, record: &Record) -> Result<()> {
        self.sessions.save(&stored(record)).await
    }

    async fn load(&self, id: &Id) -> Result<Option<Record>> {
        let found = self.sessions.load(&stored_id(id)).await?;
        Ok(found.map(|r| Record { id: *id, ..r }))
    }

    async fn delete(&self, id: &Id) -> Result<()> {
        self.sessions.delete(&stored_id(id)).await
    }
}

#[async_trait]
impl ExpiredDeletion for SessionBackend {
    async fn delete_expired(&self) -> Result<()> {
        self.expiry.delete_expired().await
    }
}
