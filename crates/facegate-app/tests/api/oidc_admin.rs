//! The staff page of OpenID Connect clients: registering one through its
//! form (CSRF-checked, staff only, audited, the secret shown once and
//! stored hashed), a bad form shown again with its error, and removing.

use reqwest::StatusCode;

use crate::helpers::{TestApp, PASSWORD};
use facegate_app::service::oidc::clients::ClientCredentials;
use facegate_app::service::oidc::OAuthError;
use facegate_testkit::Agent;

const PAGE: &str = "/admin/oidc-clients";

async fn staff(app: &TestApp) -> Agent {
    let store = app.state.services.store.clone();
    facegate_app::service::create_superuser(store, "root", "root@example.com", PASSWORD)
        .await
        .unwrap();
    let mut staff = app.agent().await;
    staff.login("root", PASSWORD).await;
    staff.refresh_csrf().await;
    staff
}

/// The text between `<code id="ID">` and `</code>` on a page.
fn code_with_id(page: &str, id: &str) -> Option<String> {
    let start = page.find(&format!("<code id=\"{id}\">"))? + id.len() + 12;
    let end = page[start..].find("</code>")? + start;
    Some(page[start..end].to_string())
}

async fn authenticates(app: &TestApp, id: &str, secret: Option<&str>) -> Result<(), OAuthError> {
    let creds = ClientCredentials {
        client_id: Some(id.into()),
        client_secret: secret.map(String::from),
        basic: true,
    };
    app.state
        .services
        .authenticate_client(&creds)
        .await
        .map(|_| ())
}

#[tokio::test]
async fn staff_register_a_client_on_the_page_and_see_its_secret_once() {
    let app = TestApp::spawn().await;
    let staff = staff(&app).await;
    let store = app.state.services.store.clone();
    let form = staff.page(PAGE).await;
    assert!(form.contains("id=\"client-form\""), "{form}");

    let r = staff
        .post_form(
            PAGE,
            &[
                ("name", " Wiki "),
                (
                    "redirect_uris",
                    "https://wiki.example.org/cb\r\n\r\n  https://wiki.example.org/cb2 \r\n",
                ),
                ("post_logout_redirect_uris", "https://wiki.example.org/"),
                ("first_party", "on"),
                ("min_acr", "urn:facegate:acr:face"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let page = r.text().await.unwrap();
    let id = code_with_id(&page, "created-client-id").expect("the client id is shown");
    let secret = code_with_id(&page, "created-client-secret").expect("the secret is shown");
    assert!(page.contains("shown only now"));

    let client = store.oidc_client(&id).await.unwrap().expect("stored");
    assert_eq!(client.name, "Wiki");
    assert_eq!(
        client.redirect_uris,
        [
            "https://wiki.example.org/cb",
            "https://wiki.example.org/cb2"
        ]
    );
    assert_eq!(
        client.post_logout_redirect_uris,
        ["https://wiki.example.org/"]
    );
    assert!(client.first_party);
    assert_eq!(client.min_acr.as_deref(), Some("urn:facegate:acr:face"));
    let hash = client.secret_hash.expect("a confidential client");
    assert!(!hash.contains(&secret), "the secret is stored hashed");
    authenticates(&app, &id, Some(&secret)).await.unwrap();
    assert!(authenticates(&app, &id, Some("wrong")).await.is_err());

    // Listed afterwards, never with its secret again.
    let list = staff.page(PAGE).await;
    assert!(list.contains(&format!("data-client-id=\"{id}\"")));
    assert!(!list.contains(&secret));
    assert!(!list.contains("created-client-id"));

    // Audited: who registered it, and the client itself.
    let events = store.audit_events(&Default::default()).await.unwrap();
    let by = events
        .iter()
        .find(|e| e.kind == "admin_action" && e.detail.contains(&id))
        .expect("an admin_action event");
    assert_eq!(by.username.as_deref(), Some("root"));
    assert!(by.detail.contains("registered OpenID Connect client"));
    assert!(events
        .iter()
        .any(|e| e.kind == "oidc_client" && e.outcome == "registered" && e.detail.contains(&id)));
    assert!(events.iter().all(|e| !e.detail.contains(&secret)));

    // Removed through the page.
    let r = staff
        .post_form("/admin/oidc-clients/remove", &[("client_id", &id)])
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(store.oidc_client(&id).await.unwrap().is_none());
}

#[tokio::test]
async fn a_public_client_gets_no_secret() {
    let app = TestApp::spawn().await;
    let staff = staff(&app).await;
    let r = staff
        .post_form(
            PAGE,
            &[
                ("name", "Single-page app"),
                ("redirect_uris", "http://127.0.0.1:9/spa"),
                ("public", "on"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let page = r.text().await.unwrap();
    let id = code_with_id(&page, "created-client-id").unwrap();
    assert!(code_with_id(&page, "created-client-secret").is_none());
    assert!(page.contains("A public client"));
    let client = app
        .state
        .services
        .store
        .oidc_client(&id)
        .await
        .unwrap()
        .unwrap();
    assert!(client.is_public() && !client.first_party);
    authenticates(&app, &id, None).await.unwrap();
}

#[tokio::test]
async fn a_bad_client_form_is_shown_again_with_its_error_and_nothing_stored() {
    let app = TestApp::spawn().await;
    let staff = staff(&app).await;
    let store = app.state.services.store.clone();
    for (fields, says) in [
        (
            vec![("name", "Wiki"), ("redirect_uris", "not a uri")],
            "not an absolute URI",
        ),
        (
            vec![("name", "Wiki"), ("redirect_uris", " \r\n ")],
            "needs a redirect URI",
        ),
        (
            vec![
                ("name", ""),
                ("redirect_uris", "https://wiki.example.org/cb"),
            ],
            "needs a name",
        ),
        (
            vec![
                ("name", "Wiki"),
                ("redirect_uris", "https://wiki.example.org/cb#frag"),
            ],
            "no fragment",
        ),
        (
            vec![
                ("name", "Wiki"),
                ("redirect_uris", "https://wiki.example.org/cb"),
                ("min_acr", "urn:example:gold"),
            ],
            "unknown acr",
        ),
    ] {
        let r = staff.post_form(PAGE, &fields).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{fields:?}");
        let page = r.text().await.unwrap();
        assert!(page.contains("id=\"client-error\""), "{page}");
        assert!(page.contains(says), "{says}: {page}");
        // What was typed is kept.
        assert!(page.contains(&format!("value=\"{}\"", fields[0].1)));
        assert!(!page.contains("created-client-id"));
    }
    assert!(store.oidc_clients().await.unwrap().is_empty());
}

#[tokio::test]
async fn only_staff_with_the_csrf_token_register_clients() {
    let app = TestApp::spawn().await;
    let staff = staff(&app).await;
    let store = app.state.services.store.clone();
    let fields = [
        ("name", "Wiki"),
        ("redirect_uris", "https://wiki.example.org/cb"),
    ];

    // A person who is not staff.
    let mut person = app.agent().await;
    person.register("mallory").await;
    person.refresh_csrf().await;
    assert_eq!(
        person.post_form(PAGE, &fields).await.status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(person.get(PAGE).await.status(), StatusCode::FORBIDDEN);

    // Staff, but without the form's token (a forged cross-site post).
    let r = staff
        .client
        .post(staff.url(PAGE))
        .form(&fields)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(store.oidc_clients().await.unwrap().is_empty());
}
