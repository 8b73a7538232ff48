//! What instances would share, for the one process that owns an SQLite
//! database: challenges in the database (taken with one `DELETE …
//! RETURNING`), rate limits and periodic jobs in memory, exclusive locks
//! as file locks beside the database, and no change feed (nobody else
//! writes).

use std::time::{Duration, Instant};

use async_trait::async_trait;
use time::OffsetDateTime;
use tokio::sync::broadcast;

use super::{from_ts, ts, SqliteBackend};
use crate::store::error::StoreResult;
use crate::store::fault::{from_io, from_sqlx};
use crate::store::shared::{
    Challenges, Change, Coordination, ExclusiveLock, RateHit, RateLimits, StoredChallenge,
};

#[async_trait]
impl Challenges for SqliteBackend {
    async fn put_challenge(&self, c: &StoredChallenge) -> StoreResult<()> {
        sqlx::query("INSERT INTO liveness_challenges (id, payload, expires_at) VALUES (?, ?, ?)")
            .bind(&c.id)
            .bind(&c.payload)
            .bind(ts(c.expires_at))
            .execute(&self.pool)
            .await
            .map_err(from_sqlx)?;
        Ok(())
    }

    async fn take_challenge(&self, id: &str) -> StoreResult<Option<StoredChallenge>> {
        let rows: Vec<(String, String, i64)> = sqlx::query_as(
            "DELETE FROM liveness_challenges WHERE id = ? RETURNING id, payload, expires_at",
        )
        .bind(id)
        .fetch_all(&self.pool) // to the end: see `returning_all`
        .await
        .map_err(from_sqlx)?;
        Ok(rows
            .into_iter()
            .next()
            .map(|(id, payload, at)| StoredChallenge {
                id,
                payload,
                expires_at: from_ts(at),
            }))
    }

    async fn delete_expired_challenges(&self, now: OffsetDateTime) -> StoreResult<u64> {
        let done = sqlx::query("DELETE FROM liveness_challenges WHERE expires_at < ?")
            .bind(ts(now))
            .execute(&self.pool)
            .await
            .map_err(from_sqlx)?;
        Ok(done.rows_affected())
    }
}

#[async_trait]
impl RateLimits for SqliteBackend {
    async fn rate_hit(&self, key: &str, limit: u32, window: Duration) -> StoreResult<RateHit> {
        Ok(self.local.limits.hit(key, limit, window))
    }

    async fn rate_full(&self, key: &str, limit: u32, window: Duration) -> StoreResult<bool> {
        Ok(self.local.limits.full(key, limit, window))
    }

    async fn delete_rate_limits_before(&self, before: OffsetDateTime) -> StoreResult<()> {
        let age = OffsetDateTime::now_utc() - before;
        let age = Duration::try_from(age).unwrap_or(Duration::ZERO);
        self.local.limits.forget_older_than(age);
        Ok(())
    }
}

#[async_trait]
impl Coordination for SqliteBackend {
    async fn claim_periodic(&self, job: &str, every: Duration) -> StoreResult<bool> {
        let now = Instant::now();
        let mut runs = self
            .local
            .periodic
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        match runs.get(job) {
            Some(last) if now.duration_since(*last) < every => Ok(false),
            _ => {
                runs.insert(job.to_string(), now);
                Ok(true)
            }
        }
    }

    async fn try_exclusive(&self, name: &str) -> StoreResult<Option<ExclusiveLock>> {
        let mut path = self.path.as_os_str().to_owned();
        path.push(format!(".{name}.lock"));
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| from_io("a lock file", &e))?;
        match file.try_lock() {
            Ok(()) => Ok(Some(ExclusiveLock::new(file))),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(e)) => Err(from_io("a lock file", &e)),
        }
    }

    fn changes(&self) -> Option<broadcast::Receiver<Change>> {
        None
    }
}
