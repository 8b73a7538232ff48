//! Replays the fuzz targets' inputs against the real server: the inputs
//! that once failed a target (fuzz/regressions/TARGET/) and the committed
//! seed corpus (fuzz/corpus/TARGET/), each in its target's input format.
//! Every answer must be what the fuzz targets assert: a 2xx or 4xx, never
//! a 5xx, with a JSON body, `{"error", "message"}` for a 4xx.

use reqwest::header::CONTENT_TYPE;
use reqwest::{Response, StatusCode};
use serde_json::Value;

use crate::helpers::{Agent, TestApp};

/// The boundary of the targets' fixed content type.
const BOUNDARY: &str = "facegatefuzz";

/// Regressions first, then the seed corpus.
fn replay_set(target: &str) -> Vec<(String, Vec<u8>)> {
    let all = facegate_testkit::corpus::regressions_then_corpus(target);
    assert!(!all.is_empty(), "no fuzz inputs for {target} under fuzz/");
    all
}

/// The multipart_upload target's format: the first line is the content
/// type (none when it is no valid header value), the rest the body;
/// without a line break in the first 256 bytes, all of it is the body of a
/// `boundary=facegatefuzz` request.
fn split_upload(data: &[u8]) -> (Option<Vec<u8>>, Vec<u8>) {
    match data.iter().take(256).position(|&b| b == b'\n') {
        Some(i) => {
            let ct = &data[..i];
            let valid = reqwest::header::HeaderValue::from_bytes(ct).is_ok();
            (valid.then(|| ct.to_vec()), data[i + 1..].to_vec())
        }
        None => (
            Some(format!("multipart/form-data; boundary={BOUNDARY}").into_bytes()),
            data.to_vec(),
        ),
    }
}

/// Posts a raw body with the agent's CSRF token.
async fn post_raw(a: &Agent, path: &str, content_type: Option<&[u8]>, body: Vec<u8>) -> Response {
    let mut req = a
        .client
        .post(a.url(path))
        .header("X-CSRF-Token", &a.csrf)
        .body(body);
    if let Some(ct) = content_type {
        req = req.header(CONTENT_TYPE, ct);
    }
    req.send().await.unwrap()
}

/// Checks an answer as the fuzz targets do; returns its status and code.
async fn assert_handled(r: Response, what: &str) -> (StatusCode, String) {
    let status = r.status();
    let ct = r
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let text = r.text().await.unwrap();
    assert!(
        status.is_success() || status.is_client_error(),
        "{what}: {status} {text}"
    );
    assert!(
        ct.starts_with("application/json"),
        "{what}: {status} with content type {ct:?}: {text}"
    );
    let v: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{what}: {e}: {text}"));
    if status.is_client_error() {
        assert!(
            v["error"].is_string() && v["message"].is_string(),
            "{what}: {status} {v}"
        );
    }
    (status, v["error"].as_str().unwrap_or_default().to_string())
}

/// Issues a challenge to `a`'s session; its frames path.
async fn frames_path(a: &Agent) -> String {
    let r = a
        .post_json("/api/face-login/challenge", serde_json::json!({}))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.unwrap();
    format!(
        "/api/face-login/challenge/{}/frames",
        v["challenge_id"].as_str().unwrap()
    )
}

#[tokio::test]
async fn uploads_that_are_not_multipart_get_json_errors() {
    let app = TestApp::spawn_with(|c| c.liveness = facegate_app::Liveness::Both).await;
    let a = app.agent().await;
    a.register("fuzzed").await;
    let body = b"--x\r\nContent-Disposition: form-data; name=\"image\"\r\n\r\nabc\r\n--x--\r\n";
    let types: [Option<&[u8]>; 4] = [
        None,
        Some(b"text/plain"),
        Some(b"multipart/form-data"),
        Some(b"multipart/form-data; boundary="),
    ];
    for ct in types {
        for path in [
            "/api/me/faces".to_string(),
            "/api/face-login".to_string(),
            frames_path(&a).await,
        ] {
            let what = format!(
                "{path} with content type {:?}",
                ct.map(String::from_utf8_lossy)
            );
            let r = post_raw(&a, &path, ct, body.to_vec()).await;
            assert_eq!(
                assert_handled(r, &what).await,
                (StatusCode::BAD_REQUEST, "invalid".into()),
                "{what}"
            );
        }
    }
}

#[tokio::test]
async fn multipart_upload_inputs_get_json_answers() {
    let app = TestApp::spawn_with(|c| {
        c.rate_limit_per_address = 0;
        c.rate_limit_per_account = 0;
    })
    .await;
    let a = app.agent().await;
    a.register("fuzzed").await;
    for (name, data) in replay_set("multipart_upload") {
        let (ct, body) = split_upload(&data);
        for path in ["/api/me/faces", "/api/face-login"] {
            let r = post_raw(&a, path, ct.as_deref(), body.clone()).await;
            assert_handled(r, &format!("{name} on {path}")).await;
        }
    }
    assert_eq!(a.get("/healthz").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn challenge_frames_inputs_get_json_answers() {
    let app = TestApp::spawn_with(|c| {
        c.rate_limit_per_address = 0;
        c.liveness = facegate_app::Liveness::Both;
        c.liveness_challenge.min_face_px = 24.0;
    })
    .await;
    let a = app.agent().await;
    let ct = format!("multipart/form-data; boundary={BOUNDARY}");
    for (name, data) in replay_set("challenge_frames") {
        let path = frames_path(&a).await;
        let r = post_raw(&a, &path, Some(ct.as_bytes()), data).await;
        let (status, _) = assert_handled(r, &name).await;
        assert!(status.is_client_error(), "{name}: {status}");
    }
}
