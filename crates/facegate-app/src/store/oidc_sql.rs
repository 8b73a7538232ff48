//! The OpenID Connect tables in SQL both backends share: the statements
//! are written once with `?` placeholders, and [`oidc_backend!`] expands
//! the implementation inside each backend's module (where its pool is;
//! the signing keys' in [`super::signing_sql`]),
//! with the backend's placeholder spelling. Times are Unix seconds in
//! both databases; lists and [`Authn`] are JSON text. Every statement
//! that must be atomic is one statement (`UPDATE … RETURNING`).

use time::OffsetDateTime;

use crate::domain::oidc::{Authn, TokenKind};
use crate::store::error::{StoreError, StoreResult};

pub(crate) const CLIENT_COLUMNS: &str = "client_id, name, secret_hash, redirect_uris, \
     post_logout_redirect_uris, first_party, min_acr, created_at";
pub(crate) const CODE_COLUMNS: &str = "code_hash, client_id, user_id, scope, authn, \
     redirect_uri, nonce, code_challenge, expires_at, used_at";
pub(crate) const TOKEN_COLUMNS: &str =
    "token_hash, kind, family, client_id, user_id, scope, authn, expires_at, used_at, revoked_at";

/// SQLite spells placeholders `?`.
pub(crate) fn sqlite_sql(sql: &str) -> String {
    sql.to_string()
}

/// PostgreSQL spells them `$1`, `$2`, …
pub(crate) fn postgres_sql(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut n = 0;
    for c in sql.chars() {
        if c == '?' {
            n += 1;
            out.push_str(&format!("${n}"));
        } else {
            out.push(c);
        }
    }
    out
}

pub(crate) fn secs(t: OffsetDateTime) -> i64 {
    t.unix_timestamp()
}

pub(crate) fn at(s: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(s).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

pub(crate) fn now_secs() -> i64 {
    secs(OffsetDateTime::now_utc())
}

pub(crate) fn to_json<T: serde::Serialize>(v: &T) -> StoreResult<String> {
    serde_json::to_string(v).map_err(|e| StoreError::Backend(format!("encoding: {e}")))
}

pub(crate) fn from_json<T: serde::de::DeserializeOwned>(s: &str) -> Result<T, sqlx::Error> {
    serde_json::from_str(s).map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

pub(crate) fn authn_json(a: &Authn) -> StoreResult<String> {
    to_json(a)
}

pub(crate) fn kind_from(s: &str) -> Result<TokenKind, sqlx::Error> {
    match s {
        "access" => Ok(TokenKind::Access),
        "refresh" => Ok(TokenKind::Refresh),
        other => Err(sqlx::Error::Decode(
            format!("unknown token kind {other}").into(),
        )),
    }
}

/// Implements [`crate::store::oidc::OidcRecords`] for `$backend` (which
/// has a `pool` field), spelling SQL through `$sql`.
macro_rules! oidc_backend {
    ($backend:ty, $row:ty, $sql:path) => {
        use async_trait::async_trait;
        use sqlx::Row;
        use time::OffsetDateTime;

        use crate::domain::oidc::{
            AuthCode, Consent, Grant, NewOidcClient, OidcClient, OidcToken, Redeemed,
        };
        use crate::store::error::{StoreError, StoreResult};
        use crate::store::fault::from_sqlx;
        use crate::store::oidc::OidcRecords;
        use crate::store::oidc_sql::{
            at, authn_json, from_json, kind_from, now_secs, secs, to_json, CLIENT_COLUMNS,
            CODE_COLUMNS, TOKEN_COLUMNS,
        };

        fn client_from(r: &$row) -> Result<OidcClient, sqlx::Error> {
            Ok(OidcClient {
                client_id: r.try_get("client_id")?,
                name: r.try_get("name")?,
                secret_hash: r.try_get("secret_hash")?,
                redirect_uris: from_json(&r.try_get::<String, _>("redirect_uris")?)?,
                post_logout_redirect_uris: from_json(
                    &r.try_get::<String, _>("post_logout_redirect_uris")?,
                )?,
                first_party: r.try_get("first_party")?,
                min_acr: r.try_get("min_acr")?,
                created_at: at(r.try_get("created_at")?),
            })
        }

        fn grant_from(r: &$row) -> Result<Grant, sqlx::Error> {
            Ok(Grant {
                client_id: r.try_get("client_id")?,
                user_id: r.try_get("user_id")?,
                scope: r.try_get("scope")?,
                authn: from_json(&r.try_get::<String, _>("authn")?)?,
            })
        }

        fn code_from(r: &$row) -> Result<(AuthCode, bool), sqlx::Error> {
            let code = AuthCode {
                code_hash: r.try_get("code_hash")?,
                grant: grant_from(r)?,
                redirect_uri: r.try_get("redirect_uri")?,
                nonce: r.try_get("nonce")?,
                code_challenge: r.try_get("code_challenge")?,
                expires_at: at(r.try_get("expires_at")?),
            };
            Ok((code, r.try_get::<Option<i64>, _>("used_at")?.is_some()))
        }

        fn token_from(r: &$row) -> Result<(OidcToken, bool), sqlx::Error> {
            let token = OidcToken {
                token_hash: r.try_get("token_hash")?,
                kind: kind_from(&r.try_get::<String, _>("kind")?)?,
                family: r.try_get("family")?,
                grant: grant_from(r)?,
                expires_at: at(r.try_get("expires_at")?),
                revoked: r.try_get::<Option<i64>, _>("revoked_at")?.is_some(),
            };
            Ok((token, r.try_get::<Option<i64>, _>("used_at")?.is_some()))
        }

        fn consent_from(r: &$row) -> Result<Consent, sqlx::Error> {
            Ok(Consent {
                user_id: r.try_get("user_id")?,
                client_id: r.try_get("client_id")?,
                client_name: r.try_get("name")?,
                scope: r.try_get("scope")?,
                granted_at: at(r.try_get("granted_at")?),
            })
        }

        /// The first row of a statement read to its end (see the SQLite
        /// backend on RETURNING).
        fn first<T>(
            rows: Vec<$row>,
            f: impl Fn(&$row) -> Result<T, sqlx::Error>,
        ) -> StoreResult<Option<T>> {
            rows.first().map(f).transpose().map_err(from_sqlx)
        }

        const CONSENT_SELECT: &str = "SELECT c.user_id, c.client_id, k.name, c.scope, c.granted_at \
             FROM oidc_consents c JOIN oidc_clients k ON k.client_id = c.client_id";

        #[async_trait]
        impl OidcRecords for $backend {
            async fn add_oidc_client(&self, new: &NewOidcClient) -> StoreResult<OidcClient> {
                let sql = $sql(&format!(
                    "INSERT INTO oidc_clients ({CLIENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?) \
                     RETURNING {CLIENT_COLUMNS}"
                ));
                let rows = sqlx::query(&sql)
                    .bind(&new.client_id)
                    .bind(&new.name)
                    .bind(&new.secret_hash)
                    .bind(to_json(&new.redirect_uris)?)
                    .bind(to_json(&new.post_logout_redirect_uris)?)
                    .bind(new.first_party)
                    .bind(&new.min_acr)
                    .bind(now_secs())
                    .fetch_all(&self.pool)
                    .await
                    .map_err(from_sqlx)?;
                first(rows, client_from)?
                    .ok_or_else(|| StoreError::Backend("the new client vanished".into()))
            }

            async fn oidc_client(&self, client_id: &str) -> StoreResult<Option<OidcClient>> {
                let sql = $sql(&format!(
                    "SELECT {CLIENT_COLUMNS} FROM oidc_clients WHERE client_id = ?"
                ));
                let rows = sqlx::query(&sql)
                    .bind(client_id)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(from_sqlx)?;
                first(rows, client_from)
            }

            async fn oidc_clients(&self) -> StoreResult<Vec<OidcClient>> {
                let sql = format!(
                    "SELECT {CLIENT_COLUMNS} FROM oidc_clients ORDER BY created_at, client_id"
                );
                let rows = sqlx::query(&sql)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(from_sqlx)?;
                rows.iter()
                    .map(client_from)
                    .collect::<Result<_, _>>()
                    .map_err(from_sqlx)
            }

            async fn remove_oidc_client(&self, client_id: &str) -> StoreResult<bool> {
                let sql = $sql("DELETE FROM oidc_clients WHERE client_id = ?");
                let done = sqlx::query(&sql)
                    .bind(client_id)
                    .execute(&self.pool)
                    .await
                    .map_err(from_sqlx)?;
                Ok(done.rows_affected() > 0)
            }

            async fn insert_auth_code(&self, code: &AuthCode) -> StoreResult<()> {
                let sql = $sql(&format!(
                    "INSERT INTO oidc_codes ({CODE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)"
                ));
                sqlx::query(&sql)
                    .bind(&code.code_hash)
                    .bind(&code.grant.client_id)
                    .bind(code.grant.user_id)
                    .bind(&code.grant.scope)
                    .bind(authn_json(&code.grant.authn)?)
                    .bind(&code.redirect_uri)
                    .bind(&code.nonce)
                    .bind(&code.code_challenge)
                    .bind(secs(code.expires_at))
                    .execute(&self.pool)
                    .await
                    .map_err(from_sqlx)?;
                Ok(())
            }

            async fn redeem_auth_code(&self, code_hash: &str) -> StoreResult<Redeemed<AuthCode>> {
                let sql = $sql(&format!(
                    "UPDATE oidc_codes SET used_at = ? WHERE code_hash = ? AND used_at IS NULL \
                     RETURNING {CODE_COLUMNS}"
                ));
                let rows = sqlx::query(&sql)
                    .bind(now_secs())
                    .bind(code_hash)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(from_sqlx)?;
                if let Some((code, _)) = first(rows, code_from)? {
                    return Ok(Redeemed::Fresh(code));
                }
                let sql = $sql(&format!(
                    "SELECT {CODE_COLUMNS} FROM oidc_codes WHERE code_hash = ?"
                ));
                let rows = sqlx::query(&sql)
                    .bind(code_hash)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(from_sqlx)?;
                Ok(match first(rows, code_from)? {
                    Some((code, _)) => Redeemed::Reused(code),
                    None => Redeemed::Unknown,
                })
            }

            async fn insert_oidc_token(&self, t: &OidcToken) -> StoreResult<()> {
                let sql = $sql(&format!(
                    "INSERT INTO oidc_tokens ({TOKEN_COLUMNS}) \
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, ?)"
                ));
                let revoked = t.revoked.then(now_secs);
                sqlx::query(&sql)
                    .bind(&t.token_hash)
                    .bind(t.kind.as_str())
                    .bind(&t.family)
                    .bind(&t.grant.client_id)
                    .bind(t.grant.user_id)
                    .bind(&t.grant.scope)
                    .bind(authn_json(&t.grant.authn)?)
                    .bind(secs(t.expires_at))
                    .bind(revoked)
                    .execute(&self.pool)
                    .await
                    .map_err(from_sqlx)?;
                Ok(())
            }

            async fn oidc_token(&self, token_hash: &str) -> StoreResult<Option<OidcToken>> {
                let sql = $sql(&format!(
                    "SELECT {TOKEN_COLUMNS} FROM oidc_tokens WHERE token_hash = ?"
                ));
                let rows = sqlx::query(&sql)
                    .bind(token_hash)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(from_sqlx)?;
                Ok(first(rows, token_from)?.map(|(t, _)| t))
            }

            async fn redeem_refresh_token(
                &self,
                token_hash: &str,
            ) -> StoreResult<Redeemed<OidcToken>> {
                let sql = $sql(&format!(
                    "UPDATE oidc_tokens SET used_at = ? \
                     WHERE token_hash = ? AND kind = 'refresh' AND used_at IS NULL \
                     RETURNING {TOKEN_COLUMNS}"
                ));
                let rows = sqlx::query(&sql)
                    .bind(now_secs())
                    .bind(token_hash)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(from_sqlx)?;
                if let Some((t, _)) = first(rows, token_from)? {
                    return Ok(Redeemed::Fresh(t));
                }
                Ok(match self.oidc_token(token_hash).await? {
                    Some(t) if t.kind == crate::domain::oidc::TokenKind::Refresh => {
                        Redeemed::Reused(t)
                    }
                    _ => Redeemed::Unknown,
                })
            }

            async fn revoke_token_family(&self, family: &str) -> StoreResult<u64> {
                let sql = $sql(
                    "UPDATE oidc_tokens SET revoked_at = ? WHERE family = ? AND revoked_at IS NULL",
                );
                let done = sqlx::query(&sql)
                    .bind(now_secs())
                    .bind(family)
                    .execute(&self.pool)
                    .await
                    .map_err(from_sqlx)?;
                Ok(done.rows_affected())
            }

            async fn set_consent(
                &self,
                user_id: i64,
                client_id: &str,
                scope: &str,
            ) -> StoreResult<()> {
                let sql = $sql(
                    "INSERT INTO oidc_consents (user_id, client_id, scope, granted_at) \
                     VALUES (?, ?, ?, ?) ON CONFLICT (user_id, client_id) \
                     DO UPDATE SET scope = excluded.scope, granted_at = excluded.granted_at",
                );
                sqlx::query(&sql)
                    .bind(user_id)
                    .bind(client_id)
                    .bind(scope)
                    .bind(now_secs())
                    .execute(&self.pool)
                    .await
                    .map_err(from_sqlx)?;
                Ok(())
            }

            async fn consent(&self, user_id: i64, client_id: &str) -> StoreResult<Option<Consent>> {
                let sql = $sql(&format!(
                    "{CONSENT_SELECT} WHERE c.user_id = ? AND c.client_id = ?"
                ));
                let rows = sqlx::query(&sql)
                    .bind(user_id)
                    .bind(client_id)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(from_sqlx)?;
                first(rows, consent_from)
            }

            async fn consents_for_user(&self, user_id: i64) -> StoreResult<Vec<Consent>> {
                let sql = $sql(&format!(
                    "{CONSENT_SELECT} WHERE c.user_id = ? ORDER BY c.granted_at, c.client_id"
                ));
                let rows = sqlx::query(&sql)
                    .bind(user_id)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(from_sqlx)?;
                rows.iter()
                    .map(consent_from)
                    .collect::<Result<_, _>>()
                    .map_err(from_sqlx)
            }

            async fn revoke_consent(&self, user_id: i64, client_id: &str) -> StoreResult<bool> {
                let sql = $sql("DELETE FROM oidc_consents WHERE user_id = ? AND client_id = ?");
                let done = sqlx::query(&sql)
                    .bind(user_id)
                    .bind(client_id)
                    .execute(&self.pool)
                    .await
                    .map_err(from_sqlx)?;
                let sql = $sql(
                    "UPDATE oidc_tokens SET revoked_at = ? \
                     WHERE user_id = ? AND client_id = ? AND revoked_at IS NULL",
                );
                sqlx::query(&sql)
                    .bind(now_secs())
                    .bind(user_id)
                    .bind(client_id)
                    .execute(&self.pool)
                    .await
                    .map_err(from_sqlx)?;
                Ok(done.rows_affected() > 0)
            }

            async fn delete_expired_oidc(&self, cutoff: OffsetDateTime) -> StoreResult<u64> {
                let mut n = 0;
                for table in ["oidc_codes", "oidc_tokens"] {
                    let sql = $sql(&format!("DELETE FROM {table} WHERE expires_at < ?"));
                    n += sqlx::query(&sql)
                        .bind(secs(cutoff))
                        .execute(&self.pool)
                        .await
                        .map_err(from_sqlx)?
                        .rows_affected();
                }
                Ok(n)
            }
        }

    };
}

pub(crate) use oidc_backend;

#[cfg(test)]
mod tests {
    #[test]
    fn placeholders_are_numbered_for_postgres() {
        assert_eq!(super::postgres_sql("a = ? AND b = ?"), "a = $1 AND b = $2");
    }
}
