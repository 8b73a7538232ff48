//! The 1:N gallery: the decrypted templates of one model's active users,
//! held in memory and searched for a probe. A gallery smaller than
//! `gallery.index_min_templates` is searched exhaustively (every template);
//! a larger one through short sketches of each template ([`sketch`]) whose best
//! candidates are re-scored exactly, so the decision rule (threshold,
//! margin, lockout band) sees exact scores either way.
//!
//! It is loaded once (at start by `facegate serve`, else at the first
//! search) and kept current one user at a time: [`Gallery::user_changed`]
//! re-reads that user's templates and applies them, for enrolment,
//! deletion, (de)activation, or a change another instance announces. A
//! change arriving while a load runs is applied again once the load is in
//! place, so none is lost. A full [`Gallery::invalidate`] rebuilds an
//! indexed gallery in the background while the old one keeps answering.

mod codebook;
mod fastscan;
mod search;
pub mod sketch;

use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

pub use sketch::SketchIndex;

use super::matching::rank;
use crate::config::GalleryConfig;
use crate::domain::MatchTemplate;
use crate::store::{DynStore, StoreResult};

/// How a loaded gallery is searched.
pub enum Search {
    /// Every template, compared one by one.
    Exact(Vec<MatchTemplate>),
    /// Through the sketches, candidates re-scored exactly; a change of
    /// one user holds the lock alone briefly.
    Indexed(Box<RwLock<SketchIndex>>),
}

/// The gallery of one model, ready to search.
pub struct Loaded {
    pub model_id: String,
    pub search: Search,
}

impl Loaded {
    /// The nearest users' best exact similarity to `probe`, best first
    /// (at most [`super::matching::RANKED_USERS`] of them, whichever
    /// search finds them).
    pub fn rank(&self, probe: &[f32]) -> Vec<(i64, f32)> {
        match &self.search {
            Search::Exact(templates) => rank(templates, probe),
            Search::Indexed(index) => read(index).rank(probe),
        }
    }

    /// `user_id`'s best similarity to `probe` (`None`: no templates). An
    /// exhaustive gallery looks at every template whoever is asked about,
    /// so an unknown user costs the same as a known one.
    pub fn user_best(&self, user_id: Option<i64>, probe: &[f32]) -> Option<f32> {
        match &self.search {
            Search::Exact(templates) => {
                let probe = facegate_vision::CosineProbe::new(probe);
                templates
                    .iter()
                    .filter(|t| Some(t.user_id) == user_id)
                    .map(|t| probe.similarity(&t.embedding))
                    .reduce(f32::max)
            }
            Search::Indexed(index) => read(index).user_best(user_id.unwrap_or(-1), probe),
        }
    }

    /// Templates in the gallery.
    pub fn len(&self) -> usize {
        match &self.search {
            Search::Exact(templates) => templates.len(),
            Search::Indexed(index) => read(index).len(),
        }
    }

    /// Bytes the search structure holds (the exhaustive list: estimated).
    pub fn memory_bytes(&self) -> usize {
        match &self.search {
            Search::Exact(templates) => templates
                .iter()
                .map(|t| std::mem::size_of::<MatchTemplate>() + 4 * t.embedding.capacity())
                .sum(),
            Search::Indexed(index) => read(index).memory_bytes(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the sketches are used.
    pub fn indexed(&self) -> bool {
        matches!(self.search, Search::Indexed(_))
    }
}

fn read(index: &RwLock<SketchIndex>) -> std::sync::RwLockReadGuard<'_, SketchIndex> {
    index.read().unwrap_or_else(|p| p.into_inner())
}

/// Where a load is, for a progress display.
#[derive(Debug, Clone, Copy)]
pub enum LoadProgress {
    /// Reading and opening the sealed templates.
    Reading,
    /// Inserting into the index: done of total.
    Indexing { done: usize, total: usize },
    /// Ready: templates, whether indexed, seconds taken.
    Ready {
        templates: usize,
        indexed: bool,
        seconds: f64,
    },
}

/// The one gallery of a process.
pub struct Gallery {
    config: GalleryConfig,
    current: RwLock<Option<Arc<Loaded>>>,
    /// One load at a time.
    loading: tokio::sync::Mutex<()>,
    /// Users changed while a load runs (`Some` during a load).
    pending: Mutex<Option<Vec<i64>>>,
    /// Serialises per-user changes of an exhaustive gallery.
    exact_edit: tokio::sync::Mutex<()>,
}

impl Gallery {
    pub fn new(config: GalleryConfig) -> Self {
        Gallery {
            config,
            current: RwLock::new(None),
            loading: tokio::sync::Mutex::new(()),
            pending: Mutex::new(None),
            exact_edit: tokio::sync::Mutex::new(()),
        }
    }

    fn current(&self) -> Option<Arc<Loaded>> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn install(&self, loaded: Option<Arc<Loaded>>) {
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = loaded;
    }

    /// The gallery of `model_id`, loading it when needed.
    pub async fn get(
        self: &Arc<Self>,
        store: &DynStore,
        model_id: &str,
    ) -> StoreResult<Arc<Loaded>> {
        if let Some(l) = self.current().filter(|l| l.model_id == model_id) {
            return Ok(l);
        }
        self.load(store, model_id, &|_| {}).await
    }

    /// Loads the gallery of `model_id` now (unless it is loaded), with
    /// `progress` told how it goes.
    pub async fn load(
        self: &Arc<Self>,
        store: &DynStore,
        model_id: &str,
        progress: &(dyn Fn(LoadProgress) + Sync),
    ) -> StoreResult<Arc<Loaded>> {
        let _one = self.loading.lock().await;
        if let Some(l) = self.current().filter(|l| l.model_id == model_id) {
            return Ok(l);
        }
        self.reload(store, model_id, progress).await
    }

    /// Reads every template again and installs the result; changes that
    /// arrive meanwhile are applied afterwards. The caller holds `loading`.
    async fn reload(
        self: &Arc<Self>,
        store: &DynStore,
        model_id: &str,
        progress: &(dyn Fn(LoadProgress) + Sync),
    ) -> StoreResult<Arc<Loaded>> {
        let started = Instant::now();
        *self.pending.lock().unwrap_or_else(|p| p.into_inner()) = Some(Vec::new());
        progress(LoadProgress::Reading);
        let templates = match store.active_templates(model_id).await {
            Ok(t) => t,
            Err(e) => {
                *self.pending.lock().unwrap_or_else(|p| p.into_inner()) = None;
                return Err(e);
            }
        };
        let search = self.searchable(templates, progress).await;
        let loaded = Arc::new(Loaded {
            model_id: model_id.to_string(),
            search,
        });
        self.install(Some(loaded.clone()));
        let changed = self
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        for user_id in changed.unwrap_or_default() {
            if let Err(e) = self.apply(store, user_id).await {
                self.install(None);
                return Err(e);
            }
        }
        let loaded = self.current().unwrap_or(loaded);
        release_freed_memory();
        progress(LoadProgress::Ready {
            templates: loaded.len(),
            indexed: loaded.indexed(),
            seconds: started.elapsed().as_secs_f64(),
        });
        Ok(loaded)
    }

    /// Exhaustive below the configured size, else sketches made off the
    /// async workers.
    async fn searchable(
        &self,
        templates: Vec<MatchTemplate>,
        progress: &(dyn Fn(LoadProgress) + Sync),
    ) -> Search {
        let total = templates.len();
        if total == 0 || total < self.config.index_min_templates {
            return Search::Exact(templates);
        }
        let dim = templates[0].embedding.len();
        let candidates = self.config.candidates;
        let (tx, mut rx) = tokio::sync::watch::channel(0usize);
        let build = tokio::task::spawn_blocking(move || {
            let report = |done: usize| {
                let _ = tx.send(done);
            };
            SketchIndex::build_owned(templates, dim, candidates, &report, &release_freed_memory)
        });
        let mut shown = 0;
        progress(LoadProgress::Indexing { done: 0, total });
        while rx.changed().await.is_ok() {
            let done = *rx.borrow_and_update();
            // About every tenth, not every batch.
            if done >= shown + total / 10 || done == total {
                shown = done;
                progress(LoadProgress::Indexing { done, total });
            }
        }
        match build.await {
            Ok(index) => Search::Indexed(Box::new(RwLock::new(index))),
            Err(e) => {
                tracing::error!(error = %e, "building the gallery's sketches failed");
                Search::Exact(Vec::new())
            }
        }
    }

    /// `user_id`'s templates changed (enrolled, deleted, account
    /// (de)activated or erased): applies that user's current templates.
    pub async fn user_changed(self: &Arc<Self>, store: &DynStore, user_id: i64) -> StoreResult<()> {
        if let Some(p) = self
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_mut()
        {
            p.push(user_id);
        }
        self.apply(store, user_id).await
    }

    /// Re-reads one user and puts their active templates in place.
    async fn apply(self: &Arc<Self>, store: &DynStore, user_id: i64) -> StoreResult<()> {
        let Some(loaded) = self.current() else {
            return Ok(());
        };
        let active = store
            .user_by_id(user_id)
            .await?
            .is_some_and(|u| u.is_active);
        let embeddings: Vec<Vec<f32>> = if active {
            let all = store.templates_for_user(user_id).await?;
            let model = &loaded.model_id;
            all.into_iter()
                .filter(|t| &t.model_id == model)
                .map(|t| t.embedding)
                .collect()
        } else {
            Vec::new()
        };
        match &loaded.search {
            Search::Indexed(index) => {
                let views: Vec<&[f32]> = embeddings.iter().map(|e| e.as_slice()).collect();
                let mut index = index.write().unwrap_or_else(|p| p.into_inner());
                index.replace_user(user_id, &views);
            }
            Search::Exact(_) => {
                let size = self.apply_exact(user_id, embeddings).await;
                // Grown to the size that wants the index: build it.
                if size > 0 && size >= self.config.index_min_templates {
                    self.rebuild_in_background(store);
                }
            }
        }
        Ok(())
    }

    /// A new exhaustive gallery with `user_id`'s templates replaced;
    /// returns its size.
    async fn apply_exact(&self, user_id: i64, embeddings: Vec<Vec<f32>>) -> usize {
        let _one = self.exact_edit.lock().await;
        let Some(loaded) = self.current() else {
            return 0;
        };
        let Search::Exact(templates) = &loaded.search else {
            return 0;
        };
        let mut next: Vec<MatchTemplate> = templates
            .iter()
            .filter(|t| t.user_id != user_id)
            .cloned()
            .collect();
        next.extend(
            embeddings
                .into_iter()
                .map(|embedding| MatchTemplate { user_id, embedding }),
        );
        let size = next.len();
        self.install(Some(Arc::new(Loaded {
            model_id: loaded.model_id.clone(),
            search: Search::Exact(next),
        })));
        size
    }

    /// Forgets everything: an exhaustive gallery is read again at the
    /// next search; an indexed one keeps answering while `store` is read
    /// again in the background, and is replaced when that is done.
    pub fn invalidate(self: &Arc<Self>, store: &DynStore) {
        match self.current() {
            Some(l) if l.indexed() => self.rebuild_in_background(store),
            _ => self.install(None),
        }
    }

    /// Reads `store` again in the background while the current gallery
    /// keeps answering (outside a runtime: at the next search).
    fn rebuild_in_background(self: &Arc<Self>, store: &DynStore) {
        let Some(loaded) = self.current() else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            self.install(None);
            return;
        };
        let (gallery, store) = (self.clone(), store.clone());
        runtime.spawn(async move {
            let _one = gallery.loading.lock().await;
            if let Err(e) = gallery.reload(&store, &loaded.model_id, &|_| {}).await {
                tracing::error!(error = %e, "rebuilding the gallery failed: reloading at next use");
                gallery.install(None);
            }
        });
    }

    /// The gallery in memory now (`None` before the first load).
    pub fn loaded(&self) -> Option<Arc<Loaded>> {
        self.current()
    }
}

/// Hands memory freed after a load back to the system. Reading a large
/// gallery holds every sealed row and every opened template at once (at a
/// million, about three times the index itself); once they are dropped,
/// glibc's allocator would otherwise keep that peak resident for good.
fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free heap pages to the kernel; it
    // takes no pointer and leaves every allocation in place.
    unsafe {
        libc::malloc_trim(0);
    }
}
