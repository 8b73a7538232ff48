//! Login attempts in SQLite, with the probe a face login may keep as a
//! sealed blob in `login_probes` (deleted with its attempt), and the
//! retention deletes.

use async_trait::async_trait;
use sqlx::sqlite::SqliteRow;
use sqlx::Row;
use time::OffsetDateTime;

use super::{from_ts, now, ts, SqliteBackend, WriteTx};
use crate::domain::{LoginAttempt, NewLoginAttempt};
use crate::store::backend::{ProbeRecords, Reseal, SealProbe, SealedBlob, StoredBlob};
use crate::store::error::StoreResult;
use crate::store::fault::from_sqlx;
use crate::store::records::Attempts;

fn attempt_from_row(r: &SqliteRow) -> Result<LoginAttempt, sqlx::Error> {
    Ok(LoginAttempt {
        id: r.try_get("id")?,
        at: from_ts(r.try_get("at")?),
        claimed_username: r.try_get("claimed_username")?,
        user_id: r.try_get("user_id")?,
        client_addr: r.try_get("client_addr")?,
        method: r.try_get("method")?,
        outcome: r.try_get("outcome")?,
        best_score: r.try_get::<Option<f64>, _>("best_score")?.map(|s| s as f32),
        reason: r.try_get("reason")?,
        liveness: r.try_get("liveness")?,
        probe_kept: r.try_get("probe_kept")?,
    })
}

/// Attempts with whether they keep a probe; `WHERE …` follows.
const SELECT_ATTEMPTS: &str = "SELECT a.id, a.at, a.claimed_username, a.user_id, a.client_addr, \
     a.method, a.outcome, a.best_score, a.reason, a.liveness, \
     EXISTS (SELECT 1 FROM login_probes p WHERE p.attempt_id = a.id) AS probe_kept \
     FROM login_attempts a";

impl SqliteBackend {
    async fn attempts_where(&self, tail: &str, bind: i64) -> StoreResult<Vec<LoginAttempt>> {
        let sql = format!("{SELECT_ATTEMPTS} {tail}");
        let rows = sqlx::query(&sql)
            .bind(bind)
            .fetch_all(&self.pool)
            .await
            .map_err(from_sqlx)?;
        rows.iter()
            .map(attempt_from_row)
            .collect::<Result<_, sqlx::Error>>()
            .map_err(from_sqlx)
    }

    /// Deletes the probes of the attempts matching `condition` (on `a`,
    /// bound to `value`); returns how many.
    async fn delete_probes_where(&self, condition: &str, value: i64) -> StoreResult<u64> {
        let sql = format!(
            "DELETE FROM login_probes WHERE attempt_id IN \
             (SELECT a.id FROM login_attempts a WHERE {condition})"
        );
        let n = sqlx::query(&sql)
            .bind(value)
            .execute(&self.pool)
            .await
            .map_err(from_sqlx)?
            .rows_affected();
        if n > 0 {
            self.checkpoint().await;
        }
        Ok(n)
    }
}

#[async_trait]
impl Attempts for SqliteBackend {
    async fn recent_attempts(&self, limit: i64) -> StoreResult<Vec<LoginAttempt>> {
        self.attempts_where("ORDER BY a.id DESC LIMIT ?", limit)
            .await
    }

    async fn attempts_for_user(&self, user_id: i64) -> StoreResult<Vec<LoginAttempt>> {
        self.attempts_where("WHERE a.user_id = ? ORDER BY a.id", user_id)
            .await
    }

    async fn attempt(&self, id: i64) -> StoreResult<Option<LoginAttempt>> {
        Ok(self.attempts_where("WHERE a.id = ?", id).await?.pop())
    }

    async fn delete_attempts_before(&self, cutoff: OffsetDateTime) -> StoreResult<(u64, u64)> {
        let mut tx = WriteTx::begin(&self.pool).await?;
        let probes = sqlx::query(
            "DELETE FROM login_probes WHERE attempt_id IN (SELECT id FROM login_attempts WHERE at < ?)",
        )
        .bind(ts(cutoff))
        .execute(tx.conn())
        .await
        .map_err(from_sqlx)?
        .rows_affected();
        let attempts = sqlx::query("DELETE FROM login_attempts WHERE at < ?")
            .bind(ts(cutoff))
            .execute(tx.conn())
            .await
            .map_err(from_sqlx)?
            .rows_affected();
        tx.commit().await?;
        if attempts > 0 {
            self.checkpoint().await;
        }
        Ok((attempts, probes))
    }

    async fn clear_probes_before(&self, cutoff: OffsetDateTime) -> StoreResult<u64> {
        self.delete_probes_where("a.at < ?", ts(cutoff)).await
    }

    async fn delete_probes_for_user(&self, user_id: i64) -> StoreResult<u64> {
        self.delete_probes_where("a.user_id = ?", user_id).await
    }
}

#[async_trait]
impl ProbeRecords for SqliteBackend {
    async fn insert_attempt(
        &self,
        a: &NewLoginAttempt,
        probe: Option<SealProbe<'_>>,
    ) -> StoreResult<()> {
        let mut tx = WriteTx::begin(&self.pool).await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO login_attempts (at, claimed_username, user_id, client_addr, method, outcome, \
             best_score, reason, liveness) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(now())
        .bind(&a.claimed_username)
        .bind(a.user_id)
        .bind(&a.client_addr)
        .bind(a.method.as_str())
        .bind(a.outcome.as_str())
        .bind(a.best_score.map(f64::from))
        .bind(&a.reason)
        .bind(&a.liveness)
        .fetch_one(tx.conn())
        .await
        .map_err(from_sqlx)?;
        if let Some(seal) = probe {
            let sealed = seal(id);
            sqlx::query("INSERT INTO login_probes (attempt_id, key_id, sealed) VALUES (?, ?, ?)")
                .bind(id)
                .bind(&sealed.key_id)
                .bind(&sealed.bytes)
                .execute(tx.conn())
                .await
                .map_err(from_sqlx)?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn probe_blob(&self, attempt_id: i64) -> StoreResult<Option<StoredBlob>> {
        let row: Option<(Option<String>, Vec<u8>)> =
            sqlx::query_as("SELECT key_id, sealed FROM login_probes WHERE attempt_id = ?")
                .bind(attempt_id)
                .fetch_optional(&self.pool)
                .await
                .map_err(from_sqlx)?;
        Ok(row.map(|(key_id, bytes)| StoredBlob { key_id, bytes }))
    }

    async fn probe_ids_not_on_key(&self, key_id: &str) -> StoreResult<Vec<i64>> {
        sqlx::query_scalar(
            "SELECT attempt_id FROM login_probes WHERE key_id IS NULL OR key_id != ? \
             ORDER BY attempt_id",
        )
        .bind(key_id)
        .fetch_all(&self.pool)
        .await
        .map_err(from_sqlx)
    }

    async fn reseal_probe_row(
        &self,
        attempt_id: i64,
        reseal: Reseal<'_, StoredBlob, SealedBlob>,
    ) -> StoreResult<bool> {
        let mut tx = WriteTx::begin(&self.pool).await?;
        let row: Option<(Option<String>, Vec<u8>)> =
            sqlx::query_as("SELECT key_id, sealed FROM login_probes WHERE attempt_id = ?")
                .bind(attempt_id)
                .fetch_optional(tx.conn())
                .await
                .map_err(from_sqlx)?;
        let Some((key_id, bytes)) = row else {
            return Ok(false);
        };
        let Some(sealed) = reseal(&StoredBlob { key_id, bytes })? else {
            return Ok(false);
        };
        sqlx::query("UPDATE login_probes SET key_id = ?, sealed = ? WHERE attempt_id = ?")
            .bind(&sealed.key_id)
            .bind(&sealed.bytes)
            .bind(attempt_id)
            .execute(tx.conn())
            .await
            .map_err(from_sqlx)?;
        tx.commit().await?;
        Ok(true)
    }
}
