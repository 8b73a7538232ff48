//! Crash safety and graceful shutdown of `facegate serve`: SIGKILL in the
//! middle of enrolments and face logins loses no acknowledged enrolment
//! and leaves nothing half-written; SIGTERM lets an in-flight request
//! finish before the process exits.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::{assert_consistent, photo, visitor, Agent, Server, Visit};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_during_enrolments_loses_nothing_acknowledged() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let server = Server::start(dir);
    let base = server.base.clone();
    let users = ["ann", "ben", "cid"];
    let photos = ["obama_1.jpg", "kit_harington_1.jpg", "rose_leslie_1.jpg"];
    let mut agents = Vec::new();
    for u in users {
        let mut a = visitor(&base).await;
        assert_eq!(a.register_json(u).await.0, StatusCode::CREATED);
        agents.push(a);
    }
    // Enrolments of every user, until the server is gone; those answered
    // with 201 and an id are acknowledged.
    let acked: Arc<Mutex<Vec<(String, i64)>>> = Arc::default();
    let mut tasks = Vec::new();
    for ((a, u), file) in agents.into_iter().zip(users).zip(photos) {
        let acked = acked.clone();
        let image = photo(file);
        tasks.push(tokio::spawn(async move {
            while let Ok((status, body)) = a.try_enrol(&image).await {
                assert!(
                    status == StatusCode::CREATED || body.is_null(),
                    "enrolment refused: {status} {body}"
                );
                match body["id"].as_i64() {
                    Some(id) => acked.lock().unwrap().push((u.to_string(), id)),
                    None => return, // killed mid-answer: not acknowledged
                }
            }
        }));
    }
    // Face logins at the same time, each from a new visitor, by a fourth
    // user whose face is enrolled (a genuine pair: they succeed).
    let mut dan = visitor(&base).await;
    assert_eq!(dan.register_json("dan").await.0, StatusCode::CREATED);
    assert_eq!(
        dan.enrol(&photo("obama_3.jpg")).await.0,
        StatusCode::CREATED
    );
    tasks.push(tokio::spawn(async move {
        let image = photo("obama_2.jpg");
        while let Ok(visitor) = Agent::try_following(&base).await {
            match visitor.try_verify("dan", &image).await {
                Ok((status, body)) => assert!(
                    status == StatusCode::OK || body.is_null(),
                    "face login of dan: {status} {body}"
                ),
                Err(_) => return,
            }
        }
    }));
    // Let a good number of enrolments through, then kill without warning.
    let deadline = Instant::now() + Duration::from_secs(60);
    while acked.lock().unwrap().len() < 12 {
        assert!(Instant::now() < deadline, "enrolments too slow");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.kill();
    for t in tasks {
        t.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= 12);

    // Restart on the same data directory: every acknowledged enrolment is
    // there, with its photo.
    let server = Server::start(dir);
    for u in users {
        let mut a = visitor(&server.base).await;
        a.log_in(u).await;
        let ids = a.faces_with_photos().await;
        for (_, id) in acked.iter().filter(|(owner, _)| owner == u) {
            assert!(ids.contains(id), "acknowledged enrolment {id} of {u} lost");
        }
    }
    server.stop();
    // Templates and photos match one for one (each written in one
    // transaction), nothing else is in the data directory, and SQLite's
    // checks pass.
    assert!(assert_consistent(dir).await >= acked.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_the_in_flight_request_finish() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(tmp.path());
    let (cookie, token) = facegate_testkit::agent::raw_session(&server.base).await;
    let body = json!({"username": "ghost", "password": "wrong password"}).to_string();
    let addr = server.base.trim_start_matches("http://").to_string();
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
    server.terminate();
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
    server.wait_for_clean_exit();
}
