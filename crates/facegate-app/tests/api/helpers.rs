//! Test harness: a spawned app per test on either store, and what the
//! tests share from `facegate_testkit` (the engine, the client, the photos).

use facegate_app::{build_app, run_server, AppState, Config};
use reqwest::StatusCode;
use serde_json::Value;

pub use facegate_testkit::agent::{error_of, Agent, PASSWORD};
pub use facegate_testkit::images::landscape;
pub use facegate_testkit::{engine_config, photo as face, ENGINE};

/// Which store a test server runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// The embedded SQLite file in the data directory.
    Sqlite,
    /// A fresh database on the test PostgreSQL (facegate_testkit::postgres).
    Postgres,
}

/// A running server with its own data directory (and database).
pub struct TestApp {
    pub base: String,
    pub state: AppState,
    pub backend: Backend,
    _dir: tempfile::TempDir,
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    pub async fn spawn_with(tweak: impl FnOnce(&mut Config)) -> Self {
        Self::spawn_on(Backend::Sqlite, tweak).await
    }

    pub async fn spawn_on(backend: Backend, tweak: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        // These tests exercise login, enrolment and modes, not liveness
        // (default `both`): they turn it off; tests/api/liveness.rs turns
        // it back on.
        let mut config = Config {
            data_dir: dir.path().to_path_buf(),
            engine: engine_config(),
            liveness: facegate_app::Liveness::Off,
            ..Config::default()
        };
        if backend == Backend::Postgres {
            let url = facegate_testkit::postgres::fresh_database().await;
            config.database_url = Some(url.as_str().into());
        }
        // Bound first so the OpenID Connect issuer is the real address.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        config.public_url = Some(base.clone());
        tweak(&mut config);
        let engine = tokio::task::spawn_blocking(|| ENGINE.clone())
            .await
            .unwrap();
        let (router, state) = build_app(config, engine).await.unwrap();
        tokio::spawn(run_server(listener, router, std::future::pending()));
        TestApp {
            base,
            state,
            backend,
            _dir: dir,
        }
    }

    /// Runs one statement on the server's database underneath the store
    /// (to plant the past or what an attacker would); `sqlite` and
    /// `postgres` are the statement in each dialect.
    pub async fn raw_execute(&self, sqlite: &str, postgres: &str) -> u64 {
        use sqlx::Connection;
        let config = &self.state.services.config;
        match self.backend {
            Backend::Sqlite => {
                let pool = raw_pool(&config.data_dir).await;
                let n = sqlx::query(sqlite).execute(&pool).await.unwrap();
                pool.close().await;
                n.rows_affected()
            }
            Backend::Postgres => {
                let url = config.database_url().unwrap();
                let mut c = sqlx::PgConnection::connect(url).await.unwrap();
                let n = sqlx::query(postgres).execute(&mut c).await.unwrap();
                n.rows_affected()
            }
        }
    }

    /// A new browser-like client with its own cookies and CSRF token.
    pub async fn agent(&self) -> Agent {
        Self::agent_for(&self.base).await
    }

    /// A new browser-like client of the server at `base`.
    pub async fn agent_for(base: &str) -> Agent {
        Agent::new(base).await
    }

    /// Registers `username` and enrols `photos`; returns the user's id.
    pub async fn user_with_faces(&self, username: &str, photos: &[&str]) -> i64 {
        let a = self.agent().await;
        let r = a.register(username).await;
        assert_eq!(r.status(), StatusCode::CREATED);
        let id = r.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
        for p in photos {
            let r = a.upload_face(&face(p)).await;
            assert_eq!(
                r.status(),
                StatusCode::CREATED,
                "enrolling {p}: {}",
                r.text().await.unwrap()
            );
        }
        id
    }
}

/// A raw connection to the database file, bypassing the application.
pub async fn raw_pool(dir: &std::path::Path) -> sqlx::SqlitePool {
    let url = format!("sqlite://{}", dir.join("facegate.sqlite3").display());
    sqlx::SqlitePool::connect(&url).await.unwrap()
}
