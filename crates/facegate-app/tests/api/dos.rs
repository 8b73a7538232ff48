//! Anonymous denial of service (security review, issue 16, points 1–3):
//! challenge answers that would make the server decode huge frames, text
//! fields that would fill the disk through the audit trail (even when the
//! request is rate-limited), and invented HTTP methods that would grow the
//! metrics. Each test makes the attack as a stranger would and checks what
//! the server answers and what it keeps. The memory an answer may take is
//! measured on the real process in the `facegate` crate's fault tests.

use std::io::Cursor;
use std::path::Path;
use std::time::{Duration, Instant};

use facegate_app::domain::AuditFilter;
use facegate_app::Liveness;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::harness::{files_under, DirApp};
use crate::helpers::{error_of, Agent, TestApp};

/// A JPEG of a plain grey image of `side` × `side` pixels: tiny to send,
/// huge to decode.
fn grey_jpeg(side: u32) -> Vec<u8> {
    let img = image::GrayImage::from_pixel(side, side, image::Luma([128]));
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Jpeg).unwrap();
    out.into_inner()
}

/// A JPEG of pseudo-random noise at the highest quality: as many bytes as
/// a frame of that size can take.
fn noise_jpeg(width: u32, height: u32) -> Vec<u8> {
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let img = image::RgbImage::from_fn(width, height, |_, _| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let [r, g, b, ..] = state.to_le_bytes();
        image::Rgb([r, g, b])
    });
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 100)
        .encode_image(&img)
        .unwrap();
    out
}

async fn new_challenge(a: &Agent) -> String {
    let r = a.post_json("/api/face-login/challenge", json!({})).await;
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.unwrap();
    v["challenge_id"].as_str().unwrap().to_string()
}

/// Posts `frames` (with one timestamp each, 180 ms apart) to challenge `id`.
async fn post_frames(
    a: &Agent,
    id: &str,
    frames: &[Vec<u8>],
    username: Option<&str>,
) -> reqwest::Result<reqwest::Response> {
    let times: Vec<f64> = (0..frames.len()).map(|i| i as f64 * 180.0).collect();
    a.answer_challenge(id, frames, &times, username).await
}

#[tokio::test]
async fn huge_challenge_frames_are_refused_before_decoding() {
    let app = TestApp::spawn_with(|c| c.liveness = Liveness::Both).await;
    let a = app.agent().await;
    let bomb = grey_jpeg(6000);
    assert!(bomb.len() < 512 * 1024, "{} bytes", bomb.len());
    let id = new_challenge(&a).await;
    let started = Instant::now();
    let frames = vec![bomb; 45];
    // The server answers at the first frame and may close the connection
    // before the client has sent the rest; either way nothing is decoded.
    if let Ok(r) = post_frames(&a, &id, &frames, None).await {
        let (status, code) = error_of(r).await;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::PAYLOAD_TOO_LARGE, "too_large")
        );
    }
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
    // One frame just over the side limit is refused the same way.
    let id = new_challenge(&a).await;
    let r = post_frames(&a, &id, &[grey_jpeg(481)], None).await.unwrap();
    assert_eq!(error_of(r).await.0, StatusCode::PAYLOAD_TOO_LARGE);
    // The challenge was used up by the refused answer.
    let r = post_frames(&a, &id, &[grey_jpeg(200)], None).await.unwrap();
    assert_eq!(
        error_of(r).await,
        (StatusCode::UNAUTHORIZED, "expired".into())
    );
    // A username longer than any username is refused, not judged.
    let id = new_challenge(&a).await;
    let long = "u".repeat(40 << 10);
    let r = post_frames(&a, &id, &[grey_jpeg(200)], Some(&long))
        .await
        .unwrap();
    assert_eq!(
        error_of(r).await,
        (StatusCode::BAD_REQUEST, "invalid".into())
    );
    assert_eq!(a.get("/healthz").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn an_unknown_challenge_is_refused_before_its_frames_are_read() {
    let app = TestApp::spawn_with(|c| c.liveness = Liveness::Both).await;
    let a = app.agent().await;
    let frames = vec![grey_jpeg(6000); 45];
    let started = Instant::now();
    if let Ok(r) = post_frames(&a, "0123456789abcdef", &frames, None).await {
        assert_eq!(
            error_of(r).await,
            (StatusCode::UNAUTHORIZED, "expired".into())
        );
    }
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn challenge_routes_exist_only_where_the_policy_uses_them() {
    for liveness in [Liveness::Off, Liveness::Passive] {
        let app = TestApp::spawn_with(|c| c.liveness = liveness).await;
        let a = app.agent().await;
        let r = a.post_json("/api/face-login/challenge", json!({})).await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{liveness:?}");
        let r = post_frames(&a, "0123", &[grey_jpeg(200)], None)
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{liveness:?}");
    }
}

#[tokio::test]
async fn the_frames_body_limit_follows_the_configured_frame_count() {
    // 60 frames of about 450 KB: more than the default 45 frames' body
    // limit would take if it were used instead of the configured count.
    let app = TestApp::spawn_with(|c| {
        c.liveness = Liveness::Both;
        c.liveness_challenge.max_frames = 60;
    })
    .await;
    let a = app.agent().await;
    let noisy = noise_jpeg(480, 240);
    assert!(noisy.len() <= 512 * 1024, "{} bytes", noisy.len());
    let id = new_challenge(&a).await;
    let frames = vec![noisy; 60];
    let total: usize = frames.iter().map(Vec::len).sum();
    assert!(total > 45 * 512 * 1024 + 64 * 1024, "{total} bytes");
    let r = post_frames(&a, &id, &frames, None).await.unwrap();
    // Judged (no face in the noise), not cut short by the body limit.
    let (status, code) = error_of(r).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{code}");
    assert_ne!(code, "too_large");
}

/// Bytes of every file under `dir`.
fn dir_bytes(dir: &Path) -> u64 {
    files_under(dir)
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum()
}

#[tokio::test]
async fn long_text_fields_and_rate_limited_floods_store_next_to_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let app = DirApp::spawn(tmp.path(), |c| {
        c.rate_limit_per_address = 3;
        c.liveness = Liveness::Both;
    })
    .await
    .unwrap();
    let a = app.agent().await;
    for _ in 0..3 {
        let r = a.login("nobody", "wrong password").await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    let challenge = new_challenge(&a).await;
    let before = dir_bytes(tmp.path());

    // 5 MiB usernames: over the body limit of a form, refused unread.
    let huge = "u".repeat(5 << 20);
    for _ in 0..3 {
        let r = a.login(&huge, "wrong password").await;
        assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    }
    // 40 KB usernames fit the body limit but no username is that long.
    let long = "u".repeat(40 << 10);
    for _ in 0..3 {
        let (status, code) = error_of(a.login(&long, "wrong password").await).await;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::BAD_REQUEST, "invalid")
        );
    }
    let r = post_frames(&a, &challenge, &[grey_jpeg(200)], Some(&long))
        .await
        .unwrap();
    assert_eq!(error_of(r).await.0, StatusCode::TOO_MANY_REQUESTS);
    // A flood of well-formed requests over the limit: refused, and
    // recorded once for the whole minute, not once each.
    for _ in 0..200 {
        let r = a.login("nobody", "wrong password").await;
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    }
    let grown = dir_bytes(tmp.path()).saturating_sub(before);
    assert!(
        grown < 256 << 10,
        "the data directory grew by {grown} bytes"
    );

    let filter = AuditFilter {
        outcome: Some("rate_limited".into()),
        limit: 1000,
        ..AuditFilter::default()
    };
    let store = &app.state.services.store;
    let limited = store.audit_events(&filter).await.unwrap();
    assert_eq!(limited.len(), 1, "{limited:?}");
    let everything = AuditFilter {
        limit: 1000,
        ..AuditFilter::default()
    };
    for e in store.audit_events(&everything).await.unwrap() {
        let text = e.username.unwrap_or_default() + &e.detail;
        assert!(text.len() < 2048, "an audit event of {} bytes", text.len());
    }
}

#[tokio::test]
async fn invented_methods_do_not_grow_the_metrics() {
    let app = TestApp::spawn().await;
    let client = reqwest::Client::new();
    for i in 0..300 {
        let name = format!("M{i:05}{}", "A".repeat(8 << 10));
        let m = Method::from_bytes(name.as_bytes()).unwrap();
        let r = client
            .request(m, format!("{}/api/login", app.base))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_client_error(), "{}", r.status());
    }
    let metrics = client
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !metrics.contains("M00001"),
        "an invented method became a label"
    );
    assert!(metrics.contains("method=\"other\""));
    assert!(
        metrics.len() < 64 << 10,
        "/metrics is {} bytes",
        metrics.len()
    );
}

#[tokio::test]
async fn registration_counts_against_the_address_limit() {
    let app = TestApp::spawn_with(|c| c.rate_limit_per_address = 3).await;
    let a = app.agent().await;
    for _ in 0..3 {
        let r = a.login("nobody", "wrong password").await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    // An address already refused for logins cannot register (each
    // registration costs an argon2 hash and tells whether a name is taken).
    for i in 0..5 {
        let (status, code) = error_of(a.register(&format!("newcomer{i}")).await).await;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::TOO_MANY_REQUESTS, "rate_limited")
        );
    }
    let page = app.agent().await;
    let form = [
        ("csrf_token", page.csrf.as_str()),
        ("username", "pagecomer"),
        ("email", "pagecomer@example.com"),
        ("password", "correct horse battery"),
        ("password2", "correct horse battery"),
    ];
    let r = page
        .client
        .post(page.url("/register"))
        .form(&form)
        .send()
        .await;
    assert_eq!(r.unwrap().status(), StatusCode::TOO_MANY_REQUESTS);
    let store = &app.state.services.store;
    assert_eq!(store.count_users().await.unwrap(), 0);
}

/// The session cookie (`name=value`) of a newly registered, logged-in
/// user, read from the answers' `Set-Cookie` headers.
async fn logged_in_cookie(base: &str, username: &str) -> (String, String) {
    let c = reqwest::Client::new();
    let r = c.get(format!("{base}/api/csrf")).send().await.unwrap();
    let cookie_of = |r: &reqwest::Response| {
        r.headers().get("set-cookie").map(|v| {
            let v = v.to_str().unwrap();
            v.split(';').next().unwrap().to_string()
        })
    };
    let cookie = cookie_of(&r).unwrap();
    let token = r.json::<Value>().await.unwrap()["csrf_token"]
        .as_str()
        .unwrap()
        .to_string();
    let body = json!({"username": username, "email": format!("{username}@example.com"),
        "password": crate::helpers::PASSWORD});
    let r = c
        .post(format!("{base}/api/register"))
        .header("Cookie", &cookie)
        .header("X-CSRF-Token", &token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    (cookie_of(&r).unwrap_or(cookie), token)
}

#[tokio::test]
async fn a_profile_upload_without_its_token_is_refused_before_the_body_is_read() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // Issue 16, finding 12: the page upload buffered its whole body (up to
    // ~100 MB) before it checked the CSRF token. Now the token travels in
    // the form's URL and is checked first: a request that announces 90 MB
    // and sends none of it is answered 403 at once.
    let app = TestApp::spawn().await;
    let (cookie, token) = logged_in_cookie(&app.base, "mallory").await;
    let addr = app.base.trim_start_matches("http://").to_string();
    let send = |path: String, cookie: String| {
        let addr = addr.clone();
        async move {
            let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
            let head = format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nCookie: {cookie}\r\n\
             Content-Type: multipart/form-data; boundary=XyZ\r\nContent-Length: 90000000\r\n\r\n--XyZ\r\n"
        );
            s.write_all(head.as_bytes()).await.unwrap();
            let mut buf = vec![0u8; 4096];
            let n = tokio::time::timeout(Duration::from_secs(3), s.read(&mut buf))
                .await
                .ok()
                .and_then(Result::ok)
                .unwrap_or(0);
            String::from_utf8_lossy(&buf[..n]).to_string()
        }
    };
    let started = Instant::now();
    let answer = send("/profile/faces".into(), cookie.clone()).await;
    assert!(answer.starts_with("HTTP/1.1 403"), "{answer:?}");
    let answer = send("/profile/faces?csrf_token=wrong".into(), cookie.clone()).await;
    assert!(answer.starts_with("HTTP/1.1 403"), "{answer:?}");
    assert!(started.elapsed() < Duration::from_secs(3));
    // With the right token the server waits for the body it was promised.
    let answer = send(format!("/profile/faces?csrf_token={token}"), cookie).await;
    assert!(answer.is_empty(), "{answer:?}");
}

#[tokio::test]
async fn profile_uploads_are_read_two_at_a_time() {
    use tokio::io::AsyncWriteExt;
    // Issue 16, finding 12: any number of uploads were buffered at once.
    // Two uploads that never finish their bodies hold both reading slots;
    // a third waits, its body unread, until one of them goes away.
    let app = TestApp::spawn().await;
    let (cookie, token) = logged_in_cookie(&app.base, "mallory").await;
    let addr = app.base.trim_start_matches("http://").to_string();
    let mut stalled = Vec::new();
    for _ in 0..facegate_app::web::state::PAGE_UPLOADS_AT_ONCE {
        let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let head = format!(
            "POST /profile/faces?csrf_token={token} HTTP/1.1\r\nHost: x\r\nCookie: {cookie}\r\n\
             Content-Type: multipart/form-data; boundary=XyZ\r\nContent-Length: 9000000\r\n\r\n--XyZ\r\n"
        );
        s.write_all(head.as_bytes()).await.unwrap();
        stalled.push(s);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let url = format!("{}/profile/faces?csrf_token={token}", app.base);
    let third = tokio::spawn(async move {
        let form = reqwest::multipart::Form::new().part(
            "image",
            reqwest::multipart::Part::bytes(crate::helpers::landscape()).file_name("x.jpg"),
        );
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
            .post(url)
            .header("Cookie", cookie)
            .multipart(form)
            .send()
            .await
            .unwrap()
            .status()
    });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        !third.is_finished(),
        "a third upload was read alongside two others"
    );
    drop(stalled.pop());
    let status = tokio::time::timeout(Duration::from_secs(10), third)
        .await
        .expect("the third upload got a slot once one was free")
        .unwrap();
    assert_eq!(status, StatusCode::SEE_OTHER);
}
