//! [`SqliteStore`]: the embedded backend on SQLite through sqlx, with
//! embedded migrations, WAL journaling and foreign keys on.

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{Row, SqlitePool};
use time::OffsetDateTime;

use super::{Keys, SessionBackend, Store, StoreError, StoreResult};
use crate::crypto::Vault;
use crate::domain::{
    AuditEvent, AuditFilter, Email, LoginAttempt, MatchTemplate, NewAuditEvent, NewLoginAttempt,
    NewTemplate, NewUser, Template, User, UserSummary,
};

pub(super) static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The SQLite store; cheap to clone. Face templates are sealed with the
/// [`Vault`]'s primary key (see [`crate::crypto`]).
#[derive(Clone, Debug)]
pub struct SqliteStore {
    pub(super) pool: SqlitePool,
    pub(super) vault: Arc<Vault>,
}

/// A database error as a [`StoreError`]: unique violations are conflicts,
/// a full or refusing disk keeps its kind (see [`super::fault`]).
pub(super) fn backend(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => return StoreError::Conflict,
        sqlx::Error::Database(db) => {
            let code = db.code().and_then(|c| c.parse::<i32>().ok());
            if let Some(fault) = code.and_then(|c| super::fault::from_sqlite(c, db.message())) {
                return fault;
            }
        }
        sqlx::Error::Io(io) => return super::fault::from_io("database", io),
        _ => {}
    }
    StoreError::Backend(e.to_string())
}

// returning_all: a statement with RETURNING outside a transaction hands
// out its rows before it ends, and commits when it ends. Reading only the
// first row (`fetch_one`, `fetch_optional`) leaves the commit to the
// statement's reset, whose error sqlx drops: on a full disk the row was
// returned but never stored. Such statements are read with `fetch_all`,
// which steps to the end and reports a failed commit.

pub(super) fn ts(t: OffsetDateTime) -> i64 {
    t.unix_timestamp()
}

pub(super) fn from_ts(s: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(s).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

pub(super) fn now() -> i64 {
    ts(OffsetDateTime::now_utc())
}

const USER_COLUMNS: &str =
    "id, username, email, password_hash, is_active, is_staff, is_superuser, \
     face_failures, face_locked_until, created_at, updated_at";

fn user_from_row(r: &SqliteRow) -> Result<User, sqlx::Error> {
    Ok(User {
        id: r.try_get("id")?,
        username: r.try_get("username")?,
        email: r.try_get("email")?,
        password_hash: r.try_get("password_hash")?,
        is_active: r.try_get("is_active")?,
        is_staff: r.try_get("is_staff")?,
        is_superuser: r.try_get("is_superuser")?,
        face_failures: r.try_get::<i64, _>("face_failures")?.max(0) as u32,
        face_locked_until: r
            .try_get::<Option<i64>, _>("face_locked_until")?
            .map(from_ts),
        created_at: from_ts(r.try_get("created_at")?),
        updated_at: from_ts(r.try_get("updated_at")?),
    })
}

/// The user columns changed one at a time.
#[derive(Clone, Copy)]
enum UserColumn {
    Active,
    PasswordHash,
    Email,
}

impl UserColumn {
    fn update_sql(self) -> &'static str {
        match self {
            UserColumn::Active => "UPDATE users SET is_active = ?, updated_at = ? WHERE id = ?",
            UserColumn::PasswordHash => {
                "UPDATE users SET password_hash = ?, updated_at = ? WHERE id = ?"
            }
            UserColumn::Email => "UPDATE users SET email = ?, updated_at = ? WHERE id = ?",
        }
    }
}

impl SqliteStore {
    /// Sets one column of a user row, and its `updated_at`.
    async fn update_user<'q, T>(&self, id: i64, column: UserColumn, value: T) -> StoreResult<()>
    where
        T: 'q + Send + sqlx::Encode<'q, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite>,
    {
        sqlx::query(column.update_sql())
            .bind(value)
            .bind(now())
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(())
    }

    /// Opens (creating if needed) the database file `path`, applies the
    /// migrations and unlocks it with `keys` (see [`SqliteStore::unlock`]).
    pub async fn open(path: &Path, keys: Keys) -> StoreResult<Self> {
        let pool = Self::connect(path).await?;
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|e| StoreError::Backend(e.to_string()))?;
        let vault = Self::unlock(&pool, keys).await?;
        Ok(SqliteStore {
            pool,
            vault: Arc::new(vault),
        })
    }

    async fn connect(path: &Path) -> StoreResult<SqlitePool> {
        let opts = SqliteConnectOptions::from_str("sqlite://")
            .map_err(backend)?
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
            .map_err(backend)
    }

    /// The server-side session store, sharing this database.
    pub fn sessions(&self) -> tower_sessions_sqlx_store::SqliteStore {
        tower_sessions_sqlx_store::SqliteStore::new(self.pool.clone())
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn migrate(&self) -> StoreResult<()> {
        MIGRATOR
            .run(&self.pool)
            .await
            .map_err(|e| StoreError::Backend(e.to_string()))?;
        self.sessions()
            .migrate()
            .await
            .map_err(|e| StoreError::Backend(e.to_string()))
    }

    async fn delete_expired_sessions(&self) -> StoreResult<()> {
        use tower_sessions::ExpiredDeletion;
        self.sessions()
            .delete_expired()
            .await
            .map_err(|e| StoreError::Backend(e.to_string()))
    }

    fn session_store(&self) -> SessionBackend {
        SessionBackend::new(self.sessions())
    }

    async fn create_user(&self, new: &NewUser) -> StoreResult<User> {
        let t = now();
        let ids: Vec<i64> = sqlx::query_scalar(
            "INSERT INTO users (username, email, password_hash, is_staff, is_superuser, created_at, updated_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(new.username.as_str())
        .bind(new.email.as_str())
        .bind(&new.password_hash)
        .bind(new.is_staff)
        .bind(new.is_superuser)
        .bind(t)
        .bind(t)
        .fetch_all(&self.pool) // to the end: see `returning_all`
        .await
        .map_err(backend)?;
        let id = ids
            .first()
            .copied()
            .ok_or_else(|| StoreError::Backend("the insert returned no id".into()))?;
        self.user_by_id(id)
            .await?
            .ok_or_else(|| StoreError::Backend("inserted user vanished".into()))
    }

    async fn user_by_id(&self, id: i64) -> StoreResult<Option<User>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        row.as_ref().map(user_from_row).transpose().map_err(backend)
    }

    async fn user_by_username(&self, username: &str) -> StoreResult<Option<User>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE username = ? COLLATE NOCASE");
        let row = sqlx::query(&sql)
            .bind(username.trim())
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        row.as_ref().map(user_from_row).transpose().map_err(backend)
    }

    async fn list_users(&self) -> StoreResult<Vec<UserSummary>> {
        let sql = format!(
            "SELECT {USER_COLUMNS}, (SELECT COUNT(*) FROM face_templates f WHERE f.user_id = users.id) AS faces \
             FROM users ORDER BY id"
        );
        let rows = sqlx::query(&sql)
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        rows.iter()
            .map(|r| {
                Ok(UserSummary {
                    user: user_from_row(r)?,
                    faces: r.try_get("faces")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(backend)
    }

    async fn count_users(&self) -> StoreResult<i64> {
        sqlx::query_scalar("SELECT COUNT(*) FROM users")
            .fetch_one(&self.pool)
            .await
            .map_err(backend)
    }

    async fn set_active(&self, id: i64, active: bool) -> StoreResult<()> {
        self.update_user(id, UserColumn::Active, active).await
    }

    async fn set_password_hash(&self, id: i64, hash: &str) -> StoreResult<()> {
        self.update_user(id, UserColumn::PasswordHash, hash).await
    }

    async fn set_email(&self, id: i64, email: &Email) -> StoreResult<()> {
        self.update_user(id, UserColumn::Email, email.as_str())
            .await
    }

    async fn record_face_failure(
        &self,
        id: i64,
        threshold: u32,
        lock_until: OffsetDateTime,
    ) -> StoreResult<bool> {
        // One statement: the count and the lock change together, so
        // concurrent failures can neither be lost nor lock twice.
        let locked: Vec<bool> = sqlx::query_scalar(
            "UPDATE users SET \
               face_locked_until = CASE WHEN face_failures + 1 >= ?1 THEN ?2 ELSE face_locked_until END, \
               face_failures = CASE WHEN face_failures + 1 >= ?1 THEN 0 ELSE face_failures + 1 END \
             WHERE id = ?3 RETURNING face_failures = 0",
        )
        .bind(i64::from(threshold.max(1)))
        .bind(ts(lock_until))
        .bind(id)
        .fetch_all(&self.pool) // to the end: see `returning_all`
        .await
        .map_err(backend)?;
        Ok(locked.first().copied().unwrap_or(false))
    }

    async fn reset_face_failures(&self, id: i64) -> StoreResult<()> {
        sqlx::query("UPDATE users SET face_failures = 0, face_locked_until = NULL WHERE id = ?")
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn add_template(&self, new: &NewTemplate) -> StoreResult<Template> {
        self.insert_sealed_template(new).await
    }

    async fn template(&self, id: i64) -> StoreResult<Option<Template>> {
        let row = sqlx::query("SELECT * FROM face_templates WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        row.as_ref().map(|r| self.template_from_row(r)).transpose()
    }

    async fn templates_for_user(&self, user_id: i64) -> StoreResult<Vec<Template>> {
        let rows = sqlx::query("SELECT * FROM face_templates WHERE user_id = ? ORDER BY id")
            .bind(user_id)
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        rows.iter().map(|r| self.template_from_row(r)).collect()
    }

    async fn delete_template(&self, id: i64) -> StoreResult<()> {
        sqlx::query("DELETE FROM face_templates WHERE id = ?")
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        self.checkpoint().await;
        Ok(())
    }

    fn vault(&self) -> Arc<Vault> {
        self.vault.clone()
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn template_ids_not_on_key(&self, key_id: &str) -> StoreResult<Vec<i64>> {
        sqlx::query_scalar(
            "SELECT id FROM face_templates WHERE key_id IS NULL OR key_id != ? ORDER BY id",
        )
        .bind(key_id)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)
    }

    async fn reseal_template(&self, id: i64) -> StoreResult<bool> {
        self.reseal(id).await
    }

    async fn delete_user(&self, id: i64) -> StoreResult<Vec<Template>> {
        self.delete_user_everywhere(id).await
    }

    async fn image_paths(&self) -> StoreResult<Vec<String>> {
        sqlx::query_scalar("SELECT image_path FROM face_templates")
            .fetch_all(&self.pool)
            .await
            .map_err(backend)
    }

    async fn append_audit(&self, event: &NewAuditEvent) -> StoreResult<()> {
        self.insert_audit(event).await
    }

    async fn audit_events(&self, filter: &AuditFilter) -> StoreResult<Vec<AuditEvent>> {
        self.select_audit(filter).await
    }

    async fn delete_templates_for_user(&self, user_id: i64) -> StoreResult<Vec<Template>> {
        let rows = sqlx::query("DELETE FROM face_templates WHERE user_id = ? RETURNING *")
            .bind(user_id)
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        self.checkpoint().await;
        rows.iter().map(|r| self.template_from_row(r)).collect()
    }

    async fn active_templates(&self, model_id: &str) -> StoreResult<Vec<MatchTemplate>> {
        let rows = sqlx::query(
            "SELECT f.id, f.user_id, f.embedding, f.key_id FROM face_templates f \
             JOIN users u ON u.id = f.user_id WHERE u.is_active = 1 AND f.model_id = ?",
        )
        .bind(model_id)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        rows.iter()
            .map(|r| {
                Ok(MatchTemplate {
                    user_id: r.try_get("user_id").map_err(backend)?,
                    embedding: self.open_embedding(r)?,
                })
            })
            .collect()
    }

    async fn record_attempt(&self, a: &NewLoginAttempt) -> StoreResult<()> {
        self.insert_attempt(a).await
    }

    async fn recent_attempts(&self, limit: i64) -> StoreResult<Vec<LoginAttempt>> {
        self.select_recent_attempts(limit).await
    }

    async fn attempts_for_user(&self, user_id: i64) -> StoreResult<Vec<LoginAttempt>> {
        self.select_user_attempts(user_id).await
    }

    async fn attempt(&self, id: i64) -> StoreResult<Option<LoginAttempt>> {
        self.select_attempt(id).await
    }

    async fn delete_attempts_before(
        &self,
        cutoff: OffsetDateTime,
    ) -> StoreResult<(u64, Vec<String>)> {
        self.delete_attempts_older(cutoff).await
    }

    async fn clear_probes_before(&self, cutoff: OffsetDateTime) -> StoreResult<Vec<String>> {
        self.unlink_probes_older(cutoff).await
    }

    async fn take_probes_for_user(&self, user_id: i64) -> StoreResult<Vec<String>> {
        self.unlink_user_probes(user_id).await
    }

    async fn probe_paths(&self) -> StoreResult<Vec<String>> {
        self.select_probe_paths().await
    }

    async fn probes_not_on_key(&self, key_id: &str) -> StoreResult<Vec<(i64, String)>> {
        self.select_probes_not_on_key(key_id).await
    }

    async fn set_probe_key(&self, id: i64, key_id: &str) -> StoreResult<()> {
        self.update_probe_key(id, key_id).await
    }
}
