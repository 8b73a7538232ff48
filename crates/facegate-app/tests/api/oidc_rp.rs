//! A relying party for the OpenID Connect tests, built on the real
//! `openidconnect` crate (discovery, PKCE, the ID token verified against
//! the provider's JWKS), and a browser-like agent that walks the
//! authorisation redirects by hand.

use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreIdTokenClaims, CoreProviderMetadata, CoreTokenResponse,
};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointMaybeSet, EndpointNotSet,
    EndpointSet, IssuerUrl, Nonce, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope,
    TokenResponse,
};
use reqwest::StatusCode;

use crate::helpers::{Agent, TestApp};
use facegate_app::service::oidc::clients::{register_client, ClientSpec, RegisteredClient};

pub const REDIRECT: &str = "http://127.0.0.1:9/callback";
pub const AFTER_LOGOUT: &str = "http://127.0.0.1:9/bye";

pub type Client = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// A registered client and the `openidconnect` client configured from
/// the provider's discovery document.
pub struct Rp {
    pub client: Client,
    pub http: reqwest::Client,
    pub registered: RegisteredClient,
}

/// One authorisation request in flight.
pub struct Started {
    pub url: String,
    pub state: CsrfToken,
    pub nonce: Nonce,
    pub verifier: PkceCodeVerifier,
}

pub fn spec(name: &str) -> ClientSpec {
    ClientSpec {
        name: name.into(),
        redirect_uris: vec![REDIRECT.into()],
        post_logout_redirect_uris: vec![AFTER_LOGOUT.into()],
        ..ClientSpec::default()
    }
}

pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

impl Rp {
    /// Registers `spec` and discovers the provider.
    pub async fn register(app: &TestApp, spec: ClientSpec) -> Rp {
        let registered = register_client(&app.state.services.store, spec)
            .await
            .unwrap();
        Self::discover(app, registered).await
    }

    pub async fn discover(app: &TestApp, registered: RegisteredClient) -> Rp {
        let http = http();
        let issuer = IssuerUrl::new(app.base.clone()).unwrap();
        let meta = CoreProviderMetadata::discover_async(issuer, &http)
            .await
            .expect("discovery");
        let client = CoreClient::from_provider_metadata(
            meta,
            ClientId::new(registered.client_id.clone()),
            registered.client_secret.clone().map(ClientSecret::new),
        )
        .set_redirect_uri(RedirectUrl::new(REDIRECT.into()).unwrap());
        Rp {
            client,
            http,
            registered,
        }
    }

    /// An authorisation request with PKCE, a nonce and `extra` parameters.
    pub fn start(&self, extra: &[(&str, &str)]) -> Started {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut req = self
            .client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .add_scope(Scope::new("profile".into()))
            .add_scope(Scope::new("email".into()))
            .set_pkce_challenge(challenge);
        for (k, v) in extra {
            req = req.add_extra_param(*k, *v);
        }
        let (url, state, nonce) = req.url();
        Started {
            url: url.to_string(),
            state,
            nonce,
            verifier,
        }
    }

    /// Exchanges a code (with the PKCE verifier).
    pub async fn exchange(
        &self,
        code: &str,
        verifier: PkceCodeVerifier,
    ) -> Result<CoreTokenResponse, String> {
        self.client
            .exchange_code(AuthorizationCode::new(code.into()))
            .unwrap()
            .set_pkce_verifier(verifier)
            .request_async(&self.http)
            .await
            .map_err(|e| format!("{e:?}"))
    }

    /// The ID token's claims, verified (signature through the JWKS, issuer,
    /// audience, expiry, nonce).
    pub fn verify(&self, tokens: &CoreTokenResponse, nonce: &Nonce) -> CoreIdTokenClaims {
        tokens
            .id_token()
            .expect("an ID token")
            .claims(&self.client.id_token_verifier(), nonce)
            .expect("a valid ID token")
            .clone()
    }
}

/// The `Location` of a redirect.
pub fn location(r: &reqwest::Response) -> String {
    assert!(
        r.status().is_redirection(),
        "not a redirect: {}",
        r.status()
    );
    r.headers()["location"].to_str().unwrap().to_string()
}

/// A query parameter of a URL.
pub fn param(url: &str, name: &str) -> Option<String> {
    let url = reqwest::Url::parse(url).ok()?;
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// Follows the provider's redirects from `url` (absolute) until one leaves
/// it (to the client) or a page is shown; returns the last response and,
/// when the client was reached, its URL.
pub async fn follow(agent: &Agent, url: &str) -> (reqwest::Response, Option<String>) {
    let mut next = url.to_string();
    for _ in 0..10 {
        let r = agent.client.get(&next).send().await.unwrap();
        if r.status() == StatusCode::OK && next == agent.url("/") {
            // The page that refreshes to the interrupted request.
            let page = r.text().await.unwrap();
            let to = refresh_target(&page).expect("a refresh to the request");
            next = agent.url(&to);
            continue;
        }
        if !r.status().is_redirection() {
            return (r, None);
        }
        let to = location(&r);
        if to.starts_with("http://127.0.0.1:9/") {
            return (r, Some(to));
        }
        next = if to.starts_with('/') {
            agent.url(&to)
        } else {
            to
        };
        if !next.starts_with(&agent.base) {
            return (r, Some(next));
        }
        if next.ends_with("/login") || next.ends_with("/face-login") {
            let r = agent.client.get(&next).send().await.unwrap();
            return (r, None);
        }
    }
    panic!("too many redirects from {url}");
}

/// The target of a page's `<meta http-equiv="refresh">`, unescaped.
fn refresh_target(page: &str) -> Option<String> {
    let start = page.find("content=\"0;url=")? + "content=\"0;url=".len();
    let end = start + page[start..].find('"')?;
    let escaped = &page[start..end];
    Some(
        escaped
            .replace("&#x2f;", "/")
            .replace("&#x27;", "'")
            .replace("&quot;", "\"")
            .replace("&amp;", "&"),
    )
}

/// Answers the consent page.
pub async fn consent(agent: &mut Agent, allow: bool) -> reqwest::Response {
    agent.refresh_csrf().await;
    let decision = if allow { "allow" } else { "deny" };
    let r = agent
        .client
        .post(agent.url("/oauth2/consent"))
        .form(&[("csrf_token", agent.csrf.as_str()), ("decision", decision)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "consent answer");
    r
}
