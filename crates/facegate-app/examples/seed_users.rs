//! Benchmark fixture: adds N users, each with one synthetic face template,
//! so that `POST /api/face-login` searches a gallery of realistic size
//! (tools/bench_server.sh). Random unit vectors in 192 dimensions are all
//! nearly orthogonal to a real face's embedding, so they cost the same to
//! compare as real templates but never match; the one real user the
//! benchmark logs in as is enrolled through the API with a real photo.
//!
//!     cargo run --release -p facegate-app --example seed_users -- --data-dir DIR --users 999

use std::path::PathBuf;

use clap::Parser;
use facegate_app::domain::{Email, NewTemplate, NewUser, Username};
use facegate_vision::models::{locate_dir, EmbeddingManifest};
use rand::Rng;

#[derive(Parser)]
struct Cli {
    #[arg(long)]
    data_dir: PathBuf,
    #[arg(long, default_value_t = 999)]
    users: usize,
}

fn random_unit(dim: usize, rng: &mut impl Rng) -> Vec<f32> {
    // Sums of uniforms are close enough to Gaussian for an isotropic direction.
    let mut v: Vec<f32> = (0..dim)
        .map(|_| (0..6).map(|_| rng.gen::<f32>() - 0.5).sum())
        .collect();
    facegate_vision::embed::l2_normalise(&mut v);
    v
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let manifest =
        EmbeddingManifest::read(&locate_dir(&PathBuf::from("models")).join("embedding.toml"))?;
    let store = facegate_app::store::open_sqlite(&cli.data_dir, None).await?;
    store.migrate().await?;
    let hash = facegate_app::service::hash_password("seeded-user-password")?;
    let mut rng = rand::thread_rng();
    for i in 0..cli.users {
        let user = store
            .create_user(&NewUser {
                username: Username::parse(&format!("seed{i:05}"))?,
                email: Email::parse(&format!("seed{i:05}@example.org"))?,
                password_hash: hash.clone(),
                is_staff: false,
                is_superuser: false,
            })
            .await?;
        store
            .add_template(&NewTemplate {
                user_id: user.id,
                model_id: manifest.id.clone(),
                embedding: random_unit(manifest.output_dim, &mut rng),
                quality: 1.0,
                image_path: String::new(),
            })
            .await?;
    }
    println!(
        "seeded {} users with synthetic templates in {}",
        cli.users,
        cli.data_dir.display()
    );
    Ok(())
}
