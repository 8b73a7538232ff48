//! Login attempts in SQLite: recording and reading them, the probe images
//! kept with them (path and sealing key id), and the retention deletes.
//! Deleting returns the probe paths so the caller removes the files after
//! the rows (a crash in between leaves an orphan that the start-up sweep
//! removes, never a row pointing at a missing file).

use sqlx::sqlite::SqliteRow;
use sqlx::Row;
use time::OffsetDateTime;

use super::sqlite::{backend, from_ts, now, ts};
use super::{SqliteStore, StoreResult};
use crate::domain::{LoginAttempt, NewLoginAttempt};

pub(super) fn attempt_from_row(r: &SqliteRow) -> Result<LoginAttempt, sqlx::Error> {
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
        probe_path: r.try_get("probe_path")?,
    })
}

impl SqliteStore {
    async fn attempts_where(&self, sql: &str, bind: i64) -> StoreResult<Vec<LoginAttempt>> {
        let rows = sqlx::query(sql)
            .bind(bind)
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        rows.iter()
            .map(attempt_from_row)
            .collect::<Result<_, sqlx::Error>>()
            .map_err(backend)
    }

    pub(super) async fn insert_attempt(&self, a: &NewLoginAttempt) -> StoreResult<()> {
        // A probe is sealed with the vault's primary key (see `Media`).
        let probe_key = a.probe_path.as_ref().map(|_| self.vault.primary_id());
        sqlx::query(
            "INSERT INTO login_attempts (at, claimed_username, user_id, client_addr, method, outcome, \
             best_score, reason, liveness, probe_path, probe_key_id) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
        .bind(&a.probe_path)
        .bind(probe_key)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(())
    }

    pub(super) async fn select_recent_attempts(
        &self,
        limit: i64,
    ) -> StoreResult<Vec<LoginAttempt>> {
        self.attempts_where(
            "SELECT * FROM login_attempts ORDER BY id DESC LIMIT ?",
            limit,
        )
        .await
    }

    pub(super) async fn select_user_attempts(
        &self,
        user_id: i64,
    ) -> StoreResult<Vec<LoginAttempt>> {
        self.attempts_where(
            "SELECT * FROM login_attempts WHERE user_id = ? ORDER BY id",
            user_id,
        )
        .await
    }

    pub(super) async fn select_attempt(&self, id: i64) -> StoreResult<Option<LoginAttempt>> {
        Ok(self
            .attempts_where("SELECT * FROM login_attempts WHERE id = ?", id)
            .await?
            .pop())
    }

    /// Deletes the attempts from before `cutoff`; returns how many and the
    /// probe paths they held.
    pub(super) async fn delete_attempts_older(
        &self,
        cutoff: OffsetDateTime,
    ) -> StoreResult<(u64, Vec<String>)> {
        let paths: Vec<Option<String>> =
            sqlx::query_scalar("DELETE FROM login_attempts WHERE at < ? RETURNING probe_path")
                .bind(ts(cutoff))
                .fetch_all(&self.pool)
                .await
                .map_err(backend)?;
        if !paths.is_empty() {
            self.checkpoint().await;
        }
        Ok((paths.len() as u64, paths.into_iter().flatten().collect()))
    }

    /// Unlinks the probes selected by `condition` (bound to `value`);
    /// returns their paths.
    async fn unlink_probes(&self, condition: &'static str, value: i64) -> StoreResult<Vec<String>> {
        // RETURNING would give the new (NULL) paths: read them first, in
        // a transaction that holds the write lock from its start.
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(backend)?;
        let select = format!(
            "SELECT probe_path FROM login_attempts WHERE probe_path IS NOT NULL AND {condition}"
        );
        let paths: Vec<String> = sqlx::query_scalar(&select)
            .bind(value)
            .fetch_all(&mut *tx)
            .await
            .map_err(backend)?;
        let update = format!(
            "UPDATE login_attempts SET probe_path = NULL, probe_key_id = NULL \
             WHERE probe_path IS NOT NULL AND {condition}"
        );
        sqlx::query(&update)
            .bind(value)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        if !paths.is_empty() {
            self.checkpoint().await;
        }
        Ok(paths)
    }

    pub(super) async fn unlink_probes_older(
        &self,
        cutoff: OffsetDateTime,
    ) -> StoreResult<Vec<String>> {
        self.unlink_probes("at < ?", ts(cutoff)).await
    }

    pub(super) async fn unlink_user_probes(&self, user_id: i64) -> StoreResult<Vec<String>> {
        self.unlink_probes("user_id = ?", user_id).await
    }

    pub(super) async fn select_probe_paths(&self) -> StoreResult<Vec<String>> {
        sqlx::query_scalar("SELECT probe_path FROM login_attempts WHERE probe_path IS NOT NULL")
            .fetch_all(&self.pool)
            .await
            .map_err(backend)
    }

    pub(super) async fn select_probes_not_on_key(
        &self,
        key_id: &str,
    ) -> StoreResult<Vec<(i64, String)>> {
        sqlx::query_as(
            "SELECT id, probe_path FROM login_attempts WHERE probe_path IS NOT NULL \
             AND (probe_key_id IS NULL OR probe_key_id != ?) ORDER BY id",
        )
        .bind(key_id)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)
    }

    pub(super) async fn update_probe_key(&self, id: i64, key_id: &str) -> StoreResult<()> {
        sqlx::query(
            "UPDATE login_attempts SET probe_key_id = ? WHERE id = ? AND probe_path IS NOT NULL",
        )
        .bind(key_id)
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(())
    }
}
