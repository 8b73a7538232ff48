//! Login attempts in PostgreSQL, with the probe a face login may keep as a
//! sealed blob in `login_probes` (deleted with its attempt), the retention
//! deletes, and the append-only audit trail (a trigger refuses UPDATE,
//! DELETE and TRUNCATE).

use async_trait::async_trait;
use sqlx::postgres::PgRow;
use sqlx::{Postgres, QueryBuilder, Row};
use time::OffsetDateTime;

use super::PostgresBackend;
use crate::domain::{AuditEvent, AuditFilter, LoginAttempt, NewAuditEvent, NewLoginAttempt};
use crate::store::backend::{stamp_now, ProbeRecords, Reseal, SealProbe, SealedBlob, StoredBlob};
use crate::store::error::StoreResult;
use crate::store::fault::from_sqlx;
use crate::store::records::{Attempts, Audit};

fn attempt_from_row(r: &PgRow) -> Result<LoginAttempt, sqlx::Error> {
    Ok(LoginAttempt {
        id: r.try_get("id")?,
        at: r.try_get("at")?,
        claimed_username: r.try_get("claimed_username")?,
        user_id: r.try_get("user_id")?,
        client_addr: r.try_get("client_addr")?,
        method: r.try_get("method")?,
        outcome: r.try_get("outcome")?,
        best_score: r.try_get("best_score")?,
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

impl PostgresBackend {
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
}

#[async_trait]
impl Attempts for PostgresBackend {
    async fn recent_attempts(&self, limit: i64) -> StoreResult<Vec<LoginAttempt>> {
        self.attempts_where("ORDER BY a.id DESC LIMIT $1", limit)
            .await
    }

    async fn attempts_for_user(&self, user_id: i64) -> StoreResult<Vec<LoginAttempt>> {
        self.attempts_where("WHERE a.user_id = $1 ORDER BY a.id", user_id)
            .await
    }

    async fn attempt(&self, id: i64) -> StoreResult<Option<LoginAttempt>> {
        Ok(self.attempts_where("WHERE a.id = $1", id).await?.pop())
    }

    async fn delete_attempts_before(&self, cutoff: OffsetDateTime) -> StoreResult<(u64, u64)> {
        let mut tx = self.pool.begin().await.map_err(from_sqlx)?;
        let probes = sqlx::query(
            "DELETE FROM login_probes WHERE attempt_id IN \
             (SELECT id FROM login_attempts WHERE at < $1)",
        )
        .bind(cutoff)
        .execute(&mut *tx)
        .await
        .map_err(from_sqlx)?
        .rows_affected();
        let attempts = sqlx::query("DELETE FROM login_attempts WHERE at < $1")
            .bind(cutoff)
            .execute(&mut *tx)
            .await
            .map_err(from_sqlx)?
            .rows_affected();
        tx.commit().await.map_err(from_sqlx)?;
        Ok((attempts, probes))
    }

    async fn clear_probes_before(&self, cutoff: OffsetDateTime) -> StoreResult<u64> {
        let n = sqlx::query(
            "DELETE FROM login_probes WHERE attempt_id IN \
             (SELECT id FROM login_attempts WHERE at < $1)",
        )
        .bind(cutoff)
        .execute(&self.pool)
        .await
        .map_err(from_sqlx)?
        .rows_affected();
        Ok(n)
    }

    async fn delete_probes_for_user(&self, user_id: i64) -> StoreResult<u64> {
        let n = sqlx::query(
            "DELETE FROM login_probes WHERE attempt_id IN \
             (SELECT id FROM login_attempts WHERE user_id = $1)",
        )
        .bind(user_id)
        .execute(&self.pool)
        .await
        .map_err(from_sqlx)?
        .rows_affected();
        Ok(n)
    }
}

#[async_trait]
impl ProbeRecords for PostgresBackend {
    async fn insert_attempt(
        &self,
        a: &NewLoginAttempt,
        probe: Option<SealProbe<'_>>,
    ) -> StoreResult<()> {
        let mut tx = self.pool.begin().await.map_err(from_sqlx)?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO login_attempts (at, claimed_username, user_id, client_addr, method, outcome, \
             best_score, reason, liveness) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
        )
        .bind(stamp_now())
        .bind(&a.claimed_username)
        .bind(a.user_id)
        .bind(&a.client_addr)
        .bind(a.method.as_str())
        .bind(a.outcome.as_str())
        .bind(a.best_score)
        .bind(&a.reason)
        .bind(&a.liveness)
        .fetch_one(&mut *tx)
        .await
        .map_err(from_sqlx)?;
        if let Some(seal) = probe {
            let sealed = seal(id);
            sqlx::query(
                "INSERT INTO login_probes (attempt_id, key_id, sealed) VALUES ($1, $2, $3)",
            )
            .bind(id)
            .bind(&sealed.key_id)
            .bind(&sealed.bytes)
            .execute(&mut *tx)
            .await
            .map_err(from_sqlx)?;
        }
        tx.commit().await.map_err(from_sqlx)?;
        Ok(())
    }

    async fn probe_blob(&self, attempt_id: i64) -> StoreResult<Option<StoredBlob>> {
        let row: Option<(Option<String>, Vec<u8>)> =
            sqlx::query_as("SELECT key_id, sealed FROM login_probes WHERE attempt_id = $1")
                .bind(attempt_id)
                .fetch_optional(&self.pool)
                .await
                .map_err(from_sqlx)?;
        Ok(row.map(|(key_id, bytes)| StoredBlob { key_id, bytes }))
    }

    async fn probe_ids_not_on_key(&self, key_id: &str) -> StoreResult<Vec<i64>> {
        sqlx::query_scalar(
            "SELECT attempt_id FROM login_probes WHERE key_id != $1 ORDER BY attempt_id",
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
        let mut tx = self.pool.begin().await.map_err(from_sqlx)?;
        let row: Option<(Option<String>, Vec<u8>)> = sqlx::query_as(
            "SELECT key_id, sealed FROM login_probes WHERE attempt_id = $1 FOR UPDATE",
        )
        .bind(attempt_id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(from_sqlx)?;
        let Some((key_id, bytes)) = row else {
            return Ok(false);
        };
        let Some(sealed) = reseal(&StoredBlob { key_id, bytes })? else {
            return Ok(false);
        };
        sqlx::query("UPDATE login_probes SET key_id = $1, sealed = $2 WHERE attempt_id = $3")
            .bind(&sealed.key_id)
            .bind(&sealed.bytes)
            .bind(attempt_id)
            .execute(&mut *tx)
            .await
            .map_err(from_sqlx)?;
        tx.commit().await.map_err(from_sqlx)?;
        Ok(true)
    }
}

#[async_trait]
impl Audit for PostgresBackend {
    async fn append_audit(&self, e: &NewAuditEvent) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO audit_events (at, kind, outcome, actor_user_id, subject_user_id, username, \
             client_addr, score, detail) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(stamp_now())
        .bind(e.kind.as_str())
        .bind(&e.outcome)
        .bind(e.actor_user_id)
        .bind(e.subject_user_id)
        .bind(&e.username)
        .bind(&e.client_addr)
        .bind(e.score)
        .bind(&e.detail)
        .execute(&self.pool)
        .await
        .map_err(from_sqlx)?;
        Ok(())
    }

    async fn audit_events(&self, f: &AuditFilter) -> StoreResult<Vec<AuditEvent>> {
        let mut q: QueryBuilder<Postgres> =
            QueryBuilder::new("SELECT * FROM audit_events WHERE TRUE");
        if let Some(kind) = f.kind.as_deref().filter(|s| !s.is_empty()) {
            q.push(" AND kind = ").push_bind(kind.to_string());
        }
        if let Some(outcome) = f.outcome.as_deref().filter(|s| !s.is_empty()) {
            q.push(" AND outcome = ").push_bind(outcome.to_string());
        }
        if let Some(user) = f.user.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            // The name given, or the actor or subject account by its name.
            q.push(" AND (lower(username) = lower(")
                .push_bind(user.to_string())
                .push(") OR actor_user_id IN (SELECT id FROM users WHERE lower(username) = lower(")
                .push_bind(user.to_string())
                .push(
                    ")) OR subject_user_id IN (SELECT id FROM users WHERE lower(username) = lower(",
                )
                .push_bind(user.to_string())
                .push("))");
            if let Ok(id) = user.parse::<i64>() {
                q.push(" OR subject_user_id = ")
                    .push_bind(id)
                    .push(" OR actor_user_id = ")
                    .push_bind(id);
            }
            q.push(")");
        }
        if let Some(since) = f.since {
            q.push(" AND at >= ").push_bind(since);
        }
        if let Some(until) = f.until {
            q.push(" AND at <= ").push_bind(until);
        }
        let limit = if f.limit <= 0 { 1000 } else { f.limit };
        q.push(" ORDER BY id DESC LIMIT ").push_bind(limit);
        let rows = q.build().fetch_all(&self.pool).await.map_err(from_sqlx)?;
        rows.iter()
            .map(|r| {
                Ok(AuditEvent {
                    id: r.try_get("id")?,
                    at: r.try_get("at")?,
                    kind: r.try_get("kind")?,
                    outcome: r.try_get("outcome")?,
                    actor_user_id: r.try_get("actor_user_id")?,
                    subject_user_id: r.try_get("subject_user_id")?,
                    username: r.try_get("username")?,
                    client_addr: r.try_get("client_addr")?,
                    score: r.try_get("score")?,
                    detail: r.try_get("detail")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(from_sqlx)
    }
}
