//! The original flow and the face outcomes of login and enrolment.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{error_of, face, landscape, Backend, TestApp, PASSWORD};

#[tokio::test]
async fn register_login_enrol_logout_then_face_login() {
    register_login_enrol_logout_then_face_login_on(Backend::Sqlite).await;
}

#[tokio::test]
async fn register_login_enrol_logout_then_face_login_on_postgres() {
    register_login_enrol_logout_then_face_login_on(Backend::Postgres).await;
}

async fn register_login_enrol_logout_then_face_login_on(backend: Backend) {
    let app = TestApp::spawn_on(backend, |_| {}).await;
    let mut a = app.agent().await;
    let r = a.register("barack").await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let id = r.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
    assert_eq!(a.logout().await.status(), StatusCode::NO_CONTENT);
    assert_eq!(a.me().await, None);

    let r = a.login("barack", PASSWORD).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(a.me().await.as_deref(), Some("barack"));

    let r = a.upload_face(&face("obama_1.jpg")).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let v: Value = r.json().await.unwrap();
    assert!(
        v["id"].as_i64().is_some() && v["quality"].as_f64().is_some(),
        "{v}"
    );
    let faces: Value = a.get("/api/me/faces").await.json().await.unwrap();
    assert_eq!(faces["faces"].as_array().unwrap().len(), 1);
    assert_eq!(a.logout().await.status(), StatusCode::NO_CONTENT);

    let b = app.agent().await;
    let r = b.face_login(&face("obama_2.jpg"), None).await;
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["username"], "barack");
    assert_eq!(v["id"].as_i64(), Some(id));
    assert!(v["score"].as_f64().unwrap() >= f64::from(app.state.services.engine.threshold()));
    assert_eq!(b.me().await.as_deref(), Some("barack"));

    // The stored photo is a JPEG re-encoded from the pixels, not the
    // uploaded bytes.
    let store = &app.state.services.store;
    let template = store.templates_for_user(id).await.unwrap().remove(0);
    let photo = store.face_photo(template.id).await.unwrap().unwrap();
    assert_eq!(&photo.0[..2], &[0xFF, 0xD8]);
    assert_ne!(photo.0, face("obama_1.jpg"));
    image::load_from_memory(&photo.0).unwrap();
}

#[tokio::test]
async fn other_faces_and_non_faces_do_not_log_in() {
    let app = TestApp::spawn().await;
    app.user_with_faces("barack", &["obama_1.jpg"]).await;
    let a = app.agent().await;

    assert_eq!(
        error_of(a.face_login(&face("biden_2.jpg"), None).await).await,
        (StatusCode::UNAUTHORIZED, "unknown".into())
    );
    assert_eq!(
        error_of(a.face_login(&face("multi_group.jpg"), None).await).await,
        (StatusCode::UNAUTHORIZED, "multiple_faces".into())
    );
    assert_eq!(
        error_of(a.face_login(&landscape(), None).await).await,
        (StatusCode::UNAUTHORIZED, "no_face".into())
    );
    assert_eq!(
        error_of(a.face_login(b"not an image at all", None).await).await,
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_image".into())
    );
    assert_eq!(a.me().await, None);

    // Every attempt is audited.
    let attempts = app.state.services.recent_attempts(50).await.unwrap();
    assert_eq!(
        attempts
            .iter()
            .filter(|x| x.method == "face_identify")
            .count(),
        4
    );
    assert!(attempts
        .iter()
        .all(|x| x.outcome != "success" || x.method == "password"));
}

#[tokio::test]
async fn a_second_user_is_never_returned_for_the_first_users_photos() {
    a_second_user_is_never_returned_for_the_first_users_photos_on(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_second_user_is_never_returned_for_the_first_users_photos_on_postgres() {
    a_second_user_is_never_returned_for_the_first_users_photos_on(Backend::Postgres).await;
}

async fn a_second_user_is_never_returned_for_the_first_users_photos_on(backend: Backend) {
    let app = TestApp::spawn_on(backend, |_| {}).await;
    app.user_with_faces("barack", &["obama_1.jpg"]).await;
    app.user_with_faces("kit", &["kit_harington_1.jpg"]).await;
    for photo in [
        "obama_2.jpg",
        "obama_3.jpg",
        "obama_4.jpg",
        "obama_240p.jpg",
    ] {
        let a = app.agent().await;
        let r = a.face_login(&face(photo), None).await;
        let status = r.status();
        let v: Value = r.json().await.unwrap();
        assert_ne!(v["username"], "kit", "{photo} logged in as kit");
        if status == StatusCode::OK {
            assert_eq!(v["username"], "barack", "{photo}");
        }
    }
    let a = app.agent().await;
    let v: Value = a
        .face_login(&face("obama_2.jpg"), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["username"], "barack");
    let a = app.agent().await;
    let r = a.face_login(&face("kit_harington_3.jpg"), None).await;
    let v: Value = r.json().await.unwrap();
    assert_ne!(v["username"], "barack");
}

#[tokio::test]
async fn enrolment_refuses_bad_photos_and_deletes() {
    let app = TestApp::spawn().await;
    let a = app.agent().await;
    a.register("barack").await;
    assert_eq!(
        error_of(a.upload_face(&face("multi_group.jpg")).await).await,
        (StatusCode::UNPROCESSABLE_ENTITY, "multiple_faces".into())
    );
    assert_eq!(
        error_of(a.upload_face(&landscape()).await).await,
        (StatusCode::UNPROCESSABLE_ENTITY, "no_face".into())
    );
    assert_eq!(
        error_of(a.upload_face(b"GIF89a nope").await).await,
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_image".into())
    );
    let r = a.upload_face(&face("obama_1.jpg")).await;
    let id = r.json::<Value>().await.unwrap()["id"].as_i64().unwrap();

    // Photos are served to their owner only.
    let r = a.get(&format!("/media/faces/{id}")).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "image/jpeg");
    let other = app.agent().await;
    other.register("mallory").await;
    assert_eq!(
        other.get(&format!("/media/faces/{id}")).await.status(),
        StatusCode::NOT_FOUND
    );
    let r = other
        .client
        .delete(other.url(&format!("/api/me/faces/{id}")))
        .header("X-CSRF-Token", &other.csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    let r = a
        .client
        .delete(a.url(&format!("/api/me/faces/{id}")))
        .header("X-CSRF-Token", &a.csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let faces: Value = a.get("/api/me/faces").await.json().await.unwrap();
    assert!(faces["faces"].as_array().unwrap().is_empty());
    // With the template gone, the face no longer logs in.
    let b = app.agent().await;
    assert_eq!(
        error_of(b.face_login(&face("obama_2.jpg"), None).await)
            .await
            .1,
        "unknown"
    );
}

#[tokio::test]
async fn uploads_over_the_limit_are_refused_before_decoding() {
    let app = TestApp::spawn_with(|c| c.engine.decode.max_bytes = 50_000).await;
    let a = app.agent().await;
    a.register("barack").await;
    let big = vec![0xFFu8; 200_000];
    let r = a.upload_face(&big).await;
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let r = a.face_login(&big, None).await;
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn pages_name_an_icon_that_is_served() {
    let app = TestApp::spawn().await;
    let a = app.agent().await;
    let page = a.get("/login").await.text().await.unwrap();
    let link = r#"<link rel="icon" href="/static/app/favicon.svg" type="image/svg+xml">"#;
    assert!(page.contains(link), "{page}");
    let mut bodies = Vec::new();
    for path in ["/static/app/favicon.svg", "/favicon.ico"] {
        let r = a.get(path).await;
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        assert_eq!(r.headers()["content-type"], "image/svg+xml", "{path}");
        bodies.push(r.text().await.unwrap());
    }
    assert!(bodies[0].starts_with("<svg") && bodies[0] == bodies[1]);
}
