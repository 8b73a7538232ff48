//! [`Services`]: the one handle on the application services the web
//! layer and the commands hold (store, engine, configuration, media,
//! metrics, limits, the 1:N gallery), and the few things every service
//! uses: the audit trail and running engine calls off the executor.

use std::net::IpAddr;
use std::sync::Arc;

use facegate_vision::{FaceEngine, VisionError};

use super::error::{ServiceError, ServiceResult};
use super::gate::AccountGate;
use super::limits::RateLimiter;
use super::matching::TemplateCache;
use super::metrics::Metrics;
use crate::config::Config;
use crate::domain::NewAuditEvent;
use crate::store::DynStore;

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
    pub(super) address_limiter: RateLimiter,
    pub(super) account_limiter: RateLimiter,
    pub(super) cache: TemplateCache,
    pub(super) gate: AccountGate,
    /// Engine calls running at once: as many as the engine has sessions.
    /// Face work is CPU-bound, so more in flight would only hold more
    /// decoded images and buffers in memory while waiting for a session.
    pub(super) engine_slots: Arc<tokio::sync::Semaphore>,
}

impl Services {
    pub fn new(store: DynStore, engine: Arc<FaceEngine>, config: Arc<Config>) -> Self {
        Services {
            address_limiter: RateLimiter::per_minute(config.rate_limit_per_address),
            account_limiter: RateLimiter::per_minute(config.rate_limit_per_account),
            cache: TemplateCache::default(),
            metrics: Arc::new(Metrics::default()),
            gate: AccountGate::default(),
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
    pub(super) async fn blocking<T: Send + 'static>(
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
