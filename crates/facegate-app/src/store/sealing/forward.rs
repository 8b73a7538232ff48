//! The concerns without biometric data pass through the sealing layer to
//! the backend unchanged.

use std::time::Duration;

use async_trait::async_trait;
use time::OffsetDateTime;
use tokio::sync::broadcast;

use super::layer::SealingStore;
use crate::domain::{
    AuditEvent, AuditFilter, Email, LoginAttempt, NewAuditEvent, NewUser, User, UserSummary,
};
use crate::store::error::StoreResult;
use crate::store::records::{Attempts, Audit, FaceFailure, Health, Lockouts, Sessions, Users};
use crate::store::sessions::SessionBackend;
use crate::store::shared::{
    Challenges, Change, Coordination, ExclusiveLock, RateHit, RateLimits, StoredChallenge,
};

#[async_trait]
impl Users for SealingStore {
    async fn create_user(&self, new: &NewUser) -> StoreResult<User> {
        self.backend.create_user(new).await
    }
    async fn create_users(&self, new: &[NewUser]) -> StoreResult<Vec<i64>> {
        self.backend.create_users(new).await
    }
    async fn user_by_id(&self, id: i64) -> StoreResult<Option<User>> {
        self.backend.user_by_id(id).await
    }
    async fn user_by_username(&self, username: &str) -> StoreResult<Option<User>> {
        self.backend.user_by_username(username).await
    }
    async fn user_by_email(&self, email: &str) -> StoreResult<Option<User>> {
        self.backend.user_by_email(email).await
    }
    async fn list_users(&self) -> StoreResult<Vec<UserSummary>> {
        self.backend.list_users().await
    }
    async fn count_users(&self) -> StoreResult<i64> {
        self.backend.count_users().await
    }
    async fn set_active(&self, id: i64, active: bool) -> StoreResult<()> {
        self.backend.set_active(id, active).await
    }
    async fn set_password_hash(&self, id: i64, hash: &str) -> StoreResult<()> {
        self.backend.set_password_hash(id, hash).await
    }
    async fn set_email(&self, id: i64, email: &Email) -> StoreResult<()> {
        self.backend.set_email(id, email).await
    }
    async fn end_sessions(&self, id: i64) -> StoreResult<()> {
        self.backend.end_sessions(id).await
    }
    async fn set_face_added(&self, id: i64, at: Option<OffsetDateTime>) -> StoreResult<()> {
        self.backend.set_face_added(id, at).await
    }
    async fn delete_user(&self, id: i64) -> StoreResult<usize> {
        self.backend.delete_user(id).await
    }
}

#[async_trait]
impl Lockouts for SealingStore {
    async fn record_face_failure(
        &self,
        id: i64,
        threshold: u32,
        lock_until: OffsetDateTime,
        now: OffsetDateTime,
    ) -> StoreResult<FaceFailure> {
        self.backend
            .record_face_failure(id, threshold, lock_until, now)
            .await
    }
    async fn reset_face_failures(&self, id: i64, now: OffsetDateTime) -> StoreResult<bool> {
        self.backend.reset_face_failures(id, now).await
    }
}

#[async_trait]
impl Attempts for SealingStore {
    async fn recent_attempts(&self, limit: i64) -> StoreResult<Vec<LoginAttempt>> {
        self.backend.recent_attempts(limit).await
    }
    async fn attempts_for_user(&self, user_id: i64) -> StoreResult<Vec<LoginAttempt>> {
        self.backend.attempts_for_user(user_id).await
    }
    async fn attempt(&self, id: i64) -> StoreResult<Option<LoginAttempt>> {
        self.backend.attempt(id).await
    }
    async fn delete_attempts_before(&self, cutoff: OffsetDateTime) -> StoreResult<(u64, u64)> {
        self.backend.delete_attempts_before(cutoff).await
    }
    async fn clear_probes_before(&self, cutoff: OffsetDateTime) -> StoreResult<u64> {
        self.backend.clear_probes_before(cutoff).await
    }
    async fn delete_probes_for_user(&self, user_id: i64) -> StoreResult<u64> {
        self.backend.delete_probes_for_user(user_id).await
    }
}

#[async_trait]
impl Audit for SealingStore {
    async fn append_audit(&self, event: &NewAuditEvent) -> StoreResult<()> {
        self.backend.append_audit(event).await
    }
    async fn audit_events(&self, filter: &AuditFilter) -> StoreResult<Vec<AuditEvent>> {
        self.backend.audit_events(filter).await
    }
}

#[async_trait]
impl Sessions for SealingStore {
    fn session_store(&self) -> SessionBackend {
        self.backend.session_store()
    }
    async fn delete_expired_sessions(&self) -> StoreResult<()> {
        self.backend.delete_expired_sessions().await
    }
}

#[async_trait]
impl Health for SealingStore {
    async fn ping(&self) -> StoreResult<()> {
        self.backend.ping().await
    }
    fn describe(&self) -> String {
        self.backend.describe()
    }
}

#[async_trait]
impl Challenges for SealingStore {
    async fn put_challenge(&self, challenge: &StoredChallenge) -> StoreResult<()> {
        self.backend.put_challenge(challenge).await
    }
    async fn take_challenge(&self, id: &str) -> StoreResult<Option<StoredChallenge>> {
        self.backend.take_challenge(id).await
    }
    async fn delete_expired_challenges(&self, now: OffsetDateTime) -> StoreResult<u64> {
        self.backend.delete_expired_challenges(now).await
    }
}

#[async_trait]
impl RateLimits for SealingStore {
    async fn rate_hit(&self, key: &str, limit: u32, window: Duration) -> StoreResult<RateHit> {
        self.backend.rate_hit(key, limit, window).await
    }
    async fn rate_full(&self, key: &str, limit: u32, window: Duration) -> StoreResult<bool> {
        self.backend.rate_full(key, limit, window).await
    }
    async fn delete_rate_limits_before(&self, before: OffsetDateTime) -> StoreResult<()> {
        self.backend.delete_rate_limits_before(before).await
    }
}

#[async_trait]
impl Coordination for SealingStore {
    async fn claim_periodic(&self, job: &str, every: Duration) -> StoreResult<bool> {
        self.backend.claim_periodic(job, every).await
    }
    async fn try_exclusive(&self, name: &str) -> StoreResult<Option<ExclusiveLock>> {
        self.backend.try_exclusive(name).await
    }
    fn changes(&self) -> Option<broadcast::Receiver<Change>> {
        self.backend.changes()
    }
}
