//! [`SessionBackend`]: a type-erased server-side session store, so that the
//! web layer does not depend on which database keeps the sessions, and so
//! that how sessions are kept (e.g. only a hash of their ids) can change
//! behind it.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
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

#[async_trait]
impl SessionStore for SessionBackend {
    async fn create(&self, record: &mut Record) -> Result<()> {
        self.sessions.create(record).await
    }

    async fn save(&self, record: &Record) -> Result<()> {
        self.sessions.save(record).await
    }

    async fn load(&self, id: &Id) -> Result<Option<Record>> {
        self.sessions.load(id).await
    }

    async fn delete(&self, id: &Id) -> Result<()> {
        self.sessions.delete(id).await
    }
}

#[async_trait]
impl ExpiredDeletion for SessionBackend {
    async fn delete_expired(&self) -> Result<()> {
        self.expiry.delete_expired().await
    }
}
