//! The provider's fixed protocol facts: the scopes it knows and the
//! paths of its endpoints under the issuer.

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
