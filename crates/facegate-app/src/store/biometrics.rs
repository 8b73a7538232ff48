//! The biometric concerns of the store as the services see them, in the
//! clear: face templates and their photos ([`Templates`]), login attempts
//! with the probes they keep ([`Probes`]) and re-sealing with a new key
//! ([`KeyRotation`]). Only the sealing layer implements them, over any
//! backend; [`Store`] gathers every concern behind one handle.

use std::sync::Arc;

use async_trait::async_trait;

use super::error::StoreResult;
use super::oidc::{OidcRecords, SigningKeys};
use super::records::{Attempts, Audit, Health, Lockouts, Sessions, Users};
use super::shared::{Challenges, Coordination, RateLimits};
use crate::domain::{Jpeg, MatchTemplate, NewLoginAttempt, NewTemplate, Template};

/// Face templates and their photos. A stored record that is not sealed,
/// or does not open with its key and binding, is refused: left out of
/// every answer and audited as tampering.
#[async_trait]
pub trait Templates: Send + Sync {
    async fn add_template(&self, new: &NewTemplate) -> StoreResult<Template>;
    /// Adds many templates in one transaction; returns their ids in order.
    async fn add_templates(&self, new: &[NewTemplate]) -> StoreResult<Vec<i64>>;
    async fn template(&self, id: i64) -> StoreResult<Option<Template>>;
    /// A user's templates, oldest first.
    async fn templates_for_user(&self, user_id: i64) -> StoreResult<Vec<Template>>;
    /// Templates of `model_id` belonging to active users (for 1:N search).
    async fn active_templates(&self, model_id: &str) -> StoreResult<Vec<MatchTemplate>>;
    /// The photo a template was computed from, if it has one.
    async fn face_photo(&self, template_id: i64) -> StoreResult<Option<Jpeg>>;
    async fn delete_template(&self, id: i64) -> StoreResult<()>;
    /// Deletes all templates and photos of a user; returns how many.
    async fn delete_templates_for_user(&self, user_id: i64) -> StoreResult<usize>;
}

/// Recording login attempts, and the probe images they may keep.
#[async_trait]
pub trait Probes: Send + Sync {
    /// Records an attempt and, in the same transaction, its probe sealed.
    async fn record_attempt(&self, attempt: &NewLoginAttempt) -> StoreResult<()>;
    /// The probe kept with attempt `attempt_id`, if any (and if it opens).
    async fn probe_image(&self, attempt_id: i64) -> StoreResult<Option<Jpeg>>;
}

/// What re-sealing one record did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resealed {
    /// Sealed again with the primary key.
    Done,
    /// Already on the primary key, or gone.
    Unchanged,
    /// It does not open (tampered): left as it is, and audited.
    Refused,
}

/// Re-sealing stored records with the primary key, one record per
/// transaction, so that an interrupted rotation resumes where it stopped.
/// A record that does not open is left as it is (and audited).
#[async_trait]
pub trait KeyRotation: Send + Sync {
    /// The id of the key new records are sealed with.
    fn primary_key_id(&self) -> String;
    /// Templates whose embedding or photo is not yet on the primary key.
    async fn templates_not_on_primary(&self) -> StoreResult<Vec<i64>>;
    /// Re-seals a template and its photo.
    async fn reseal_template(&self, id: i64) -> StoreResult<Resealed>;
    /// Attempts whose kept probe is not yet on the primary key.
    async fn probes_not_on_primary(&self) -> StoreResult<Vec<i64>>;
    /// Re-seals one kept probe.
    async fn reseal_probe(&self, attempt_id: i64) -> StoreResult<Resealed>;
    /// Re-seals the key check (last, once every record is done).
    async fn reseal_key_check(&self) -> StoreResult<()>;
}

/// Everything the application persists, behind one handle.
pub trait Store:
    Users
    + Lockouts
    + Attempts
    + Audit
    + Sessions
    + Health
    + Templates
    + Probes
    + KeyRotation
    + Challenges
    + RateLimits
    + Coordination
    + OidcRecords
    + SigningKeys
    + 'static
{
}

impl<T> Store for T where
    T: Users
        + Lockouts
        + Attempts
        + Audit
        + Sessions
        + Health
        + Templates
        + Probes
        + KeyRotation
        + Challenges
        + RateLimits
        + Coordination
        + OidcRecords
        + SigningKeys
        + 'static
{
}

/// A shared store handle.
pub type DynStore = Arc<dyn Store>;
