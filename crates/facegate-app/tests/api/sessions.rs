//! How sessions end (findings 6 and 9 of issue 16): logout wins over the
//! requests still in flight with its cookie, and a password change, a
//! deactivation or "log out everywhere" end every other session of the
//! account. Each runs on SQLite and on PostgreSQL.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{face, Agent, Backend, TestApp, PASSWORD};

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

/// The owner's browser: logged in as `username` (registered with the
/// tests' password) with a cookie jar.
async fn owner(app: &TestApp, username: &str) -> Agent {
    let mut a = app.agent().await;
    assert_eq!(a.login(username, PASSWORD).await.status(), StatusCode::OK);
    a.refresh_csrf().await;
    a
}

#[tokio::test]
async fn a_password_change_ends_every_other_session() {
    a_password_change_ends_every_other_session_on(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_password_change_ends_every_other_session_on_postgres() {
    a_password_change_ends_every_other_session_on(Backend::Postgres).await;
}

/// Finding 6: a stolen cookie kept working after the owner changed the
/// password.
async fn a_password_change_ends_every_other_session_on(backend: Backend) {
    let app = TestApp::spawn_on(backend, |_| {}).await;
    app.user_with_faces("alice", &[]).await;
    let thief = Raw::logged_in(&app.base, "alice").await;
    let a = owner(&app, "alice").await;
    assert_eq!(thief.me().await, StatusCode::OK);
    let new = "a brand new passphrase";
    let fields = [
        ("current_password", PASSWORD),
        ("password", new),
        ("password2", new),
    ];
    let r = a.post_form("/profile/password", &fields).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let page = a.page("/profile").await;
    assert!(
        page.contains("every other session was logged out"),
        "{page}"
    );
    assert_eq!(a.me().await.as_deref(), Some("alice"), "the owner stays");
    assert_eq!(
        thief.me().await,
        StatusCode::UNAUTHORIZED,
        "the thief is out"
    );
    let again = app.agent().await;
    assert_eq!(again.login("alice", new).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn log_out_everywhere_ends_every_other_session() {
    log_out_everywhere_ends_every_other_session_on(Backend::Sqlite).await;
}

#[tokio::test]
async fn log_out_everywhere_ends_every_other_session_on_postgres() {
    log_out_everywhere_ends_every_other_session_on(Backend::Postgres).await;
}

async fn log_out_everywhere_ends_every_other_session_on(backend: Backend) {
    let app = TestApp::spawn_on(backend, |_| {}).await;
    app.user_with_faces("alice", &[]).await;
    let other = Raw::logged_in(&app.base, "alice").await;
    let a = owner(&app, "alice").await;
    let page = a.page("/profile").await;
    assert!(page.contains("id=\"logout-everywhere\""), "no button");
    let r = a.post_form("/profile/logout-everywhere", &[]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(other.me().await, StatusCode::UNAUTHORIZED);
    assert_eq!(a.me().await.as_deref(), Some("alice"));
    let page = a.page("/profile").await;
    assert!(page.contains("Every other session of your account was logged out"));
}

#[tokio::test]
async fn deactivation_ends_sessions_for_good() {
    deactivation_ends_sessions_for_good_on(Backend::Sqlite).await;
}

#[tokio::test]
async fn deactivation_ends_sessions_for_good_on_postgres() {
    deactivation_ends_sessions_for_good_on(Backend::Postgres).await;
}

/// Finding 6: after a deactivation and a reactivation, an old cookie
/// worked again.
async fn deactivation_ends_sessions_for_good_on(backend: Backend) {
    let app = TestApp::spawn_on(backend, |_| {}).await;
    let id = app.user_with_faces("alice", &[]).await;
    let old = Raw::logged_in(&app.base, "alice").await;
    assert_eq!(old.me().await, StatusCode::OK);
    app.state.services.set_active(id, false).await.unwrap();
    assert_eq!(old.me().await, StatusCode::UNAUTHORIZED);
    app.state.services.set_active(id, true).await.unwrap();
    assert_eq!(
        old.me().await,
        StatusCode::UNAUTHORIZED,
        "back after reactivation"
    );
    let fresh = Raw::logged_in(&app.base, "alice").await;
    assert_eq!(fresh.me().await, StatusCode::OK);
}

#[tokio::test]
async fn sensitive_changes_need_a_fresh_authentication() {
    sensitive_changes_need_a_fresh_authentication_on(Backend::Sqlite).await;
}

#[tokio::test]
async fn sensitive_changes_need_a_fresh_authentication_on_postgres() {
    sensitive_changes_need_a_fresh_authentication_on(Backend::Postgres).await;
}

/// Finding 6: a stolen session added the thief's face (201), a backdoor
/// that outlived the password change. A session whose login is older
/// than `reauth_seconds` must confirm the password first.
async fn sensitive_changes_need_a_fresh_authentication_on(backend: Backend) {
    const WINDOW: i64 = 2;
    let app = TestApp::spawn_on(backend, |c| c.reauth_seconds = WINDOW).await;
    app.user_with_faces("alice", &["obama_1.jpg"]).await;
    let a = owner(&app, "alice").await;
    // Right after the login the session is fresh.
    let page = a.page("/profile").await;
    assert!(!page.contains("id=\"reauth-form\""));
    // Let the login age past the window (this is the state of a stolen
    // session, not a measure of speed).
    tokio::time::sleep(std::time::Duration::from_millis(WINDOW as u64 * 1000 + 500)).await;
    let r = a.upload_face(&face("obama_2.jpg")).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "reauth_required");
    assert!(body["message"]
        .as_str()
        .unwrap()
        .contains("confirm your password"));
    let r = a
        .post_form("/profile/email", &[("email", "thief@example.com")])
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let page = a.page("/profile").await;
    assert!(
        page.contains("id=\"reauth-form\""),
        "the page asks for the password"
    );
    assert!(page.contains("confirm your password"), "{page}");
    let r = a.post_form("/profile/faces/delete-all", &[]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let me: Value = a.get("/api/me").await.json().await.unwrap();
    assert_eq!(me["email"], "alice@example.com", "e-mail changed");
    assert_eq!(me["faces"], 1, "faces added or deleted");

    let wrong = a
        .post_json("/api/me/reauth", json!({"password": "not it at all"}))
        .await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let ok = a
        .post_json("/api/me/reauth", json!({"password": PASSWORD}))
        .await;
    assert_eq!(ok.status(), StatusCode::NO_CONTENT);
    let r = a.upload_face(&face("obama_2.jpg")).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = a
        .post_form("/profile/email", &[("email", "new@example.com")])
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let me: Value = a.get("/api/me").await.json().await.unwrap();
    assert_eq!(
        (me["email"].as_str(), me["faces"].as_i64()),
        (Some("new@example.com"), Some(2))
    );
}

#[tokio::test]
async fn the_owner_is_told_that_a_face_was_added() {
    the_owner_is_told_that_a_face_was_added_on(Backend::Sqlite).await;
}

#[tokio::test]
async fn the_owner_is_told_that_a_face_was_added_on_postgres() {
    the_owner_is_told_that_a_face_was_added_on(Backend::Postgres).await;
}

/// Finding 6: a face added to the account is shown at the next logins
/// until one with the password (a face login, maybe the new face's, does
/// not make it go away); the enrolment is audited.
async fn the_owner_is_told_that_a_face_was_added_on(backend: Backend) {
    let app = TestApp::spawn_on(backend, |_| {}).await;
    app.user_with_faces("barack", &["obama_1.jpg"]).await;
    let notice = |v: Value| v["notice"].as_str().map(str::to_string);
    let a = app.agent().await;
    let r = a.face_login(&face("obama_2.jpg"), None).await;
    assert_eq!(r.status(), StatusCode::OK);
    let told = notice(r.json().await.unwrap()).expect("a notice at the face login");
    assert!(
        told.contains("A face photo was added to your account"),
        "{told}"
    );
    let r = app
        .agent()
        .await
        .face_login(&face("obama_2.jpg"), None)
        .await;
    assert!(
        notice(r.json().await.unwrap()).is_some(),
        "a face login cleared it"
    );
    let b = app.agent().await;
    let r = b.login("barack", PASSWORD).await;
    assert!(notice(r.json().await.unwrap()).is_some());
    let page = b.page("/").await;
    assert!(
        page.contains("A face photo was added to your account"),
        "no flash"
    );
    let r = app.agent().await.login("barack", PASSWORD).await;
    assert_eq!(notice(r.json().await.unwrap()), None, "told once is enough");
    let store = &app.state.services.store;
    let events = store.audit_events(&Default::default()).await.unwrap();
    assert!(events
        .iter()
        .any(|e| e.kind == "enrolment" && e.outcome == "success"));
}
