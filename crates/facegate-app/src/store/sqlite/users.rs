//! Accounts and face-login lockout in SQLite.

use async_trait::async_trait;
use sqlx::sqlite::SqliteRow;
use sqlx::Row;
use time::OffsetDateTime;

use super::{from_ts, now, ts, SqliteBackend, WriteTx};
use crate::domain::{Email, NewUser, User, UserSummary};
use crate::store::error::{StoreError, StoreResult};
use crate::store::fault::from_sqlx;
use crate::store::records::{FaceFailure, Lockouts, Users};

const USER_COLUMNS: &str =
    "id, username, email, password_hash, is_active, is_staff, is_superuser, \
     face_failures, face_locked_until, session_epoch, face_added_at, created_at, updated_at";

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
        session_epoch: r.try_get("session_epoch")?,
        face_added_at: r.try_get::<Option<i64>, _>("face_added_at")?.map(from_ts),
        created_at: from_ts(r.try_get("created_at")?),
        updated_at: from_ts(r.try_get("updated_at")?),
    })
}

const INSERT_USER: &str =
    "INSERT INTO users (username, email, password_hash, is_staff, is_superuser, created_at, updated_at) \
     VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id";

impl SqliteBackend {
    /// Sets one column of a user row (`sql` binds the value, then
    /// `updated_at`, then the id).
    async fn update_user<'q, T>(&self, sql: &'q str, id: i64, value: T) -> StoreResult<()>
    where
        T: 'q + Send + sqlx::Encode<'q, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite>,
    {
        sqlx::query(sql)
            .bind(value)
            .bind(now())
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(from_sqlx)?;
        Ok(())
    }

    /// The one user whose row meets `condition` (binding `value`), if any.
    async fn one_user<T>(&self, condition: &str, value: T) -> StoreResult<Option<User>>
    where
        T: Send + for<'q> sqlx::Encode<'q, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite>,
    {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE {condition} LIMIT 1");
        let row = sqlx::query(&sql)
            .bind(value)
            .fetch_optional(&self.pool)
            .await
            .map_err(from_sqlx)?;
        row.as_ref()
            .map(user_from_row)
            .transpose()
            .map_err(from_sqlx)
    }
}

#[async_trait]
impl Users for SqliteBackend {
    async fn create_user(&self, new: &NewUser) -> StoreResult<User> {
        let t = now();
        let ids: Vec<i64> = sqlx::query_scalar(INSERT_USER)
            .bind(new.username.as_str())
            .bind(new.email.as_str())
            .bind(&new.password_hash)
            .bind(new.is_staff)
            .bind(new.is_superuser)
            .bind(t)
            .bind(t)
            .fetch_all(&self.pool) // to the end: see `returning_all`
            .await
            .map_err(from_sqlx)?;
        let id = ids
            .first()
            .copied()
            .ok_or_else(|| StoreError::Backend("the insert returned no id".into()))?;
        self.user_by_id(id)
            .await?
            .ok_or_else(|| StoreError::Backend("inserted user vanished".into()))
    }

    async fn create_users(&self, new: &[NewUser]) -> StoreResult<Vec<i64>> {
        let t = now();
        let mut tx = WriteTx::begin(&self.pool).await?;
        let mut ids = Vec::with_capacity(new.len());
        for u in new {
            let id: i64 = sqlx::query_scalar(INSERT_USER)
                .bind(u.username.as_str())
                .bind(u.email.as_str())
                .bind(&u.password_hash)
                .bind(u.is_staff)
                .bind(u.is_superuser)
                .bind(t)
                .bind(t)
                .fetch_one(tx.conn())
                .await
                .map_err(from_sqlx)?;
            ids.push(id);
        }
        tx.commit().await?;
        Ok(ids)
    }

    async fn user_by_id(&self, id: i64) -> StoreResult<Option<User>> {
        self.one_user("id = ?", id).await
    }

    async fn user_by_username(&self, username: &str) -> StoreResult<Option<User>> {
        self.one_user("username = ? COLLATE NOCASE", username.trim().to_string())
            .await
    }

    async fn user_by_email(&self, email: &str) -> StoreResult<Option<User>> {
        // lower() rather than NOCASE: the same rule as PostgreSQL's.
        self.one_user("lower(email) = lower(?)", email.trim().to_string())
            .await
    }

    async fn list_users(&self) -> StoreResult<Vec<UserSummary>> {
        let sql = format!(
            "SELECT {USER_COLUMNS}, (SELECT COUNT(*) FROM face_templates f WHERE f.user_id = users.id) AS faces \
             FROM users ORDER BY id"
        );
        let rows = sqlx::query(&sql)
            .fetch_all(&self.pool)
            .await
            .map_err(from_sqlx)?;
        rows.iter()
            .map(|r| {
                Ok(UserSummary {
                    user: user_from_row(r)?,
                    faces: r.try_get("faces")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(from_sqlx)
    }

    async fn count_users(&self) -> StoreResult<i64> {
        sqlx::query_scalar("SELECT COUNT(*) FROM users")
            .fetch_one(&self.pool)
            .await
            .map_err(from_sqlx)
    }

    async fn set_active(&self, id: i64, active: bool) -> StoreResult<()> {
        let sql = "UPDATE users SET is_active = ?, updated_at = ? WHERE id = ?";
        self.update_user(sql, id, active).await
    }

    async fn set_password_hash(&self, id: i64, hash: &str) -> StoreResult<()> {
        let sql = "UPDATE users SET password_hash = ?, updated_at = ? WHERE id = ?";
        self.update_user(sql, id, hash).await
    }

    async fn set_email(&self, id: i64, email: &Email) -> StoreResult<()> {
        let sql = "UPDATE users SET email = ?, updated_at = ? WHERE id = ?";
        self.update_user(sql, id, email.as_str()).await
    }

    async fn end_sessions(&self, id: i64) -> StoreResult<()> {
        let sql = "UPDATE users SET session_epoch = session_epoch + ?, updated_at = ? WHERE id = ?";
        self.update_user(sql, id, 1i64).await
    }

    async fn set_face_added(&self, id: i64, at: Option<OffsetDateTime>) -> StoreResult<()> {
        let sql = "UPDATE users SET face_added_at = ?, updated_at = ? WHERE id = ?";
        self.update_user(sql, id, at.map(ts)).await
    }

    async fn delete_user(&self, id: i64) -> StoreResult<usize> {
        let mut tx = WriteTx::begin(&self.pool).await?;
        // Photos and probes go with their templates and attempts (cascade).
        let templates = sqlx::query("DELETE FROM face_templates WHERE user_id = ?")
            .bind(id)
            .execute(tx.conn())
            .await
            .map_err(from_sqlx)?
            .rows_affected();
        for sql in [
            "DELETE FROM login_attempts WHERE user_id = ?",
            "DELETE FROM users WHERE id = ?",
        ] {
            sqlx::query(sql)
                .bind(id)
                .execute(tx.conn())
                .await
                .map_err(from_sqlx)?;
        }
        tx.commit().await?;
        self.checkpoint().await;
        Ok(templates as usize)
    }
}

#[async_trait]
impl Lockouts for SqliteBackend {
    async fn record_face_failure(
        &self,
        id: i64,
        threshold: u32,
        lock_until: OffsetDateTime,
        now: OffsetDateTime,
    ) -> StoreResult<FaceFailure> {
        // One statement: the lock check, the count and the lock change
        // together, so concurrent failures can neither be lost, nor lock
        // twice, nor be counted once the account is locked.
        let locked: Vec<bool> = sqlx::query_scalar(
            "UPDATE users SET \
               face_locked_until = CASE WHEN face_failures + 1 >= ?1 THEN ?2 ELSE face_locked_until END, \
               face_failures = CASE WHEN face_failures + 1 >= ?1 THEN 0 ELSE face_failures + 1 END \
             WHERE id = ?3 AND (face_locked_until IS NULL OR face_locked_until <= ?4) \
             RETURNING face_failures = 0",
        )
        .bind(i64::from(threshold.max(1)))
        .bind(ts(lock_until))
        .bind(id)
        .bind(ts(now))
        .fetch_all(&self.pool) // to the end: see `returning_all`
        .await
        .map_err(from_sqlx)?;
        Ok(match locked.first() {
            Some(true) => FaceFailure::Locked,
            Some(false) => FaceFailure::Counted,
            None => FaceFailure::AlreadyLocked,
        })
    }

    async fn reset_face_failures(&self, id: i64, now: OffsetDateTime) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE users SET face_failures = 0, face_locked_until = NULL \
             WHERE id = ? AND (face_locked_until IS NULL OR face_locked_until <= ?)",
        )
        .bind(id)
        .bind(ts(now))
        .execute(&self.pool)
        .await
        .map_err(from_sqlx)?;
        Ok(done.rows_affected() > 0)
    }
}
