//! Extra harness for the hardening tests: a server on a given data
//! directory (so several servers can share one), with explicit connection
//! limits, plus raw looks at the database file.

use std::path::Path;

use facegate_app::web::server::{serve, ServerLimits};
use facegate_app::{build_app, AppState, Config};

pub use crate::helpers::raw_pool;
use crate::helpers::{engine_config, Agent, TestApp, ENGINE};

/// A server on `dir` (not owned: the caller keeps the directory).
pub struct DirApp {
    pub base: String,
    pub state: AppState,
}

impl DirApp {
    pub async fn spawn(dir: &Path, tweak: impl FnOnce(&mut Config)) -> anyhow::Result<Self> {
        Self::spawn_limited(dir, tweak, ServerLimits::default()).await
    }

    pub async fn spawn_limited(
        dir: &Path,
        tweak: impl FnOnce(&mut Config),
        limits: ServerLimits,
    ) -> anyhow::Result<Self> {
        let mut config = Config {
            data_dir: dir.to_path_buf(),
            engine: engine_config(),
            // Liveness has its own tests; these post single photos.
            liveness: facegate_app::Liveness::Off,
            ..Config::default()
        };
        tweak(&mut config);
        let engine = tokio::task::spawn_blocking(|| ENGINE.clone()).await?;
        let (router, state) = build_app(config, engine).await?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        tokio::spawn(serve(listener, router, std::future::pending(), limits));
        Ok(DirApp { base, state })
    }

    /// A browser-like client (same as [`TestApp::agent`]).
    pub async fn agent(&self) -> Agent {
        TestApp::agent_for(&self.base).await
    }
}

/// The database file and its WAL, concatenated.
pub fn raw_db(dir: &Path) -> Vec<u8> {
    let mut bytes = std::fs::read(dir.join("facegate.sqlite3")).unwrap();
    if let Ok(wal) = std::fs::read(dir.join("facegate.sqlite3-wal")) {
        bytes.extend(wal);
    }
    bytes
}

/// Whether `needle` occurs in `hay`.
pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

/// Every file under `dir`, recursively.
pub fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(files_under(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}
