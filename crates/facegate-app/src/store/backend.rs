//! What a storage backend implements: the plain concerns of
//! [`super::records`] as they are, and the biometric records as opaque
//! sealed blobs with the id of the key that sealed them. A backend knows
//! nothing of crypto: the sealing layer ([`super::sealing`]) hands it
//! [`SealedBlob`]s to write and gets [`StoredBlob`]s back to open.
//!
//! Where a blob is bound to its record's id, the backend calls a sealing
//! function with the id once it is known, inside the transaction that
//! writes the record, so a record is never stored half-sealed.

use async_trait::async_trait;
use time::OffsetDateTime;

pub use super::blob::{Reseal, SealedBlob, StoredBlob};
use super::error::StoreResult;
use super::oidc::{OidcRecords, SigningKeyRecords};
use super::records::{Attempts, Audit, Health, Lockouts, Sessions, Users};
use super::shared::{Challenges, Coordination, RateLimits};
use crate::domain::NewLoginAttempt;

/// The time a record is written, to the second (what both backends keep).
pub fn stamp_now() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    now.replace_nanosecond(0).unwrap_or(now)
}

/// The plain columns of a template to insert.
#[derive(Debug, Clone)]
pub struct NewTemplateRow {
    pub user_id: i64,
    pub model_id: String,
    pub quality: f32,
    pub created_at: OffsetDateTime,
}

/// A template's sealed embedding and, when it has one, sealed photo.
#[derive(Debug, Clone)]
pub struct TemplateSeals {
    pub embedding: SealedBlob,
    pub photo: Option<SealedBlob>,
}

/// Seals the `index`-th new template once its `id` is known.
pub type SealTemplate<'a> = &'a (dyn Fn(usize, i64) -> TemplateSeals + Send + Sync);

/// Seals a new login attempt's probe once the attempt's id is known.
pub type SealProbe<'a> = &'a (dyn Fn(i64) -> SealedBlob + Send + Sync);

/// A template as stored.
#[derive(Debug, Clone)]
pub struct TemplateRow {
    pub id: i64,
    pub user_id: i64,
    pub model_id: String,
    pub quality: f32,
    pub created_at: OffsetDateTime,
    pub embedding: StoredBlob,
}

/// A template's stored parts, as a key rotation sees them.
#[derive(Debug, Clone)]
pub struct StoredTemplate {
    pub id: i64,
    pub user_id: i64,
    pub embedding: StoredBlob,
    pub photo: Option<StoredBlob>,
}

/// What 1:N matching reads of a template.
#[derive(Debug, Clone)]
pub struct MatchRow {
    pub id: i64,
    pub user_id: i64,
    pub embedding: StoredBlob,
}

/// A template's photo with what binds it.
#[derive(Debug, Clone)]
pub struct PhotoRow {
    pub template_id: i64,
    pub user_id: i64,
    pub photo: StoredBlob,
}

/// Face templates and their photos, sealed.
#[async_trait]
pub trait TemplateRecords: Send + Sync {
    /// Inserts templates (and their photos) in one transaction; returns
    /// their ids in order.
    async fn insert_templates(
        &self,
        rows: &[NewTemplateRow],
        seal: SealTemplate<'_>,
    ) -> StoreResult<Vec<i64>>;
    async fn template_row(&self, id: i64) -> StoreResult<Option<TemplateRow>>;
    /// A user's templates, oldest first.
    async fn template_rows_for_user(&self, user_id: i64) -> StoreResult<Vec<TemplateRow>>;
    /// Templates of `model_id` belonging to active users, one page: the
    /// first `limit` with an id above `after_id`, by id.
    async fn match_rows(
        &self,
        model_id: &str,
        after_id: i64,
        limit: i64,
    ) -> StoreResult<Vec<MatchRow>>;
    async fn photo_row(&self, template_id: i64) -> StoreResult<Option<PhotoRow>>;
    /// Deletes a template and its photo; false when there was none.
    async fn delete_template_row(&self, id: i64) -> StoreResult<bool>;
    /// Deletes a user's templates and photos; returns how many templates.
    async fn delete_template_rows_for_user(&self, user_id: i64) -> StoreResult<usize>;
    /// Templates whose embedding or photo is not recorded as sealed with
    /// `key_id` (including any with no key id at all).
    async fn template_ids_not_on_key(&self, key_id: &str) -> StoreResult<Vec<i64>>;
    /// Reads template `id` and its photo and writes back what `reseal`
    /// returns, in one transaction; false when it is gone or `reseal`
    /// returned `None`.
    async fn reseal_template_row(
        &self,
        id: i64,
        reseal: Reseal<'_, StoredTemplate, TemplateSeals>,
    ) -> StoreResult<bool>;
}

/// Login attempts with the probes they keep, sealed.
#[async_trait]
pub trait ProbeRecords: Send + Sync {
    /// Records an attempt (its `probe` field is ignored: the probe, if
    /// any, arrives through `probe`, sealed once the attempt has its id).
    async fn insert_attempt(
        &self,
        attempt: &NewLoginAttempt,
        probe: Option<SealProbe<'_>>,
    ) -> StoreResult<()>;
    async fn probe_blob(&self, attempt_id: i64) -> StoreResult<Option<StoredBlob>>;
    /// Attempts whose probe is not recorded as sealed with `key_id`.
    async fn probe_ids_not_on_key(&self, key_id: &str) -> StoreResult<Vec<i64>>;
    /// Like [`TemplateRecords::reseal_template_row`] for a probe.
    async fn reseal_probe_row(
        &self,
        attempt_id: i64,
        reseal: Reseal<'_, StoredBlob, SealedBlob>,
    ) -> StoreResult<bool>;
}

/// Which keys the stored data needs, and the key check: one small blob
/// sealed with the primary key when the store is first opened, so that a
/// wrong key is caught even before any face is enrolled (and two
/// instances that made different keys cannot both write).
#[async_trait]
pub trait KeyRecords: Send + Sync {
    /// Every key id recorded on a sealed record (templates, photos,
    /// probes, the key check).
    async fn key_ids_in_use(&self) -> StoreResult<Vec<String>>;
    async fn key_check(&self) -> StoreResult<Option<StoredBlob>>;
    /// Writes the key check unless one exists; returns the one stored
    /// afterwards (ours, or another instance's that came first).
    async fn init_key_check(&self, check: &SealedBlob) -> StoreResult<StoredBlob>;
    /// Replaces the key check (key rotation).
    async fn replace_key_check(&self, check: &SealedBlob) -> StoreResult<()>;
}

/// Everything a backend implements; see the module documentation.
pub trait Backend:
    Users
    + Lockouts
    + Attempts
    + Audit
    + Sessions
    + Health
    + TemplateRecords
    + ProbeRecords
    + KeyRecords
    + Challenges
    + RateLimits
    + Coordination
    + OidcRecords
    + SigningKeyRecords
    + 'static
{
}

impl<T> Backend for T where
    T: Users
        + Lockouts
        + Attempts
        + Audit
        + Sessions
        + Health
        + TemplateRecords
        + ProbeRecords
        + KeyRecords
        + Challenges
        + RateLimits
        + Coordination
        + OidcRecords
        + SigningKeyRecords
        + 'static
{
}
