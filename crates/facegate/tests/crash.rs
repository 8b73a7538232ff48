//! Crash safety and graceful shutdown of the real `facegate serve`
//! process: SIGKILL in the middle of enrolments and logins loses no
//! acknowledged enrolment and leaves nothing half-written; SIGTERM lets an
//! in-flight request finish before the process exits.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::multipart::{Form, Part};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const PASSWORD: &str = "correct horse battery";

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn photo(name: &str) -> Vec<u8> {
    std::fs::read(workspace().join("../shared/testdata/faces").join(name)).unwrap()
}

/// Starts `facegate serve` on a free port; returns the child and base URL.
/// Every caller kills or waits for the child.
#[allow(clippy::zombie_processes)]
fn start(dir: &Path) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_facegate"))
        .args(["serve", "--addr", "127.0.0.1:0", "--data-dir"])
        .arg(dir)
        .current_dir(workspace())
        .env("FACEGATE_LIVENESS", "off")
        .env("FACEGATE_RATE_LIMIT_PER_ADDRESS", "0")
        .env("FACEGATE_RATE_LIMIT_PER_ACCOUNT", "0")
        .env_remove("FACEGATE_MASTER_KEY")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting facegate serve");
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(Instant::now() < deadline, "the server did not start");
        let line = lines.next().expect("server exited early").unwrap();
        if let Some(url) = line.strip_prefix("facegate listening on ") {
            // Keep draining stdout so the child never blocks on it.
            std::thread::spawn(move || for _ in lines.by_ref() {});
            return (child, url.trim().to_string());
        }
    }
}

async fn agent(base: &str) -> (reqwest::Client, String) {
    let client = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();
    agent_refresh(client, base).await
}

async fn login(base: &str, username: &str) -> (reqwest::Client, String) {
    let (c, t) = agent(base).await;
    let r = c
        .post(format!("{base}/api/login"))
        .header("X-CSRF-Token", &t)
        .json(&json!({"username": username, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    agent_refresh(c, base).await
}

async fn agent_refresh(c: reqwest::Client, base: &str) -> (reqwest::Client, String) {
    let v: Value = c
        .get(format!("{base}/api/csrf"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let t = v["csrf_token"].as_str().unwrap().to_string();
    (c, t)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_during_enrolments_loses_nothing_acknowledged() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (mut child, base) = start(dir);
    let users = ["ann", "ben", "cid"];
    for u in users {
        let (c, t) = agent(&base).await;
        let r = c
            .post(format!("{base}/api/register"))
            .header("X-CSRF-Token", &t)
            .json(
                &json!({"username": u, "email": format!("{u}@example.com"), "password": PASSWORD}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
    }
    let acked: Arc<Mutex<Vec<(String, i64)>>> = Arc::default();
    let photos = [
        "obama_1.jpg",
        "obama_3.jpg",
        "kit_harington_1.jpg",
        "rose_leslie_1.jpg",
    ];
    let mut tasks = Vec::new();
    for (i, u) in users.iter().enumerate() {
        let (base, acked, u) = (base.clone(), acked.clone(), u.to_string());
        let bytes = photo(photos[i % photos.len()]);
        tasks.push(tokio::spawn(async move {
            let (c, t) = login(&base, &u).await;
            loop {
                let form = Form::new().part("image", Part::bytes(bytes.clone()).file_name("f.jpg"));
                let r = c
                    .post(format!("{base}/api/me/faces"))
                    .header("X-CSRF-Token", &t)
                    .multipart(form)
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status() == StatusCode::CREATED => {
                        let id = r.json::<Value>().await.map(|v| v["id"].as_i64().unwrap());
                        match id {
                            Ok(id) => acked.lock().unwrap().push((u.clone(), id)),
                            Err(_) => return, // killed mid-response: not acknowledged
                        }
                    }
                    Ok(r) => panic!("enrolment refused: {}", r.status()),
                    Err(_) => return, // the server is gone
                }
            }
        }));
    }
    // Face logins at the same time.
    {
        let base = base.clone();
        tasks.push(tokio::spawn(async move {
            let (c, t) = agent(&base).await;
            loop {
                let form = Form::new().part(
                    "image",
                    Part::bytes(photo("obama_2.jpg")).file_name("f.jpg"),
                );
                let r = c
                    .post(format!("{base}/api/face-login"))
                    .header("X-CSRF-Token", &t)
                    .multipart(form)
                    .send()
                    .await;
                if r.is_err() {
                    return;
                }
            }
        }));
    }
    // Let a good number of enrolments through, then kill without warning.
    let deadline = Instant::now() + Duration::from_secs(60);
    while acked.lock().unwrap().len() < 12 {
        assert!(Instant::now() < deadline, "enrolments too slow");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    for t in tasks {
        t.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= 12);

    // Restart on the same data directory.
    let (mut child, base) = start(dir);
    let mut rows_total = 0;
    for u in users {
        let (c, _) = login(&base, u).await;
        let faces: Value = c
            .get(format!("{base}/api/me/faces"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let ids: Vec<i64> = faces["faces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["id"].as_i64().unwrap())
            .collect();
        for (owner, id) in &acked {
            if owner == u {
                assert!(ids.contains(id), "acknowledged enrolment {id} of {u} lost");
            }
        }
        // Every row has its photo, and it decrypts to a JPEG.
        for id in &ids {
            let r = c
                .get(format!("{base}/media/faces/{id}"))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::OK, "template {id} has no photo");
            assert_eq!(&r.bytes().await.unwrap()[..2], &[0xFF, 0xD8]);
        }
        rows_total += ids.len();
    }
    // Every photo file has its row (orphans of the kill were swept), and no
    // temporary file is left.
    let mut files = 0;
    for d in std::fs::read_dir(dir.join("media/users"))
        .unwrap()
        .flatten()
    {
        for f in std::fs::read_dir(d.path()).unwrap().flatten() {
            let name = f.file_name().to_string_lossy().to_string();
            assert!(name.ends_with(".jpg"), "leftover {name}");
            files += 1;
        }
    }
    assert_eq!(
        files, rows_total,
        "photo files without rows (or rows without files)"
    );
    child.kill().unwrap();
    child.wait().unwrap();

    let url = format!("sqlite://{}", dir.join("facegate.sqlite3").display());
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    let check: String = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(check, "ok");
    let fk: Vec<(String,)> = sqlx::query_as("PRAGMA foreign_key_check")
        .fetch_all(&pool)
        .await
        .unwrap_or_default();
    assert!(fk.is_empty());
    pool.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_the_in_flight_request_finish() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut child, base) = start(tmp.path());
    let r = reqwest::get(format!("{base}/api/csrf")).await.unwrap();
    let cookie = r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let token = r.json::<Value>().await.unwrap()["csrf_token"]
        .as_str()
        .unwrap()
        .to_string();
    let body = json!({"username": "ghost", "password": "wrong password"}).to_string();
    let addr = base.trim_start_matches("http://").to_string();
    let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /api/login HTTP/1.1\r\nHost: x\r\nCookie: {cookie}\r\nX-CSRF-Token: {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(&body.as_bytes()[..5]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;

    // SIGTERM while the request is in flight.
    let st = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    tokio::time::sleep(Duration::from_millis(500)).await;
    // New connections are no longer accepted…
    assert!(
        tokio::net::TcpStream::connect(&addr).await.is_err(),
        "still accepting after SIGTERM"
    );
    // …but the in-flight request completes.
    s.write_all(&body.as_bytes()[5..]).await.unwrap();
    let mut resp = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut resp))
        .await
        .expect("no answer")
        .unwrap();
    let text = String::from_utf8_lossy(&resp);
    assert!(text.starts_with("HTTP/1.1 401"), "{text}");
    assert!(text.contains("invalid_credentials"));
    // Then the process exits cleanly.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "exit status {status}");
            break;
        }
        assert!(Instant::now() < deadline, "did not exit after SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
