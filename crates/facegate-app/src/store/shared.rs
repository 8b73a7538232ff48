//! The state that several instances on one database must share beyond
//! the records themselves: liveness challenges taken once
//! ([`Challenges`]), rate-limit counters ([`RateLimits`]), and the
//! coordination of instances ([`Coordination`]: a periodic job run once
//! per period, an exclusive lock, the change feed that keeps every
//! instance's template cache current).
//!
//! The SQLite backend is owned by one process (its start lock), so its
//! counters, lock and change feed may live in that process; the PostgreSQL
//! backend keeps them in the database and announces changes with
//! `LISTEN/NOTIFY`.

use std::time::Duration;

use async_trait::async_trait;
use time::OffsetDateTime;
use tokio::sync::broadcast;

use super::error::StoreResult;

/// A liveness challenge as stored: opaque to the store but for its id and
/// expiry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredChallenge {
    pub id: String,
    /// What the service needs to judge the answer (JSON).
    pub payload: String,
    pub expires_at: OffsetDateTime,
}

/// Liveness challenges, each answered at most once.
#[async_trait]
pub trait Challenges: Send + Sync {
    async fn put_challenge(&self, challenge: &StoredChallenge) -> StoreResult<()>;
    /// Takes challenge `id` out of the store, expired or not: of several
    /// concurrent takes (on any instance) exactly one gets it.
    async fn take_challenge(&self, id: &str) -> StoreResult<Option<StoredChallenge>>;
    /// Deletes the challenges that expired before `now`; returns how many.
    async fn delete_expired_challenges(&self, now: OffsetDateTime) -> StoreResult<u64>;
}

/// What a rate limit said of one hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateHit {
    Allowed,
    /// Over the limit. `report` is `Some(n)` for the one refusal per window
    /// that should be recorded: it stands for `n` refusals (itself and the
    /// unrecorded ones before it).
    Refused {
        report: Option<u64>,
    },
}

impl RateHit {
    pub fn allowed(self) -> bool {
        self == RateHit::Allowed
    }
}

/// Sliding-window rate limits shared by every instance.
#[async_trait]
pub trait RateLimits: Send + Sync {
    /// Records a hit of `key` unless `limit` hits of it were recorded
    /// within the last `window` (a refused hit does not count towards the
    /// limit). A limit of 0 allows everything. One atomic step per key.
    async fn rate_hit(&self, key: &str, limit: u32, window: Duration) -> StoreResult<RateHit>;
    /// Whether `limit` hits of `key` were recorded within the last
    /// `window` (so that the next hit would be refused), recording
    /// nothing. Never with a limit of 0.
    async fn rate_full(&self, key: &str, limit: u32, window: Duration) -> StoreResult<bool>;
    /// Forgets hits and refusals older than `before`.
    async fn delete_rate_limits_before(&self, before: OffsetDateTime) -> StoreResult<()>;
}

/// A change that may alter which templates face login matches against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// A user's templates or active status changed (or the user is gone).
    User(i64),
    /// Changes may have been missed (the feed reconnected): everything may
    /// have changed.
    Everything,
}

/// An exclusive lock across instances, released when dropped.
pub struct ExclusiveLock {
    _held: Box<dyn Send + Sync>,
}

impl ExclusiveLock {
    pub fn new(held: impl Send + Sync + 'static) -> Self {
        ExclusiveLock {
            _held: Box::new(held),
        }
    }
}

impl std::fmt::Debug for ExclusiveLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ExclusiveLock")
    }
}

/// Coordination of the instances sharing a database.
#[async_trait]
pub trait Coordination: Send + Sync {
    /// Claims this period's run of `job`: true for the one caller (on any
    /// instance) that should run it now, when it last ran `every` or more
    /// ago (or never).
    async fn claim_periodic(&self, job: &str, every: Duration) -> StoreResult<bool>;
    /// Takes the lock `name` unless another holder has it (`None`).
    async fn try_exclusive(&self, name: &str) -> StoreResult<Option<ExclusiveLock>>;
    /// The changes other processes make, as they are committed; `None`
    /// when no other process can change this store (SQLite).
    fn changes(&self) -> Option<broadcast::Receiver<Change>>;
}
