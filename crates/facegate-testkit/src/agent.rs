//! A browser-like client of a facegate server: its own cookie jar, the
//! session's CSRF token, and one method per request the tests make. The
//! `try_` methods are for servers that may go away mid-request (fault
//! tests): they return the transport error instead of panicking.

use reqwest::multipart::{Form, Part};
use reqwest::{Response, StatusCode};
use serde_json::{json, Value};

/// The password every test account gets.
pub const PASSWORD: &str = "correct horse battery";

/// A client with a cookie jar and its session's CSRF token.
pub struct Agent {
    pub base: String,
    pub client: reqwest::Client,
    pub csrf: String,
}

impl Agent {
    /// A new client of the server at `base` that sees redirects as they
    /// are (API tests look at the `303` itself).
    pub async fn new(base: &str) -> Agent {
        Self::try_with(base, reqwest::redirect::Policy::none())
            .await
            .expect("GET /api/csrf")
    }

    /// A new client that follows redirects, as a browser does; an error
    /// when the server cannot be reached.
    pub async fn try_following(base: &str) -> reqwest::Result<Agent> {
        Self::try_with(base, reqwest::redirect::Policy::default()).await
    }

    async fn try_with(base: &str, redirects: reqwest::redirect::Policy) -> reqwest::Result<Agent> {
        let client = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(redirects)
            .build()
            .expect("a reqwest client");
        let mut agent = Agent {
            base: base.to_string(),
            client,
            csrf: String::new(),
        };
        agent.try_refresh_csrf().await?;
        Ok(agent)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Takes the session's current CSRF token (after a login or logout the
    /// session, and so its token, is new).
    pub async fn refresh_csrf(&mut self) {
        self.try_refresh_csrf().await.expect("GET /api/csrf");
    }

    async fn try_refresh_csrf(&mut self) -> reqwest::Result<()> {
        let v: Value = self
            .client
            .get(self.url("/api/csrf"))
            .send()
            .await?
            .json()
            .await?;
        self.csrf = v["csrf_token"].as_str().expect("a csrf_token").to_string();
        Ok(())
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

    /// `POST /api/register` with the tests' password (which also logs in).
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
        self.try_upload_face(bytes).await.unwrap()
    }

    /// `POST /api/me/faces` where the server may go away.
    pub async fn try_upload_face(&self, bytes: &[u8]) -> reqwest::Result<Response> {
        let form = Form::new().part("image", Part::bytes(bytes.to_vec()).file_name("face.jpg"));
        self.client
            .post(self.url("/api/me/faces"))
            .header("X-CSRF-Token", &self.csrf)
            .multipart(form)
            .send()
            .await
    }

    pub async fn face_login(&self, bytes: &[u8], username: Option<&str>) -> Response {
        self.try_face_login(bytes, username).await.unwrap()
    }

    /// `POST /api/face-login` where the server may go away.
    pub async fn try_face_login(
        &self,
        bytes: &[u8],
        username: Option<&str>,
    ) -> reqwest::Result<Response> {
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

    /// The profile page's upload form (the page's CSRF field, not the
    /// header).
    pub async fn upload_on_profile(&self, bytes: &[u8]) -> Response {
        let form = Form::new()
            .text("csrf_token", self.csrf.clone())
            .part("image", Part::bytes(bytes.to_vec()).file_name("face.jpg"));
        // The page's form carries the token in its action URL too, so the
        // server can refuse a forged upload before reading the body.
        let url = self.url(&format!("/profile/faces?csrf_token={}", self.csrf));
        self.client.post(url).multipart(form).send().await.unwrap()
    }

    /// Posts a page form with the session's CSRF token added.
    pub async fn post_form(&self, path: &str, fields: &[(&str, &str)]) -> Response {
        let mut form: Vec<(&str, &str)> = vec![("csrf_token", self.csrf.as_str())];
        form.extend_from_slice(fields);
        self.client
            .post(self.url(path))
            .form(&form)
            .send()
            .await
            .unwrap()
    }

    /// The body of the page at `path` (any status).
    pub async fn page(&self, path: &str) -> String {
        self.get(path).await.text().await.unwrap()
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

/// Status and JSON body of an answer (`null` when the body is not JSON or
/// was cut off).
pub async fn status_json(r: Response) -> (StatusCode, Value) {
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Status and error code of a JSON error answer.
pub async fn error_of(r: Response) -> (StatusCode, String) {
    let (status, v) = status_json(r).await;
    (status, v["error"].as_str().unwrap_or_default().to_string())
}

/// A new session made by hand, for tests that write raw HTTP: the
/// `name=value` of its cookie and its CSRF token.
pub async fn raw_session(base: &str) -> (String, String) {
    let r = reqwest::get(format!("{base}/api/csrf")).await.unwrap();
    let cookie = first_cookie(&r);
    let token = r.json::<Value>().await.unwrap()["csrf_token"]
        .as_str()
        .unwrap()
        .to_string();
    (cookie, token)
}

/// The `name=value` of the first cookie an answer sets.
pub fn first_cookie(r: &Response) -> String {
    r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string()
}
