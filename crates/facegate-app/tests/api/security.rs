//! CSRF, rate limits, enumeration-safe messages, headers, cookies, pages.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{error_of, face, TestApp, PASSWORD};

#[tokio::test]
async fn state_changes_without_csrf_are_forbidden() {
    let app = TestApp::spawn().await;
    let a = app.agent().await;
    let body = json!({"username": "eve", "email": "eve@example.com", "password": PASSWORD});
    let r = a
        .client
        .post(a.url("/api/register"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(r).await, (StatusCode::FORBIDDEN, "csrf".into()));
    let r = a
        .client
        .post(a.url("/api/register"))
        .header("X-CSRF-Token", "wrong")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let form = reqwest::multipart::Form::new().part(
        "image",
        reqwest::multipart::Part::bytes(face("obama_1.jpg")),
    );
    let r = a
        .client
        .post(a.url("/api/face-login"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // A page form without the token.
    let r = a
        .client
        .post(a.url("/login"))
        .form(&[("username", "eve"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // With the token it works.
    assert_eq!(
        a.post_json("/api/register", body).await.status(),
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn messages_do_not_reveal_whether_a_username_exists() {
    let app = TestApp::spawn().await;
    let mut a = app.agent().await;
    a.register("alice").await;
    a.logout().await;
    let wrong_password: Value = a
        .login("alice", "not the password")
        .await
        .json()
        .await
        .unwrap();
    let r = a.login("nobody-here", "not the password").await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let no_user: Value = r.json().await.unwrap();
    assert_eq!(wrong_password, no_user);
    assert_eq!(no_user["error"], "invalid_credentials");

    let r = a.register("alice").await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let r = a
        .post_json(
            "/api/register",
            json!({"username": "x", "email": "bad", "password": "1"}),
        )
        .await;
    assert_eq!(
        error_of(r).await,
        (StatusCode::BAD_REQUEST, "invalid".into())
    );
}

#[tokio::test]
async fn logins_are_rate_limited_per_address() {
    let app = TestApp::spawn_with(|c| c.rate_limit_per_address = 3).await;
    let a = app.agent().await;
    for _ in 0..3 {
        assert_eq!(
            a.login("alice", "wrong password").await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        error_of(a.login("alice", "wrong password").await).await,
        (StatusCode::TOO_MANY_REQUESTS, "rate_limited".into())
    );
    assert_eq!(
        error_of(a.face_login(&face("obama_1.jpg"), None).await)
            .await
            .1,
        "rate_limited"
    );
    let attempts = app.state.services.recent_attempts(10).await.unwrap();
    assert_eq!(attempts[0].outcome, "rate_limited");
}

#[tokio::test]
async fn password_attempts_are_limited_per_account() {
    let app = TestApp::spawn_with(|c| c.rate_limit_per_account = 2).await;
    let mut a = app.agent().await;
    a.register("alice").await;
    a.logout().await;
    a.login("alice", "wrong password").await;
    a.login("alice", "wrong password").await;
    assert_eq!(
        a.login("alice", PASSWORD).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        a.login("bob", "whatever pass").await.status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn headers_cookies_and_session_rotation() {
    let app = TestApp::spawn().await;
    let a = app.agent().await;
    let r = a.get("/login").await;
    assert_eq!(r.status(), StatusCode::OK);
    let h = r.headers();
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'") && csp.contains("script-src 'self'"));
    assert!(!csp.contains("unsafe-inline"));
    assert_eq!(h["x-content-type-options"], "nosniff");
    let body = r.text().await.unwrap();
    for id in ["login-form", "login-submit", "face-login-link"] {
        assert!(body.contains(&format!("id=\"{id}\"")), "{id}");
    }
    assert!(!body.contains("<script>"), "no inline script");

    // The session cookie is HttpOnly and SameSite=Lax; login rotates it.
    let fresh = reqwest::Client::new();
    let r = fresh.get(a.url("/api/csrf")).send().await.unwrap();
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    assert!(!cookie.contains("Secure"));
    let before = cookie.split(';').next().unwrap().to_string();
    let token = r.json::<Value>().await.unwrap()["csrf_token"]
        .as_str()
        .unwrap()
        .to_string();
    let body = json!({"username": "alice", "email": "alice@example.com", "password": PASSWORD});
    let r = fresh
        .post(a.url("/api/register"))
        .header("cookie", &before)
        .header("X-CSRF-Token", token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let after = facegate_testkit::agent::first_cookie(&r);
    assert_ne!(before, after, "session id rotated at login");
}

#[tokio::test]
async fn pages_need_login_and_show_the_user() {
    let app = TestApp::spawn().await;
    let a = app.agent().await;
    let r = a.get("/").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], "/login");
    let r = a.get("/register").await;
    let body = r.text().await.unwrap();
    for id in ["register-form", "register-submit"] {
        assert!(body.contains(&format!("id=\"{id}\"")), "{id}");
    }
    let face_page = a.get("/face-login").await.text().await.unwrap();
    assert!(face_page.contains("id=\"camera\"") && face_page.contains("id=\"face-status\""));
    assert!(face_page.contains("data-interval=\"2000\""));

    // Register through the page form.
    let csrf = a.csrf.clone();
    let r = a
        .client
        .post(a.url("/register"))
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("username", "alice"),
            ("email", "alice@example.com"),
            ("password", PASSWORD),
            ("password2", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let home = a.get("/").await.text().await.unwrap();
    assert!(home.contains("id=\"welcome\"") && home.contains("alice"));
    assert!(home.contains("id=\"user-menu\"") && home.contains("id=\"logout-form\""));
    let profile = a.get("/profile").await.text().await.unwrap();
    for id in [
        "face-upload-form",
        "face-file",
        "face-upload-submit",
        "face-capture",
        "face-list",
    ] {
        assert!(profile.contains(&format!("id=\"{id}\"")), "{id}");
    }
    // No face data yet: nothing to delete is offered.
    assert!(!profile.contains("id=\"delete-all-faces\""));
    // Not staff: no admin pages.
    assert_eq!(a.get("/admin/users").await.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn staff_pages_list_users_and_attempts_and_deactivate() {
    let app = TestApp::spawn().await;
    let store = app.state.services.store.clone();
    facegate_app::service::create_superuser(store, "root", "root@example.com", PASSWORD)
        .await
        .unwrap();
    let victim = app.user_with_faces("barack", &["obama_1.jpg"]).await;
    let mut admin = app.agent().await;
    assert_eq!(admin.login("root", PASSWORD).await.status(), StatusCode::OK);
    admin.refresh_csrf().await;
    let users = admin.get("/admin/users").await.text().await.unwrap();
    assert!(users.contains("barack") && users.contains("id=\"users-table\""));
    let attempts = admin.get("/admin/attempts").await.text().await.unwrap();
    assert!(attempts.contains("password") && attempts.contains("success"));
    // Staff may see a user's photo, and each such view is audited (issue
    // 16, finding 11); the owner's own thumbnails are not.
    let faces = app.state.services.faces(victim).await.unwrap();
    let views = || async {
        let events = app
            .state
            .services
            .store
            .audit_events(&Default::default())
            .await
            .unwrap();
        events
            .into_iter()
            .filter(|e| e.detail.contains("action=view_face_photo"))
            .collect::<Vec<_>>()
    };
    assert!(views().await.is_empty());
    assert_eq!(
        admin
            .get(&format!("/media/faces/{}", faces[0].id))
            .await
            .status(),
        StatusCode::OK
    );
    let seen = views().await;
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].subject_user_id, Some(victim));
    assert_eq!(seen[0].username.as_deref(), Some("root"));

    let r = admin
        .client
        .post(admin.url(&format!("/admin/users/{victim}/deactivate")))
        .form(&[("csrf_token", admin.csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    // A deactivated user can log in neither with the face nor the password.
    let a = app.agent().await;
    assert_eq!(
        error_of(a.face_login(&face("obama_2.jpg"), None).await)
            .await
            .1,
        "unknown"
    );
    assert_eq!(
        a.login("barack", PASSWORD).await.status(),
        StatusCode::UNAUTHORIZED
    );
}
