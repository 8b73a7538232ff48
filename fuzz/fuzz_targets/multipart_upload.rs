//! Fuzz target: arbitrary bytes as a face upload, `POST /api/me/faces`,
//! through the real router (session, CSRF guard, body limit, the shared
//! multipart reader `read_upload`, enrolment with the real engine) as a
//! logged-in user.
//!
//! Input: the first line is the `Content-Type` header (so the boundary and
//! its quoting are fuzzed too; a line that is no valid header value sends
//! none), the rest is the body. Without a line break the whole input is the
//! body of a `multipart/form-data; boundary=facegatefuzz` request.
//!
//! Asserts: no panic, no 5xx, and every answer is JSON — for a 4xx the
//! API's `{"error": CODE, "message": TEXT}`.
#![no_main]

use std::sync::LazyLock;

use axum::body::Body;
use axum::http::{HeaderValue, Method};
use facegate_fuzz::App;
use libfuzzer_sys::fuzz_target;

/// Longest first line taken as the content type.
const MAX_CONTENT_TYPE: usize = 256;

static APP: LazyLock<App> = LazyLock::new(|| {
    let app = App::start(|c| c.liveness = facegate_app::Liveness::Off);
    app.register("fuzzer");
    app
});

fuzz_target!(|data: &[u8]| {
    let (content_type, body) = match data.iter().take(MAX_CONTENT_TYPE).position(|&b| b == b'\n') {
        Some(i) => (HeaderValue::from_bytes(&data[..i]).ok(), &data[i + 1..]),
        None => (
            Some(HeaderValue::from_static(
                "multipart/form-data; boundary=facegatefuzz",
            )),
            data,
        ),
    };
    let answer = APP.request(
        Method::POST,
        "/api/me/faces",
        content_type,
        Body::from(body.to_vec()),
    );
    answer.assert_handled("POST /api/me/faces");
});
