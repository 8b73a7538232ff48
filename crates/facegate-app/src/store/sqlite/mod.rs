//! [`SqliteBackend`]: the embedded backend, one SQLite file in the data
//! directory, through sqlx with WAL journaling, foreign keys on and
//! deleted data overwritten (`secure_delete`). Its migrations are in
//! `migrations/sqlite`; they run once, when the backend is opened.

mod attempts;
mod audit;
mod legacy;
mod limits;
mod oidc;
mod shared;
mod signing_keys;
mod templates;
mod users;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use async_trait::async_trait;
use sqlx::pool::PoolConnection;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, SqliteConnection, SqlitePool};
use time::OffsetDateTime;

use crate::store::backend::{KeyRecords, SealedBlob, StoredBlob};
use crate::store::error::{StoreError, StoreResult};
use crate::store::fault::from_sqlx;
use crate::store::records::{Health, Sessions};
use crate::store::sessions::SessionBackend;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// The SQLite backend; cheap to clone.
#[derive(Clone, Debug)]
pub struct SqliteBackend {
    pool: SqlitePool,
    path: PathBuf,
    /// Rate limits and periodic jobs, in this process.
    local: Arc<limits::Local>,
}

// returning_all: a statement with RETURNING outside a transaction hands
// out its rows before it ends, and commits when it ends. Reading only the
// first row (`fetch_one`, `fetch_optional`) leaves the commit to the
// statement's reset, whose error sqlx drops: on a full disk the row was
// returned but never stored. Such statements are read with `fetch_all`,
// which steps to the end and reports a failed commit.

/// One write transaction, begun with `BEGIN IMMEDIATE` (the write lock
/// from the start: no deadlock upgrading a read), on a pooled connection
/// of its own. A transaction that is not committed — an error on the way,
/// or a failed commit — closes its connection instead of handing it back:
/// SQLite rolls a transaction back by itself after a full disk or an I/O
/// error, and a connection whose transaction state is in doubt must not
/// serve the next request (sqlx's own transactions would then fail to
/// begin, or nest).
struct WriteTx {
    conn: PoolConnection<Sqlite>,
    committed: bool,
}

impl WriteTx {
    async fn begin(pool: &SqlitePool) -> StoreResult<WriteTx> {
        let mut conn = pool.acquire().await.map_err(from_sqlx)?;
        if let Err(e) = sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await {
            conn.close_on_drop();
            return Err(from_sqlx(e));
        }
        Ok(WriteTx {
            conn,
            committed: false,
        })
    }

    fn conn(&mut self) -> &mut SqliteConnection {
        &mut self.conn
    }

    async fn commit(mut self) -> StoreResult<()> {
        sqlx::query("COMMIT")
            .execute(&mut *self.conn)
            .await
            .map_err(from_sqlx)?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for WriteTx {
    fn drop(&mut self) {
        if !self.committed {
            self.conn.close_on_drop();
        }
    }
}

/// A time as stored: whole seconds since the epoch.
fn ts(t: OffsetDateTime) -> i64 {
    t.unix_timestamp()
}

fn from_ts(s: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(s).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

fn now() -> i64 {
    ts(OffsetDateTime::now_utc())
}

impl SqliteBackend {
    /// Opens (creating if needed) the database file `path` and applies the
    /// migrations.
    pub async fn open(path: &Path) -> StoreResult<Self> {
        let pool = Self::connect(path).await?;
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|e| StoreError::Backend(format!("migrating {}: {e}", path.display())))?;
        Ok(SqliteBackend {
            pool,
            path: path.to_path_buf(),
            local: Arc::default(),
        })
    }

    async fn connect(path: &Path) -> StoreResult<SqlitePool> {
        let opts = SqliteConnectOptions::from_str("sqlite://")
            .map_err(from_sqlx)?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            // Deleted rows are overwritten, not left in free pages.
            .pragma("secure_delete", "on")
            .busy_timeout(std::time::Duration::from_secs(5));
        SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(opts)
            .await
            .map_err(from_sqlx)
    }

    /// Serialises the start-up steps (migrations, the key check, the
    /// legacy import) of processes opening the database file `path` at
    /// once: SQLite's migrations check and apply in two steps. The lock is
    /// held until the returned file is dropped.
    pub async fn start_lock(path: &Path) -> StoreResult<std::fs::File> {
        let mut name = path.as_os_str().to_owned();
        name.push(".start-lock");
        let lock = std::path::PathBuf::from(name);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock)
            .map_err(|e| crate::store::fault::from_io("the start lock", &e))?;
        tokio::task::spawn_blocking(move || file.lock().map(|_| file))
            .await
            .map_err(|e| StoreError::Backend(format!("the start lock: {e}")))?
            .map_err(|e| crate::store::fault::from_io("the start lock", &e))
    }

    /// The server-side session store, sharing this database.
    fn sessions(&self) -> tower_sessions_sqlx_store::SqliteStore {
        tower_sessions_sqlx_store::SqliteStore::new(self.pool.clone())
    }

    /// Moves the WAL into the database and truncates it, so deleted data
    /// (overwritten thanks to `secure_delete`) leaves no copy in the log.
    async fn checkpoint(&self) {
        if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&self.pool)
            .await
        {
            tracing::warn!(error = %e, "WAL checkpoint failed");
        }
    }
}

#[async_trait]
impl Sessions for SqliteBackend {
    fn session_store(&self) -> SessionBackend {
        SessionBackend::new(self.sessions())
    }

    async fn delete_expired_sessions(&self) -> StoreResult<()> {
        use tower_sessions::ExpiredDeletion;
        self.sessions()
            .delete_expired()
            .await
            .map_err(|e| StoreError::Backend(e.to_string()))
    }
}

#[async_trait]
impl Health for SqliteBackend {
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(from_sqlx)?;
        Ok(())
    }

    fn describe(&self) -> String {
        format!("the SQLite database {}", self.path.display())
    }
}

#[async_trait]
impl KeyRecords for SqliteBackend {
    async fn key_ids_in_use(&self) -> StoreResult<Vec<String>> {
        sqlx::query_scalar(
            "SELECT key_id FROM face_templates WHERE key_id IS NOT NULL \
             UNION SELECT key_id FROM face_photos \
             UNION SELECT key_id FROM login_probes \
             UNION SELECT probe_key_id FROM login_attempts WHERE probe_key_id IS NOT NULL \
             UNION SELECT key_id FROM key_check \
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
            "INSERT INTO key_check (id, key_id, sealed) VALUES (1, ?, ?) ON CONFLICT DO NOTHING",
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
        sqlx::query("UPDATE key_check SET key_id = ?, sealed = ? WHERE id = 1")
            .bind(&check.key_id)
            .bind(&check.bytes)
            .execute(&self.pool)
            .await
            .map_err(from_sqlx)?;
        Ok(())
    }
}
