//! [`SessionBackend`]: a type-erased server-side session store, so that the
//! web layer does not depend on which database keeps the sessions.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{Result, SessionStore};

/// Any [`SessionStore`] behind an `Arc`.
#[derive(Clone)]
pub struct SessionBackend(Arc<dyn SessionStore>);

impl SessionBackend {
    pub fn new(store: impl SessionStore) -> Self {
        SessionBackend(Arc::new(store))
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
        self.0.create(record).await
    }

    async fn save(&self, record: &Record) -> Result<()> {
        self.0.save(record).await
    }

    async fn load(&self, id: &Id) -> Result<Option<Record>> {
        self.0.load(id).await
    }

    async fn delete(&self, id: &Id) -> Result<()> {
        self.0.delete(id).await
    }
}
