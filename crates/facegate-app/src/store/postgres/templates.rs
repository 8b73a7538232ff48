//! Face templates and their photos in PostgreSQL, as sealed blobs: a
//! template row holds the embedding, `face_photos` the photo (deleted with
//! it). Batches are inserted with one statement per table.

use async_trait::async_trait;
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};

use super::PostgresBackend;
use crate::store::backend::{
    MatchRow, NewTemplateRow, PhotoRow, Reseal, SealTemplate, SealedBlob, StoredBlob,
    StoredTemplate, TemplateRecords, TemplateRow, TemplateSeals,
};
use crate::store::error::StoreResult;
use crate::store::fault::from_sqlx;

fn blob(r: &PgRow, bytes: &str, key: &str) -> Result<StoredBlob, sqlx::Error> {
    Ok(StoredBlob {
        key_id: r.try_get(key)?,
        bytes: r.try_get(bytes)?,
    })
}

fn template_from_row(r: &PgRow) -> Result<TemplateRow, sqlx::Error> {
    Ok(TemplateRow {
        id: r.try_get("id")?,
        user_id: r.try_get("user_id")?,
        model_id: r.try_get("model_id")?,
        quality: r.try_get("quality")?,
        created_at: r.try_get("created_at")?,
        embedding: blob(r, "embedding", "key_id")?,
    })
}

const TEMPLATE_COLUMNS: &str = "id, user_id, model_id, quality, created_at, embedding, key_id";

/// Writes photos (`(template id, sealed)`), replacing any.
async fn write_photos(
    conn: &mut PgConnection,
    photos: &[(i64, &SealedBlob)],
) -> Result<(), sqlx::Error> {
    if photos.is_empty() {
        return Ok(());
    }
    let ids: Vec<i64> = photos.iter().map(|p| p.0).collect();
    let keys: Vec<&str> = photos.iter().map(|p| p.1.key_id.as_str()).collect();
    let bytes: Vec<&[u8]> = photos.iter().map(|p| p.1.bytes.as_slice()).collect();
    sqlx::query(
        "INSERT INTO face_photos (template_id, key_id, sealed) \
         SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::bytea[]) \
         ON CONFLICT (template_id) DO UPDATE SET key_id = excluded.key_id, sealed = excluded.sealed",
    )
    .bind(ids)
    .bind(keys)
    .bind(bytes)
    .execute(conn)
    .await?;
    Ok(())
}

#[async_trait]
impl TemplateRecords for PostgresBackend {
    async fn insert_templates(
        &self,
        rows: &[NewTemplateRow],
        seal: SealTemplate<'_>,
    ) -> StoreResult<Vec<i64>> {
        let mut tx = self.pool.begin().await.map_err(from_sqlx)?;
        // The ids first, so each record is sealed bound to its own.
        let ids: Vec<i64> = sqlx::query_scalar(
            "SELECT nextval(pg_get_serial_sequence('face_templates', 'id')) \
             FROM generate_series(1, $1)",
        )
        .bind(rows.len() as i64)
        .fetch_all(&mut *tx)
        .await
        .map_err(from_sqlx)?;
        let seals: Vec<TemplateSeals> =
            ids.iter().enumerate().map(|(i, &id)| seal(i, id)).collect();
        sqlx::query(
            "INSERT INTO face_templates (id, user_id, model_id, quality, created_at, embedding, key_id) \
             SELECT * FROM UNNEST($1::bigint[], $2::bigint[], $3::text[], $4::real[], \
                                  $5::timestamptz[], $6::bytea[], $7::text[])",
        )
        .bind(&ids)
        .bind(rows.iter().map(|r| r.user_id).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.model_id.as_str()).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.quality).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.created_at).collect::<Vec<_>>())
        .bind(seals.iter().map(|s| s.embedding.bytes.as_slice()).collect::<Vec<_>>())
        .bind(seals.iter().map(|s| s.embedding.key_id.as_str()).collect::<Vec<_>>())
        .execute(&mut *tx)
        .await
        .map_err(from_sqlx)?;
        let photos: Vec<(i64, &SealedBlob)> = ids
            .iter()
            .zip(&seals)
            .filter_map(|(&id, s)| s.photo.as_ref().map(|p| (id, p)))
            .collect();
        write_photos(&mut tx, &photos).await.map_err(from_sqlx)?;
        tx.commit().await.map_err(from_sqlx)?;
        Ok(ids)
    }

    async fn template_row(&self, id: i64) -> StoreResult<Option<TemplateRow>> {
        let sql = format!("SELECT {TEMPLATE_COLUMNS} FROM face_templates WHERE id = $1");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(from_sqlx)?;
        row.as_ref()
            .map(template_from_row)
            .transpose()
            .map_err(from_sqlx)
    }

    async fn template_rows_for_user(&self, user_id: i64) -> StoreResult<Vec<TemplateRow>> {
        let sql =
            format!("SELECT {TEMPLATE_COLUMNS} FROM face_templates WHERE user_id = $1 ORDER BY id");
        let rows = sqlx::query(&sql)
            .bind(user_id)
            .fetch_all(&self.pool)
            .await
            .map_err(from_sqlx)?;
        rows.iter()
            .map(template_from_row)
            .collect::<Result<_, _>>()
            .map_err(from_sqlx)
    }

    async fn match_rows(
        &self,
        model_id: &str,
        after_id: i64,
        limit: i64,
    ) -> StoreResult<Vec<MatchRow>> {
        let rows = sqlx::query(
            "SELECT f.id, f.user_id, f.embedding, f.key_id FROM face_templates f \
             JOIN users u ON u.id = f.user_id \
             WHERE u.is_active AND f.model_id = $1 AND f.id > $2 ORDER BY f.id LIMIT $3",
        )
        .bind(model_id)
        .bind(after_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(from_sqlx)?;
        rows.iter()
            .map(|r| {
                Ok(MatchRow {
                    id: r.try_get("id")?,
                    user_id: r.try_get("user_id")?,
                    embedding: blob(r, "embedding", "key_id")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(from_sqlx)
    }

    async fn photo_row(&self, template_id: i64) -> StoreResult<Option<PhotoRow>> {
        let row = sqlx::query(
            "SELECT p.template_id, f.user_id, p.key_id, p.sealed FROM face_photos p \
             JOIN face_templates f ON f.id = p.template_id WHERE p.template_id = $1",
        )
        .bind(template_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(from_sqlx)?;
        let photo = |r: &PgRow| -> Result<PhotoRow, sqlx::Error> {
            Ok(PhotoRow {
                template_id: r.try_get("template_id")?,
                user_id: r.try_get("user_id")?,
                photo: blob(r, "sealed", "key_id")?,
            })
        };
        row.as_ref().map(photo).transpose().map_err(from_sqlx)
    }

    async fn delete_template_row(&self, id: i64) -> StoreResult<bool> {
        let n = sqlx::query("DELETE FROM face_templates WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(from_sqlx)?
            .rows_affected();
        Ok(n > 0)
    }

    async fn delete_template_rows_for_user(&self, user_id: i64) -> StoreResult<usize> {
        let n = sqlx::query("DELETE FROM face_templates WHERE user_id = $1")
            .bind(user_id)
            .execute(&self.pool)
            .await
            .map_err(from_sqlx)?
            .rows_affected();
        Ok(n as usize)
    }

    async fn template_ids_not_on_key(&self, key_id: &str) -> StoreResult<Vec<i64>> {
        sqlx::query_scalar(
            "SELECT f.id FROM face_templates f LEFT JOIN face_photos p ON p.template_id = f.id \
             WHERE f.key_id != $1 OR p.key_id != $1 ORDER BY f.id",
        )
        .bind(key_id)
        .fetch_all(&self.pool)
        .await
        .map_err(from_sqlx)
    }

    async fn reseal_template_row(
        &self,
        id: i64,
        reseal: Reseal<'_, StoredTemplate, TemplateSeals>,
    ) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await.map_err(from_sqlx)?;
        let row = sqlx::query(
            "SELECT f.id, f.user_id, f.embedding, f.key_id, p.sealed, p.key_id AS photo_key \
             FROM face_templates f LEFT JOIN face_photos p ON p.template_id = f.id \
             WHERE f.id = $1 FOR UPDATE OF f",
        )
        .bind(id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(from_sqlx)?;
        let Some(row) = row else {
            return Ok(false);
        };
        let stored = (|| -> Result<StoredTemplate, sqlx::Error> {
            let photo: Option<Vec<u8>> = row.try_get("sealed")?;
            Ok(StoredTemplate {
                id: row.try_get("id")?,
                user_id: row.try_get("user_id")?,
                embedding: blob(&row, "embedding", "key_id")?,
                photo: match photo {
                    Some(bytes) => Some(StoredBlob {
                        key_id: row.try_get("photo_key")?,
                        bytes,
                    }),
                    None => None,
                },
            })
        })()
        .map_err(from_sqlx)?;
        let Some(seals) = reseal(&stored)? else {
            return Ok(false);
        };
        sqlx::query("UPDATE face_templates SET embedding = $1, key_id = $2 WHERE id = $3")
            .bind(&seals.embedding.bytes)
            .bind(&seals.embedding.key_id)
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(from_sqlx)?;
        if let Some(photo) = &seals.photo {
            write_photos(&mut tx, &[(id, photo)])
                .await
                .map_err(from_sqlx)?;
        }
        tx.commit().await.map_err(from_sqlx)?;
        Ok(true)
    }
}
