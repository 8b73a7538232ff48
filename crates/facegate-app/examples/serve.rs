//! Development helper: runs the web application without the `facegate`
//! binary (`cargo run -p facegate-app --example serve -- --data-dir /tmp/fg`).

use clap::Parser;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    serve: facegate_app::cli::ServeArgs,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    facegate_vision::runtime::init_located()?;
    facegate_app::cli::serve(cli.serve)
}
