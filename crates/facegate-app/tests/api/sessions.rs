//! How sessions end (findings 6 and 9 of issue 16): logout wins over the
//! requests still in flight with its cookie, and a password change, a
//! deactivation or "log out everywhere" end every other session of the
//! account. Each runs on SQLite and on PostgreSQL.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{face, Backend, TestApp, PASSWORD};

/// A client with no cookie jar: every request carries the cookie it is
/// given, as a stolen or an old cookie would be replayed.
struct Raw {
    base: String,
    client: reqwest::Client,
    cookie: String,
    csrf: String,
}

impl Raw {
    /// A new session, then a password login of `username` on it.
    async fn logged_in(base: &str, username: &str) -> Raw {
        let (cookie, csrf) = facegate_testkit::agent::raw_session(base).await;
        let mut raw = Raw {
            base: base.to_string(),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookie,
            csrf,
        };
        let body = json!({"username": username, "password": PASSWORD});
        let r = raw.post("/api/login").json(&body).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        raw.cookie = facegate_testkit::agent::first_cookie(&r);
        raw
    }

    fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.client
            .post(format!("{}{path}", self.base))
            .header("cookie", &self.cookie)
            .header("X-CSRF-Token", &self.csrf)
    }

    /// The status of `GET /api/me` with this cookie.
    async fn me(&self) -> StatusCode {
        let url = format!("{}/api/me", self.base);
        let r = self.client.get(url).header("cookie", &self.cookie);
        r.send().await.unwrap().status()
    }

    /// The profile page's upload: a slow request (the photo is analysed)
    /// that writes to its session (the message shown next), so saves it.
    async fn upload(&self, photo: Vec<u8>) -> StatusCode {
        let part = reqwest::multipart::Part::bytes(photo).file_name("face.jpg");
        let form = reqwest::multipart::Form::new().part("image", part);
        let path = format!("/profile/faces?csrf_token={}", self.csrf);
        let r = self.post(&path).multipart(form).send().await;
        r.unwrap().status()
    }
}

#[tokio::test]
async fn logout_wins_over_requests_in_flight() {
    logout_wins_over_requests_in_flight_on(Backend::Sqlite).await;
}

#[tokio::test]
async fn logout_wins_over_requests_in_flight_on_postgres() {
    logout_wins_over_requests_in_flight_on(Backend::Postgres).await;
}

/// Finding 9: requests in flight with the cookie when the user logged out
/// saved the session again when they ended (a request that wrote to its
/// session, as a page showing a message does), and the old cookie worked
/// again.
async fn logout_wins_over_requests_in_flight_on(backend: Backend) {
    const TRIALS: usize = 6;
    const IN_FLIGHT: usize = 4;
    let app = TestApp::spawn_on(backend, |c| c.rate_limit_per_address = 0).await;
    app.user_with_faces("alice", &[]).await;
    let photo = face("obama_1.jpg");
    let mut raced = 0;
    for trial in 0..TRIALS {
        let raw = Arc::new(Raw::logged_in(&app.base, "alice").await);
        assert_eq!(raw.me().await, StatusCode::OK);
        let logged_out = Arc::new(AtomicBool::new(false));
        let mut slow = Vec::new();
        for _ in 0..IN_FLIGHT {
            let (raw, photo, logged_out) = (raw.clone(), photo.clone(), logged_out.clone());
            slow.push(tokio::spawn(async move {
                let status = raw.upload(photo).await;
                (status, logged_out.load(Ordering::SeqCst))
            }));
        }
        // Out once the first of them is done: the others are in flight.
        while !slow.iter().any(|t| t.is_finished()) {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        let r = raw.post("/api/logout").send().await.unwrap();
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
        logged_out.store(true, Ordering::SeqCst);
        for t in slow {
            let (status, after) = t.await.unwrap();
            if after {
                raced += 1;
            }
            assert_eq!(status, StatusCode::SEE_OTHER, "trial {trial}");
        }
        assert_eq!(
            raw.me().await,
            StatusCode::UNAUTHORIZED,
            "trial {trial}: the old cookie works after logout"
        );
    }
    assert!(
        raced > 0,
        "no request ended after a logout: nothing was tested"
    );
}
