//! The OpenID Connect concerns through the sealing layer: clients, codes,
//! tokens and consents pass to the backend untouched (they hold no
//! biometric data and no token in the clear); the ID-token signing keys'
//! private halves are sealed with the master key, bound to their `kid`.

use async_trait::async_trait;
use time::OffsetDateTime;

use super::layer::{on_key, open_with, seal_with, Refused, SealingStore};
use crate::crypto::SecretString;
use crate::domain::oidc::{
    AuthCode, Consent, NewOidcClient, OidcClient, OidcToken, Redeemed, SigningKey,
};
use crate::store::backend::StoredBlob;
use crate::store::error::StoreResult;
use crate::store::oidc::{OidcRecords, SigningKeys};

/// What a signing key's seal is bound to.
fn key_aad(kid: &str) -> Vec<u8> {
    format!("oidc_signing_keys/{kid}").into_bytes()
}

#[async_trait]
impl OidcRecords for SealingStore {
    async fn add_oidc_client(&self, new: &NewOidcClient) -> StoreResult<OidcClient> {
        self.backend.add_oidc_client(new).await
    }
    async fn oidc_client(&self, client_id: &str) -> StoreResult<Option<OidcClient>> {
        self.backend.oidc_client(client_id).await
    }
    async fn oidc_clients(&self) -> StoreResult<Vec<OidcClient>> {
        self.backend.oidc_clients().await
    }
    async fn remove_oidc_client(&self, client_id: &str) -> StoreResult<bool> {
        self.backend.remove_oidc_client(client_id).await
    }
    async fn insert_auth_code(&self, code: &AuthCode) -> StoreResult<()> {
        self.backend.insert_auth_code(code).await
    }
    async fn redeem_auth_code(&self, code_hash: &str) -> StoreResult<Redeemed<AuthCode>> {
        self.backend.redeem_auth_code(code_hash).await
    }
    async fn insert_oidc_token(&self, token: &OidcToken) -> StoreResult<()> {
        self.backend.insert_oidc_token(token).await
    }
    async fn oidc_token(&self, token_hash: &str) -> StoreResult<Option<OidcToken>> {
        self.backend.oidc_token(token_hash).await
    }
    async fn redeem_refresh_token(&self, token_hash: &str) -> StoreResult<Redeemed<OidcToken>> {
        self.backend.redeem_refresh_token(token_hash).await
    }
    async fn revoke_token_family(&self, family: &str) -> StoreResult<u64> {
        self.backend.revoke_token_family(family).await
    }
    async fn set_consent(&self, user_id: i64, client_id: &str, scope: &str) -> StoreResult<()> {
        self.backend.set_consent(user_id, client_id, scope).await
    }
    async fn consent(&self, user_id: i64, client_id: &str) -> StoreResult<Option<Consent>> {
        self.backend.consent(user_id, client_id).await
    }
    async fn consents_for_user(&self, user_id: i64) -> StoreResult<Vec<Consent>> {
        self.backend.consents_for_user(user_id).await
    }
    async fn revoke_consent(&self, user_id: i64, client_id: &str) -> StoreResult<bool> {
        self.backend.revoke_consent(user_id, client_id).await
    }
    async fn delete_expired_oidc(&self, cutoff: OffsetDateTime) -> StoreResult<u64> {
        self.backend.delete_expired_oidc(cutoff).await
    }
}

#[async_trait]
impl SigningKeys for SealingStore {
    async fn signing_keys(&self) -> StoreResult<Vec<SigningKey>> {
        let mut keys = Vec::new();
        let mut refused = Vec::new();
        for row in self.backend.signing_key_rows().await? {
            match open_with(&self.vault, &row.key, &key_aad(&row.kid)) {
                Ok(plain) => keys.push(SigningKey {
                    private_pem: SecretString(String::from_utf8_lossy(&plain).into_owned()),
                    kid: row.kid,
                    created_at: row.created_at,
                    retired_at: row.retired_at,
                }),
                Err(reason) => refused.push(Refused {
                    record: format!("oidc_signing_keys/{}", row.kid),
                    user_id: None,
                    reason,
                }),
            }
        }
        self.report(refused).await;
        Ok(keys)
    }

    async fn add_signing_key(
        &self,
        kid: &str,
        private_pem: &str,
        only_first: bool,
    ) -> StoreResult<bool> {
        let sealed = self.seal(private_pem.as_bytes(), &key_aad(kid));
        self.backend
            .insert_signing_key(kid, &sealed, only_first)
            .await
    }

    async fn reseal_signing_keys(&self) -> StoreResult<u64> {
        let primary = self.vault.primary_id();
        let mut done = 0;
        for row in self.backend.signing_key_rows().await? {
            if on_key(&row.key, &primary) {
                continue;
            }
            let aad = key_aad(&row.kid);
            let reseal = |b: &StoredBlob| {
                Ok(open_with(&self.vault, b, &aad)
                    .ok()
                    .map(|plain| seal_with(&self.vault, &plain, &aad)))
            };
            if self
                .backend
                .reseal_signing_key_row(&row.kid, &reseal)
                .await?
            {
                done += 1;
            }
        }
        Ok(done)
    }

    async fn prune_signing_keys(&self, cutoff: OffsetDateTime) -> StoreResult<u64> {
        self.backend
            .delete_signing_keys_retired_before(cutoff)
            .await
    }
}
