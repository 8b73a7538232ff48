//! OpenID Connect provider records: registered clients (relying parties),
//! authorisation codes, access and refresh tokens (kept only as hashes),
//! consents, and how a person authenticated ([`Authn`]), which the ID
//! token reports as `acr`, `amr` and `auth_time`.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// A registered relying party.
#[derive(Debug, Clone, Serialize)]
pub struct OidcClient {
    pub client_id: String,
    pub name: String,
    /// The Argon2 hash of the secret; `None` for a public client (PKCE).
    #[serde(skip)]
    pub secret_hash: Option<String>,
    /// Exact redirect URIs; an authorisation request must name one.
    pub redirect_uris: Vec<String>,
    /// Where RP-initiated logout may send the person afterwards.
    pub post_logout_redirect_uris: Vec<String>,
    /// First-party clients are not asked for consent.
    pub first_party: bool,
    /// The lowest `acr` this client accepts, whatever it asks for.
    pub min_acr: Option<String>,
    pub created_at: OffsetDateTime,
}

impl OidcClient {
    pub fn is_public(&self) -> bool {
        self.secret_hash.is_none()
    }
}

/// The strength of an authentication, lowest first. The names are the
/// `acr` values facegate issues (docs/OIDC.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Acr {
    /// A password only.
    #[serde(rename = "urn:facegate:acr:pwd")]
    Password,
    /// A face matched on one frame (passive liveness cues only).
    #[serde(rename = "urn:facegate:acr:face")]
    Face,
    /// A face matched while passing an active liveness challenge, or a
    /// face together with a password.
    #[serde(rename = "urn:facegate:acr:face-live")]
    FaceLive,
}

impl Acr {
    pub const ALL: [Acr; 3] = [Acr::Password, Acr::Face, Acr::FaceLive];

    pub fn as_str(&self) -> &'static str {
        match self {
            Acr::Password => "urn:facegate:acr:pwd",
            Acr::Face => "urn:facegate:acr:face",
            Acr::FaceLive => "urn:facegate:acr:face-live",
        }
    }

    pub fn parse(s: &str) -> Option<Acr> {
        Acr::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

/// How and when the person behind a session proved who they are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Authn {
    /// Unix seconds of the last authentication step.
    pub auth_time: i64,
    /// A password was checked.
    pub password: bool,
    /// A face was matched.
    pub face: bool,
    /// The face passed an active liveness challenge.
    pub liveness: bool,
}

impl Authn {
    /// RFC 8176 values: `pwd`, `face`, and `mfa` when both.
    pub fn amr(&self) -> Vec<String> {
        let mut amr = Vec::new();
        if self.password {
            amr.push("pwd".to_string());
        }
        if self.face {
            amr.push("face".to_string());
        }
        if self.password && self.face {
            amr.push("mfa".to_string());
        }
        amr
    }

    pub fn acr(&self) -> Acr {
        match (self.face, self.liveness || self.password) {
            (true, true) => Acr::FaceLive,
            (true, false) => Acr::Face,
            _ => Acr::Password,
        }
    }
}

/// A client to register.
#[derive(Debug, Clone)]
pub struct NewOidcClient {
    pub client_id: String,
    pub name: String,
    pub secret_hash: Option<String>,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub first_party: bool,
    pub min_acr: Option<String>,
}

/// What an authorisation code or a token was issued for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub client_id: String,
    pub user_id: i64,
    /// Space-separated scopes granted.
    pub scope: String,
    pub authn: Authn,
}

/// An authorisation code as stored (under the hash of the code).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthCode {
    pub code_hash: String,
    pub grant: Grant,
    pub redirect_uri: String,
    pub nonce: Option<String>,
    /// The PKCE S256 challenge, when the request carried one.
    pub code_challenge: Option<String>,
    pub expires_at: OffsetDateTime,
}

/// What redeeming a code or a refresh token found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redeemed<T> {
    /// Unused until now; it is used from now on.
    Fresh(T),
    /// It was used before (a replay).
    Reused(T),
    Unknown,
}

/// The kind of a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    Access,
    Refresh,
}

impl TokenKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            TokenKind::Access => "access",
            TokenKind::Refresh => "refresh",
        }
    }
}

/// An access or refresh token as stored (under its hash). Tokens issued
/// from one code, and all refreshed from them, share a `family`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcToken {
    pub token_hash: String,
    pub kind: TokenKind,
    pub family: String,
    pub grant: Grant,
    pub expires_at: OffsetDateTime,
    pub revoked: bool,
}

/// A person's consent for a client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Consent {
    pub user_id: i64,
    pub client_id: String,
    pub client_name: String,
    pub scope: String,
    pub granted_at: OffsetDateTime,
}

/// An ID-token signing key's public half and its state; the private key
/// stays in the sealing layer's answer ([`SigningKey`]).
#[derive(Clone)]
pub struct SigningKey {
    pub kid: String,
    /// PKCS#1 PEM of the RSA private key.
    pub private_pem: crate::crypto::SecretString,
    pub created_at: OffsetDateTime,
    /// Set once a newer key signs; still published until its tokens expire.
    pub retired_at: Option<OffsetDateTime>,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({}, retired {:?})", self.kid, self.retired_at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn authn(password: bool, face: bool, liveness: bool) -> Authn {
        Authn {
            auth_time: 0,
            password,
            face,
            liveness,
        }
    }

    #[test]
    fn amr_and_acr_say_how_the_person_proved_it() {
        assert_eq!(authn(true, false, false).amr(), ["pwd"]);
        assert_eq!(authn(true, false, false).acr(), Acr::Password);
        assert_eq!(authn(false, true, false).amr(), ["face"]);
        assert_eq!(authn(false, true, false).acr(), Acr::Face);
        assert_eq!(authn(false, true, true).acr(), Acr::FaceLive);
        assert_eq!(authn(true, true, false).amr(), ["pwd", "face", "mfa"]);
        assert_eq!(authn(true, true, false).acr(), Acr::FaceLive);
        assert!(Acr::Password < Acr::Face && Acr::Face < Acr::FaceLive);
        for a in Acr::ALL {
            assert_eq!(Acr::parse(a.as_str()), Some(a));
        }
    }
}
