//! The OpenID Connect provider (Core 1.0, Discovery 1.0, OAuth 2.0 with
//! PKCE), without HTTP: clients and their authentication
//! ([`clients`]), the signing keys, discovery and JWKS ([`keys`]), the
//! authorisation request and its decision ([`authorize`]), and the token,
//! userinfo, revocation and logout operations ([`tokens`]). The protocol
//! types (metadata, JWKS, ID-token claims and signatures) are the
//! `openidconnect` crate's; the web layer only carries requests here and
//! answers back.

pub mod authorize;
pub mod clients;
mod error;
pub mod keys;
mod secret;
pub mod tokens;

pub use authorize::{AuthzRequest, Next, Pending};
pub use clients::{ClientCredentials, RegisteredClient};
pub use error::{AuthzError, OAuthError};
pub use tokens::{TokenRequest, TokenResponse};

/// The scopes facegate knows; others are ignored.
pub const SCOPES: [&str; 4] = ["openid", "profile", "email", "offline_access"];

/// The paths of the endpoints, under the issuer.
pub mod paths {
    pub const DISCOVERY: &str = "/.well-known/openid-configuration";
    pub const AUTHORIZE: &str = "/oauth2/authorize";
    pub const CONSENT: &str = "/oauth2/consent";
    pub const TOKEN: &str = "/oauth2/token";
    pub const USERINFO: &str = "/oauth2/userinfo";
    pub const JWKS: &str = "/oauth2/jwks";
    pub const REVOKE: &str = "/oauth2/revoke";
    pub const LOGOUT: &str = "/oauth2/logout";
}
