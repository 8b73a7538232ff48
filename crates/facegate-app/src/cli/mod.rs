//! Command-line entry points for the `facegate` binary: `serve`,
//! `migrate`, `createsuperuser` and `enroll` (and, in `cli/data.rs`,
//! `rotate-key` and `export-user`). The binary parses these argument structs and calls
//! the functions; ONNX Runtime is initialised by it. Every command that
//! writes checks the data directory first ([`check_data_dir`]).

use std::io::{BufRead, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;

use crate::config::Config;
use crate::store;

/// Options shared by every command.
#[derive(Debug, Clone, clap::Args)]
pub struct CommonArgs {
    /// Data directory holding the SQLite database and media/ [default: data]
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// TOML configuration file (FACEGATE_* environment variables override it)
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

impl CommonArgs {
    fn load(&self) -> anyhow::Result<Config> {
        let mut config = Config::load(self.config.as_deref())?;
        if let Some(dir) = &self.data_dir {
            config.data_dir = dir.clone();
        }
        Ok(config)
    }
}

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

/// `facegate createsuperuser`: create a staff superuser account.
#[derive(Debug, Clone, clap::Args)]
pub struct CreateSuperuserArgs {
    /// Read FACEGATE_SUPERUSER_USERNAME, _EMAIL and _PASSWORD instead of prompting
    #[arg(long)]
    pub no_input: bool,
    /// Username (prompted for when missing)
    #[arg(long)]
    pub username: Option<String>,
    /// E-mail address (prompted for when missing)
    #[arg(long)]
    pub email: Option<String>,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// `facegate enroll`: enrol face photos for an existing user.
#[derive(Debug, Clone, clap::Args)]
pub struct EnrollArgs {
    /// The user whose face the photos show
    #[arg(long)]
    pub username: String,
    /// Photos with exactly one face each
    #[arg(required = true)]
    pub images: Vec<PathBuf>,
    /// Print one JSON object per photo
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub common: CommonArgs,
}

mod data;

pub use data::{export_user, rotate_key, ExportUserArgs, RotateKeyArgs};

/// The configured master key, if any (else the key file is used).
fn master_key(config: &Config) -> Option<&str> {
    config.master_key.as_ref().map(|k| k.0.as_str())
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// Checks that the configured data directory exists (creating it) and can
/// be written, before any slow start-up step; the error names the
/// directory and what to do. Every command that opens the store checks it
/// again.
pub fn check_data_dir(common: &CommonArgs) -> anyhow::Result<()> {
    let config = common.load()?;
    store::prepare_data_dir(&config.data_dir)?;
    Ok(())
}

/// Runs the server until ctrl-c or SIGTERM. ONNX Runtime must already be
/// initialised by the caller.
pub fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let mut config = args.common.load()?;
    store::prepare_data_dir(&config.data_dir)?;
    if let Some(addr) = args.addr {
        config.addr = addr;
    }
    config.resolve_models_dir();
    runtime()?.block_on(async move {
        let engine_config = config.engine.clone();
        let engine = tokio::task::spawn_blocking(move || crate::load_engine(&engine_config)).await??;
        tracing::info!(
            detector = engine.detector_backend(),
            embedder = engine.embedder_backend(),
            "face engine loaded"
        );
        let addr = config.addr;
        let header_timeout = config.header_timeout_seconds;
        let (router, state) = crate::build_app(config, engine).await?;
        let swept = state.services.sweep_orphan_photos().await?;
        if swept > 0 {
            tracing::warn!(files = swept, "removed photo files without a template (interrupted writes)");
        }
        // Housekeeping at start, then hourly: expired sessions, and login
        // attempts and probes past their retention.
        let services = state.services.clone();
        let cleanup = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(3600));
            loop {
                tick.tick().await;
                if let Err(e) = services.store.delete_expired_sessions().await {
                    tracing::warn!(error = %e, "could not delete expired sessions");
                }
                let now = time::OffsetDateTime::now_utc();
                if let Err(e) = services.sweep_retention(now).await {
                    tracing::warn!(error = %e, "retention sweep failed");
                }
            }
        });
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding {addr}"))?;
        tracing::info!(%addr, mode = state.services.config.face_login.as_str(), "facegate listening");
        println!("facegate listening on http://{}", listener.local_addr()?);
        let limits = crate::web::server::ServerLimits {
            header_timeout: Duration::from_secs(header_timeout.max(1)),
            ..Default::default()
        };
        crate::web::server::serve(listener, router, crate::shutdown_signal(), limits).await?;
        cleanup.abort();
        Ok(())
    })
}

/// Applies pending migrations and exits.
pub fn migrate(args: MigrateArgs) -> anyhow::Result<()> {
    let config = args.common.load()?;
    runtime()?.block_on(async move {
        let store = store::open_sqlite(&config.data_dir, master_key(&config)).await?;
        store.migrate().await?;
        println!("migrations applied in {}", config.data_dir.display());
        Ok(())
    })
}

fn prompt(label: &str) -> anyhow::Result<String> {
    print!("{label}: ");
    std::io::stdout().flush()?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(line.trim().to_string())
}

fn env_required(name: &str) -> anyhow::Result<String> {
    std::env::var(name).with_context(|| format!("--no-input needs {name}"))
}

/// Creates a superuser, from the environment (`--no-input`) or by prompting.
pub fn create_superuser(args: CreateSuperuserArgs) -> anyhow::Result<()> {
    let config = args.common.load()?;
    // Before prompting: a data directory that cannot be written fails now.
    store::prepare_data_dir(&config.data_dir)?;
    let (username, email, password) = if args.no_input {
        (
            args.username
                .map_or_else(|| env_required("FACEGATE_SUPERUSER_USERNAME"), Ok)?,
            args.email
                .map_or_else(|| env_required("FACEGATE_SUPERUSER_EMAIL"), Ok)?,
            env_required("FACEGATE_SUPERUSER_PASSWORD")?,
        )
    } else {
        let username = args.username.map_or_else(|| prompt("Username"), Ok)?;
        let email = args.email.map_or_else(|| prompt("E-mail address"), Ok)?;
        let password = rpassword::prompt_password("Password: ")?;
        let again = rpassword::prompt_password("Password (again): ")?;
        anyhow::ensure!(password == again, "the passwords differ");
        (username, email, password)
    };
    runtime()?.block_on(async move {
        let store = store::open_sqlite(&config.data_dir, master_key(&config)).await?;
        store.migrate().await?;
        let user = crate::service::create_superuser(store, &username, &email, &password).await?;
        println!("superuser {} created (id {})", user.username, user.id);
        Ok(())
    })
}

/// Enrols photos for a user through the same service as the web pages, so
/// the same quality checks apply. Fails if any photo is refused.
pub fn enroll(args: EnrollArgs) -> anyhow::Result<()> {
    let mut config = args.common.load()?;
    store::prepare_data_dir(&config.data_dir)?;
    config.resolve_models_dir();
    runtime()?.block_on(async move {
        let engine_config = config.engine.clone();
        let engine =
            tokio::task::spawn_blocking(move || crate::load_engine(&engine_config)).await??;
        let store = store::open_sqlite(&config.data_dir, master_key(&config)).await?;
        store.migrate().await?;
        let user = store
            .user_by_username(&args.username)
            .await?
            .with_context(|| format!("no user named {}", args.username))?;
        let services = crate::service::Services::new(store, engine, std::sync::Arc::new(config));
        let mut refused = 0;
        for path in &args.images {
            let bytes =
                std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            let outcome = services.enrol(&user, bytes).await;
            match (&outcome, args.json) {
                (Ok(t), true) => println!(
                    "{}",
                    serde_json::json!({"file": path, "template_id": t.id, "quality": t.quality})
                ),
                (Ok(t), false) => println!(
                    "{}: enrolled as template {} (quality {:.2})",
                    path.display(),
                    t.id,
                    t.quality
                ),
                (Err(e), true) => println!(
                    "{}",
                    serde_json::json!({"file": path, "error": e.to_string()})
                ),
                (Err(e), false) => println!("{}: refused: {e}", path.display()),
            }
            refused += usize::from(outcome.is_err());
        }
        anyhow::ensure!(refused == 0, "{refused} photo(s) refused");
        Ok(())
    })
}
