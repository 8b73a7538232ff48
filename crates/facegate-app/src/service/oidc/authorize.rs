//! The authorisation endpoint without HTTP: [`Services::parse_authorize`]
//! checks a request (client and exact redirect URI first: until both are
//! trusted, errors are only shown, never redirected), and
//! [`Services::decide_authorize`] says what happens next for the session
//! at hand: a login, a face step-up, the consent page, or a redirect with
//! a code (or with `login_required`, … under `prompt=none`).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use super::error::AuthzError;
use super::secret::{random_token, token_hash};
use crate::domain::oidc::{Acr, AuthCode, Authn, Grant};
use crate::domain::{AuditKind, NewAuditEvent, User};
use crate::service::Services;

/// A checked authorisation request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthzRequest {
    pub client_id: String,
    pub client_name: String,
    pub first_party: bool,
    pub redirect_uri: String,
    /// The known scopes asked for, `openid` first.
    pub scopes: Vec<String>,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub prompt_none: bool,
    pub prompt_login: bool,
    pub prompt_consent: bool,
    pub max_age: Option<i64>,
    pub login_hint: Option<String>,
    /// The lowest level the client accepts (its `acr_values` and its
    /// registered minimum).
    pub required_acr: Option<Acr>,
}

impl AuthzRequest {
    pub fn scope(&self) -> String {
        self.scopes.join(" ")
    }
}

/// An authorisation request waiting in the session for a login, a face
/// step or a consent: its query, and when it first arrived (a login
/// after that moment satisfies `prompt=login`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    pub query: String,
    pub started: i64,
}

/// What the authorisation endpoint does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// The person must log in; `face`: with their face (step-up).
    Login { face: bool },
    /// Ask the person's consent.
    Consent,
    /// Send the browser back to the client (a code, or an error).
    Redirect(String),
}

type Params = HashMap<String, String>;

/// The parameters, refusing repeated ones (RFC 6749 §3.1).
fn collect(pairs: &[(String, String)]) -> Result<Params, String> {
    let mut params = Params::new();
    for (k, v) in pairs {
        if params.insert(k.clone(), v.clone()).is_some() {
            return Err(format!("the parameter {k} is repeated"));
        }
    }
    Ok(params)
}

impl Services {
    /// Checks an authorisation request; see the module documentation.
    pub async fn parse_authorize(
        &self,
        pairs: &[(String, String)],
    ) -> Result<AuthzRequest, AuthzError> {
        let page = |m: &str| AuthzError::Page(m.to_string());
        let params = collect(pairs).map_err(|m| page(&m))?;
        let client_id = params
            .get("client_id")
            .ok_or_else(|| page("The request names no client (client_id)."))?;
        let client = self
            .store
            .oidc_client(client_id)
            .await?
            .ok_or_else(|| page("The application that sent you here is not registered."))?;
        let redirect_uri = params
            .get("redirect_uri")
            .filter(|u| client.redirect_uris.contains(u))
            .ok_or_else(|| {
                page("The application asked to send you to an address it has not registered.")
            })?
            .clone();
        let state = params.get("state").cloned();
        let fail = |code: &'static str, description: &str| AuthzError::Redirect {
            redirect_uri: redirect_uri.clone(),
            state: state.clone(),
            code,
            description: description.to_string(),
        };
        if params.get("response_type").map(String::as_str) != Some("code") {
            return Err(fail(
                "unsupported_response_type",
                "only the authorization code flow (response_type=code) is supported",
            ));
        }
        if let Some(mode) = params.get("response_mode").filter(|m| *m != "query") {
            return Err(fail(
                "invalid_request",
                &format!("response_mode {mode} is not supported"),
            ));
        }
        if params.contains_key("request") || params.contains_key("request_uri") {
            return Err(fail(
                "request_not_supported",
                "request objects are not supported",
            ));
        }
        let asked: Vec<&str> = params
            .get("scope")
            .map(|s| s.split(' ').filter(|s| !s.is_empty()).collect())
            .unwrap_or_default();
        if !asked.contains(&"openid") {
            return Err(fail("invalid_scope", "the openid scope is required"));
        }
        let scopes = super::protocol::SCOPES
            .iter()
            .filter(|s| asked.contains(s))
            .map(|s| s.to_string())
            .collect();
        let code_challenge = match (
            params.get("code_challenge"),
            params.get("code_challenge_method").map(String::as_str),
        ) {
            (Some(c), Some("S256")) if (43..=128).contains(&c.len()) => Some(c.clone()),
            (Some(_), Some("S256")) => {
                return Err(fail(
                    "invalid_request",
                    "code_challenge has the wrong length",
                ))
            }
            (Some(_), _) => {
                return Err(fail(
                    "invalid_request",
                    "code_challenge_method must be S256",
                ))
            }
            (None, _) if client.is_public() => {
                return Err(fail(
                    "invalid_request",
                    "PKCE (S256) is required for this client",
                ))
            }
            (None, _) => None,
        };
        let prompt: Vec<&str> = params
            .get("prompt")
            .map(|p| p.split(' ').filter(|s| !s.is_empty()).collect())
            .unwrap_or_default();
        let prompt_none = prompt.contains(&"none");
        if prompt_none && prompt.len() > 1 {
            return Err(fail("invalid_request", "prompt=none cannot be combined"));
        }
        let max_age =
            match params.get("max_age") {
                Some(v) => Some(v.parse::<i64>().ok().filter(|v| *v >= 0).ok_or_else(|| {
                    fail("invalid_request", "max_age must be a number of seconds")
                })?),
                None => None,
            };
        // acr_values lists levels the client accepts: the lowest known one
        // is the floor; the client's registered minimum applies anyway.
        let asked_acr = params
            .get("acr_values")
            .and_then(|v| v.split(' ').filter_map(Acr::parse).min());
        let min_acr = client.min_acr.as_deref().and_then(Acr::parse);
        Ok(AuthzRequest {
            client_id: client.client_id.clone(),
            client_name: client.name.clone(),
            first_party: client.first_party,
            redirect_uri,
            scopes,
            state,
            nonce: params.get("nonce").cloned(),
            code_challenge,
            prompt_none,
            prompt_login: prompt.contains(&"login"),
            prompt_consent: prompt.contains(&"consent"),
            max_age,
            login_hint: params.get("login_hint").cloned(),
            required_acr: asked_acr.max(min_acr),
        })
    }

    /// What happens next for a request that arrived at `started`, given
    /// who the session holds and how they authenticated.
    pub async fn decide_authorize(
        &self,
        req: &AuthzRequest,
        who: Option<(&User, &Authn)>,
        started: i64,
    ) -> Result<Next, AuthzError> {
        let interaction = |code: &'static str, next: Next| {
            if req.prompt_none {
                Err(self.authorize_error(req, code, "the person must interact with the provider"))
            } else {
                Ok(next)
            }
        };
        let Some((user, authn)) = who else {
            return interaction("login_required", Next::Login { face: false });
        };
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let too_old = req.max_age.is_some_and(|max| now - authn.auth_time > max);
        if (req.prompt_login && authn.auth_time < started) || too_old {
            return interaction("login_required", Next::Login { face: authn.face });
        }
        if req.required_acr.is_some_and(|need| authn.acr() < need) {
            return interaction("interaction_required", Next::Login { face: true });
        }
        if !req.first_party {
            let consent = self.store.consent(user.id, &req.client_id).await?;
            let covered = consent.is_some_and(|c| {
                let granted: Vec<&str> = c.scope.split(' ').collect();
                req.scopes.iter().all(|s| granted.contains(&s.as_str()))
            });
            if !covered || req.prompt_consent {
                return interaction("consent_required", Next::Consent);
            }
        }
        self.issue_code(req, user, authn).await.map(Next::Redirect)
    }

    /// The redirect carrying an error back to the client.
    pub fn authorize_error(&self, req: &AuthzRequest, code: &'static str, d: &str) -> AuthzError {
        AuthzError::Redirect {
            redirect_uri: req.redirect_uri.clone(),
            state: req.state.clone(),
            code,
            description: d.to_string(),
        }
    }

    /// Records the person's consent to the request's scopes.
    pub async fn give_consent(&self, user: &User, req: &AuthzRequest) -> Result<(), AuthzError> {
        self.store
            .set_consent(user.id, &req.client_id, &req.scope())
            .await?;
        let event = NewAuditEvent::new(AuditKind::OidcConsent, "granted")
            .by(user.id, &user.username)
            .detail(format!("client_id={} scope={}", req.client_id, req.scope()));
        self.record_event(event).await;
        Ok(())
    }

    /// Issues a single-use code bound to the client, the redirect URI and
    /// the PKCE challenge; returns the redirect that carries it.
    async fn issue_code(
        &self,
        req: &AuthzRequest,
        user: &User,
        authn: &Authn,
    ) -> Result<String, AuthzError> {
        let code = random_token();
        let ttl = Duration::seconds(self.config.oidc.code_seconds);
        let stored = AuthCode {
            code_hash: token_hash(&code),
            grant: Grant {
                client_id: req.client_id.clone(),
                user_id: user.id,
                scope: req.scope(),
                authn: authn.clone(),
            },
            redirect_uri: req.redirect_uri.clone(),
            nonce: req.nonce.clone(),
            code_challenge: req.code_challenge.clone(),
            expires_at: OffsetDateTime::now_utc() + ttl,
        };
        self.store.insert_auth_code(&stored).await?;
        let event = NewAuditEvent::new(AuditKind::OidcToken, "code_issued")
            .by(user.id, &user.username)
            .detail(format!(
                "client_id={} scope={} acr={}",
                req.client_id,
                req.scope(),
                authn.acr().as_str()
            ));
        self.record_event(event).await;
        let mut url = url::Url::parse(&req.redirect_uri)
            .map_err(|e| AuthzError::Service(format!("redirect_uri: {e}")))?;
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("code", &code);
            if let Some(s) = &req.state {
                q.append_pair("state", s);
            }
            q.append_pair("iss", &self.config.issuer());
        }
        Ok(url.to_string())
    }
}
