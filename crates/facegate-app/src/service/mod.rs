//! Application services shared by the pages and the JSON API: accounts,
//! face enrolment, face login, rate limits and lockout, the audit of
//! login attempts and their retention. Nothing here knows about HTTP or
//! about SQLite.

mod accounts;
mod attempt;
mod data;
mod enrolment;
mod face_login;
mod gate;
mod jpeg;
mod limits;
mod liveness;
mod matching;
mod metrics;
mod probe;
mod retention;

use std::net::IpAddr;
use std::sync::Arc;

use facegate_vision::{FaceEngine, VisionError};

use crate::config::Config;
use crate::domain::{NewAuditEvent, ValidationError};
use crate::store::{DynStore, StoreError};

pub use accounts::{
    create_account, create_superuser, hash_password, verify_password, PasswordLogin,
};
pub use data::{export_with, rotate_keys, ExportedFace, ExportedProbe, RotationReport, UserExport};
pub use face_login::{FaceLoginOk, FaceLoginRequest, ProbeInput};
pub use limits::{Hit, RateLimiter};
pub use liveness::{ChallengeAnswer, IssuedChallenge, MAX_FRAME_BYTES, MAX_FRAME_SIDE};
pub use matching::{decide, rank, Decision, TemplateCache};
pub use metrics::{Metrics, Stage};
pub use probe::Probe;
pub use retention::RetentionSweep;

/// A failure a caller can act on; each maps to one HTTP status and code.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("{0}")]
    Invalid(#[from] ValidationError),
    #[error("{0}")]
    Conflict(String),
    #[error("Invalid username or password.")]
    InvalidCredentials,
    #[error("You need to log in.")]
    NotAuthenticated,
    #[error("You are not allowed to do that.")]
    Forbidden,
    #[error("Not found.")]
    NotFound,
    /// Enrolment refused the image (no face, several, low quality, …).
    #[error("{0}")]
    Vision(VisionError),
    /// Face login did not let the user in; the code is `no_face`,
    /// `multiple_faces` or `unknown`.
    #[error("{message}")]
    FaceRejected {
        code: &'static str,
        message: &'static str,
    },
    #[error("Too many failed attempts. Try again later or log in with your password.")]
    Locked,
    #[error("Too many attempts. Please wait a minute and try again.")]
    RateLimited,
    /// No room left on the server's disk; nothing was saved. The detail is
    /// for the log.
    #[error("The server's storage is full, so nothing was saved. Please try again later.")]
    StorageFull(String),
    /// The server's storage refused the write; nothing was saved.
    #[error(
        "The server cannot save data right now, so nothing was saved. Please try again later."
    )]
    StorageUnavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict => ServiceError::Conflict("That already exists.".into()),
            StoreError::Full(m) => ServiceError::StorageFull(m),
            StoreError::Unavailable(m) => ServiceError::StorageUnavailable(m),
            StoreError::DataDir(e) => ServiceError::StorageUnavailable(e.to_string()),
            StoreError::Config(m) | StoreError::Backend(m) => ServiceError::Internal(m),
        }
    }
}

/// The engine's failures: a model failure is ours (internal), anything
/// else is about the image the caller sent.
impl From<VisionError> for ServiceError {
    fn from(e: VisionError) -> Self {
        match e {
            VisionError::Model(m) => ServiceError::Internal(m),
            other => ServiceError::Vision(other),
        }
    }
}

impl ServiceError {
    /// Whether the storage (full or refusing writes) caused this failure.
    pub fn is_storage(&self) -> bool {
        matches!(
            self,
            ServiceError::StorageFull(_) | ServiceError::StorageUnavailable(_)
        )
    }
}

pub type ServiceResult<T> = Result<T, ServiceError>;

/// Who is asking, as far as limits and the audit are concerned.
#[derive(Debug, Clone, Copy)]
pub struct Client {
    pub addr: IpAddr,
}

/// The application services; one per process, shared behind an `Arc`.
pub struct Services {
    pub store: DynStore,
    pub engine: Arc<FaceEngine>,
    pub config: Arc<Config>,
    pub metrics: Arc<Metrics>,
    address_limiter: RateLimiter,
    account_limiter: RateLimiter,
    cache: TemplateCache,
    gate: gate::AccountGate,
    /// Engine calls running at once: as many as the engine has sessions.
    /// Face work is CPU-bound, so more in flight would only hold more
    /// decoded images and buffers in memory while waiting for a session.
    engine_slots: Arc<tokio::sync::Semaphore>,
}

impl Services {
    pub fn new(store: DynStore, engine: Arc<FaceEngine>, config: Arc<Config>) -> Self {
        Services {
            address_limiter: RateLimiter::per_minute(config.rate_limit_per_address),
            account_limiter: RateLimiter::per_minute(config.rate_limit_per_account),
            cache: TemplateCache::default(),
            metrics: Arc::new(Metrics::default()),
            gate: gate::AccountGate::default(),
            engine_slots: Arc::new(tokio::sync::Semaphore::new(engine.config().sessions.max(1))),
            store,
            engine,
            config,
        }
    }

    /// Appends a security event to the audit trail; a failure is logged.
    pub async fn record_event(&self, event: NewAuditEvent) {
        let event = event.bounded();
        if let Err(e) = self.store.append_audit(&event).await {
            tracing::error!(error = %e, kind = event.kind.as_str(), "could not append an audit event");
        }
    }

    /// Forgets the cached templates (after enrolment, deletion, activation).
    pub fn invalidate_templates(&self) {
        self.cache.invalidate();
    }

    /// Runs a blocking engine call off the async executor.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&FaceEngine) -> Result<T, VisionError> + Send + 'static,
    ) -> ServiceResult<Result<T, VisionError>> {
        let engine = self.engine.clone();
        let slot = self
            .engine_slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| ServiceError::Internal(format!("engine slots: {e}")))?;
        let started = std::time::Instant::now();
        let out = tokio::task::spawn_blocking(move || {
            let _slot = slot;
            f(&engine)
        })
        .await
        .map_err(|e| ServiceError::Internal(format!("engine task failed: {e}")));
        self.metrics.observe_pipeline(started.elapsed());
        out
    }
}
