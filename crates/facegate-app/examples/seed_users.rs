//! Benchmark fixture: adds N users, each with one synthetic face template,
//! so that `POST /api/face-login` searches a gallery of realistic size
//! (tools/bench_server.sh). Random unit vectors in the embedding's
//! dimension are all nearly orthogonal to a real face's embedding, so they
//! cost the same to compare as real templates but never match; the one
//! real user the benchmark logs in as is enrolled through the API with a
//! real photo. Works on either store, in batches (one transaction per
//! batch), sealed like every template:
//!
//!     cargo run --release -p facegate-app --example seed_users -- --data-dir DIR --users 999
//!     cargo run --release -p facegate-app --example seed_users -- --database-url URL --users 1000000
//!
//! The master key is the server's: `FACEGATE_MASTER_KEY`, else
//! `<data-dir>/master.key` (created when the store is new).

use std::path::PathBuf;
use std::time::Instant;

use clap::Parser;
use facegate_app::domain::{Email, NewTemplate, NewUser, Username};
use facegate_app::Config;
use facegate_vision::{locate_models_dir, EmbeddingManifest};
use rand::Rng;

#[derive(Parser)]
struct Cli {
    /// The data directory (the SQLite store, or the key file)
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// A PostgreSQL store instead of SQLite
    #[arg(long, value_name = "URL")]
    database_url: Option<String>,
    #[arg(long, default_value_t = 999)]
    users: usize,
    /// Users (and templates) per transaction
    #[arg(long, default_value_t = 2000)]
    batch: usize,
}

fn random_unit(dim: usize, rng: &mut impl Rng) -> Vec<f32> {
    // Sums of uniforms are close enough to Gaussian for an isotropic direction.
    let mut v: Vec<f32> = (0..dim)
        .map(|_| (0..6).map(|_| rng.gen::<f32>() - 0.5).sum())
        .collect();
    facegate_vision::l2_normalise(&mut v);
    v
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let mut config = Config::load(None)?;
    if let Some(dir) = cli.data_dir {
        config.data_dir = dir;
    }
    if let Some(url) = cli.database_url {
        config.database_url = Some(url.as_str().into());
    }
    let manifest = EmbeddingManifest::read(
        &locate_models_dir(&PathBuf::from("models")).join("embedding.toml"),
    )?;
    let store = facegate_app::store::open(&config).await?;
    let hash = facegate_app::service::hash_password("seeded-user-password")?;
    // A run prefix, so that seeding twice adds users instead of clashing.
    let run: u32 = rand::thread_rng().gen_range(0..1_000_000);
    let mut rng = rand::thread_rng();
    let started = Instant::now();
    let mut done = 0;
    while done < cli.users {
        let n = cli.batch.max(1).min(cli.users - done);
        let users: Vec<NewUser> = (done..done + n)
            .map(|i| {
                Ok(NewUser {
                    username: Username::parse(&format!("seed{run:06}-{i:07}"))?,
                    email: Email::parse(&format!("seed{run:06}-{i:07}@example.org"))?,
                    password_hash: hash.clone(),
                    is_staff: false,
                    is_superuser: false,
                })
            })
            .collect::<Result<_, facegate_app::domain::ValidationError>>()?;
        let ids = store.create_users(&users).await?;
        let templates: Vec<NewTemplate> = ids
            .iter()
            .map(|&user_id| NewTemplate {
                user_id,
                model_id: manifest.id.clone(),
                embedding: random_unit(manifest.output_dim, &mut rng),
                quality: 1.0,
                photo: None,
            })
            .collect();
        store.add_templates(&templates).await?;
        done += n;
        if done % (cli.batch * 25) == 0 || done == cli.users {
            let secs = started.elapsed().as_secs_f64();
            eprintln!(
                "{done}/{} users ({:.0} a second)",
                cli.users,
                done as f64 / secs
            );
        }
    }
    println!(
        "seeded {} users with synthetic templates into {} in {:.1} s",
        cli.users,
        store.describe(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
