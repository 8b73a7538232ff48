//! Abuse resistance: parallel guessing against one account gets exactly
//! the attempts the limits allow, unknown and known usernames look alike,
//! and slow or oversized requests are cut.

use std::time::{Duration, Instant};

use facegate_app::web::server::ServerLimits;
use facegate_app::FaceLoginMode;
use reqwest::StatusCode;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::harness::DirApp;
use crate::helpers::{error_of, face, Agent, Backend, PASSWORD};

/// Runs `rounds` attempts on each of 20 clients at once; returns the
/// `(status, code)` of every answer.
async fn storm<F, Fut>(app: &DirApp, rounds: usize, attempt: F) -> Vec<(StatusCode, String)>
where
    F: Fn(std::sync::Arc<Agent>) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = reqwest::Response> + Send,
{
    let mut agents = Vec::new();
    for _ in 0..20 {
        agents.push(std::sync::Arc::new(app.agent().await));
    }
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(20));
    let mut tasks = Vec::new();
    for a in agents {
        let (f, barrier) = (attempt.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let mut out = Vec::new();
            for _ in 0..rounds {
                out.push(error_of(f(a.clone()).await).await);
            }
            out
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all
}

fn count(results: &[(StatusCode, String)], code: &str) -> usize {
    results.iter().filter(|(_, c)| c == code).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_face_guesses_get_exactly_the_lockout_threshold() {
    parallel_face_guesses_get_exactly_the_lockout_threshold_on(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_face_guesses_get_exactly_the_lockout_threshold_on_postgres() {
    parallel_face_guesses_get_exactly_the_lockout_threshold_on(Backend::Postgres).await;
}

async fn parallel_face_guesses_get_exactly_the_lockout_threshold_on(backend: Backend) {
    let tmp = tempfile::tempdir().unwrap();
    let url = match backend {
        Backend::Sqlite => None,
        Backend::Postgres => Some(facegate_testkit::postgres::fresh_database().await),
    };
    let app = DirApp::spawn(tmp.path(), |c| {
        c.database_url = url.as_deref().map(Into::into);
        c.face_login = FaceLoginMode::Verify;
        c.rate_limit_per_address = 0;
        c.lockout_threshold = 5;
    })
    .await
    .unwrap();
    let a = app.agent().await;
    a.register("barack").await;
    assert_eq!(
        a.upload_face(&face("obama_1.jpg")).await.status(),
        StatusCode::CREATED
    );
    let guess = face("biden_2.jpg");
    let results = storm(&app, 2, move |a| {
        let guess = guess.clone();
        async move { a.face_login(&guess, Some("barack")).await }
    })
    .await;
    assert_eq!(results.len(), 40);
    assert_eq!(count(&results, "unknown"), 5, "{results:?}");
    assert_eq!(count(&results, "locked"), 35);
    // The owner's face is refused too while locked; the password works.
    let b = app.agent().await;
    assert_eq!(
        error_of(b.face_login(&face("obama_2.jpg"), Some("barack")).await)
            .await
            .1,
        "locked"
    );
    assert_eq!(b.login("barack", PASSWORD).await.status(), StatusCode::OK);
    let attempts = app.state.services.store.recent_attempts(100).await.unwrap();
    let failed = attempts.iter().filter(|x| x.reason == "no_match").count();
    assert_eq!(failed, 5, "every counted attempt is in the attempts table");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_password_guesses_get_exactly_the_rate_limits() {
    let tmp = tempfile::tempdir().unwrap();
    let app = DirApp::spawn(tmp.path(), |c| {
        c.rate_limit_per_address = 0;
        c.rate_limit_per_account = 10;
    })
    .await
    .unwrap();
    app.agent().await.register("alice").await;
    let results = storm(
        &app,
        3,
        |a| async move { a.login("alice", "guess guess").await },
    )
    .await;
    assert_eq!(count(&results, "invalid_credentials"), 10, "{results:?}");
    assert_eq!(count(&results, "rate_limited"), 50);

    // Per address: 30 a minute, however many accounts are tried.
    let tmp = tempfile::tempdir().unwrap();
    let app = DirApp::spawn(tmp.path(), |c| {
        c.rate_limit_per_address = 30;
        c.rate_limit_per_account = 0;
    })
    .await
    .unwrap();
    let n = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let results = storm(&app, 2, move |a| {
        let i = n.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        async move { a.login(&format!("user{i}"), "guess guess").await }
    })
    .await;
    assert_eq!(count(&results, "invalid_credentials"), 30);
    assert_eq!(count(&results, "rate_limited"), 10);
}

fn shape(v: &Value) -> Vec<String> {
    let mut keys: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    keys
}

/// Wrong passwords for a known and an unknown name, ten rounds, which name
/// goes first alternating (under load the second request of each pair was
/// the slower one in every round of a failed run, when the unknown name
/// always came second). Returns each name's times and first answer.
async fn time_wrong_passwords(a: &Agent, attempt: usize) -> ([Vec<Duration>; 2], [Value; 2]) {
    let mut times = [Vec::new(), Vec::new()];
    let mut bodies = [Value::Null, Value::Null];
    for round in 0..10 {
        let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
        for i in order {
            let name = ["alice", "nobody-at-all"][i];
            let t = Instant::now();
            let r = a
                .login(name, &format!("wrong password {attempt}.{round}"))
                .await;
            times[i].push(t.elapsed());
            assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
            bodies[i] = r.json::<Value>().await.unwrap();
        }
    }
    (times, bodies)
}

#[tokio::test]
async fn known_and_unknown_usernames_look_the_same() {
    let tmp = tempfile::tempdir().unwrap();
    let app = DirApp::spawn(tmp.path(), |c| {
        c.rate_limit_per_address = 0;
        c.rate_limit_per_account = 0;
        c.face_login = FaceLoginMode::Verify;
    })
    .await
    .unwrap();
    let mut a = app.agent().await;
    a.register("alice").await;
    a.upload_face(&face("obama_1.jpg")).await;
    a.logout().await;
    // Both paths run argon2: neither name is measurably faster. The other
    // tests share the two cores and only ever add time, so each path's
    // fastest round is the estimate of its own cost. Parallel tests can
    // still skew one set of ten rounds (a ratio of 0.58 was seen), so up to
    // three sets are measured; a path without argon2 (about 25 ms here)
    // would be many times faster in every one.
    let mut seen = Vec::new();
    for attempt in 0..3 {
        let (times, bodies) = time_wrong_passwords(&a, attempt).await;
        assert_eq!(bodies[0], bodies[1], "same code and message");
        assert_eq!(shape(&bodies[0]), shape(&bodies[1]));
        let fastest = |v: &[Duration]| v.iter().min().copied().unwrap();
        let (known, unknown) = (fastest(&times[0]), fastest(&times[1]));
        assert!(
            known > Duration::from_millis(5),
            "argon2 takes time: {known:?}"
        );
        let ratio = unknown.as_secs_f64() / known.as_secs_f64();
        if (0.6..=1.0 / 0.6).contains(&ratio) {
            break;
        }
        seen.push(format!(
            "unknown {unknown:?} vs known {known:?} ({times:?})"
        ));
        assert!(seen.len() < 3, "three sets differ: {seen:#?}");
    }
    // Face verify: the same answer for a stranger's face on a known name and
    // for an unknown name.
    let known = a.face_login(&face("biden_2.jpg"), Some("alice")).await;
    let unknown = a
        .face_login(&face("biden_2.jpg"), Some("nobody-at-all"))
        .await;
    assert_eq!(known.status(), unknown.status());
    assert_eq!(
        known.json::<Value>().await.unwrap(),
        unknown.json::<Value>().await.unwrap()
    );
}

/// Reads until the server closes; returns what it sent and when it closed.
async fn read_to_close(s: &mut TcpStream, within: Duration) -> Option<(Vec<u8>, Instant)> {
    let mut buf = Vec::new();
    let read = tokio::time::timeout(within, s.read_to_end(&mut buf)).await;
    match read {
        Ok(_) => Some((buf, Instant::now())),
        Err(_) => None,
    }
}

#[tokio::test]
async fn slow_and_oversized_requests_are_cut() {
    let tmp = tempfile::tempdir().unwrap();
    let limits = ServerLimits {
        header_timeout: Duration::from_secs(1),
        ..ServerLimits::default()
    };
    let app = DirApp::spawn_limited(tmp.path(), |c| c.request_timeout_seconds = 2, limits)
        .await
        .unwrap();
    let addr = app.base.trim_start_matches("http://").to_string();

    // Slowloris: one header line every 300 ms is cut after about a second.
    let mut s = TcpStream::connect(&addr).await.unwrap();
    let started = Instant::now();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut cut = None;
    for i in 0..30 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        if s.write_all(format!("X-Slow-{i}: y\r\n").as_bytes())
            .await
            .is_err()
        {
            cut = Some(started.elapsed());
            break;
        }
        let mut probe = [0u8; 256];
        if let Ok(Ok(n)) = tokio::time::timeout(Duration::from_millis(1), s.read(&mut probe)).await
        {
            if n == 0 || probe.starts_with(b"HTTP/1.1 408") {
                cut = Some(started.elapsed());
                break;
            }
        }
    }
    let cut = cut.expect("the slow client was never cut");
    assert!(cut < Duration::from_secs(4), "cut after {cut:?}");

    // A slow body hits the request deadline: 408.
    let (cookie, token) = facegate_testkit::agent::raw_session(&app.base).await;
    let mut s = TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /api/login HTTP/1.1\r\nHost: x\r\nCookie: {cookie}\r\nX-CSRF-Token: {token}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"user"
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let (resp, _) = read_to_close(&mut s, Duration::from_secs(6))
        .await
        .expect("no answer");
    assert!(
        resp.starts_with(b"HTTP/1.1 408"),
        "{}",
        String::from_utf8_lossy(&resp)
    );

    // Too many or too large headers are refused.
    let mut many = String::from("GET /healthz HTTP/1.1\r\nHost: x\r\n");
    for i in 0..200 {
        many.push_str(&format!("X-H{i}: v\r\n"));
    }
    many.push_str("\r\n");
    let huge = format!(
        "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(64 * 1024)
    );
    for req in [many, huge] {
        let mut s = TcpStream::connect(&addr).await.unwrap();
        let _ = s.write_all(req.as_bytes()).await;
        let (resp, _) = read_to_close(&mut s, Duration::from_secs(3))
            .await
            .expect("no answer");
        assert!(
            resp.is_empty() || resp.starts_with(b"HTTP/1.1 431"),
            "{}",
            String::from_utf8_lossy(&resp)
        );
    }

    // A JSON body over the limit is refused before parsing.
    let a = app.agent().await;
    let big = serde_json::json!({"username": "x".repeat(32 << 20), "password": "y"});
    let r = a.post_json("/api/login", big).await;
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);

    // The server is still fine.
    assert_eq!(a.get("/healthz").await.status(), StatusCode::OK);
}
