//! Enrolment that protects the account (issue 14): one person per
//! account, in identify mode no face that already logs in to another
//! account, and one account per e-mail address.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{error_of, face, TestApp, PASSWORD};

#[tokio::test]
async fn a_second_person_cannot_join_an_account() {
    let app = TestApp::spawn().await;
    let a = app.agent().await;
    a.register("barack").await;
    assert_eq!(
        a.upload_face(&face("obama_1.jpg")).await.status(),
        StatusCode::CREATED
    );
    // Another photo of the same person is welcome.
    assert_eq!(
        a.upload_face(&face("obama_2.jpg")).await.status(),
        StatusCode::CREATED
    );
    // Someone else's face is refused, and nothing is stored.
    let r = a.upload_face(&face("biden_1.jpg")).await;
    assert_eq!(
        error_of(r).await,
        (StatusCode::CONFLICT, "face_mismatch".into())
    );
    let r = a.upload_face(&face("biden_1.jpg")).await;
    let message = r.json::<serde_json::Value>().await.unwrap()["message"].to_string();
    assert!(message.contains("delete your face data first"), "{message}");
    let faces: serde_json::Value = a.get("/api/me/faces").await.json().await.unwrap();
    let faces = faces["faces"].clone();
    assert_eq!(faces.as_array().unwrap().len(), 2);

    // After deleting the face data, another person may be enrolled.
    for f in faces.as_array().unwrap() {
        let id = f["id"].as_i64().unwrap();
        let r = a
            .client
            .delete(a.url(&format!("/api/me/faces/{id}")))
            .header("X-CSRF-Token", &a.csrf)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
    }
    assert_eq!(
        a.upload_face(&face("biden_1.jpg")).await.status(),
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn in_identify_mode_a_face_of_another_account_is_refused_neutrally() {
    let app = TestApp::spawn().await;
    let kit = app.user_with_faces("kit", &["kit_harington_1.jpg"]).await;
    let a = app.agent().await;
    a.register("mallory").await;
    let r = a.upload_face(&face("kit_harington_2.jpg")).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["error"], "face_taken");
    let message = v["message"].as_str().unwrap();
    assert!(!message.to_lowercase().contains("kit"), "{message}");
    assert!(app.state.services.faces(kit).await.unwrap().len() == 1);

    // Audited for staff, with the other account as subject.
    let events = app
        .state
        .services
        .store
        .audit_events(&Default::default())
        .await
        .unwrap();
    let refused = events
        .iter()
        .find(|e| e.kind == "enrolment" && e.outcome == "refused")
        .expect("the refusal is audited");
    assert_eq!(refused.subject_user_id, Some(kit));
    assert!(refused.detail.contains("face_matches_other_account"));
    let store = app.state.services.store.clone();
    facegate_app::service::create_superuser(store, "root", "root@example.com", PASSWORD)
        .await
        .unwrap();
    let staff = app.agent().await;
    staff.login("root", PASSWORD).await;
    let page = staff
        .page("/admin/audit?kind=enrolment&outcome=refused")
        .await;
    assert!(page.contains("face_matches_other_account"), "{page}");

    // In verify mode the username says whose face it is: no refusal.
    let app = TestApp::spawn_with(|c| c.face_login = facegate_app::FaceLoginMode::Verify).await;
    app.user_with_faces("kit", &["kit_harington_1.jpg"]).await;
    app.user_with_faces("kitfan", &["kit_harington_2.jpg"])
        .await;
}

#[tokio::test]
async fn an_email_address_belongs_to_one_account() {
    let app = TestApp::spawn().await;
    let a = app.agent().await;
    assert_eq!(a.register("alice").await.status(), StatusCode::CREATED);
    let b = app.agent().await;
    let body = json!({"username": "bob", "email": "ALICE@Example.com", "password": PASSWORD});
    let r = b.post_json("/api/register", body).await;
    assert_eq!(error_of(r).await, (StatusCode::CONFLICT, "conflict".into()));
    // Nor can an existing account take it over.
    assert_eq!(b.register("bob").await.status(), StatusCode::CREATED);
    b.post_form("/profile/email", &[("email", "Alice@example.com")])
        .await;
    let page = b.page("/profile").await;
    assert!(page.contains("already used by another account"), "{page}");
    assert!(page.contains("bob@example.com"));
    // Changing the case of one's own address is fine.
    b.post_form("/profile/email", &[("email", "BOB@example.com")])
        .await;
    assert!(b.page("/profile").await.contains("BOB@example.com"));
}
