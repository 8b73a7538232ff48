//! The audit trail in SQLite: `audit_events` is append-only (triggers
//! refuse UPDATE and DELETE); reads filter by kind, outcome, user and time.

use async_trait::async_trait;
use sqlx::{QueryBuilder, Row, Sqlite};

use super::{from_ts, now, ts, SqliteBackend};
use crate::domain::{AuditEvent, AuditFilter, NewAuditEvent};
use crate::store::error::StoreResult;
use crate::store::fault::from_sqlx;
use crate::store::records::Audit;

#[async_trait]
impl Audit for SqliteBackend {
    async fn append_audit(&self, e: &NewAuditEvent) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO audit_events (at, kind, outcome, actor_user_id, subject_user_id, username, client_addr, score, detail) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(now())
        .bind(e.kind.as_str())
        .bind(&e.outcome)
        .bind(e.actor_user_id)
        .bind(e.subject_user_id)
        .bind(&e.username)
        .bind(&e.client_addr)
        .bind(e.score.map(f64::from))
        .bind(&e.detail)
        .execute(&self.pool)
        .await
        .map_err(from_sqlx)?;
        Ok(())
    }

    async fn audit_events(&self, f: &AuditFilter) -> StoreResult<Vec<AuditEvent>> {
        let mut q: QueryBuilder<Sqlite> = QueryBuilder::new("SELECT * FROM audit_events WHERE 1=1");
        if let Some(kind) = f.kind.as_deref().filter(|s| !s.is_empty()) {
            q.push(" AND kind = ").push_bind(kind.to_string());
        }
        if let Some(outcome) = f.outcome.as_deref().filter(|s| !s.is_empty()) {
            q.push(" AND outcome = ").push_bind(outcome.to_string());
        }
        if let Some(user) = f.user.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            // The name given, or the actor or subject account by its name.
            q.push(" AND (username = ")
                .push_bind(user.to_string())
                .push(" COLLATE NOCASE OR actor_user_id IN (SELECT id FROM users WHERE username = ")
                .push_bind(user.to_string())
                .push(" COLLATE NOCASE) OR subject_user_id IN (SELECT id FROM users WHERE username = ")
                .push_bind(user.to_string())
                .push(" COLLATE NOCASE)");
            if let Ok(id) = user.parse::<i64>() {
                q.push(" OR subject_user_id = ")
                    .push_bind(id)
                    .push(" OR actor_user_id = ")
                    .push_bind(id);
            }
            q.push(")");
        }
        if let Some(since) = f.since {
            q.push(" AND at >= ").push_bind(ts(since));
        }
        if let Some(until) = f.until {
            q.push(" AND at <= ").push_bind(ts(until));
        }
        let limit = if f.limit <= 0 { 1000 } else { f.limit };
        q.push(" ORDER BY id DESC LIMIT ").push_bind(limit);
        let rows = q.build().fetch_all(&self.pool).await.map_err(from_sqlx)?;
        rows.iter()
            .map(|r| {
                Ok(AuditEvent {
                    id: r.try_get("id")?,
                    at: from_ts(r.try_get("at")?),
                    kind: r.try_get("kind")?,
                    outcome: r.try_get("outcome")?,
                    actor_user_id: r.try_get("actor_user_id")?,
                    subject_user_id: r.try_get("subject_user_id")?,
                    username: r.try_get("username")?,
                    client_addr: r.try_get("client_addr")?,
                    score: r.try_get::<Option<f64>, _>("score")?.map(|s| s as f32),
                    detail: r.try_get("detail")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(from_sqlx)
    }
}
