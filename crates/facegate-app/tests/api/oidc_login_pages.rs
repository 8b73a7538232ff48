//! What facegate's login pages do for an authorisation request that sent
//! the person there: the request's `login_hint` fills in the username
//! (escaped), and only while that request is pending.

use reqwest::StatusCode;

use crate::helpers::TestApp;
use crate::oidc_rp::{follow, spec, Rp};
use facegate_app::FaceLoginMode;

#[tokio::test]
async fn login_hint_fills_in_the_username_on_the_login_page() {
    let app = TestApp::spawn().await;
    let rp = Rp::register(&app, spec("Wiki")).await;

    // Without a pending request, the field is empty (not "none").
    let fresh = app.agent().await;
    let page = fresh.page("/login").await;
    assert!(page.contains("id=\"login-username\""));
    assert!(page.contains("value=\"\" maxlength=\"32\""), "{page}");

    let agent = app.agent().await;
    let started = rp.start(&[("login_hint", "barack")]);
    let (r, out) = follow(&agent, &started.url).await;
    assert!(out.is_none());
    assert_eq!(r.status(), StatusCode::OK);
    let page = r.text().await.unwrap();
    assert!(page.contains("value=\"barack\" maxlength=\"32\""), "{page}");

    // A hostile hint is escaped.
    let other = app.agent().await;
    let started = rp.start(&[("login_hint", "x\"><b>bold</b>")]);
    let (r, _) = follow(&other, &started.url).await;
    let page = r.text().await.unwrap();
    assert!(!page.contains("<b>bold"), "{page}");
    assert!(page.contains("x&quot;&gt;&lt;b&gt;bold") || page.contains("x&#34;&gt;&lt;b&gt;bold"));
}

#[tokio::test]
async fn login_hint_fills_in_the_username_on_the_verify_face_page() {
    let app = TestApp::spawn_with(|c| c.face_login = FaceLoginMode::Verify).await;
    let rp = Rp::register(&app, spec("Wiki")).await;
    let agent = app.agent().await;
    let page = agent.page("/face-login").await;
    assert!(page.contains("id=\"face-username\""), "{page}");
    assert!(!page.contains("value=\"barack\""));
    let started = rp.start(&[("login_hint", "barack")]);
    let _ = follow(&agent, &started.url).await;
    let page = agent.page("/face-login").await;
    assert!(
        page.contains("autocomplete=\"username\" value=\"barack\""),
        "{page}"
    );
}
