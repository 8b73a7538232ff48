//! What every command shares: the `--data-dir` / `--config` options and
//! the configuration they load, the master key setting, the async runtime, loading the engine
//! and the data-directory check run before anything slow.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use facegate_vision::FaceEngine;

use crate::config::Config;
use crate::store;

/// Options shared by every command.
#[derive(Debug, Clone, clap::Args)]
pub struct CommonArgs {
    /// Data directory holding the SQLite database and the key file [default: data]
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// TOML configuration file (FACEGATE_* environment variables override it)
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

impl CommonArgs {
    pub(super) fn load(&self) -> anyhow::Result<Config> {
        let mut config = Config::load(self.config.as_deref())?;
        if let Some(dir) = &self.data_dir {
            config.data_dir = dir.clone();
        }
        Ok(config)
    }
}

/// The configured master key, if any (else the key file is used).
pub(super) fn master_key(config: &Config) -> Option<&str> {
    config.master_key.as_ref().map(|k| k.0.as_str())
}

/// Loads the face engine off the async worker threads (about a second).
pub(super) async fn load_engine(config: &Config) -> anyhow::Result<Arc<FaceEngine>> {
    let engine_config = config.engine.clone();
    tokio::task::spawn_blocking(move || crate::load_engine(&engine_config)).await?
}

pub(super) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// Checks that the configured data directory exists (creating it) and can
/// be written, before any slow start-up step, when anything is kept there
/// (see [`Config::uses_data_dir`]); the error names the directory and what
/// to do. Opening the store checks it again.
pub fn check_data_dir(common: &CommonArgs) -> anyhow::Result<()> {
    prepare_data_dir(&common.load()?)
}

/// [`check_data_dir`] for a loaded configuration.
pub(super) fn prepare_data_dir(config: &Config) -> anyhow::Result<()> {
    if config.uses_data_dir() {
        store::prepare_data_dir(&config.data_dir)?;
    }
    Ok(())
}
