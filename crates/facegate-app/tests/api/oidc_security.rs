//! The OpenID Connect provider refuses what RFC 6749 and OpenID Connect
//! say it must: untrusted redirect URIs are never redirected to, codes
//! are single use and bound to their client, verifier and lifetime,
//! clients authenticate, `prompt=none` never shows a page, and the pages
//! cannot be framed while token answers are never cached.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::TestApp;
use crate::oidc_rp::{follow, http, location, param, spec, Rp, Started, REDIRECT};

/// A confidential first-party client, a user, and a code for them.
async fn with_code() -> (TestApp, Rp, Started, String) {
    let app = TestApp::spawn().await;
    app.user_with_faces("barack", &["obama_1.jpg"]).await;
    let mut s = spec("Intranet");
    s.first_party = true;
    let rp = Rp::register(&app, s).await;
    let agent = app.agent().await;
    assert_eq!(
        agent
            .login("barack", crate::helpers::PASSWORD)
            .await
            .status(),
        StatusCode::OK
    );
    let started = rp.start(&[]);
    let (_, to) = follow(&agent, &started.url).await;
    let code = param(&to.expect("a code"), "code").unwrap();
    (app, rp, started, code)
}

async fn token_post(
    app: &TestApp,
    form: &[(&str, &str)],
    basic: Option<(&str, &str)>,
) -> (StatusCode, Value, reqwest::header::HeaderMap) {
    let mut req = http().post(format!("{}/oauth2/token", app.base)).form(form);
    if let Some((id, secret)) = basic {
        req = req.basic_auth(id, Some(secret));
    }
    let r = req.send().await.unwrap();
    let (status, headers) = (r.status(), r.headers().clone());
    (status, r.json().await.unwrap_or(Value::Null), headers)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_clients_and_redirect_uris_get_a_page_never_a_redirect() {
    let app = TestApp::spawn().await;
    let rp = Rp::register(&app, spec("Intranet")).await;
    let agent = app.agent().await;
    let started = rp.start(&[]);
    let evil = started
        .url
        .replace(&urlencode(REDIRECT), &urlencode("https://evil.example/cb"));
    assert_ne!(evil, started.url);
    let r = agent.client.get(&evil).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.headers().get("location").is_none());
    assert!(r.text().await.unwrap().contains("not registered"));
    let unknown = started.url.replace(&rp.registered.client_id, "nobody");
    let r = agent.client.get(&unknown).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.headers().get("location").is_none());
    // Other errors go back to the client with the state.
    let bad = started
        .url
        .replace("response_type=code", "response_type=token");
    let r = agent.client.get(&bad).send().await.unwrap();
    let to = location(&r);
    assert!(to.starts_with(REDIRECT));
    assert_eq!(
        param(&to, "error").as_deref(),
        Some("unsupported_response_type")
    );
    assert_eq!(
        param(&to, "state").as_deref(),
        Some(started.state.secret().as_str())
    );
    // The same request by POST (OpenID Connect Core §3.1.2.1): to the login.
    let query = started.url.split_once('?').unwrap().1.to_string();
    let r = agent
        .client
        .post(agent.url("/oauth2/authorize"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(query)
        .send()
        .await
        .unwrap();
    assert_eq!(location(&r), "/login");
    // prompt=none without a session: login_required, no page.
    let none = rp.start(&[("prompt", "none")]);
    let r = agent.client.get(&none.url).send().await.unwrap();
    assert_eq!(
        param(&location(&r), "error").as_deref(),
        Some("login_required")
    );
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_used_twice_fails_and_revokes_its_tokens() {
    let (app, rp, started, code) = with_code().await;
    let verifier = started.verifier.secret().clone();
    let tokens = rp.exchange(&code, started.verifier).await.unwrap();
    let again = rp
        .exchange(&code, openidconnect::PkceCodeVerifier::new(verifier))
        .await
        .unwrap_err();
    assert!(again.contains("invalid_grant"), "{again}");
    use openidconnect::OAuth2TokenResponse;
    let r = http()
        .get(format!("{}/oauth2/userinfo", app.base))
        .bearer_auth(tokens.access_token().secret())
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::UNAUTHORIZED,
        "revoked by the replay"
    );
}

/// A new code for `rp`, from a password session of barack.
async fn fresh_code(app: &TestApp, rp: &Rp) -> (Started, String) {
    let agent = app.agent().await;
    agent.login("barack", crate::helpers::PASSWORD).await;
    let started = rp.start(&[]);
    let (_, to) = follow(&agent, &started.url).await;
    let code = param(&to.expect("a code"), "code").unwrap();
    (started, code)
}

/// The token request for `code`.
fn grant(code: &str, verifier: &str) -> Vec<(String, String)> {
    [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT),
        ("code_verifier", verifier),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect()
}

fn refs(v: &[(String, String)]) -> Vec<(&str, &str)> {
    v.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_verifier_secret_client_or_age_get_the_rfc_errors() {
    let (app, rp, started, code) = with_code().await;
    let id = rp.registered.client_id.clone();
    let secret = rp.registered.client_secret.clone().unwrap();
    let right = grant(&code, started.verifier.secret());

    let (s, body, headers) = token_post(&app, &refs(&right), Some((&id, "wrong"))).await;
    assert_eq!(
        (s, body["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_client"))
    );
    assert_eq!(headers["cache-control"], "no-store");

    // The right request, once its client authenticates, works (client_secret_post).
    let mut post = refs(&right);
    post.push(("client_id", &id));
    post.push(("client_secret", &secret));
    let (s, body, headers) = token_post(&app, &post, None).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(headers["cache-control"], "no-store");

    let (s2, code2) = fresh_code(&app, &rp).await;
    let wrong = grant(&code2, &"x".repeat(50));
    let (s, body, _) = token_post(&app, &refs(&wrong), Some((&id, &secret))).await;
    assert_eq!(
        (s, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    drop(s2);

    // Another client's code.
    let mut other = spec("Other");
    other.first_party = true;
    let other = Rp::register(&app, other).await;
    let (oid, osecret) = (
        other.registered.client_id.clone(),
        other.registered.client_secret.clone().unwrap(),
    );
    let (s3, code3) = fresh_code(&app, &rp).await;
    let theirs = grant(&code3, s3.verifier.secret());
    let (s, body, _) = token_post(&app, &refs(&theirs), Some((&oid, &osecret))).await;
    assert_eq!(
        (s, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );

    // An expired code (its expiry moved to the past underneath the store).
    let (s4, code4) = fresh_code(&app, &rp).await;
    let sql = "UPDATE oidc_codes SET expires_at = 1 WHERE used_at IS NULL";
    app.raw_execute(sql, sql).await;
    let old = grant(&code4, s4.verifier.secret());
    let (s, body, _) = token_post(&app, &refs(&old), Some((&id, &secret))).await;
    assert_eq!(
        (s, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_clients_must_use_pkce_and_pages_cannot_be_framed() {
    let app = TestApp::spawn().await;
    app.user_with_faces("barack", &["obama_1.jpg"]).await;
    let mut s = spec("SPA");
    s.public = true;
    let rp = Rp::register(&app, s).await;
    assert!(rp.registered.client_secret.is_none());
    let agent = app.agent().await;
    agent.login("barack", crate::helpers::PASSWORD).await;
    let started = rp.start(&[]);
    let no_pkce = started
        .url
        .replace("code_challenge_method=S256", "")
        .replace("code_challenge=", "x=");
    let r = agent.client.get(&no_pkce).send().await.unwrap();
    let to = location(&r);
    assert_eq!(
        param(&to, "error").as_deref(),
        Some("invalid_request"),
        "{to}"
    );
    // The consent page: no framing, a CSRF token in its form.
    let r = agent.client.get(&started.url).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["x-frame-options"], "DENY");
    assert!(r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("frame-ancestors 'none'"));
    let page = r.text().await.unwrap();
    assert!(page.contains("name=\"csrf_token\""), "{page}");
    // A consent without the token is refused.
    let r = agent
        .client
        .post(agent.url("/oauth2/consent"))
        .form(&[("decision", "allow")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
}
