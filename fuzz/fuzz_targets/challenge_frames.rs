//! Fuzz target: arbitrary bytes as the answer to a liveness challenge,
//! `POST /api/face-login/challenge/{id}/frames`, through the real router.
//! Each iteration first issues a fresh challenge to the session (a
//! challenge is single-use), then posts the input as the multipart body
//! (boundary `facegatefuzz`: repeated `frame` parts, one `timestamps` part
//! with a JSON array of milliseconds, `username`), so that the frames reach
//! the handler's field parsing, the timestamp checks, decoding and the
//! engine's sequence checks. The corpus holds frames whose headers claim
//! 6000×6000 or 481 pixels, refused from the header before any decoding.
//!
//! Asserts: no panic, no 5xx, and every answer is JSON — for a 4xx the
//! API's `{"error": CODE, "message": TEXT}`.
#![no_main]

use std::sync::LazyLock;

use axum::body::Body;
use axum::http::{HeaderValue, Method, StatusCode};
use facegate_fuzz::App;
use libfuzzer_sys::fuzz_target;
use serde_json::json;

static APP: LazyLock<App> = LazyLock::new(|| {
    App::start(|c| {
        c.liveness = facegate_app::Liveness::Both;
        // The seed frames are at most 64 px: let their faces count, so
        // that fuzzed answers get past "no face" to the timing, identity
        // and pose checks.
        c.liveness_challenge.min_face_px = 24.0;
    })
});

fuzz_target!(|data: &[u8]| {
    let issued = APP.post_json("/api/face-login/challenge", &json!({}));
    assert_eq!(issued.status, StatusCode::OK, "issuing a challenge");
    let id = issued.json().expect("a JSON challenge")["challenge_id"]
        .as_str()
        .expect("a challenge id")
        .to_string();
    let path = format!("/api/face-login/challenge/{id}/frames");
    let answer = APP.request(
        Method::POST,
        &path,
        Some(HeaderValue::from_static(
            "multipart/form-data; boundary=facegatefuzz",
        )),
        Body::from(data.to_vec()),
    );
    answer.assert_handled("POST /api/face-login/challenge/{id}/frames");
});
