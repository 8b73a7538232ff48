//! Registering, listing and removing clients, and authenticating a
//! client at the token endpoint (`client_secret_basic`,
//! `client_secret_post`, or a public client's bare `client_id`).

use serde::Serialize;

use super::error::OAuthError;
use super::secret::{random_id, random_token};
use crate::domain::oidc::{Acr, Consent, NewOidcClient, OidcClient};
use crate::domain::{AuditKind, NewAuditEvent, User, ValidationError};
use crate::service::{hash_password, verify_password, ServiceError, ServiceResult, Services};
use crate::store::DynStore;

/// A client just registered, with its secret (shown this once).
#[derive(Debug, Clone, Serialize)]
pub struct RegisteredClient {
    pub client_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
}

/// What a client to register is told to be.
#[derive(Debug, Clone, Default)]
pub struct ClientSpec {
    pub name: String,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub public: bool,
    pub first_party: bool,
    pub min_acr: Option<String>,
}

/// The credentials a token-endpoint request carried.
#[derive(Debug, Clone, Default)]
pub struct ClientCredentials {
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    /// Whether they came in the `Authorization: Basic` header.
    pub basic: bool,
}

fn invalid(field: &'static str, message: impl Into<String>) -> ServiceError {
    ValidationError {
        field,
        message: message.into(),
    }
    .into()
}

/// A redirect URI a client may register: absolute, without a fragment
/// (RFC 6749 §3.1.2).
fn check_redirect_uri(uri: &str) -> ServiceResult<()> {
    let url = url::Url::parse(uri)
        .map_err(|_| invalid("redirect_uri", format!("{uri} is not an absolute URI")))?;
    if url.fragment().is_some() {
        return Err(invalid("redirect_uri", "a redirect URI has no fragment"));
    }
    Ok(())
}

/// Registers a client; its secret (confidential clients) is returned once
/// and stored hashed. Needs only the store (the CLI has no engine).
pub async fn register_client(
    store: &DynStore,
    spec: ClientSpec,
) -> ServiceResult<RegisteredClient> {
    let name = spec.name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(invalid(
            "name",
            "A client needs a name (at most 100 characters).",
        ));
    }
    if spec.redirect_uris.is_empty() {
        return Err(invalid("redirect_uri", "A client needs a redirect URI."));
    }
    for uri in spec
        .redirect_uris
        .iter()
        .chain(&spec.post_logout_redirect_uris)
    {
        check_redirect_uri(uri)?;
    }
    if let Some(acr) = &spec.min_acr {
        if Acr::parse(acr).is_none() {
            return Err(invalid("min_acr", format!("unknown acr {acr}")));
        }
    }
    let client_id = random_id();
    let secret = (!spec.public).then(random_token);
    let secret_hash = match &secret {
        Some(s) => Some(hash_password(s)?),
        None => None,
    };
    let new = NewOidcClient {
        client_id: client_id.clone(),
        name: name.to_string(),
        secret_hash,
        redirect_uris: spec.redirect_uris,
        post_logout_redirect_uris: spec.post_logout_redirect_uris,
        first_party: spec.first_party,
        min_acr: spec.min_acr,
    };
    store.add_oidc_client(&new).await?;
    let event = NewAuditEvent::new(AuditKind::OidcClient, "registered")
        .detail(format!("client_id={client_id} name={name}"));
    store.append_audit(&event.bounded()).await?;
    Ok(RegisteredClient {
        client_id,
        client_secret: secret,
    })
}

/// Removes a client with its codes, tokens and consents.
pub async fn remove_client(store: &DynStore, client_id: &str) -> ServiceResult<()> {
    if !store.remove_oidc_client(client_id).await? {
        return Err(ServiceError::NotFound);
    }
    let event = NewAuditEvent::new(AuditKind::OidcClient, "removed")
        .detail(format!("client_id={client_id}"));
    store.append_audit(&event.bounded()).await?;
    Ok(())
}

impl Services {
    /// The applications a person allowed to sign them in.
    pub async fn consents(&self, user: &User) -> ServiceResult<Vec<Consent>> {
        Ok(self.store.consents_for_user(user.id).await?)
    }

    /// Withdraws a consent and revokes the client's tokens for the person.
    pub async fn withdraw_consent(&self, user: &User, client_id: &str) -> ServiceResult<()> {
        if !self.store.revoke_consent(user.id, client_id).await? {
            return Err(ServiceError::NotFound);
        }
        let event = NewAuditEvent::new(AuditKind::OidcConsent, "withdrawn")
            .by(user.id, &user.username)
            .detail(format!("client_id={client_id}"));
        self.record_event(event).await;
        Ok(())
    }

    /// Registers a client (staff, on the admin page); audited with who
    /// did it. The secret is in the answer only.
    pub async fn register_client_by(
        &self,
        staff: &User,
        spec: ClientSpec,
    ) -> ServiceResult<RegisteredClient> {
        let name = spec.name.trim().to_string();
        let client = register_client(&self.store, spec).await?;
        let event = NewAuditEvent::new(AuditKind::AdminAction, "success")
            .by(staff.id, &staff.username)
            .detail(format!(
                "registered OpenID Connect client {} ({name})",
                client.client_id
            ));
        self.record_event(event).await;
        Ok(client)
    }

    /// Removes a client (staff); audited with who did it.
    pub async fn remove_client_by(&self, staff: &User, client_id: &str) -> ServiceResult<()> {
        remove_client(&self.store, client_id).await?;
        let event = NewAuditEvent::new(AuditKind::AdminAction, "success")
            .by(staff.id, &staff.username)
            .detail(format!("removed OpenID Connect client {client_id}"));
        self.record_event(event).await;
        Ok(())
    }

    /// The client a token-endpoint request is from, authenticated.
    /// Confidential clients must send their secret; public ones send only
    /// their id (their codes are bound by PKCE).
    pub async fn authenticate_client(
        &self,
        creds: &ClientCredentials,
    ) -> Result<OidcClient, OAuthError> {
        let unknown = || OAuthError::invalid_client("client authentication failed");
        let id = creds.client_id.as_deref().ok_or_else(unknown)?;
        let client = self.store.oidc_client(id).await?.ok_or_else(unknown)?;
        match (&client.secret_hash, &creds.client_secret) {
            (None, None) => Ok(client),
            (Some(hash), Some(secret)) => {
                let (hash, secret) = (hash.clone(), secret.clone());
                let ok = tokio::task::spawn_blocking(move || verify_password(&secret, &hash))
                    .await
                    .unwrap_or(false);
                if ok {
                    Ok(client)
                } else {
                    Err(unknown())
                }
            }
            _ => Err(unknown()),
        }
    }
}
