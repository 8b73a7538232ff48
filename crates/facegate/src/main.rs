//! The `facegate` command: the web server and its administration, plus the
//! face engine's tools (detect, compare, eval, bench).

mod bench;
mod bench_index;
mod engine_cli;
mod eval;
mod liveness_cli;
mod liveness_photos;
mod liveness_video;
mod progress;
mod setup;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "facegate", version, about = "Face login for web applications")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the web server (sets up models, runtime and assets on first run).
    Serve(facegate_app::cli::ServeArgs),
    /// Apply pending database migrations.
    Migrate(facegate_app::cli::MigrateArgs),
    /// Create a staff superuser account.
    Createsuperuser(facegate_app::cli::CreateSuperuserArgs),
    /// Enrol face photos for an existing user (`enrol` works too).
    #[command(name = "enroll", alias = "enrol")]
    Enrol(facegate_app::cli::EnrolArgs),
    /// Re-encrypt all face templates and photos with a new master key (resumable).
    RotateKey(facegate_app::cli::RotateKeyArgs),
    /// Write all of a user's data (decrypted templates, photos, attempts) to a directory.
    ExportUser(facegate_app::cli::ExportUserArgs),
    /// Register, list or remove OpenID Connect clients (relying parties).
    OidcClient(facegate_app::cli::OidcClientArgs),
    /// Start signing ID tokens with a new key (the old one stays published).
    RotateSigningKey(facegate_app::cli::RotateSigningKeyArgs),
    /// Fetch the ONNX Runtime library and the web assets now.
    Setup,
    /// Detect faces: boxes, landmarks, scores and quality.
    Detect(engine_cli::DetectArgs),
    /// Compare the faces of two images.
    Compare(engine_cli::CompareArgs),
    /// Measure verification accuracy on a list of labelled pairs.
    Eval(eval::EvalArgs),
    /// Measure per-stage latency, throughput and memory.
    Bench(bench::BenchArgs),
    /// Measure the 1:N search: the ANN index against exhaustive search.
    BenchIndex(bench_index::BenchIndexArgs),
    /// Measure the liveness checks: error rates (eval) and cost (bench).
    Liveness(liveness_cli::LivenessArgs),
}

/// Logs go to stderr; `RUST_LOG` filters them (default `info`) and
/// `FACEGATE_LOG_FORMAT=json` makes them structured JSON lines.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if std::env::var("FACEGATE_LOG_FORMAT").is_ok_and(|v| v == "json") {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Runs the command; an error is printed as one line (its causes joined
/// with `: `, no backtrace) and the exit status is 1.
fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command) -> Result<()> {
    match command {
        Command::Serve(args) => {
            // A data directory that cannot be written fails before the
            // slow steps (runtime download, model loading).
            facegate_app::cli::check_data_dir(&args.common)?;
            setup::ensure_runtime()?;
            setup::ensure_web_assets(&PathBuf::from("web"))?;
            facegate_app::cli::serve(args)
        }
        Command::Migrate(args) => facegate_app::cli::migrate(args),
        Command::Createsuperuser(args) => facegate_app::cli::create_superuser(args),
        Command::Enrol(args) => {
            setup::ensure_runtime()?;
            facegate_app::cli::enrol(args)
        }
        Command::RotateKey(args) => facegate_app::cli::rotate_key(args),
        Command::ExportUser(args) => facegate_app::cli::export_user(args),
        Command::OidcClient(args) => facegate_app::cli::oidc_client(args),
        Command::RotateSigningKey(args) => facegate_app::cli::rotate_signing(args),
        Command::Setup => {
            setup::ensure_runtime()?;
            setup::ensure_web_assets(&PathBuf::from("web"))
        }
        Command::Detect(args) => {
            setup::ensure_runtime()?;
            engine_cli::detect(args)
        }
        Command::Compare(args) => {
            setup::ensure_runtime()?;
            engine_cli::compare(args)
        }
        Command::Eval(args) => {
            setup::ensure_runtime()?;
            eval::run(args)
        }
        Command::Bench(args) => {
            setup::ensure_runtime()?;
            bench::run(args)
        }
        Command::BenchIndex(args) => {
            if !args.photos.is_empty() {
                setup::ensure_runtime()?;
            }
            bench_index::run(args)
        }
        Command::Liveness(args) => {
            setup::ensure_runtime()?;
            liveness_cli::run(args)
        }
    }
}
