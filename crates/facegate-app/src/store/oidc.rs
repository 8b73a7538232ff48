//! The OpenID Connect provider's concerns of the store: [`OidcRecords`]
//! (clients, authorisation codes, tokens, consents: no biometric data, no
//! token in the clear, passed through the sealing layer untouched) and
//! [`SigningKeys`] (the ID-token signing keys, sealed with the master key
//! by the sealing layer, so every instance of a deployment signs with the
//! same keys). Backends implement [`SigningKeyRecords`] with the sealed
//! blobs.

use async_trait::async_trait;
use time::OffsetDateTime;

use super::blob::{Reseal, SealedBlob, StoredBlob};
use super::error::StoreResult;
use crate::domain::oidc::{
    AuthCode, Consent, NewOidcClient, OidcClient, OidcToken, Redeemed, SigningKey,
};

/// Clients, codes, tokens and consents.
#[async_trait]
pub trait OidcRecords: Send + Sync {
    /// Registers a client; `Conflict` when its id exists.
    async fn add_oidc_client(&self, new: &NewOidcClient) -> StoreResult<OidcClient>;
    async fn oidc_client(&self, client_id: &str) -> StoreResult<Option<OidcClient>>;
    /// Every client, oldest first.
    async fn oidc_clients(&self) -> StoreResult<Vec<OidcClient>>;
    /// Removes a client with its codes, tokens and consents; false when
    /// there was none.
    async fn remove_oidc_client(&self, client_id: &str) -> StoreResult<bool>;

    async fn insert_auth_code(&self, code: &AuthCode) -> StoreResult<()>;
    /// Marks the code used, in one atomic step: only one caller ever gets
    /// [`Redeemed::Fresh`] for a code.
    async fn redeem_auth_code(&self, code_hash: &str) -> StoreResult<Redeemed<AuthCode>>;

    async fn insert_oidc_token(&self, token: &OidcToken) -> StoreResult<()>;
    async fn oidc_token(&self, token_hash: &str) -> StoreResult<Option<OidcToken>>;
    /// Marks a refresh token used (rotation), atomically like codes.
    async fn redeem_refresh_token(&self, token_hash: &str) -> StoreResult<Redeemed<OidcToken>>;
    /// Revokes every token of a family; returns how many were live.
    async fn revoke_token_family(&self, family: &str) -> StoreResult<u64>;

    /// Records (or widens) a person's consent for a client.
    async fn set_consent(&self, user_id: i64, client_id: &str, scope: &str) -> StoreResult<()>;
    async fn consent(&self, user_id: i64, client_id: &str) -> StoreResult<Option<Consent>>;
    async fn consents_for_user(&self, user_id: i64) -> StoreResult<Vec<Consent>>;
    /// Withdraws a consent and revokes the client's tokens for the person;
    /// false when there was none.
    async fn revoke_consent(&self, user_id: i64, client_id: &str) -> StoreResult<bool>;

    /// Deletes codes and tokens that expired before `cutoff`; returns how many.
    async fn delete_expired_oidc(&self, cutoff: OffsetDateTime) -> StoreResult<u64>;
}

/// A signing key as a backend stores it.
#[derive(Debug, Clone)]
pub struct SigningKeyRow {
    pub kid: String,
    pub key: StoredBlob,
    pub created_at: OffsetDateTime,
    pub retired_at: Option<OffsetDateTime>,
}

/// The signing keys with their private halves sealed.
#[async_trait]
pub trait SigningKeyRecords: Send + Sync {
    /// Every key, newest first.
    async fn signing_key_rows(&self) -> StoreResult<Vec<SigningKeyRow>>;
    /// Adds a key that signs from now on and retires the others. With
    /// `only_first`, adds it only when there is no key at all (several
    /// instances starting at once keep one key); returns whether it was
    /// added.
    async fn insert_signing_key(
        &self,
        kid: &str,
        sealed: &SealedBlob,
        only_first: bool,
    ) -> StoreResult<bool>;
    /// Re-seals one key with what `reseal` returns; false when unchanged.
    async fn reseal_signing_key_row(
        &self,
        kid: &str,
        reseal: Reseal<'_, StoredBlob, SealedBlob>,
    ) -> StoreResult<bool>;
    /// Deletes keys retired before `cutoff`; returns how many.
    async fn delete_signing_keys_retired_before(&self, cutoff: OffsetDateTime) -> StoreResult<u64>;
}

/// The signing keys in the clear, as the services use them.
#[async_trait]
pub trait SigningKeys: Send + Sync {
    /// Every key that opens, newest first (one that does not is left
    /// out and audited as tampering).
    async fn signing_keys(&self) -> StoreResult<Vec<SigningKey>>;
    /// See [`SigningKeyRecords::insert_signing_key`].
    async fn add_signing_key(
        &self,
        kid: &str,
        private_pem: &str,
        only_first: bool,
    ) -> StoreResult<bool>;
    /// Re-seals the keys not on the primary master key (key rotation);
    /// returns how many.
    async fn reseal_signing_keys(&self) -> StoreResult<u64>;
    /// See [`SigningKeyRecords::delete_signing_keys_retired_before`].
    async fn prune_signing_keys(&self, cutoff: OffsetDateTime) -> StoreResult<u64>;
}
