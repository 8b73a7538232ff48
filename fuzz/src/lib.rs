//! The shared harness of the fuzz targets: the real face engine, loaded
//! once with small decode limits so that one iteration stays cheap; the
//! real web application, built once over a temporary data directory and
//! driven in-process with `tower::ServiceExt::oneshot` under a session that
//! holds a CSRF token; and the checks that every HTTP answer must pass.

use std::sync::{Arc, LazyLock, Mutex};

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderValue, Method, Request, StatusCode};
use axum::Router;
use facegate_app::{build_app, Config};
use facegate_vision::{DecodeLimits, EngineConfig, FaceEngine};
use serde_json::{json, Value};
use tower::ServiceExt;

/// The models directory of the repository.
pub const MODELS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../models");

/// Largest encoded image the fuzzed engine accepts.
pub const MAX_IMAGE_BYTES: usize = 64 * 1024;
/// Largest decoded image (256 × 256): the detector's cost grows with the
/// pixel count, and a small image reaches every stage of the pipeline.
pub const MAX_IMAGE_PIXELS: u64 = 256 * 256;

/// The engine settings of every target: the shipped models, one session
/// and one thread per model, small decode limits.
pub fn engine_config() -> EngineConfig {
    EngineConfig {
        models_dir: MODELS.into(),
        intra_threads: 1,
        sessions: 1,
        decode: DecodeLimits {
            max_bytes: MAX_IMAGE_BYTES,
            max_pixels: MAX_IMAGE_PIXELS,
        },
        ..EngineConfig::default()
    }
}

static ENGINE: LazyLock<Arc<FaceEngine>> = LazyLock::new(|| {
    facegate_vision::runtime::init_located()
        .expect("ONNX Runtime not found: run `facegate setup` first");
    Arc::new(FaceEngine::load(engine_config()).expect("loading the face models"))
});

/// The process's one engine.
pub fn engine() -> Arc<FaceEngine> {
    ENGINE.clone()
}

/// A status, content type and body of one answer.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub content_type: Option<String>,
    pub body: Bytes,
}

impl Answer {
    /// The body as JSON, if it is JSON.
    pub fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// Panics unless this is what the API promises for any input: no 5xx,
    /// and a JSON body — `{"error": CODE, "message": TEXT}` for a 4xx.
    pub fn assert_handled(&self, what: &str) {
        let body = String::from_utf8_lossy(&self.body);
        assert!(
            !self.status.is_server_error(),
            "{what}: server error {} {body}",
            self.status
        );
        assert!(
            self.status.is_success() || self.status.is_client_error(),
            "{what}: unexpected status {} {body}",
            self.status
        );
        let is_json = self
            .content_type
            .as_deref()
            .is_some_and(|c| c.starts_with("application/json"));
        assert!(
            is_json,
            "{what}: {} answered with content type {:?}, not JSON: {body}",
            self.status, self.content_type
        );
        let v = self.json().unwrap_or_else(|| {
            panic!(
                "{what}: {} with a body that is not JSON: {body}",
                self.status
            )
        });
        if self.status.is_client_error() {
            assert!(
                v["error"].is_string() && v["message"].is_string(),
                "{what}: {} without an error code and message: {v}",
                self.status
            );
        }
    }
}

/// The web application, built once, with one browser-like session.
pub struct App {
    rt: tokio::runtime::Runtime,
    router: Router,
    /// `name=value` of the session cookie; it changes when a login cycles
    /// the session id.
    cookie: Mutex<Option<String>>,
    csrf: String,
    _dir: tempfile::TempDir,
}

impl App {
    /// Builds the app over a new temporary data directory with the fuzzed
    /// engine, rate limits off (every iteration comes from one address),
    /// then fetches a CSRF token for its session.
    pub fn start(tweak: impl FnOnce(&mut Config)) -> App {
        let dir = tempfile::tempdir().expect("a temporary data directory");
        let mut config = Config {
            data_dir: dir.path().to_path_buf(),
            engine: engine_config(),
            rate_limit_per_address: 0,
            rate_limit_per_account: 0,
            ..Config::default()
        };
        tweak(&mut config);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let engine = engine();
        let (router, _state) = rt
            .block_on(build_app(config, engine))
            .expect("building the app");
        let mut app = App {
            rt,
            router,
            cookie: Mutex::new(None),
            csrf: String::new(),
            _dir: dir,
        };
        let r = app.request(Method::GET, "/api/csrf", None, Body::empty());
        assert_eq!(r.status, StatusCode::OK, "GET /api/csrf");
        app.csrf = r.json().expect("a JSON answer")["csrf_token"]
            .as_str()
            .expect("a CSRF token")
            .to_string();
        app
    }

    /// Sends one request with the session cookie and the CSRF token and
    /// reads the whole answer.
    pub fn request(
        &self,
        method: Method,
        path: &str,
        content_type: Option<HeaderValue>,
        body: Body,
    ) -> Answer {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(c) = self
            .cookie
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
        {
            req = req.header(header::COOKIE, c);
        }
        if !self.csrf.is_empty() {
            req = req.header("x-csrf-token", &self.csrf);
        }
        if let Some(ct) = content_type {
            req = req.header(header::CONTENT_TYPE, ct);
        }
        let req = req.body(body).expect("a valid request");
        self.rt.block_on(async {
            let res = self
                .router
                .clone()
                .oneshot(req)
                .await
                .unwrap_or_else(|e| match e {});
            if let Some(set) = res.headers().get(header::SET_COOKIE) {
                let pair = set
                    .to_str()
                    .unwrap_or_default()
                    .split(';')
                    .next()
                    .unwrap_or_default()
                    .to_string();
                *self.cookie.lock().unwrap_or_else(|p| p.into_inner()) = Some(pair);
            }
            let status = res.status();
            let content_type = res
                .headers()
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let body = axum::body::to_bytes(res.into_body(), 16 * 1024 * 1024)
                .await
                .expect("reading the answer");
            Answer {
                status,
                content_type,
                body,
            }
        })
    }

    /// `POST path` with a JSON body.
    pub fn post_json(&self, path: &str, body: &Value) -> Answer {
        self.request(
            Method::POST,
            path,
            Some(HeaderValue::from_static("application/json")),
            Body::from(body.to_string()),
        )
    }

    /// Registers (and so logs in) a user for the session.
    pub fn register(&self, username: &str) {
        let r = self.post_json(
            "/api/register",
            &json!({
                "username": username,
                "email": format!("{username}@example.com"),
                "password": "correct horse battery staple",
            }),
        );
        assert_eq!(r.status, StatusCode::CREATED, "registering {username}");
    }
}
