//! [`PostgresBackend`]: the store on a PostgreSQL server named by the
//! `database_url` setting, through sqlx's Postgres driver. Its migrations
//! are in `migrations/postgres`; several instances may start at once
//! (sqlx takes a PostgreSQL advisory lock while it migrates). Opening
//! fails with one line naming the problem (`connect.rs`).

mod attempts;
mod connect;
mod oidc;
mod shared;
mod signing_keys;
mod templates;
mod users;

use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use sqlx::PgPool;
use tokio::sync::broadcast;

use crate::store::backend::{KeyRecords, SealedBlob, StoredBlob};
use crate::store::error::{StoreError, StoreResult};
use crate::store::fault::from_sqlx;
use crate::store::records::{Health, Sessions};
use crate::store::sessions::SessionBackend;
use crate::store::shared::Change;

pub use connect::MIN_SERVER_VERSION;

/// The PostgreSQL backend; cheap to clone.
#[derive(Clone, Debug)]
pub struct PostgresBackend {
    pool: PgPool,
    /// The schema the tables are in (the first of the search path).
    schema: String,
    /// Where the server is, without credentials.
    target: String,
    /// The change feed, started by the first subscriber.
    changes: Arc<OnceLock<broadcast::Sender<Change>>>,
}

impl PostgresBackend {
    /// Connects to `url`, checks the server's version and applies the
    /// migrations.
    pub async fn open(url: &str) -> StoreResult<Self> {
        let opened = connect::open(url).await?;
        Ok(PostgresBackend {
            pool: opened.pool,
            schema: opened.schema,
            target: opened.target,
            changes: Arc::default(),
        })
    }

    /// The server-side session store, in this database.
    fn sessions(&self) -> StoreResult<tower_sessions_sqlx_store::PostgresStore> {
        tower_sessions_sqlx_store::PostgresStore::new(self.pool.clone())
            .with_schema_name(&self.schema)
            .and_then(|s| s.with_table_name("tower_sessions"))
            .map_err(StoreError::Backend)
    }
}

#[async_trait]
impl Sessions for PostgresBackend {
    fn session_store(&self) -> SessionBackend {
        // The schema name was checked when the backend was opened.
        match self.sessions() {
            Ok(s) => SessionBackend::new(s),
            Err(e) => unreachable!("session store on a checked schema: {e}"),
        }
    }

    async fn delete_expired_sessions(&self) -> StoreResult<()> {
        use tower_sessions::ExpiredDeletion;
        self.sessions()?
            .delete_expired()
            .await
            .map_err(|e| StoreError::Unavailable(e.to_string()))
    }
}

#[async_trait]
impl Health for PostgresBackend {
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(from_sqlx)?;
        Ok(())
    }

    fn describe(&self) -> String {
        self.target.clone()
    }
}

#[async_trait]
impl KeyRecords for PostgresBackend {
    async fn key_ids_in_use(&self) -> StoreResult<Vec<String>> {
        sqlx::query_scalar(
            "SELECT key_id FROM face_templates UNION SELECT key_id FROM face_photos \
             UNION SELECT key_id FROM login_probes UNION SELECT key_id FROM key_check \
             UNION SELECT key_id FROM oidc_signing_keys",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(from_sqlx)
    }

    async fn key_check(&self) -> StoreResult<Option<StoredBlob>> {
        let row: Option<(String, Vec<u8>)> =
            sqlx::query_as("SELECT key_id, sealed FROM key_check WHERE id = 1")
                .fetch_optional(&self.pool)
                .await
                .map_err(from_sqlx)?;
        Ok(row.map(|(key_id, bytes)| StoredBlob {
            key_id: Some(key_id),
            bytes,
        }))
    }

    async fn init_key_check(&self, check: &SealedBlob) -> StoreResult<StoredBlob> {
        sqlx::query(
            "INSERT INTO key_check (id, key_id, sealed) VALUES (1, $1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(&check.key_id)
        .bind(&check.bytes)
        .execute(&self.pool)
        .await
        .map_err(from_sqlx)?;
        self.key_check()
            .await?
            .ok_or_else(|| StoreError::Backend("the key check vanished".into()))
    }

    async fn replace_key_check(&self, check: &SealedBlob) -> StoreResult<()> {
        sqlx::query("UPDATE key_check SET key_id = $1, sealed = $2 WHERE id = 1")
            .bind(&check.key_id)
            .bind(&check.bytes)
            .execute(&self.pool)
            .await
            .map_err(from_sqlx)?;
        Ok(())
    }
}
