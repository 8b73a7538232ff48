//! The relying party's side of the authorisation code flow, all done by
//! the `openidconnect` crate: discovery of the provider, the
//! authorisation request with PKCE (S256), a nonce and a state, the code
//! exchange, and the ID token verified through the provider's JWKS
//! (signature, issuer, audience, expiry, nonce, `at_hash`).
//!
//! The provider is discovered afresh for each step, so a rotated signing
//! key is picked up without a restart (a demo can afford two requests).

use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreIdTokenClaims, CoreProviderMetadata,
};
use openidconnect::{
    AccessTokenHash, AuthenticationContextClass, AuthorizationCode, ClientId, ClientSecret,
    CsrfToken, EndpointMaybeSet, EndpointNotSet, EndpointSet, IssuerUrl, Nonce,
    OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope, TokenResponse,
};
use serde::{Deserialize, Serialize};

/// What the demo needs to know about its provider and itself.
#[derive(Debug, Clone)]
pub struct Settings {
    pub issuer: IssuerUrl,
    pub client_id: ClientId,
    /// None for a public client (PKCE alone binds its codes).
    pub client_secret: Option<ClientSecret>,
    pub redirect_uri: RedirectUrl,
    /// Sent as `acr_values` when set (e.g. `urn:facegate:acr:face`).
    pub acr_values: Option<String>,
}

/// Why a sign-in failed.
#[derive(Debug, thiserror::Error)]
pub enum RpError {
    #[error("the provider could not be discovered: {0}")]
    Discovery(String),
    #[error("the code could not be exchanged for tokens: {0}")]
    Exchange(String),
    #[error("the ID token was not accepted: {0}")]
    IdToken(String),
}

/// A sign-in under way, kept in the demo's session until the callback.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InFlight {
    pub state: String,
    pub nonce: String,
    pub verifier: String,
}

/// The person signed in, from the verified ID token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SignedIn {
    /// `preferred_username`, else `name`, else `sub`.
    pub name: String,
    pub sub: String,
    pub email: Option<String>,
    pub acr: Option<String>,
    pub amr: Vec<String>,
    pub auth_time: Option<String>,
}

type Client = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// The relying party: its settings and an HTTP client that never follows
/// redirects (as `openidconnect` advises, against SSRF).
#[derive(Debug, Clone)]
pub struct Rp {
    settings: Settings,
    http: reqwest::Client,
}

impl Rp {
    pub fn new(settings: Settings) -> anyhow::Result<Rp> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Rp { settings, http })
    }

    async fn client(&self) -> Result<Client, RpError> {
        let meta = CoreProviderMetadata::discover_async(self.settings.issuer.clone(), &self.http)
            .await
            .map_err(|e| RpError::Discovery(error_chain(&e)))?;
        Ok(CoreClient::from_provider_metadata(
            meta,
            self.settings.client_id.clone(),
            self.settings.client_secret.clone(),
        )
        .set_redirect_uri(self.settings.redirect_uri.clone()))
    }

    /// The provider's authorisation URL to send the browser to, and what
    /// to remember until it comes back.
    pub async fn start(&self) -> Result<(String, InFlight), RpError> {
        let client = self.client().await?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut req = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .add_scope(Scope::new("profile".into()))
            .add_scope(Scope::new("email".into()))
            .set_pkce_challenge(challenge);
        if let Some(acr) = &self.settings.acr_values {
            req = req.add_auth_context_value(AuthenticationContextClass::new(acr.clone()));
        }
        let (url, state, nonce) = req.url();
        let flight = InFlight {
            state: state.secret().clone(),
            nonce: nonce.secret().clone(),
            verifier: verifier.secret().clone(),
        };
        Ok((url.to_string(), flight))
    }

    /// Exchanges the code and verifies the ID token it brings.
    pub async fn finish(&self, flight: InFlight, code: String) -> Result<SignedIn, RpError> {
        let client = self.client().await?;
        let tokens = client
            .exchange_code(AuthorizationCode::new(code))
            .map_err(|e| RpError::Discovery(e.to_string()))?
            .set_pkce_verifier(PkceCodeVerifier::new(flight.verifier))
            .request_async(&self.http)
            .await
            .map_err(|e| RpError::Exchange(error_chain(&e)))?;
        let id_token = tokens
            .id_token()
            .ok_or_else(|| RpError::IdToken("the token response has none".into()))?;
        let verifier = client.id_token_verifier();
        let claims = id_token
            .claims(&verifier, &Nonce::new(flight.nonce))
            .map_err(|e| RpError::IdToken(e.to_string()))?;
        if let Some(expected) = claims.access_token_hash() {
            let bad = |e: &dyn std::fmt::Display| RpError::IdToken(e.to_string());
            let alg = id_token.signing_alg().map_err(|e| bad(&e))?;
            let key = id_token.signing_key(&verifier).map_err(|e| bad(&e))?;
            let actual = AccessTokenHash::from_token(tokens.access_token(), alg, key)
                .map_err(|e| bad(&e))?;
            if actual != *expected {
                return Err(RpError::IdToken("at_hash does not match".into()));
            }
        }
        Ok(signed_in(claims))
    }
}

fn signed_in(claims: &CoreIdTokenClaims) -> SignedIn {
    let sub = claims.subject().to_string();
    let name = claims
        .preferred_username()
        .map(|u| u.to_string())
        .or_else(|| {
            claims
                .name()
                .and_then(|n| n.get(None))
                .map(|n| n.to_string())
        })
        .unwrap_or_else(|| sub.clone());
    SignedIn {
        name,
        sub,
        email: claims.email().map(|e| e.to_string()),
        acr: claims.auth_context_ref().map(|a| a.to_string()),
        amr: claims
            .auth_method_refs()
            .map(|v| v.iter().map(|a| a.to_string()).collect())
            .unwrap_or_default(),
        auth_time: claims.auth_time().map(|t| t.to_rfc3339()),
    }
}

/// An error with its causes, for the log and the error page.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
