//! The OpenID Connect provider, driven by the real `openidconnect` crate
//! as the relying party (see `oidc_rp.rs`): discovery, the code flow
//! with PKCE through a face login and the consent page, the ID token's
//! signature and claims (acr/amr/auth_time/nonce), userinfo, refresh with
//! rotation, revocation, RP-initiated logout, step-up, and the RFC's
//! errors for every misuse.

use openidconnect::core::CoreIdTokenClaims;
use openidconnect::{OAuth2TokenResponse, TokenResponse};
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{face, Agent, Backend, TestApp, PASSWORD};
use crate::oidc_rp::{consent, follow, location, param, spec, Rp, Started, AFTER_LOGOUT, REDIRECT};
use facegate_app::FaceLoginMode;

/// Walks `started` through a face login of the person in `photo` and the
/// consent page; returns the code the client receives.
async fn face_flow(agent: &mut Agent, started: &Started, photo: &str) -> String {
    let (r, out) = follow(agent, &started.url).await;
    assert!(out.is_none(), "no code before logging in");
    assert_eq!(r.status(), StatusCode::OK, "the login page");
    let r = agent.face_login(&face(photo), None).await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    let home = agent.url("/");
    finish(agent, started, &home).await
}

/// From a logged-in session, starting at `from` (`/` after a login sends
/// the person back to the request): consent if asked, and the code at
/// the client.
async fn finish(agent: &mut Agent, started: &Started, from: &str) -> String {
    let (r, out) = follow(agent, from).await;
    let to = match out {
        Some(to) => to,
        None => {
            let page = r.text().await.unwrap();
            assert!(page.contains("consent-form"), "the consent page: {page}");
            let r = consent(agent, true).await;
            follow(agent, &agent.url(&location(&r)))
                .await
                .1
                .expect("a redirect to the client")
        }
    };
    assert!(to.starts_with(REDIRECT), "{to}");
    assert_eq!(
        param(&to, "state").as_deref(),
        Some(started.state.secret().as_str())
    );
    param(&to, "code").expect("a code")
}

async fn full_flow_on(backend: Backend) {
    let app = TestApp::spawn_on(backend, |_| {}).await;
    let id = app.user_with_faces("barack", &["obama_1.jpg"]).await;
    let rp = Rp::register(&app, spec("Intranet")).await;
    let mut agent = app.agent().await;
    let started = rp.start(&[]);
    let code = face_flow(&mut agent, &started, "obama_2.jpg").await;

    let tokens = rp.exchange(&code, started.verifier).await.unwrap();
    let claims = rp.verify(&tokens, &started.nonce);
    assert_eq!(claims.subject().as_str(), id.to_string());
    assert_eq!(claims.audiences()[0].as_str(), rp.registered.client_id);
    let amr = amr(&claims);
    assert_eq!(amr, ["face"]);
    assert_eq!(
        claims.auth_context_ref().unwrap().as_str(),
        "urn:facegate:acr:face"
    );
    let auth_time = claims.auth_time().expect("auth_time");
    assert!((chrono::Utc::now() - auth_time).num_seconds() < 60);
    assert_eq!(claims.preferred_username().unwrap().as_str(), "barack");
    assert_eq!(claims.email().unwrap().as_str(), "barack@example.com");

    // userinfo with the access token.
    let info: openidconnect::core::CoreUserInfoClaims = rp
        .client
        .user_info(tokens.access_token().clone(), None)
        .unwrap()
        .request_async(&rp.http)
        .await
        .unwrap();
    assert_eq!(info.preferred_username().unwrap().as_str(), "barack");

    // Refresh rotates; the old refresh token replayed revokes the family.
    let old = tokens.refresh_token().unwrap().clone();
    let refreshed = rp
        .client
        .exchange_refresh_token(&old)
        .unwrap()
        .request_async(&rp.http)
        .await
        .unwrap();
    assert_ne!(refreshed.refresh_token().unwrap().secret(), old.secret());
    let replay = rp
        .client
        .exchange_refresh_token(&old)
        .unwrap()
        .request_async(&rp.http)
        .await;
    assert!(
        format!("{replay:?}").contains("invalid_grant"),
        "{replay:?}"
    );
    let newer = refreshed.refresh_token().unwrap();
    let after = rp
        .client
        .exchange_refresh_token(newer)
        .unwrap()
        .request_async(&rp.http)
        .await;
    assert!(after.is_err(), "the family is revoked after a replay");
    let r = bearer(&app, refreshed.access_token().secret()).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

/// The ID token's `amr` values.
fn amr(claims: &CoreIdTokenClaims) -> Vec<String> {
    claims
        .auth_method_refs()
        .expect("amr in the ID token")
        .iter()
        .map(|a| a.to_string())
        .collect()
}

async fn bearer(app: &TestApp, token: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(format!("{}/oauth2/userinfo", app.base))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn code_flow_with_pkce_face_login_and_refresh() {
    full_flow_on(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn code_flow_on_postgres() {
    full_flow_on(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_and_jwks_describe_the_provider() {
    let app = TestApp::spawn().await;
    let doc: Value = reqwest::get(format!("{}/.well-known/openid-configuration", app.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["issuer"], app.base.as_str());
    assert_eq!(doc["code_challenge_methods_supported"][0], "S256");
    assert_eq!(
        doc["end_session_endpoint"],
        format!("{}/oauth2/logout", app.base)
    );
    let jwks: Value = reqwest::get(format!("{}/oauth2/jwks", app.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0]["kty"], "RSA");
    assert!(
        keys[0]["kid"].is_string() && keys[0].get("d").is_none(),
        "public only"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_and_logout() {
    let app = TestApp::spawn().await;
    app.user_with_faces("barack", &["obama_1.jpg"]).await;
    let mut s = spec("Wiki");
    s.first_party = true;
    let rp = Rp::register(&app, s).await;
    let mut agent = app.agent().await;
    let started = rp.start(&[]);
    let code = face_flow(&mut agent, &started, "obama_2.jpg").await;
    let tokens = rp.exchange(&code, started.verifier).await.unwrap();
    // RFC 7009 (by hand: the library refuses a revocation URL over http).
    let r = rp
        .http
        .post(format!("{}/oauth2/revoke", app.base))
        .basic_auth(
            &rp.registered.client_id,
            rp.registered.client_secret.as_ref(),
        )
        .form(&[("token", tokens.refresh_token().unwrap().secret().as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = bearer(&app, tokens.access_token().secret()).await;
    assert_eq!(
        r.status(),
        StatusCode::UNAUTHORIZED,
        "revoked with its family"
    );
    assert!(r.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .contains("invalid_token"));

    let hint = tokens.id_token().unwrap().to_string();
    let url = format!(
        "/oauth2/logout?id_token_hint={hint}&post_logout_redirect_uri={}&state=xyz",
        urlencode(AFTER_LOGOUT)
    );
    let r = agent.get(&url).await;
    assert_eq!(location(&r), format!("{AFTER_LOGOUT}?state=xyz"));
    assert_eq!(agent.me().await, None, "logged out of facegate");
    // An unregistered target is never used.
    let url = format!(
        "/oauth2/logout?id_token_hint={hint}&post_logout_redirect_uri=https://evil.example/"
    );
    let r = agent.get(&url).await;
    assert_eq!(r.status(), StatusCode::OK);
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_needs_a_face_sends_a_password_session_through_the_face_step() {
    let app = TestApp::spawn().await;
    app.user_with_faces("barack", &["obama_1.jpg"]).await;
    let mut s = spec("Payroll");
    s.min_acr = Some("urn:facegate:acr:face".into());
    s.first_party = true;
    let rp = Rp::register(&app, s).await;
    let mut agent = app.agent().await;
    assert_eq!(
        agent.login("barack", PASSWORD).await.status(),
        StatusCode::OK
    );
    let started = rp.start(&[]);
    let r = agent.client.get(&started.url).send().await.unwrap();
    assert_eq!(location(&r), "/face-login", "step-up, not a code");
    let r = agent.face_login(&face("obama_2.jpg"), None).await;
    assert_eq!(r.status(), StatusCode::OK);
    let home = agent.url("/");
    let code = finish(&mut agent, &started, &home).await;
    let tokens = rp.exchange(&code, started.verifier).await.unwrap();
    let claims = rp.verify(&tokens, &started.nonce);
    let amr = amr(&claims);
    assert_eq!(amr, ["pwd", "face", "mfa"]);
    assert_eq!(
        claims.auth_context_ref().unwrap().as_str(),
        "urn:facegate:acr:face-live"
    );

    // prompt=none with a level the session lacks: an error, never a page.
    let mut other = app.agent().await;
    assert_eq!(
        other.login("barack", PASSWORD).await.status(),
        StatusCode::OK
    );
    let started = rp.start(&[("prompt", "none")]);
    let r = other.client.get(&started.url).send().await.unwrap();
    let to = location(&r);
    assert!(to.starts_with(REDIRECT), "{to}");
    assert_eq!(param(&to, "error").as_deref(), Some("interaction_required"));
    let _ = &mut other;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_factor_mode_reports_password_and_face() {
    let app = TestApp::spawn_with(|c| c.face_login = FaceLoginMode::SecondFactor).await;
    app.user_with_faces("barack", &["obama_1.jpg"]).await;
    let mut s = spec("Grafana");
    s.first_party = true;
    let rp = Rp::register(&app, s).await;
    let mut agent = app.agent().await;
    let started = rp.start(&[]);
    let (r, _) = follow(&agent, &started.url).await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = agent.login("barack", PASSWORD).await;
    assert_eq!(r.json::<Value>().await.unwrap()["face_required"], true);
    let r = agent.face_login(&face("obama_2.jpg"), None).await;
    assert_eq!(r.status(), StatusCode::OK);
    let home = agent.url("/");
    let code = finish(&mut agent, &started, &home).await;
    let tokens = rp.exchange(&code, started.verifier).await.unwrap();
    let claims = rp.verify(&tokens, &started.nonce);
    let amr = amr(&claims);
    assert_eq!(amr, ["pwd", "face", "mfa"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_key_rotation_keeps_the_old_key_published() {
    let app = TestApp::spawn().await;
    app.user_with_faces("barack", &["obama_1.jpg"]).await;
    let mut s = spec("Chat");
    s.first_party = true;
    let rp = Rp::register(&app, s).await;
    let mut agent = app.agent().await;
    let started = rp.start(&[]);
    let code = face_flow(&mut agent, &started, "obama_2.jpg").await;
    let before = rp.exchange(&code, started.verifier).await.unwrap();
    let services = &app.state.services;
    facegate_app::service::oidc::keys::rotate_signing_key(&services.store, &services.config)
        .await
        .unwrap();
    let rp = Rp::discover(&app, rp.registered.clone()).await;
    // The token signed with the old key still verifies.
    rp.verify(&before, &started.nonce);
    let started = rp.start(&[]);
    let url = started.url.clone();
    let code = finish(&mut agent, &started, &url).await;
    let after = rp.exchange(&code, started.verifier).await.unwrap();
    rp.verify(&after, &started.nonce);
    let kid = |t: &openidconnect::core::CoreTokenResponse| {
        let jwt = t.id_token().unwrap().to_string();
        let header = jwt.split('.').next().unwrap().to_string();
        use base64::Engine;
        let h: Value = serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(header)
                .unwrap(),
        )
        .unwrap();
        h["kid"].as_str().unwrap().to_string()
    };
    assert_ne!(kid(&before), kid(&after), "the new key signs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connected_applications_are_listed_audited_and_can_be_disconnected() {
    let app = TestApp::spawn().await;
    app.user_with_faces("barack", &["obama_1.jpg"]).await;
    let rp = Rp::register(&app, spec("Intranet")).await;
    let mut agent = app.agent().await;
    let started = rp.start(&[]);
    let code = face_flow(&mut agent, &started, "obama_2.jpg").await;
    let tokens = rp.exchange(&code, started.verifier).await.unwrap();
    let page = agent
        .get("/profile/applications")
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("Intranet"), "{page}");
    agent.refresh_csrf().await;
    let r = agent
        .client
        .post(agent.url("/profile/applications/revoke"))
        .form(&[
            ("csrf_token", agent.csrf.as_str()),
            ("client_id", &rp.registered.client_id),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let page = agent
        .get("/profile/applications")
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("no-applications"), "{page}");
    let r = bearer(&app, tokens.access_token().secret()).await;
    assert_eq!(
        r.status(),
        StatusCode::UNAUTHORIZED,
        "its tokens are revoked"
    );

    // Every step is audited, and no token or secret is in the trail.
    let filter = facegate_app::domain::AuditFilter {
        limit: 200,
        ..Default::default()
    };
    let events = app
        .state
        .services
        .store
        .audit_events(&filter)
        .await
        .unwrap();
    let outcomes: Vec<String> = events
        .iter()
        .filter(|e| e.kind.starts_with("oidc_"))
        .map(|e| format!("{}:{}", e.kind, e.outcome))
        .collect();
    for expected in [
        "oidc_client:registered",
        "oidc_consent:granted",
        "oidc_token:code_issued",
        "oidc_token:issued",
        "oidc_consent:withdrawn",
    ] {
        assert!(
            outcomes.iter().any(|o| o == expected),
            "{expected} in {outcomes:?}"
        );
    }
    let secrets = [
        code.as_str(),
        tokens.access_token().secret().as_str(),
        tokens.refresh_token().unwrap().secret().as_str(),
        rp.registered.client_secret.as_deref().unwrap(),
    ];
    for e in &events {
        for s in secrets {
            assert!(
                !e.detail.contains(s),
                "a secret in the audit trail: {}",
                e.detail
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_endpoint_is_rate_limited_per_client() {
    let app = TestApp::spawn_with(|c| c.oidc.token_rate_limit_per_client = 2).await;
    let rp = Rp::register(&app, spec("Busy")).await;
    let other = Rp::register(&app, spec("Quiet")).await;
    let post = |rp: &Rp| {
        let id = rp.registered.client_id.clone();
        let secret = rp.registered.client_secret.clone();
        let url = format!("{}/oauth2/token", app.base);
        let http = rp.http.clone();
        async move {
            http.post(url)
                .basic_auth(id, secret)
                .form(&[
                    ("grant_type", "authorization_code"),
                    ("code", "made-up"),
                    ("redirect_uri", REDIRECT),
                ])
                .send()
                .await
                .unwrap()
        }
    };
    for _ in 0..2 {
        let r = post(&rp).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_grant");
    }
    let r = post(&rp).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "slow_down");
    assert_eq!(
        post(&other).await.status(),
        StatusCode::BAD_REQUEST,
        "per client"
    );
}
