//! `facegate serve` (the web application, with its hourly housekeeping)
//! and `facegate migrate`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use super::common::{load_engine, prepare_data_dir, runtime, CommonArgs};
use crate::service::{LoadProgress, Services};
use crate::store;
use crate::web::server::{self, ServerLimits};

/// `facegate serve`: run the web application.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:8000]
    #[arg(long, value_name = "ADDR")]
    pub addr: Option<SocketAddr>,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// `facegate migrate`: apply pending database migrations.
#[derive(Debug, Clone, clap::Args)]
pub struct MigrateArgs {
    #[command(flatten)]
    pub common: CommonArgs,
}

/// Runs the server until ctrl-c or SIGTERM. ONNX Runtime must already be
/// initialised by the caller.
pub fn serve(args: ServeArgs) -> anyhow::Result<()> {
    fix_mmap_threshold();
    let mut config = args.common.load()?;
    prepare_data_dir(&config)?;
    if let Some(addr) = args.addr {
        config.addr = addr;
    }
    config.resolve_models_dir();
    runtime()?.block_on(async move {
        let engine = load_engine(&config).await?;
        tracing::info!(
            detector = engine.detector_backend(),
            embedder = engine.embedder_backend(),
            "face engine loaded"
        );
        let addr = config.addr;
        let limits = ServerLimits {
            header_timeout: Duration::from_secs(config.header_timeout_seconds.max(1)),
            ..Default::default()
        };
        let (router, state) = crate::build_app(config, engine).await?;
        state.services.load_gallery(&show_gallery_load).await?;
        let cleanup = tokio::spawn(housekeeping(state.services.clone()));
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding {addr}"))?;
        tracing::info!(%addr, mode = state.services.config.face_login.as_str(), "facegate listening");
        println!("facegate listening on http://{}", listener.local_addr()?);
        server::serve(listener, router, crate::shutdown_signal(), limits).await?;
        cleanup.abort();
        Ok(())
    })
}

/// Buffers of 4 MiB and more get their own mapping, handed back to the
/// system when freed. glibc's default raises that threshold to the size of
/// the largest buffer freed so far; after Argon2's 19 MiB of working memory
/// (each password check) such buffers land in the thread's arena instead
/// and stay resident: under load RSS rose by about 20 MB at each password
/// check on another arena (the soak's re-authentications). Set before the
/// runtime starts its threads.
fn fix_mmap_threshold() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes the allocator's tuning (under the
    // allocator's own lock); it takes no pointer.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 4 << 20);
    }
}

/// Progress of loading the 1:N gallery at start (a million templates
/// take a while to open and index).
fn show_gallery_load(p: LoadProgress) {
    match p {
        LoadProgress::Reading => tracing::info!("gallery: reading the sealed templates"),
        LoadProgress::Indexing { done, total } => {
            tracing::info!("gallery: indexing templates {done}/{total}")
        }
        LoadProgress::Ready {
            templates,
            indexed,
            seconds,
        } => tracing::info!(
            templates,
            search = if indexed { "ann" } else { "exact" },
            "gallery ready in {seconds:.1} s"
        ),
    }
}

/// How often housekeeping runs, on one instance of those sharing a store.
const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(3600);

/// Housekeeping at start, then hourly, once per hour whatever the number
/// of instances (each checks every five minutes whether the hour's run is
/// still to do, and the store lets one of them claim it): expired
/// sessions, challenges and rate-limit counters, and login attempts and
/// probes past their retention.
async fn housekeeping(services: Arc<Services>) {
    let mut tick = tokio::time::interval(Duration::from_secs(300));
    loop {
        tick.tick().await;
        match services
            .store
            .claim_periodic("housekeeping", HOUSEKEEPING_EVERY)
            .await
        {
            Ok(true) => housekeep(&services).await,
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "could not claim the housekeeping run"),
        }
    }
}

async fn housekeep(services: &Services) {
    let store = &services.store;
    if let Err(e) = store.delete_expired_sessions().await {
        tracing::warn!(error = %e, "could not delete expired sessions");
    }
    let now = time::OffsetDateTime::now_utc();
    if let Err(e) = store.delete_expired_challenges(now).await {
        tracing::warn!(error = %e, "could not delete expired challenges");
    }
    // Counters live as long as the longest window: an hour, or the face
    // lockout of claimed names when it is longer.
    let keep = time::Duration::seconds(services.config.lockout_seconds.max(3600));
    let stale = now - keep;
    if let Err(e) = store.delete_rate_limits_before(stale).await {
        tracing::warn!(error = %e, "could not delete old rate-limit counters");
    }
    if let Err(e) = services.sweep_retention(now).await {
        tracing::warn!(error = %e, "retention sweep failed");
    }
}

/// Applies pending migrations (opening the store does) and exits.
pub fn migrate(args: MigrateArgs) -> anyhow::Result<()> {
    let config = args.common.load()?;
    runtime()?.block_on(async move {
        let store = store::open(&config).await?;
        println!("migrations applied to {}", store.describe());
        Ok(())
    })
}
