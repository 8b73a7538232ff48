//! What a person sees on the pages (issue 14): styled error pages with the
//! API keeping JSON, the font served locally, the start page, flash
//! messages, plain words.

use reqwest::multipart::{Form, Part};
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{face, landscape, TestApp, PASSWORD};

#[tokio::test]
async fn unknown_urls_get_the_styled_page_and_the_api_keeps_json() {
    let app = TestApp::spawn().await;
    let a = app.agent().await;
    let r = a.get("/no/such/page").await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let body = r.text().await.unwrap();
    assert!(body.contains("There is no page at this address"), "{body}");
    assert!(
        body.contains("sb-admin-2.min.css"),
        "styled like the others"
    );

    // A wrong method on a page: 405, styled, with its Allow header.
    let r = a.client.delete(a.url("/login")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert!(r.headers().contains_key("allow"));
    let body = r.text().await.unwrap();
    assert!(
        body.contains("does not accept that kind of request"),
        "{body}"
    );

    // A stored photo that does not exist: the page, not an empty body.
    let body = a.page("/media/faces/999").await;
    assert!(body.contains("There is no page"));

    // The API answers JSON for the same failures.
    let r = a.get("/api/no-such-endpoint").await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"], "not_found");
    let r = a.get("/api/login").await;
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"], "method_not_allowed");
}

#[tokio::test]
async fn the_nunito_font_is_served_by_the_server_itself() {
    let app = TestApp::spawn().await;
    let a = app.agent().await;
    let page = a.page("/login").await;
    assert!(page.contains("/static/fonts/nunito/400.css"), "{page}");
    assert!(
        !page.contains("fonts.googleapis"),
        "no third-party font host"
    );
    let r = a.get("/static/fonts/nunito/400.css").await;
    assert_eq!(r.status(), StatusCode::OK);
    let css = r.text().await.unwrap();
    assert!(css.contains("font-family: 'Nunito'"));
    // The latin file the CSS names is there too.
    let r = a
        .get("/static/fonts/nunito/files/nunito-latin-400-normal.woff2")
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.bytes().await.unwrap().len() > 1000);
}

#[tokio::test]
async fn the_start_page_says_what_this_is_and_the_ways_in() {
    let app = TestApp::spawn().await;
    let a = app.agent().await;
    // A stranger at `/` is sent to the login page, which says what it is.
    let r = a.get("/").await;
    assert_eq!(r.headers()["location"], "/login");
    let page = a.page("/login").await;
    for words in [
        "facegate",
        "Log in by looking at your camera",
        "Log in with your face",
        "Log in with password",
        "Create an account",
    ] {
        assert!(page.contains(words), "{words} missing");
    }
    // The forms carry the same limits as the server.
    let reg = a.page("/register").await;
    assert!(reg.contains(r#"minlength="8" maxlength="128""#), "{reg}");
    assert!(reg.contains(r#"minlength="3" maxlength="32""#));
}

#[tokio::test]
async fn flash_messages_after_registering_and_logging_out_and_plain_words() {
    let app = TestApp::spawn().await;
    let mut a = app.agent().await;
    let r = a
        .post_form(
            "/register",
            &[
                ("username", "alice"),
                ("email", "alice@example.com"),
                ("password", PASSWORD),
                ("password2", PASSWORD),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let home = a.page("/").await;
    assert!(home.contains("Your account was created"), "{home}");
    assert!(home.contains("look at the camera, no username needed"));
    assert!(!home.contains("Mode:"), "no jargon");
    // Shown once.
    assert!(!a.page("/").await.contains("Your account was created"));

    a.refresh_csrf().await;
    let r = a.post_form("/logout", &[]).await;
    assert_eq!(r.headers()["location"], "/login");
    let login = a.page("/login").await;
    assert!(login.contains("You are logged out"), "{login}");
}

#[tokio::test]
async fn face_photos_in_plain_words_plurals_and_partial_uploads() {
    let app = TestApp::spawn().await;
    let mut a = app.agent().await;
    a.register("barack").await;
    a.refresh_csrf().await;
    // One good photo and one without a face: added 1 of 2, a warning.
    let form = Form::new()
        .text("csrf_token", a.csrf.clone())
        .part("image", Part::bytes(face("obama_1.jpg")).file_name("a.jpg"))
        .part("image", Part::bytes(landscape()).file_name("b.jpg"));
    let r = a
        .client
        .post(a.url(&format!("/profile/faces?csrf_token={}", a.csrf)))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let profile = a.page("/profile").await;
    assert!(
        profile.contains(r#"class="alert alert-warning""#) && profile.contains("Added 1 of 2"),
        "{profile}"
    );
    assert!(profile.contains("good photo") || profile.contains("consider another"));
    assert!(!profile.contains("quality 0."), "no bare scores");
    assert!(profile.contains(r#"id="delete-all-faces""#));

    let r = a.post_form("/profile/faces/delete-all", &[]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let profile = a.page("/profile").await;
    assert!(profile.contains("(1 photo)"), "{profile}");
    assert!(!profile.contains("1 photos"));
    assert!(!profile.contains(r#"id="delete-all-faces""#));
}
