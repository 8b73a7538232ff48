//! Test harness: the shared engine, a spawned app per test, user agents
//! with their own cookie jars, and test images.

use std::io::Cursor;
use std::sync::{Arc, LazyLock};

use facegate_app::{build_app, run_server, AppState, Config};
use facegate_vision::{EngineConfig, FaceEngine};
use reqwest::multipart::{Form, Part};
use reqwest::{Response, StatusCode};
use serde_json::{json, Value};

pub const FACES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/testdata/faces"
);
pub const MODELS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../models");
pub const PASSWORD: &str = "correct horse battery";

/// One engine for the whole test binary.
pub static ENGINE: LazyLock<Arc<FaceEngine>> = LazyLock::new(|| {
    facegate_vision::runtime::init_located().expect("ONNX Runtime (run the project's setup)");
    Arc::new(FaceEngine::load(engine_config()).expect("loading the face models"))
});

pub fn engine_config() -> EngineConfig {
    EngineConfig {
        models_dir: MODELS.into(),
        ..EngineConfig::default()
    }
}

/// Which store a test server runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// The embedded SQLite file in the data directory.
    Sqlite,
    /// A fresh database on the test PostgreSQL (support/postgres.rs).
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
            let url = crate::postgres::fresh_database().await;
            config.database_url = Some(url.as_str().into());
        }
        tweak(&mut config);
        let engine = tokio::task::spawn_blocking(|| ENGINE.clone())
            .await
            .unwrap();
        let (router, state) = build_app(config, engine).await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
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
                let pool = crate::harness::raw_pool(&config.data_dir).await;
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
        let client = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let mut agent = Agent {
            base: base.to_string(),
            client,
            csrf: String::new(),
        };
        agent.refresh_csrf().await;
        agent
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

/// A client with a cookie jar.
pub struct Agent {
    pub base: String,
    pub client: reqwest::Client,
    pub csrf: String,
}

impl Agent {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn refresh_csrf(&mut self) {
        let v: Value = self
            .client
            .get(self.url("/api/csrf"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        self.csrf = v["csrf_token"].as_str().unwrap().to_string();
    }

    pub async fn get(&self, path: &str) -> Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }

    pub async fn post_json(&self, path: &str, body: Value) -> Response {
        self.client
            .post(self.url(path))
            .header("X-CSRF-Token", &self.csrf)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    pub async fn register(&self, username: &str) -> Response {
        let body = json!({"username": username, "email": format!("{username}@example.com"), "password": PASSWORD});
        self.post_json("/api/register", body).await
    }

    pub async fn login(&self, username: &str, password: &str) -> Response {
        self.post_json(
            "/api/login",
            json!({"username": username, "password": password}),
        )
        .await
    }

    /// Logs out; the session (and its CSRF token) ends, so a new token is
    /// fetched for the next request.
    pub async fn logout(&mut self) -> Response {
        let r = self
            .client
            .post(self.url("/api/logout"))
            .header("X-CSRF-Token", &self.csrf)
            .send()
            .await
            .unwrap();
        self.refresh_csrf().await;
        r
    }

    pub async fn upload_face(&self, bytes: &[u8]) -> Response {
        let form = Form::new().part("image", Part::bytes(bytes.to_vec()).file_name("face.jpg"));
        self.client
            .post(self.url("/api/me/faces"))
            .header("X-CSRF-Token", &self.csrf)
            .multipart(form)
            .send()
            .await
            .unwrap()
    }

    pub async fn face_login(&self, bytes: &[u8], username: Option<&str>) -> Response {
        let mut form =
            Form::new().part("image", Part::bytes(bytes.to_vec()).file_name("frame.jpg"));
        if let Some(u) = username {
            form = form.text("username", u.to_string());
        }
        self.client
            .post(self.url("/api/face-login"))
            .header("X-CSRF-Token", &self.csrf)
            .multipart(form)
            .send()
            .await
            .unwrap()
    }

    /// Answers the liveness challenge `id` with JPEG `frames` and their
    /// capture `times` (ms), and `username` in verify mode; `Err` when the
    /// server closed the connection before the whole body was sent.
    pub async fn answer_challenge(
        &self,
        id: &str,
        frames: &[Vec<u8>],
        times: &[f64],
        username: Option<&str>,
    ) -> reqwest::Result<Response> {
        let mut form = Form::new();
        for f in frames {
            form = form.part("frame", Part::bytes(f.clone()).file_name("frame.jpg"));
        }
        form = form.text("timestamps", serde_json::to_string(times).unwrap());
        if let Some(u) = username {
            form = form.text("username", u.to_string());
        }
        self.client
            .post(self.url(&format!("/api/face-login/challenge/{id}/frames")))
            .header("X-CSRF-Token", &self.csrf)
            .multipart(form)
            .send()
            .await
    }

    /// The logged-in username, if any.
    pub async fn me(&self) -> Option<String> {
        let r = self.get("/api/me").await;
        if r.status() != StatusCode::OK {
            return None;
        }
        r.json::<Value>().await.unwrap()["username"]
            .as_str()
            .map(str::to_string)
    }
}

/// The bytes of a test photo.
pub fn face(name: &str) -> Vec<u8> {
    std::fs::read(format!("{FACES}/{name}")).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// A generated landscape (sky, hills, grass) without any face, as JPEG.
pub fn landscape() -> Vec<u8> {
    let img = image::RgbImage::from_fn(640, 480, |x, y| {
        let hill = 300.0 + 40.0 * ((x as f32) / 90.0).sin();
        if (y as f32) < hill - 80.0 {
            image::Rgb([110, 160, (230 - y / 4) as u8])
        } else if (y as f32) < hill {
            image::Rgb([70, 110 + (x % 7) as u8, 60])
        } else {
            image::Rgb([50, 140 + ((x * 3 + y) % 11) as u8, 40])
        }
    });
    let mut buf = Cursor::new(Vec::new());
    img.write_to(&mut buf, image::ImageFormat::Jpeg).unwrap();
    buf.into_inner()
}

/// Status and error code of a JSON error response.
pub async fn error_of(r: Response) -> (StatusCode, String) {
    let status = r.status();
    let v: Value = r.json().await.unwrap();
    (status, v["error"].as_str().unwrap_or_default().to_string())
}
