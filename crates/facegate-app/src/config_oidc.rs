//! The `[oidc]` settings of the OpenID Connect provider (the issuer
//! itself is the top-level `public_url`).

use serde::{Deserialize, Serialize};

/// Lifetimes and limits of the OpenID Connect provider.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OidcConfig {
    /// Lifetime of an authorisation code (at most 60).
    pub code_seconds: i64,
    /// Lifetime of an access token.
    pub access_token_seconds: i64,
    /// Lifetime of an ID token.
    pub id_token_seconds: i64,
    /// Lifetime of a refresh token (each use issues a new one).
    pub refresh_token_days: i64,
    /// Token-endpoint requests per client per minute.
    pub token_rate_limit_per_client: u32,
}

impl Default for OidcConfig {
    fn default() -> Self {
        OidcConfig {
            code_seconds: 60,
            access_token_seconds: 600,
            id_token_seconds: 600,
            refresh_token_days: 30,
            token_rate_limit_per_client: 60,
        }
    }
}

impl OidcConfig {
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            (1..=60).contains(&self.code_seconds),
            "oidc.code_seconds must be between 1 and 60"
        );
        anyhow::ensure!(
            self.access_token_seconds >= 1 && self.id_token_seconds >= 1,
            "oidc token lifetimes must be at least 1 second"
        );
        anyhow::ensure!(
            self.refresh_token_days >= 1,
            "oidc.refresh_token_days must be at least 1"
        );
        Ok(())
    }
}
