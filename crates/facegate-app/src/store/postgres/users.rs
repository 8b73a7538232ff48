//! Accounts and face-login lockout in PostgreSQL.

use async_trait::async_trait;
use sqlx::postgres::PgRow;
use sqlx::Row;
use time::OffsetDateTime;

use super::PostgresBackend;
use crate::domain::{Email, NewUser, User, UserSummary};
use crate::store::backend::stamp_now;
use crate::store::error::{StoreError, StoreResult};
use crate::store::fault::from_sqlx;
use crate::store::records::{FaceFailure, Lockouts, Users};

const USER_COLUMNS: &str =
    "id, username, email, password_hash, is_active, is_staff, is_superuser, \
     face_failures, face_locked_until, session_epoch, face_added_at, created_at, updated_at";

fn user_from_row(r: &PgRow) -> Result<User, sqlx::Error> {
    Ok(User {
        id: r.try_get("id")?,
        username: r.try_get("username")?,
        email: r.try_get("email")?,
        password_hash: r.try_get("password_hash")?,
        is_active: r.try_get("is_active")?,
        is_staff: r.try_get("is_staff")?,
        is_superuser: r.try_get("is_superuser")?,
        face_failures: r.try_get::<i32, _>("face_failures")?.max(0) as u32,
        face_locked_until: r.try_get("face_locked_until")?,
        session_epoch: r.try_get("session_epoch")?,
        face_added_at: r.try_get("face_added_at")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

impl PostgresBackend {
    async fn user_where(&self, condition: &str, bind: &str) -> StoreResult<Option<User>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE {condition}");
        let row = sqlx::query(&sql)
            .bind(bind)
            .fetch_optional(&self.pool)
            .await
            .map_err(from_sqlx)?;
        row.as_ref()
            .map(user_from_row)
            .transpose()
            .map_err(from_sqlx)
    }

    /// Sets one column of a user row (`$1` the value, `$2` `updated_at`,
    /// `$3` the id).
    async fn update_user<'q, T>(&self, sql: &'q str, id: i64, value: T) -> StoreResult<()>
    where
        T: 'q + Send + sqlx::Encode<'q, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
    {
        sqlx::query(sql)
            .bind(value)
            .bind(stamp_now())
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(from_sqlx)?;
        Ok(())
    }
}

#[async_trait]
impl Users for PostgresBackend {
    async fn create_user(&self, new: &NewUser) -> StoreResult<User> {
        let id = self
            .create_users(std::slice::from_ref(new))
            .await?
            .pop()
            .ok_or_else(|| StoreError::Backend("the insert returned no id".into()))?;
        self.user_by_id(id)
            .await?
            .ok_or_else(|| StoreError::Backend("inserted user vanished".into()))
    }

    async fn create_users(&self, new: &[NewUser]) -> StoreResult<Vec<i64>> {
        let t = stamp_now();
        let column = |f: fn(&NewUser) -> &str| new.iter().map(f).collect::<Vec<&str>>();
        let flag = |f: fn(&NewUser) -> bool| new.iter().map(f).collect::<Vec<bool>>();
        // One statement for the batch; ids in the order given.
        sqlx::query_scalar(
            "INSERT INTO users (username, email, password_hash, is_staff, is_superuser, created_at, updated_at) \
             SELECT u.username, u.email, u.hash, u.staff, u.superuser, $6, $6 \
             FROM UNNEST($1::text[], $2::text[], $3::text[], $4::bool[], $5::bool[]) \
               WITH ORDINALITY AS u(username, email, hash, staff, superuser, n) \
             ORDER BY u.n RETURNING id",
        )
        .bind(column(|u| u.username.as_str()))
        .bind(column(|u| u.email.as_str()))
        .bind(column(|u| u.password_hash.as_str()))
        .bind(flag(|u| u.is_staff))
        .bind(flag(|u| u.is_superuser))
        .bind(t)
        .fetch_all(&self.pool)
        .await
        .map_err(from_sqlx)
    }

    async fn user_by_id(&self, id: i64) -> StoreResult<Option<User>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(from_sqlx)?;
        row.as_ref()
            .map(user_from_row)
            .transpose()
            .map_err(from_sqlx)
    }

    async fn user_by_username(&self, username: &str) -> StoreResult<Option<User>> {
        self.user_where("lower(username) = lower($1)", username.trim())
            .await
    }

    async fn user_by_email(&self, email: &str) -> StoreResult<Option<User>> {
        self.user_where("lower(email) = lower($1) ORDER BY id LIMIT 1", email.trim())
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
        let sql = "UPDATE users SET is_active = $1, updated_at = $2 WHERE id = $3";
        self.update_user(sql, id, active).await
    }

    async fn set_password_hash(&self, id: i64, hash: &str) -> StoreResult<()> {
        let sql = "UPDATE users SET password_hash = $1, updated_at = $2 WHERE id = $3";
        self.update_user(sql, id, hash).await
    }

    async fn set_email(&self, id: i64, email: &Email) -> StoreResult<()> {
        let sql = "UPDATE users SET email = $1, updated_at = $2 WHERE id = $3";
        self.update_user(sql, id, email.as_str()).await
    }

    async fn end_sessions(&self, id: i64) -> StoreResult<()> {
        let sql =
            "UPDATE users SET session_epoch = session_epoch + $1, updated_at = $2 WHERE id = $3";
        self.update_user(sql, id, 1i64).await
    }

    async fn set_face_added(&self, id: i64, at: Option<OffsetDateTime>) -> StoreResult<()> {
        let sql = "UPDATE users SET face_added_at = $1, updated_at = $2 WHERE id = $3";
        self.update_user(sql, id, at).await
    }

    async fn delete_user(&self, id: i64) -> StoreResult<usize> {
        let mut tx = self.pool.begin().await.map_err(from_sqlx)?;
        // Photos and probes go with their templates and attempts (cascade).
        let templates = sqlx::query("DELETE FROM face_templates WHERE user_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(from_sqlx)?
            .rows_affected();
        for sql in [
            "DELETE FROM login_attempts WHERE user_id = $1",
            "DELETE FROM users WHERE id = $1",
        ] {
            sqlx::query(sql)
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(from_sqlx)?;
        }
        tx.commit().await.map_err(from_sqlx)?;
        Ok(templates as usize)
    }
}

#[async_trait]
impl Lockouts for PostgresBackend {
    async fn record_face_failure(
        &self,
        id: i64,
        threshold: u32,
        lock_until: OffsetDateTime,
        now: OffsetDateTime,
    ) -> StoreResult<FaceFailure> {
        // One statement under the row's lock: the lock check, the count and
        // the lock change together, so concurrent failures (from any
        // instance) can neither be lost, nor lock twice, nor be counted
        // once the account is locked.
        let locked: Option<bool> = sqlx::query_scalar(
            "UPDATE users SET \
               face_locked_until = CASE WHEN face_failures + 1 >= $1 THEN $2 ELSE face_locked_until END, \
               face_failures = CASE WHEN face_failures + 1 >= $1 THEN 0 ELSE face_failures + 1 END \
             WHERE id = $3 AND (face_locked_until IS NULL OR face_locked_until <= $4) \
             RETURNING face_failures = 0",
        )
        .bind(i32::try_from(threshold.max(1)).unwrap_or(i32::MAX))
        .bind(lock_until)
        .bind(id)
        .bind(now)
        .fetch_optional(&self.pool)
        .await
        .map_err(from_sqlx)?;
        Ok(match locked {
            Some(true) => FaceFailure::Locked,
            Some(false) => FaceFailure::Counted,
            None => FaceFailure::AlreadyLocked,
        })
    }

    async fn reset_face_failures(&self, id: i64, now: OffsetDateTime) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE users SET face_failures = 0, face_locked_until = NULL \
             WHERE id = $1 AND (face_locked_until IS NULL OR face_locked_until <= $2)",
        )
        .bind(id)
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(from_sqlx)?;
        Ok(done.rows_affected() > 0)
    }
}
