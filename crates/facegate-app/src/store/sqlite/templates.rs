//! Face templates and their photos in SQLite, as sealed blobs: a template
//! row holds the embedding, `face_photos` the photo (deleted with it).

use async_trait::async_trait;
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqliteConnection};

use super::{from_ts, ts, SqliteBackend, WriteTx};
use crate::store::backend::{
    MatchRow, NewTemplateRow, PhotoRow, Reseal, SealTemplate, StoredBlob, StoredTemplate,
    TemplateRecords, TemplateRow, TemplateSeals,
};
use crate::store::error::StoreResult;
use crate::store::fault::from_sqlx;

fn blob(r: &SqliteRow, bytes: &str, key: &str) -> Result<StoredBlob, sqlx::Error> {
    Ok(StoredBlob {
        key_id: r.try_get(key)?,
        bytes: r.try_get(bytes)?,
    })
}

fn template_from_row(r: &SqliteRow) -> Result<TemplateRow, sqlx::Error> {
    Ok(TemplateRow {
        id: r.try_get("id")?,
        user_id: r.try_get("user_id")?,
        model_id: r.try_get("model_id")?,
        quality: r.try_get::<f64, _>("quality")? as f32,
        created_at: from_ts(r.try_get("created_at")?),
        embedding: blob(r, "embedding", "key_id")?,
    })
}

const TEMPLATE_COLUMNS: &str = "id, user_id, model_id, quality, created_at, embedding, key_id";

/// The id the next inserted template gets: AUTOINCREMENT never reuses an
/// id, and `sqlite_sequence` holds the largest ever given. Only valid
/// inside a transaction that holds the write lock.
async fn next_template_id(conn: &mut SqliteConnection) -> Result<i64, sqlx::Error> {
    let last: Option<i64> =
        sqlx::query_scalar("SELECT seq FROM sqlite_sequence WHERE name = 'face_templates'")
            .fetch_optional(conn)
            .await?;
    Ok(last.unwrap_or(0) + 1)
}

async fn write_photo(
    conn: &mut SqliteConnection,
    template_id: i64,
    seals: &TemplateSeals,
) -> Result<(), sqlx::Error> {
    if let Some(photo) = &seals.photo {
        sqlx::query(
            "INSERT INTO face_photos (template_id, key_id, sealed) VALUES (?, ?, ?) \
             ON CONFLICT (template_id) DO UPDATE SET key_id = excluded.key_id, sealed = excluded.sealed",
        )
        .bind(template_id)
        .bind(&photo.key_id)
        .bind(&photo.bytes)
        .execute(conn)
        .await?;
    }
    Ok(())
}

#[async_trait]
impl TemplateRecords for SqliteBackend {
    async fn insert_templates(
        &self,
        rows: &[NewTemplateRow],
        seal: SealTemplate<'_>,
    ) -> StoreResult<Vec<i64>> {
        // The write lock from the start, so the ids cannot be taken.
        let mut tx = WriteTx::begin(&self.pool).await?;
        let first = next_template_id(tx.conn()).await.map_err(from_sqlx)?;
        let mut ids = Vec::with_capacity(rows.len());
        for (i, row) in rows.iter().enumerate() {
            let id = first + i as i64;
            let seals = seal(i, id);
            sqlx::query(
                "INSERT INTO face_templates \
                 (id, user_id, model_id, embedding, key_id, quality, image_path, created_at) \
                 VALUES (?, ?, ?, ?, ?, ?, '', ?)",
            )
            .bind(id)
            .bind(row.user_id)
            .bind(&row.model_id)
            .bind(&seals.embedding.bytes)
            .bind(&seals.embedding.key_id)
            .bind(f64::from(row.quality))
            .bind(ts(row.created_at))
            .execute(tx.conn())
            .await
            .map_err(from_sqlx)?;
            write_photo(tx.conn(), id, &seals)
                .await
                .map_err(from_sqlx)?;
            ids.push(id);
        }
        tx.commit().await?;
        Ok(ids)
    }

    async fn template_row(&self, id: i64) -> StoreResult<Option<TemplateRow>> {
        let sql = format!("SELECT {TEMPLATE_COLUMNS} FROM face_templates WHERE id = ?");
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
            format!("SELECT {TEMPLATE_COLUMNS} FROM face_templates WHERE user_id = ? ORDER BY id");
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
             WHERE u.is_active = 1 AND f.model_id = ? AND f.id > ? ORDER BY f.id LIMIT ?",
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
             JOIN face_templates f ON f.id = p.template_id WHERE p.template_id = ?",
        )
        .bind(template_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(from_sqlx)?;
        let photo = |r: &SqliteRow| -> Result<PhotoRow, sqlx::Error> {
            Ok(PhotoRow {
                template_id: r.try_get("template_id")?,
                user_id: r.try_get("user_id")?,
                photo: blob(r, "sealed", "key_id")?,
            })
        };
        row.as_ref().map(photo).transpose().map_err(from_sqlx)
    }

    async fn delete_template_row(&self, id: i64) -> StoreResult<bool> {
        let n = sqlx::query("DELETE FROM face_templates WHERE id = ?")
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(from_sqlx)?
            .rows_affected();
        self.checkpoint().await;
        Ok(n > 0)
    }

    async fn delete_template_rows_for_user(&self, user_id: i64) -> StoreResult<usize> {
        let n = sqlx::query("DELETE FROM face_templates WHERE user_id = ?")
            .bind(user_id)
            .execute(&self.pool)
            .await
            .map_err(from_sqlx)?
            .rows_affected();
        self.checkpoint().await;
        Ok(n as usize)
    }

    async fn template_ids_not_on_key(&self, key_id: &str) -> StoreResult<Vec<i64>> {
        sqlx::query_scalar(
            "SELECT f.id FROM face_templates f LEFT JOIN face_photos p ON p.template_id = f.id \
             WHERE f.key_id IS NULL OR f.key_id != ?1 OR p.key_id != ?1 ORDER BY f.id",
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
        let mut tx = WriteTx::begin(&self.pool).await?;
        let row = sqlx::query(
            "SELECT f.id, f.user_id, f.embedding, f.key_id, p.sealed, p.key_id AS photo_key \
             FROM face_templates f LEFT JOIN face_photos p ON p.template_id = f.id WHERE f.id = ?",
        )
        .bind(id)
        .fetch_optional(tx.conn())
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
        sqlx::query("UPDATE face_templates SET embedding = ?, key_id = ? WHERE id = ?")
            .bind(&seals.embedding.bytes)
            .bind(&seals.embedding.key_id)
            .bind(id)
            .execute(tx.conn())
            .await
            .map_err(from_sqlx)?;
        write_photo(tx.conn(), id, &seals)
            .await
            .map_err(from_sqlx)?;
        tx.commit().await?;
        Ok(true)
    }
}
