//! The ID-token signing keys' table in SQL both backends share, like
//! [`super::oidc_sql`]: [`signing_key_backend!`] expands
//! [`crate::store::oidc::SigningKeyRecords`] inside each backend's module.
//! The private keys arrive sealed and leave sealed; this layer never sees
//! them in the clear.

/// Implements [`crate::store::oidc::SigningKeyRecords`] for `$backend`
/// (which has a `pool` field), spelling SQL through `$sql`.
macro_rules! signing_key_backend {
    ($backend:ty, $row:ty, $sql:path) => {
        use async_trait::async_trait;
        use sqlx::Row;
        use time::OffsetDateTime;

        use crate::store::blob::{Reseal, SealedBlob, StoredBlob};
        use crate::store::error::StoreResult;
        use crate::store::fault::from_sqlx;
        use crate::store::oidc::{SigningKeyRecords, SigningKeyRow};
        use crate::store::oidc_sql::{at, now_secs, secs};

        fn key_from(r: &$row) -> Result<SigningKeyRow, sqlx::Error> {
            Ok(SigningKeyRow {
                kid: r.try_get("kid")?,
                key: StoredBlob {
                    key_id: r.try_get("key_id")?,
                    bytes: r.try_get("sealed")?,
                },
                created_at: at(r.try_get("created_at")?),
                retired_at: r.try_get::<Option<i64>, _>("retired_at")?.map(at),
            })
        }

        #[async_trait]
        impl SigningKeyRecords for $backend {
            async fn signing_key_rows(&self) -> StoreResult<Vec<SigningKeyRow>> {
                let rows = sqlx::query(
                    "SELECT kid, key_id, sealed, created_at, retired_at FROM oidc_signing_keys \
                     ORDER BY created_at DESC, kid DESC",
                )
                .fetch_all(&self.pool)
                .await
                .map_err(from_sqlx)?;
                rows.iter()
                    .map(key_from)
                    .collect::<Result<_, _>>()
                    .map_err(from_sqlx)
            }

            async fn insert_signing_key(
                &self,
                kid: &str,
                sealed: &SealedBlob,
                only_first: bool,
            ) -> StoreResult<bool> {
                let guard = if only_first {
                    " WHERE NOT EXISTS (SELECT 1 FROM oidc_signing_keys)"
                } else {
                    ""
                };
                let sql = $sql(&format!(
                    "INSERT INTO oidc_signing_keys (kid, key_id, sealed, created_at) \
                     SELECT ?, ?, ?, ?{guard}"
                ));
                let now = now_secs();
                let added = sqlx::query(&sql)
                    .bind(kid)
                    .bind(&sealed.key_id)
                    .bind(&sealed.bytes)
                    .bind(now)
                    .execute(&self.pool)
                    .await
                    .map_err(from_sqlx)?
                    .rows_affected()
                    > 0;
                if added {
                    let sql = $sql(
                        "UPDATE oidc_signing_keys SET retired_at = ? \
                         WHERE kid <> ? AND retired_at IS NULL",
                    );
                    sqlx::query(&sql)
                        .bind(now)
                        .bind(kid)
                        .execute(&self.pool)
                        .await
                        .map_err(from_sqlx)?;
                }
                Ok(added)
            }

            async fn reseal_signing_key_row(
                &self,
                kid: &str,
                reseal: Reseal<'_, StoredBlob, SealedBlob>,
            ) -> StoreResult<bool> {
                let rows = self.signing_key_rows().await?;
                let Some(row) = rows.into_iter().find(|r| r.kid == kid) else {
                    return Ok(false);
                };
                let Some(sealed) = reseal(&row.key)? else {
                    return Ok(false);
                };
                let sql = $sql(
                    "UPDATE oidc_signing_keys SET key_id = ?, sealed = ? \
                     WHERE kid = ? AND key_id = ?",
                );
                let done = sqlx::query(&sql)
                    .bind(&sealed.key_id)
                    .bind(&sealed.bytes)
                    .bind(kid)
                    .bind(row.key.key_id.as_deref().unwrap_or(""))
                    .execute(&self.pool)
                    .await
                    .map_err(from_sqlx)?;
                Ok(done.rows_affected() > 0)
            }

            async fn delete_signing_keys_retired_before(
                &self,
                cutoff: OffsetDateTime,
            ) -> StoreResult<u64> {
                let sql = $sql("DELETE FROM oidc_signing_keys WHERE retired_at < ?");
                let done = sqlx::query(&sql)
                    .bind(secs(cutoff))
                    .execute(&self.pool)
                    .await
                    .map_err(from_sqlx)?;
                Ok(done.rows_affected())
            }
        }
    };
}

pub(crate) use signing_key_backend;
