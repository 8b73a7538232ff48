//! `facegate createsuperuser` (from the environment or by prompting) and
//! `facegate enroll` (face photos for an existing user, through the same
//! service and quality checks as the web pages).

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;

use super::common::{load_engine, prepare_data_dir, runtime, CommonArgs};
use crate::domain::Template;
use crate::service::ServiceResult;
use crate::store;

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
pub struct EnrolArgs {
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
    prepare_data_dir(&config)?;
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
        let store = store::open(&config).await?;
        let user = crate::service::create_superuser(store, &username, &email, &password).await?;
        println!("superuser {} created (id {})", user.username, user.id);
        Ok(())
    })
}

/// Enrols photos for a user through the same service as the web pages, so
/// the same quality checks apply. Fails if any photo is refused.
pub fn enrol(args: EnrolArgs) -> anyhow::Result<()> {
    let mut config = args.common.load()?;
    prepare_data_dir(&config)?;
    config.resolve_models_dir();
    runtime()?.block_on(async move {
        let engine = load_engine(&config).await?;
        let store = store::open(&config).await?;
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
            report(path, &outcome, args.json);
            refused += usize::from(outcome.is_err());
        }
        anyhow::ensure!(refused == 0, "{refused} photo(s) refused");
        Ok(())
    })
}

/// Prints what became of one photo: a line, or a JSON object with `--json`.
fn report(path: &Path, outcome: &ServiceResult<Template>, json: bool) {
    match (outcome, json) {
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
}
