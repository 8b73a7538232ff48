//! The provider's errors as RFC 6749 names them: [`OAuthError`] for the
//! token, userinfo and revocation endpoints (a JSON body and a status),
//! [`AuthzError`] for the authorisation endpoint, where an untrusted
//! client or redirect URI gets an error page and never a redirect.

use crate::service::ServiceError;

/// An error of the token-side endpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthError {
    /// `invalid_request`, `invalid_client`, `invalid_grant`, …
    pub code: &'static str,
    pub description: String,
    pub status: u16,
}

impl OAuthError {
    pub fn new(code: &'static str, status: u16, description: impl Into<String>) -> Self {
        OAuthError {
            code,
            description: description.into(),
            status,
        }
    }
    pub fn invalid_request(d: impl Into<String>) -> Self {
        Self::new("invalid_request", 400, d)
    }
    pub fn invalid_client(d: impl Into<String>) -> Self {
        Self::new("invalid_client", 401, d)
    }
    pub fn invalid_grant(d: impl Into<String>) -> Self {
        Self::new("invalid_grant", 400, d)
    }
    pub fn invalid_token(d: impl Into<String>) -> Self {
        Self::new("invalid_token", 401, d)
    }
}

impl From<ServiceError> for OAuthError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::RateLimited => {
                OAuthError::new("slow_down", 429, "too many requests for this client")
            }
            other => {
                tracing::error!(error = %other, "OpenID Connect request failed");
                OAuthError::new("server_error", 500, "the server could not answer")
            }
        }
    }
}

impl From<crate::store::StoreError> for OAuthError {
    fn from(e: crate::store::StoreError) -> Self {
        ServiceError::from(e).into()
    }
}

/// An error of the authorisation endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthzError {
    /// The client or its redirect URI cannot be trusted: shown to the
    /// person, never sent anywhere.
    Page(String),
    /// Sent back to the client's (registered) redirect URI.
    Redirect {
        redirect_uri: String,
        state: Option<String>,
        code: &'static str,
        description: String,
    },
    /// The server failed.
    Service(String),
}

impl AuthzError {
    /// The redirect that carries this error, if it is one.
    pub fn location(&self) -> Option<String> {
        match self {
            AuthzError::Redirect {
                redirect_uri,
                state,
                code,
                description,
            } => {
                let mut url = url::Url::parse(redirect_uri).ok()?;
                {
                    let mut q = url.query_pairs_mut();
                    q.append_pair("error", code);
                    q.append_pair("error_description", description);
                    if let Some(s) = state {
                        q.append_pair("state", s);
                    }
                }
                Some(url.to_string())
            }
            _ => None,
        }
    }
}

impl From<ServiceError> for AuthzError {
    fn from(e: ServiceError) -> Self {
        AuthzError::Service(e.to_string())
    }
}

impl From<crate::store::StoreError> for AuthzError {
    fn from(e: crate::store::StoreError) -> Self {
        AuthzError::Service(ServiceError::from(e).to_string())
    }
}
