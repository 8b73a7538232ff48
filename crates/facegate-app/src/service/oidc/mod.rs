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
mod protocol;
mod secret;
pub mod tokens;

pub use authorize::{AuthzRequest, Next, Pending};
pub use clients::{ClientCredentials, RegisteredClient};
pub use error::{AuthzError, OAuthError};
pub use tokens::{TokenRequest, TokenResponse};

pub use protocol::{paths, SCOPES};
