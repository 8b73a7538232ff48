//! Helpers of the tests with several instances: `facegate serve`
//! processes on one PostgreSQL database, each with its own empty data
//! directory (nothing may live there), a PostgreSQL server of a test's own
//! that can be stopped and started again (`tools/pg.sh`), and an agent
//! whose session moves from one instance to another.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use facegate_app::crypto::MasterKey;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::common::{facegate, run, workspace, Agent, Server, Visit, PASSWORD};

/// Instances sharing one database and master key.
pub struct Cluster {
    pub url: String,
    pub key: MasterKey,
    dirs: Vec<tempfile::TempDir>,
}

impl Cluster {
    pub fn new(url: &str) -> Cluster {
        Cluster {
            url: url.to_string(),
            key: MasterKey::generate(),
            dirs: Vec::new(),
        }
    }

    fn env(&self) -> Vec<(String, String)> {
        vec![
            ("FACEGATE_DATABASE_URL".into(), self.url.clone()),
            (
                "FACEGATE_MASTER_KEY".into(),
                self.key.to_base64().to_string(),
            ),
            ("FACEGATE_FACE_LOGIN".into(), "verify".into()),
        ]
    }

    /// One more instance, with these settings too.
    pub fn start(&mut self, extra: &[(&str, &str)]) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_path_buf();
        self.dirs.push(dir);
        start_in(path, self.env(), extra)
    }

    /// `n` instances started at the same moment.
    pub fn start_together(&mut self, n: usize, extra: &[(&str, &str)]) -> Vec<Server> {
        let starts: Vec<_> = (0..n)
            .map(|_| {
                let dir = tempfile::tempdir().unwrap();
                let path = dir.path().to_path_buf();
                self.dirs.push(dir);
                let env = self.env();
                let extra: Vec<(String, String)> = extra
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect();
                std::thread::spawn(move || {
                    let extra: Vec<(&str, &str)> = extra
                        .iter()
                        .map(|(k, v)| (k.as_str(), v.as_str()))
                        .collect();
                    start_in(path, env, &extra)
                })
            })
            .collect();
        starts.into_iter().map(|t| t.join().unwrap()).collect()
    }

    /// A `facegate` command on this cluster's database.
    pub fn command(&self) -> Command {
        let mut cmd = facegate();
        cmd.envs(self.env());
        cmd
    }

    /// Creates the superuser `admin` (password [`PASSWORD`]).
    pub fn create_admin(&self) {
        let mut cmd = self.command();
        cmd.env("FACEGATE_SUPERUSER_USERNAME", "admin")
            .env("FACEGATE_SUPERUSER_EMAIL", "admin@example.org")
            .env("FACEGATE_SUPERUSER_PASSWORD", PASSWORD)
            .env("FACEGATE_DATA_DIR", self.dirs[0].path())
            .args(["createsuperuser", "--no-input"]);
        let out = run(cmd);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

fn start_in(dir: PathBuf, env: Vec<(String, String)>, extra: &[(&str, &str)]) -> Server {
    let mut all: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    all.extend_from_slice(extra);
    let server = Server::start_with(&dir, &all);
    let left: Vec<_> = std::fs::read_dir(&dir)
        .map(|d| d.filter_map(Result::ok).map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(
        left.iter().all(|n| n != "facegate.sqlite3"),
        "an instance on PostgreSQL made a local database: {left:?}"
    );
    server
}

/// A PostgreSQL server of one test's own (`tools/pg.sh`), removed on drop.
pub struct OwnPostgres {
    dir: tempfile::TempDir,
    pub url: String,
}

fn pg_sh(args: &[&str]) -> String {
    let out = Command::new(workspace().join("tools/pg.sh"))
        .args(args)
        .output()
        .expect("running tools/pg.sh");
    assert!(
        out.status.success(),
        "tools/pg.sh {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

impl OwnPostgres {
    pub fn start() -> OwnPostgres {
        let dir = tempfile::tempdir().unwrap();
        let url = pg_sh(&["start", dir.path().to_str().unwrap()]);
        OwnPostgres { dir, url }
    }

    /// Stops the server, keeping its data.
    pub fn pause(&self) {
        pg_sh(&["pause", self.dir.path().to_str().unwrap()]);
    }

    /// Starts it again where it was.
    pub fn resume(&self) {
        pg_sh(&["resume", self.dir.path().to_str().unwrap()]);
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let dir = self.dir.path().to_str().unwrap().to_string();
        let _ = Command::new(workspace().join("tools/pg.sh"))
            .args(["stop", &dir])
            .output();
    }
}

/// What the cluster tests ask of a client beyond [`Visit`]: the same
/// session on another instance, and plain JSON requests.
pub trait OnInstance {
    /// The same session (cookies and CSRF token) talking to `base`.
    fn on(&self, base: &str) -> Agent;
    /// `GET path`: status and JSON body.
    async fn get_json(&self, path: &str) -> (StatusCode, Value);
    /// A state-changing `method path` with the session's CSRF token.
    async fn send(&self, method: reqwest::Method, path: &str, body: Value) -> (StatusCode, Value);
    /// `POST /api/login` with `password`; status and body.
    async fn try_password(&self, username: &str, password: &str) -> (StatusCode, Value);
    /// Face login as `username` (verify) with `image`; status and body.
    async fn verify(&self, username: &str, image: &[u8]) -> (StatusCode, Value);
}

impl OnInstance for Agent {
    fn on(&self, base: &str) -> Agent {
        Agent {
            client: self.client.clone(),
            csrf: self.csrf.clone(),
            base: base.to_string(),
        }
    }

    async fn get_json(&self, path: &str) -> (StatusCode, Value) {
        let r = self.get(path).await;
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn send(&self, method: reqwest::Method, path: &str, body: Value) -> (StatusCode, Value) {
        let r = self
            .client
            .request(method, self.url(path))
            .header("X-CSRF-Token", &self.csrf)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn try_password(&self, username: &str, password: &str) -> (StatusCode, Value) {
        let body = json!({"username": username, "password": password});
        self.send(reqwest::Method::POST, "/api/login", body).await
    }

    async fn verify(&self, username: &str, image: &[u8]) -> (StatusCode, Value) {
        self.try_verify(username, image).await.unwrap()
    }
}

/// How long after `since` `check` first held, polling as fast as it
/// answers (each poll's start counts), up to `limit`; `None` if it never did.
pub async fn took<F, Fut>(since: Instant, limit: Duration, mut check: F) -> Option<Duration>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    loop {
        let started = Instant::now();
        if started - since > limit {
            return None;
        }
        if check().await {
            return Some(started - since);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
