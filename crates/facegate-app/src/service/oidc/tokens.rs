//! The token side of the provider without HTTP: the `authorization_code`
//! and `refresh_token` grants (codes single use, refresh tokens rotating,
//! a replay of either revoking every token of its family), the ID token
//! (RS256 through `openidconnect`), userinfo, revocation (RFC 7009) and
//! the `id_token_hint` of RP-initiated logout.

use chrono::{DateTime, Utc};
use openidconnect::core::{
    CoreGenderClaim, CoreIdToken, CoreIdTokenClaims, CoreIdTokenVerifier, CoreJwsSigningAlgorithm,
    CoreUserInfoClaims,
};
use openidconnect::{
    AccessToken, Audience, AuthenticationContextClass, AuthenticationMethodReference,
    AuthorizationCode, ClientId, EmptyAdditionalClaims, EndUserEmail, EndUserName, EndUserUsername,
    IssuerUrl, LocalizedClaim, Nonce, StandardClaims, SubjectIdentifier,
};
use serde::Serialize;
use time::{Duration, OffsetDateTime};

use super::error::OAuthError;
use super::secret::{random_token, s256, same, token_hash};
use crate::domain::oidc::{AuthCode, Grant, OidcClient, OidcToken, Redeemed, TokenKind};
use crate::domain::{AuditKind, NewAuditEvent, User};
use crate::service::{ServiceError, ServiceResult, Services};

/// The window of the per-client token-endpoint limit.
const TOKEN_RATE_WINDOW: std::time::Duration = std::time::Duration::from_secs(60);

/// A token-endpoint request's grant.
#[derive(Debug, Clone)]
pub enum TokenRequest {
    Code {
        code: String,
        redirect_uri: Option<String>,
        code_verifier: Option<String>,
    },
    Refresh {
        refresh_token: String,
    },
}

/// A successful token response (RFC 6749 §5.1, OpenID Connect §3.1.3.3).
#[derive(Debug, Clone, Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    pub refresh_token: String,
    pub id_token: String,
    pub scope: String,
}

fn chrono_at(unix: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(unix, 0).unwrap_or_default()
}

fn internal(what: &str, e: impl std::fmt::Display) -> ServiceError {
    ServiceError::Internal(format!("{what}: {e}"))
}

/// The standard claims a grant's scopes release about `user`.
fn standard_claims(user: &User, scope: &str) -> StandardClaims<CoreGenderClaim> {
    let scopes: Vec<&str> = scope.split(' ').collect();
    let mut claims = StandardClaims::new(SubjectIdentifier::new(user.id.to_string()));
    if scopes.contains(&"profile") {
        claims = claims
            .set_preferred_username(Some(EndUserUsername::new(user.username.clone())))
            .set_name(Some(LocalizedClaim::from(EndUserName::new(
                user.username.clone(),
            ))));
    }
    if scopes.contains(&"email") {
        claims = claims
            .set_email(Some(EndUserEmail::new(user.email.clone())))
            .set_email_verified(Some(false));
    }
    claims
}

impl Services {
    /// Answers a token-endpoint request from an authenticated client.
    pub async fn token(
        &self,
        client: &OidcClient,
        req: TokenRequest,
    ) -> Result<TokenResponse, OAuthError> {
        let key = format!("oidc-client:{}", client.client_id);
        let limit = self.config.oidc.token_rate_limit_per_client;
        if !self
            .store
            .rate_hit(&key, limit, TOKEN_RATE_WINDOW)
            .await?
            .allowed()
        {
            return Err(ServiceError::RateLimited.into());
        }
        match req {
            TokenRequest::Code {
                code,
                redirect_uri,
                code_verifier,
            } => {
                let stored = self.redeem_code(client, &code).await?;
                check_code(&stored, client, redirect_uri, code_verifier)?;
                let family = stored.code_hash.clone();
                self.issue_tokens(&stored.grant, &family, stored.nonce.as_deref(), Some(&code))
                    .await
            }
            TokenRequest::Refresh { refresh_token } => {
                let old = self.redeem_refresh(client, &refresh_token).await?;
                self.issue_tokens(&old.grant, &old.family, None, None).await
            }
        }
    }

    /// A code's single use; a replay revokes what the code was exchanged for.
    async fn redeem_code(&self, client: &OidcClient, code: &str) -> Result<AuthCode, OAuthError> {
        match self.store.redeem_auth_code(&token_hash(code)).await? {
            Redeemed::Fresh(c) => Ok(c),
            Redeemed::Reused(c) => {
                let revoked = self.store.revoke_token_family(&c.code_hash).await?;
                self.audit_token(&c.grant, "code_replayed", &format!("revoked={revoked}"))
                    .await;
                Err(OAuthError::invalid_grant("the code was already used"))
            }
            Redeemed::Unknown => {
                tracing::info!(client_id = %client.client_id, "unknown code presented");
                Err(OAuthError::invalid_grant("unknown code"))
            }
        }
    }

    /// A refresh token's single use; a replay revokes its whole family.
    async fn redeem_refresh(
        &self,
        client: &OidcClient,
        token: &str,
    ) -> Result<OidcToken, OAuthError> {
        let old = match self.store.redeem_refresh_token(&token_hash(token)).await? {
            Redeemed::Fresh(t) => t,
            Redeemed::Reused(t) => {
                let revoked = self.store.revoke_token_family(&t.family).await?;
                self.audit_token(&t.grant, "refresh_replayed", &format!("revoked={revoked}"))
                    .await;
                return Err(OAuthError::invalid_grant(
                    "the refresh token was already used",
                ));
            }
            Redeemed::Unknown => return Err(OAuthError::invalid_grant("unknown refresh token")),
        };
        if old.grant.client_id != client.client_id {
            return Err(OAuthError::invalid_grant(
                "the refresh token is another client's",
            ));
        }
        if old.revoked || old.expires_at <= OffsetDateTime::now_utc() {
            return Err(OAuthError::invalid_grant(
                "the refresh token is revoked or expired",
            ));
        }
        Ok(old)
    }

    /// Issues an access token, a refresh token and an ID token for `grant`.
    async fn issue_tokens(
        &self,
        grant: &Grant,
        family: &str,
        nonce: Option<&str>,
        code: Option<&str>,
    ) -> Result<TokenResponse, OAuthError> {
        let user = self
            .active_user(grant.user_id)
            .await?
            .ok_or_else(|| OAuthError::invalid_grant("the account is no longer active"))?;
        let cfg = &self.config.oidc;
        let now = OffsetDateTime::now_utc();
        let (access, refresh) = (random_token(), random_token());
        for (token, kind, ttl) in [
            (
                &access,
                TokenKind::Access,
                Duration::seconds(cfg.access_token_seconds),
            ),
            (
                &refresh,
                TokenKind::Refresh,
                Duration::days(cfg.refresh_token_days),
            ),
        ] {
            let stored = OidcToken {
                token_hash: token_hash(token),
                kind,
                family: family.to_string(),
                grant: grant.clone(),
                expires_at: now + ttl,
                revoked: false,
            };
            self.store.insert_oidc_token(&stored).await?;
        }
        let id_token = self.id_token(&user, grant, nonce, &access, code).await?;
        let what = if code.is_some() {
            "issued"
        } else {
            "refreshed"
        };
        self.audit_token(grant, what, "").await;
        Ok(TokenResponse {
            access_token: access,
            token_type: "Bearer",
            expires_in: cfg.access_token_seconds,
            refresh_token: refresh,
            id_token,
            scope: grant.scope.clone(),
        })
    }

    /// The signed ID token.
    async fn id_token(
        &self,
        user: &User,
        grant: &Grant,
        nonce: Option<&str>,
        access: &str,
        code: Option<&str>,
    ) -> ServiceResult<String> {
        let issuer = IssuerUrl::new(self.config.issuer()).map_err(|e| internal("issuer", e))?;
        let now = Utc::now();
        let exp = now + chrono::Duration::seconds(self.config.oidc.id_token_seconds);
        let amr = grant.authn.amr().into_iter();
        let claims = CoreIdTokenClaims::new(
            issuer,
            vec![Audience::new(grant.client_id.clone())],
            exp,
            now,
            standard_claims(user, &grant.scope),
            EmptyAdditionalClaims {},
        )
        .set_authorized_party(Some(ClientId::new(grant.client_id.clone())))
        .set_auth_time(Some(chrono_at(grant.authn.auth_time)))
        .set_nonce(nonce.map(|n| Nonce::new(n.to_string())))
        .set_auth_context_ref(Some(AuthenticationContextClass::new(
            grant.authn.acr().as_str().to_string(),
        )))
        .set_auth_method_refs(Some(amr.map(AuthenticationMethodReference::new).collect()));
        let signer = self.current_signer().await?;
        let access = AccessToken::new(access.to_string());
        let code = code.map(|c| AuthorizationCode::new(c.to_string()));
        let token = CoreIdToken::new(
            claims,
            &signer,
            CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
            Some(&access),
            code.as_ref(),
        )
        .map_err(|e| internal("signing an ID token", e))?;
        Ok(token.to_string())
    }

    async fn audit_token(&self, grant: &Grant, outcome: &str, detail: &str) {
        let mut event = NewAuditEvent::new(AuditKind::OidcToken, outcome).detail(format!(
            "client_id={} scope={} {detail}",
            grant.client_id, grant.scope
        ));
        event.subject_user_id = Some(grant.user_id);
        self.record_event(event).await;
    }

    /// The claims the bearer of an access token may read (userinfo).
    pub async fn userinfo(&self, bearer: &str) -> Result<serde_json::Value, OAuthError> {
        let invalid =
            || OAuthError::invalid_token("the access token is unknown, revoked or expired");
        let token = self
            .store
            .oidc_token(&token_hash(bearer))
            .await?
            .filter(|t| t.kind == TokenKind::Access && !t.revoked)
            .filter(|t| t.expires_at > OffsetDateTime::now_utc())
            .ok_or_else(invalid)?;
        let user = self
            .active_user(token.grant.user_id)
            .await?
            .ok_or_else(invalid)?;
        let claims = CoreUserInfoClaims::new(
            standard_claims(&user, &token.grant.scope),
            EmptyAdditionalClaims {},
        );
        serde_json::to_value(&claims).map_err(|e| internal("userinfo", e).into())
    }

    /// Revokes a token and its family (RFC 7009): unknown tokens and
    /// other clients' tokens are ignored, as the RFC asks.
    pub async fn revoke(&self, client: &OidcClient, token: &str) -> Result<(), OAuthError> {
        let Some(t) = self.store.oidc_token(&token_hash(token)).await? else {
            return Ok(());
        };
        if !same(&t.grant.client_id, &client.client_id) {
            return Ok(());
        }
        let revoked = self.store.revoke_token_family(&t.family).await?;
        self.audit_token(&t.grant, "revoked", &format!("revoked={revoked}"))
            .await;
        Ok(())
    }

    /// The client and user an `id_token_hint` names, if it is a token this
    /// provider signed (expired ones too: logout comes late).
    pub async fn logout_hint(&self, hint: &str) -> ServiceResult<Option<(String, i64)>> {
        let Ok(token) = hint.parse::<CoreIdToken>() else {
            return Ok(None);
        };
        let issuer = IssuerUrl::new(self.config.issuer()).map_err(|e| internal("issuer", e))?;
        let verifier = CoreIdTokenVerifier::new_public_client(
            ClientId::new(String::new()),
            issuer,
            self.jwks().await?,
        )
        .require_audience_match(false)
        .set_time_fn(|| DateTime::<Utc>::MIN_UTC);
        let Ok(claims) = token.claims(&verifier, |_: Option<&Nonce>| Ok(())) else {
            return Ok(None);
        };
        let client = claims.audiences().first().map(|a| a.to_string());
        let user = claims.subject().parse::<i64>().ok();
        Ok(client.zip(user))
    }
}

/// The code is this client's, for this redirect URI, within its time,
/// and the verifier matches its PKCE challenge.
fn check_code(
    code: &AuthCode,
    client: &OidcClient,
    redirect_uri: Option<String>,
    verifier: Option<String>,
) -> Result<(), OAuthError> {
    if code.grant.client_id != client.client_id {
        return Err(OAuthError::invalid_grant(
            "the code was issued to another client",
        ));
    }
    if code.expires_at <= OffsetDateTime::now_utc() {
        return Err(OAuthError::invalid_grant("the code has expired"));
    }
    if redirect_uri.as_deref() != Some(code.redirect_uri.as_str()) {
        return Err(OAuthError::invalid_grant(
            "redirect_uri differs from the authorization request's",
        ));
    }
    match (&code.code_challenge, verifier) {
        (Some(challenge), Some(v)) if same(&s256(&v), challenge) => Ok(()),
        (Some(_), _) => Err(OAuthError::invalid_grant(
            "the PKCE code_verifier does not match",
        )),
        (None, Some(_)) => Err(OAuthError::invalid_grant(
            "no PKCE challenge was sent for this code",
        )),
        (None, None) => Ok(()),
    }
}
