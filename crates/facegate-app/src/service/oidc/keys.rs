//! The ID-token signing keys (RSA 2048, RS256): created when first
//! needed, kept sealed in the store so every instance signs with the same
//! keys, rotated on command with the old key still published in the JWKS
//! until the tokens it signed have expired; and the two documents built
//! from them: the discovery metadata and the JWK set.

use openidconnect::core::{
    CoreJsonWebKeySet, CoreJwsSigningAlgorithm, CoreProviderMetadata, CoreResponseType,
    CoreRsaPrivateSigningKey, CoreSubjectIdentifierType,
};
use openidconnect::{
    AuthUrl, EmptyAdditionalProviderMetadata, IssuerUrl, JsonWebKeyId, JsonWebKeySetUrl,
    PrivateSigningKey, ResponseTypes, Scope, TokenUrl, UserInfoUrl,
};
use rsa::pkcs1::{EncodeRsaPrivateKey, LineEnding};
use serde_json::Value;
use time::{Duration, OffsetDateTime};

use super::protocol::paths;
use super::secret::random_token;
use crate::config::Config;
use crate::domain::oidc::{Acr, SigningKey};
use crate::domain::{AuditKind, NewAuditEvent};
use crate::service::{ServiceError, ServiceResult, Services};
use crate::store::DynStore;

fn internal(what: &str, e: impl std::fmt::Display) -> ServiceError {
    ServiceError::Internal(format!("{what}: {e}"))
}

/// A new RSA key as PKCS#1 PEM, with a new `kid`.
async fn generate() -> ServiceResult<(String, String)> {
    let pem = tokio::task::spawn_blocking(|| {
        let key = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048)
            .map_err(|e| internal("generating a signing key", e))?;
        key.to_pkcs1_pem(LineEnding::LF)
            .map(|p| p.to_string())
            .map_err(|e| internal("encoding a signing key", e))
    })
    .await
    .map_err(|e| internal("generating a signing key", e))??;
    Ok((random_token()[..16].to_string(), pem))
}

/// A stored key, ready to sign.
pub fn signer(key: &SigningKey) -> ServiceResult<CoreRsaPrivateSigningKey> {
    CoreRsaPrivateSigningKey::from_pem(&key.private_pem.0, Some(JsonWebKeyId::new(key.kid.clone())))
        .map_err(|e| internal("reading a signing key", e))
}

/// The keys, creating the first one if there is none.
pub async fn signing_keys(store: &DynStore) -> ServiceResult<Vec<SigningKey>> {
    let keys = store.signing_keys().await?;
    if !keys.is_empty() {
        return Ok(keys);
    }
    let (kid, pem) = generate().await?;
    store.add_signing_key(&kid, &pem, true).await?;
    let keys = store.signing_keys().await?;
    if keys.is_empty() {
        return Err(internal("signing keys", "none opens with the master key"));
    }
    Ok(keys)
}

/// Adds a new signing key that signs from now on; the old ones stay
/// published until the ID tokens they signed have expired
/// (`id_token_seconds`), then are deleted. Returns the new `kid`.
pub async fn rotate_signing_key(store: &DynStore, config: &Config) -> ServiceResult<String> {
    signing_keys(store).await?;
    let (kid, pem) = generate().await?;
    store.add_signing_key(&kid, &pem, false).await?;
    let pruned = prune(store, config).await?;
    let event = NewAuditEvent::new(AuditKind::KeyRotated, "success")
        .detail(format!("oidc signing key kid={kid} pruned={pruned}"));
    store.append_audit(&event.bounded()).await?;
    Ok(kid)
}

/// Deletes the keys retired longer ago than any token they signed lives.
async fn prune(store: &DynStore, config: &Config) -> ServiceResult<u64> {
    let longest = config.oidc.id_token_seconds.max(60);
    let cutoff = OffsetDateTime::now_utc() - Duration::seconds(longest);
    Ok(store.prune_signing_keys(cutoff).await?)
}

impl Services {
    /// The keys, creating the first one if there is none.
    pub async fn oidc_keys(&self) -> ServiceResult<Vec<SigningKey>> {
        signing_keys(&self.store).await
    }

    /// The key that signs now: the newest that is not retired.
    pub async fn current_signer(&self) -> ServiceResult<CoreRsaPrivateSigningKey> {
        let keys = self.oidc_keys().await?;
        let current = keys
            .iter()
            .find(|k| k.retired_at.is_none())
            .unwrap_or(&keys[0]);
        signer(current)
    }

    /// The JWK set: the public half of every key still published.
    pub async fn jwks(&self) -> ServiceResult<CoreJsonWebKeySet> {
        let keys = self.oidc_keys().await?;
        let public = keys
            .iter()
            .map(|k| signer(k).map(|s| s.as_verification_key()))
            .collect::<ServiceResult<Vec<_>>>()?;
        Ok(CoreJsonWebKeySet::new(public))
    }

    /// The discovery document (OpenID Connect Discovery 1.0).
    pub fn discovery(&self) -> ServiceResult<Value> {
        let issuer = self.config.issuer();
        let url = |path: &str| format!("{issuer}{path}");
        let bad = |e: openidconnect::url::ParseError| internal("public_url", e);
        let metadata = CoreProviderMetadata::new(
            IssuerUrl::new(issuer.clone()).map_err(bad)?,
            AuthUrl::new(url(paths::AUTHORIZE)).map_err(bad)?,
            JsonWebKeySetUrl::new(url(paths::JWKS)).map_err(bad)?,
            vec![ResponseTypes::new(vec![CoreResponseType::Code])],
            vec![CoreSubjectIdentifierType::Public],
            vec![CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256],
            EmptyAdditionalProviderMetadata {},
        )
        .set_token_endpoint(Some(TokenUrl::new(url(paths::TOKEN)).map_err(bad)?))
        .set_userinfo_endpoint(Some(UserInfoUrl::new(url(paths::USERINFO)).map_err(bad)?))
        .set_scopes_supported(Some(
            super::protocol::SCOPES
                .iter()
                .map(|s| Scope::new(s.to_string()))
                .collect(),
        ))
        .set_acr_values_supported(Some(
            Acr::ALL
                .iter()
                .map(|a| openidconnect::AuthenticationContextClass::new(a.as_str().into()))
                .collect(),
        ));
        let mut doc = serde_json::to_value(&metadata).map_err(|e| internal("metadata", e))?;
        let extra = serde_json::json!({
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
            "code_challenge_methods_supported": ["S256"],
            "response_modes_supported": ["query"],
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr", "azp", "preferred_username", "name", "email", "email_verified"],
            "prompt_values_supported": ["none", "login", "consent"],
            "revocation_endpoint": url(paths::REVOKE),
            "end_session_endpoint": url(paths::LOGOUT),
            "claims_parameter_supported": false,
            "request_parameter_supported": false,
        });
        if let (Some(d), Value::Object(e)) = (doc.as_object_mut(), extra) {
            d.extend(e);
        }
        Ok(doc)
    }
}
