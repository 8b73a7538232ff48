//! [`SessionBackend`]: a type-erased server-side session store, so that the
//! web layer does not depend on which database keeps the sessions, which
//! keeps only a hash of each session id: the ids in the database are not
//! the ones in the cookies, so a copy of the database (a backup, a stolen
//! file) holds no usable session (issue 16, finding 5).
//!
//! An ended session (logged out, or its id cycled at login) leaves a
//! tombstone under an id derived from its own, so that requests that were
//! in flight with its cookie cannot bring it back (finding 9): sessions
//! expire on inactivity, so every request saves its session when it
//! ends, and a save that lands after the delete would re-create it. A
//! save removes what it wrote again when it finds the tombstone, and a
//! load finds nothing where there is one. Each step is one statement on
//! the shared database, so this holds across instances: either the save
//! came before the tombstone, and the delete that follows it removes the
//! record, or it sees the tombstone.

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
    derived_id(b"", id)
}

/// The first 128 bits of SHA-256 over `domain` and `id`.
fn derived_id(domain: &[u8], id: &Id) -> Id {
    let mut hasher = Sha256::new();
    hasher.update(domain);
    hasher.update(id.0.to_le_bytes());
    let digest = hasher.finalize();
    let mut first = [0u8; 16];
    first.copy_from_slice(&digest[..16]);
    Id(i128::from_le_bytes(first))
}

/// How long a tombstone outlives its session's end: far longer than any
/// request can be in flight (and every re-created record is removed by
/// the save that wrote it while the tombstone is there).
const TOMBSTONE_LIFETIME: time::Duration = time::Duration::days(1);

/// The id of the tombstone of session `id`: another one-way function of
/// the id, unrelated to its stored id.
fn tombstone_id(id: &Id) -> Id {
    derived_id(b"facegate ended session\0", id)
}

/// `record` as kept: under its stored id.
fn stored(record: &Record) -> Record {
    Record {
        id: stored_id(&record.id),
        ..record.clone()
    }
}

impl SessionBackend {
    /// Whether session `id` was ended (it has a tombstone).
    async fn ended(&self, id: &Id) -> Result<bool> {
        Ok(self.sessions.load(&tombstone_id(id)).await?.is_some())
    }
}

#[async_trait]
impl SessionStore for SessionBackend {
    async fn create(&self, record: &mut Record) -> Result<()> {
        // Always a new id: tower-sessions creates the session that follows
        // a logout (to carry the "logged out" message) with the ended
        // session's id, which its tombstone would hide and an old cookie
        // would still name. Then another while the one drawn is taken (as
        // the stores themselves do; with 128 random bits it does not
        // happen).
        record.id = Id::default();
        while self.sessions.load(&stored_id(&record.id)).await?.is_some() {
            record.id = Id::default();
        }
        self.sessions.save(&stored(record)).await
    }

    async fn save(&self, record: &Record) -> Result<()> {
        self.sessions.save(&stored(record)).await?;
        if self.ended(&record.id).await? {
            self.sessions.delete(&stored_id(&record.id)).await?;
        }
        Ok(())
    }

    async fn load(&self, id: &Id) -> Result<Option<Record>> {
        let Some(found) = self.sessions.load(&stored_id(id)).await? else {
            return Ok(None);
        };
        if self.ended(id).await? {
            return Ok(None);
        }
        Ok(Some(Record { id: *id, ..found }))
    }

    async fn delete(&self, id: &Id) -> Result<()> {
        let tombstone = Record {
            id: tombstone_id(id),
            data: Default::default(),
            expiry_date: time::OffsetDateTime::now_utc() + TOMBSTONE_LIFETIME,
        };
        self.sessions.save(&tombstone).await?;
        self.sessions.delete(&stored_id(id)).await
    }
}

#[async_trait]
impl ExpiredDeletion for SessionBackend {
    async fn delete_expired(&self) -> Result<()> {
        self.expiry.delete_expired().await
    }
}
