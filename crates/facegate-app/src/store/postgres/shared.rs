//! What the instances on one PostgreSQL database share beyond the
//! records: challenges taken with one `DELETE … RETURNING`, rate limits
//! counted by the `facegate_rate_hit` function (one round trip, serialised
//! per key), periodic jobs claimed with one upsert, exclusive locks as
//! session-level advisory locks, and the change feed: the triggers of
//! `migrations/postgres` announce changes on the channel
//! `facegate_changes`, which one listening connection per process relays.

use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::PgListener;
use sqlx::PgPool;
use time::OffsetDateTime;
use tokio::sync::broadcast;

use super::PostgresBackend;
use crate::store::error::StoreResult;
use crate::store::fault::from_sqlx;
use crate::store::shared::{
    Challenges, Change, Coordination, ExclusiveLock, RateHit, RateLimits, StoredChallenge,
};

/// The channel the triggers notify.
const CHANNEL: &str = "facegate_changes";

#[async_trait]
impl Challenges for PostgresBackend {
    async fn put_challenge(&self, c: &StoredChallenge) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO liveness_challenges (id, payload, expires_at) VALUES ($1, $2, $3)",
        )
        .bind(&c.id)
        .bind(&c.payload)
        .bind(c.expires_at)
        .execute(&self.pool)
        .await
        .map_err(from_sqlx)?;
        Ok(())
    }

    async fn take_challenge(&self, id: &str) -> StoreResult<Option<StoredChallenge>> {
        let row: Option<(String, String, OffsetDateTime)> = sqlx::query_as(
            "DELETE FROM liveness_challenges WHERE id = $1 RETURNING id, payload, expires_at",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(from_sqlx)?;
        Ok(row.map(|(id, payload, expires_at)| StoredChallenge {
            id,
            payload,
            expires_at,
        }))
    }

    async fn delete_expired_challenges(&self, now: OffsetDateTime) -> StoreResult<u64> {
        let done = sqlx::query("DELETE FROM liveness_challenges WHERE expires_at < $1")
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(from_sqlx)?;
        Ok(done.rows_affected())
    }
}

#[async_trait]
impl RateLimits for PostgresBackend {
    async fn rate_hit(&self, key: &str, limit: u32, window: Duration) -> StoreResult<RateHit> {
        if limit == 0 {
            return Ok(RateHit::Allowed);
        }
        let n: i64 = sqlx::query_scalar(
            "SELECT facegate_rate_hit($1, $2, make_interval(secs => $3::double precision))",
        )
        .bind(key)
        .bind(i32::try_from(limit).unwrap_or(i32::MAX))
        .bind(window.as_secs_f64())
        .fetch_one(&self.pool)
        .await
        .map_err(from_sqlx)?;
        Ok(match n {
            -1 => RateHit::Allowed,
            0 => RateHit::Refused { report: None },
            n => RateHit::Refused {
                report: Some(n.unsigned_abs()),
            },
        })
    }

    async fn rate_full(&self, key: &str, limit: u32, window: Duration) -> StoreResult<bool> {
        if limit == 0 {
            return Ok(false);
        }
        let n: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM rate_hits WHERE key = $1 \
             AND at > clock_timestamp() - make_interval(secs => $2::double precision)",
        )
        .bind(key)
        .bind(window.as_secs_f64())
        .fetch_one(&self.pool)
        .await
        .map_err(from_sqlx)?;
        Ok(n >= i64::from(limit))
    }

    async fn delete_rate_limits_before(&self, before: OffsetDateTime) -> StoreResult<()> {
        for sql in [
            "DELETE FROM rate_hits WHERE at < $1",
            "DELETE FROM rate_refusals WHERE last_report < $1",
        ] {
            sqlx::query(sql)
                .bind(before)
                .execute(&self.pool)
                .await
                .map_err(from_sqlx)?;
        }
        Ok(())
    }
}

#[async_trait]
impl Coordination for PostgresBackend {
    async fn claim_periodic(&self, job: &str, every: Duration) -> StoreResult<bool> {
        let claimed: Option<String> = sqlx::query_scalar(
            "INSERT INTO periodic_runs AS p (job, last_run) VALUES ($1, now()) \
             ON CONFLICT (job) DO UPDATE SET last_run = now() \
             WHERE p.last_run <= now() - make_interval(secs => $2::double precision) \
             RETURNING job",
        )
        .bind(job)
        .bind(every.as_secs_f64())
        .fetch_optional(&self.pool)
        .await
        .map_err(from_sqlx)?;
        Ok(claimed.is_some())
    }

    async fn try_exclusive(&self, name: &str) -> StoreResult<Option<ExclusiveLock>> {
        let mut conn = self.pool.acquire().await.map_err(from_sqlx)?;
        let got: bool = sqlx::query_scalar(
            "SELECT pg_try_advisory_lock(hashtextextended('facegate:' || $1, 0))",
        )
        .bind(name)
        .fetch_one(&mut *conn)
        .await
        .map_err(from_sqlx)?;
        if !got {
            return Ok(None);
        }
        // The connection holds the session-level lock: closed, not returned
        // to the pool, when the lock is dropped, which releases it.
        conn.close_on_drop();
        Ok(Some(ExclusiveLock::new(conn)))
    }

    fn changes(&self) -> Option<broadcast::Receiver<Change>> {
        let sender = self.changes.get_or_init(|| {
            let (tx, _) = broadcast::channel(1024);
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(relay(self.pool.clone(), tx.clone()));
            }
            tx
        });
        Some(sender.subscribe())
    }
}

/// What a notification's payload says changed.
fn change_of(payload: &str) -> Change {
    payload.parse().map_or(Change::Everything, Change::User)
}

/// Relays the notifications of [`CHANNEL`] to `tx` for as long as the
/// process runs. Whenever the listening connection was lost (notifications
/// may have been missed meanwhile) it reconnects and relays
/// [`Change::Everything`].
async fn relay(pool: PgPool, tx: broadcast::Sender<Change>) {
    let mut listener: Option<PgListener> = None;
    loop {
        let l = match listener.as_mut() {
            Some(l) => l,
            None => match listen(&pool).await {
                Ok(l) => {
                    let _ = tx.send(Change::Everything);
                    listener.insert(l)
                }
                Err(e) => {
                    tracing::warn!(error = %e, "change feed: cannot listen, retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            },
        };
        match l.try_recv().await {
            Ok(Some(n)) => {
                let _ = tx.send(change_of(n.payload()));
            }
            Ok(None) => {
                // The connection was lost: listen again, then relay
                // `Everything` for what may have been missed.
                tracing::warn!("change feed: connection lost, reconnecting");
                listener = None;
            }
            Err(e) => {
                tracing::warn!(error = %e, "change feed failed, reconnecting");
                listener = None;
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

async fn listen(pool: &PgPool) -> Result<PgListener, sqlx::Error> {
    let mut l = PgListener::connect_with(pool).await?;
    l.listen(CHANNEL).await?;
    Ok(l)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads() {
        assert_eq!(change_of("42"), Change::User(42));
        assert_eq!(change_of("*"), Change::Everything);
    }
}
