//! [`Services`]: the one handle on the application services the web
//! layer and the commands hold (store, engine, configuration, media,
//! metrics, the 1:N gallery), and the few things every service
//! uses: the audit trail and running engine calls off the executor.

use std::net::IpAddr;
use std::sync::Arc;

use facegate_vision::{FaceEngine, VisionError};

use super::error::{ServiceError, ServiceResult};
use super::gallery::{Gallery, LoadProgress};
use super::metrics::Metrics;
use crate::config::Config;
use crate::domain::NewAuditEvent;
use crate::store::{Change, DynStore};
use tokio::sync::broadcast::error::RecvError;

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
    pub(super) gallery: Arc<Gallery>,
    /// Engine calls running at once: as many as the engine has sessions.
    /// Face work is CPU-bound, so more in flight would only hold more
    /// decoded images and buffers in memory while waiting for a session.
    pub(super) engine_slots: Arc<tokio::sync::Semaphore>,
}

impl Services {
    pub fn new(store: DynStore, engine: Arc<FaceEngine>, config: Arc<Config>) -> Self {
        Services {
            gallery: Arc::new(Gallery::new(config.gallery)),
            metrics: Arc::new(Metrics::default()),
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

    /// Forgets the whole gallery: read again at the next search (a large,
    /// indexed one is rebuilt in the background and keeps answering).
    pub fn invalidate_templates(&self) {
        self.gallery.invalidate(&self.store);
    }

    /// `user_id`'s templates or account changed (enrolment, deletion,
    /// activation, erasure, or a change another instance announced): the
    /// gallery applies that user's current templates. If that fails the
    /// whole gallery is read again.
    pub async fn templates_changed(&self, user_id: i64) {
        if let Err(e) = self.gallery.user_changed(&self.store, user_id).await {
            tracing::warn!(error = %e, user_id, "could not update the gallery: reloading it");
            self.invalidate_templates();
        }
    }

    /// The gallery in memory: templates and whether it is searched
    /// through the ANN index (`None` before the first load).
    pub fn gallery_state(&self) -> Option<(usize, bool)> {
        self.gallery.loaded().map(|l| (l.len(), l.indexed()))
    }

    /// Loads the 1:N gallery of the engine's model now (the server does at
    /// start), telling `progress` how it goes.
    pub async fn load_gallery(
        &self,
        progress: &(dyn Fn(LoadProgress) + Sync),
    ) -> ServiceResult<usize> {
        let model = self.engine.model_id().to_string();
        let loaded = self.gallery.load(&self.store, &model, progress).await?;
        Ok(loaded.len())
    }

    /// Follows the store's change feed, if it has one (PostgreSQL: what
    /// every instance, or a command, changes), for as long as these
    /// services live: a change another process made to the templates or
    /// to whether an account is active takes effect here as soon as it is
    /// announced. Needs a Tokio runtime.
    pub fn follow_changes(self: &Arc<Self>) {
        let Some(mut changes) = self.store.changes() else {
            return;
        };
        let services = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                let change = match changes.recv().await {
                    Ok(change) => change,
                    // Some were dropped: anything may have changed.
                    Err(RecvError::Lagged(_)) => Change::Everything,
                    Err(RecvError::Closed) => return,
                };
                let Some(services) = services.upgrade() else {
                    return;
                };
                services.on_change(change).await;
            }
        });
    }

    /// What a change announced by the store does here.
    async fn on_change(&self, change: Change) {
        tracing::debug!(?change, "store change");
        match change {
            Change::User(user_id) => self.templates_changed(user_id).await,
            Change::Everything => self.invalidate_templates(),
        }
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
