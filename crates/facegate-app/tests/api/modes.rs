//! The verify and second_factor modes, and the face lockout.

use facegate_app::FaceLoginMode;
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{error_of, face, landscape, Backend, TestApp, PASSWORD};

#[tokio::test]
async fn verify_mode_needs_the_right_username() {
    let app = TestApp::spawn_with(|c| c.face_login = FaceLoginMode::Verify).await;
    app.user_with_faces("barack", &["obama_1.jpg"]).await;
    app.user_with_faces("kit", &["kit_harington_1.jpg"]).await;
    let a = app.agent().await;

    let r = a.face_login(&face("obama_2.jpg"), None).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    let r = a.face_login(&face("obama_2.jpg"), Some("kit")).await;
    let (status, code) = error_of(r).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UNAUTHORIZED, "unknown")
    );

    // An unknown username gets exactly the same answer.
    let known: Value = a
        .face_login(&face("obama_2.jpg"), Some("kit"))
        .await
        .json()
        .await
        .unwrap();
    let unknown: Value = a
        .face_login(&face("obama_2.jpg"), Some("nobody"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(known, unknown);

    let r = a.face_login(&face("obama_2.jpg"), Some("barack")).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(a.me().await.as_deref(), Some("barack"));
}

#[tokio::test]
async fn second_factor_mode_needs_password_then_face() {
    let app = TestApp::spawn_with(|c| c.face_login = FaceLoginMode::SecondFactor).await;
    app.user_with_faces("barack", &["obama_1.jpg"]).await;

    // A face alone is not enough.
    let a = app.agent().await;
    let (status, code) = error_of(a.face_login(&face("obama_2.jpg"), None).await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UNAUTHORIZED, "not_authenticated")
    );

    let r = a.login("barack", PASSWORD).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.unwrap()["face_required"], true);
    assert_eq!(a.me().await, None, "not logged in before the face");

    let (_, code) = error_of(a.face_login(&face("biden_2.jpg"), None).await).await;
    assert_eq!(code, "unknown");
    assert_eq!(a.me().await, None);

    let r = a.face_login(&face("obama_2.jpg"), None).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(a.me().await.as_deref(), Some("barack"));
}

#[tokio::test]
async fn five_failures_lock_face_login_but_not_the_password() {
    five_failures_lock_face_login_but_not_the_password_on(Backend::Sqlite).await;
}

#[tokio::test]
async fn five_failures_lock_face_login_but_not_the_password_on_postgres() {
    five_failures_lock_face_login_but_not_the_password_on(Backend::Postgres).await;
}

async fn five_failures_lock_face_login_but_not_the_password_on(backend: Backend) {
    let app = TestApp::spawn_on(backend, |c| c.face_login = FaceLoginMode::Verify).await;
    app.user_with_faces("barack", &["obama_1.jpg"]).await;
    let a = app.agent().await;
    for i in 0..5 {
        let (status, code) =
            error_of(a.face_login(&face("biden_2.jpg"), Some("barack")).await).await;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::UNAUTHORIZED, "unknown"),
            "attempt {i}"
        );
    }
    let (status, code) = error_of(a.face_login(&face("obama_2.jpg"), Some("barack")).await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::TOO_MANY_REQUESTS, "locked")
    );
    assert_eq!(a.me().await, None);

    let b = app.agent().await;
    assert_eq!(b.login("barack", PASSWORD).await.status(), StatusCode::OK);
    assert_eq!(b.me().await.as_deref(), Some("barack"));

    let attempts = app.state.services.recent_attempts(10).await.unwrap();
    assert_eq!(attempts[1].outcome, "locked");
}

#[tokio::test]
async fn identify_mode_locks_the_account_that_matched() {
    identify_mode_locks_the_account_that_matched_on(Backend::Sqlite).await;
}

#[tokio::test]
async fn identify_mode_locks_the_account_that_matched_on_postgres() {
    identify_mode_locks_the_account_that_matched_on(Backend::Postgres).await;
}

async fn identify_mode_locks_the_account_that_matched_on(backend: Backend) {
    let app = TestApp::spawn_on(backend, |_| {}).await;
    let id = app.user_with_faces("barack", &["obama_1.jpg"]).await;
    let now = time::OffsetDateTime::now_utc();
    let until = now + time::Duration::minutes(10);
    let store = &app.state.services.store;
    for _ in 0..5 {
        store.record_face_failure(id, 5, until, now).await.unwrap();
    }
    let a = app.agent().await;
    let (status, code) = error_of(a.face_login(&face("obama_2.jpg"), None).await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::TOO_MANY_REQUESTS, "locked")
    );
    // As a success after the lock ended would.
    assert!(store.reset_face_failures(id, until).await.unwrap());
    assert_eq!(
        a.face_login(&face("obama_2.jpg"), None).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn verify_lockout_does_not_tell_which_usernames_exist() {
    verify_lockout_does_not_tell_which_usernames_exist_on(Backend::Sqlite).await;
}

#[tokio::test]
async fn verify_lockout_does_not_tell_which_usernames_exist_on_postgres() {
    verify_lockout_does_not_tell_which_usernames_exist_on(Backend::Postgres).await;
}

/// What probing a claimed username with a wrong face, then with a photo
/// of no face at all, answers: status and error code of each attempt.
async fn probe(a: &crate::helpers::Agent, username: &str) -> Vec<(StatusCode, String)> {
    let mut answers = Vec::new();
    for _ in 0..6 {
        answers.push(error_of(a.face_login(&face("biden_2.jpg"), Some(username)).await).await);
    }
    answers.push(error_of(a.face_login(&landscape(), Some(username)).await).await);
    answers
}

/// Finding 7 of issue 16: a known username used to lock after five wrong
/// faces (then `locked` even for a faceless photo) while an unknown one
/// answered `unknown` forever. Both now answer alike.
async fn verify_lockout_does_not_tell_which_usernames_exist_on(backend: Backend) {
    let app = TestApp::spawn_on(backend, |c| {
        c.face_login = FaceLoginMode::Verify;
        c.rate_limit_per_address = 0; // every probe comes from one address
    })
    .await;
    app.user_with_faces("barack", &["obama_1.jpg"]).await;
    let known = probe(&app.agent().await, "barack").await;
    let unknown = probe(&app.agent().await, "nosuchuser").await;
    let mut expected = vec![(StatusCode::UNAUTHORIZED, "unknown".to_string()); 5];
    expected.push((StatusCode::TOO_MANY_REQUESTS, "locked".into()));
    expected.push((StatusCode::TOO_MANY_REQUESTS, "locked".into()));
    assert_eq!(known, expected, "a known username");
    assert_eq!(unknown, expected, "an unknown username");
    // The name's lock is its own: another unknown name is not locked, and
    // the case of the claimed name does not matter.
    let a = app.agent().await;
    let (_, code) = error_of(a.face_login(&face("biden_2.jpg"), Some("NoSuchUser")).await).await;
    assert_eq!(code, "locked");
    let (_, code) = error_of(a.face_login(&face("biden_2.jpg"), Some("other")).await).await;
    assert_eq!(code, "unknown");
}
