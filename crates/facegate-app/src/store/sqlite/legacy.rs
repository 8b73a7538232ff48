//! What older versions left in an SQLite store, for the one-time import
//! done at start (`store::sealing::legacy`): templates whose embedding was
//! stored before encryption (`key_id` NULL), and photos and probes kept as
//! files under `media/` (named by `image_path` and `probe_path`). Raw rows
//! in, sealed blobs out: the crypto is the caller's.

use sqlx::Row;

use super::{SqliteBackend, WriteTx};
use crate::store::backend::{SealedBlob, StoredBlob};
use crate::store::error::StoreResult;
use crate::store::fault::from_sqlx;

/// The `store_meta` entry saying the import is done.
const LEGACY_SEALED: &str = "legacy_sealed";

/// A template from before: a plaintext embedding or a photo file.
#[derive(Debug)]
pub struct LegacyTemplate {
    pub id: i64,
    pub user_id: i64,
    pub embedding: StoredBlob,
    /// The photo file under `media/` ("" when none).
    pub image_path: String,
}

/// A probe kept as a file under `media/`.
#[derive(Debug)]
pub struct LegacyProbe {
    pub attempt_id: i64,
    pub probe_path: String,
}

impl SqliteBackend {
    /// Whether the one-time import already ran on this database.
    pub async fn legacy_sealed(&self) -> StoreResult<bool> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM store_meta WHERE name = ?")
            .bind(LEGACY_SEALED)
            .fetch_one(&self.pool)
            .await
            .map_err(from_sqlx)?;
        Ok(n > 0)
    }

    /// Records that the import ran: from now on nothing unsealed is taken.
    pub async fn mark_legacy_sealed(&self) -> StoreResult<()> {
        sqlx::query("INSERT OR IGNORE INTO store_meta (name, value) VALUES (?, datetime('now'))")
            .bind(LEGACY_SEALED)
            .execute(&self.pool)
            .await
            .map_err(from_sqlx)?;
        Ok(())
    }

    /// Templates with a plaintext embedding or a photo file.
    pub async fn legacy_templates(&self) -> StoreResult<Vec<LegacyTemplate>> {
        let rows = sqlx::query(
            "SELECT id, user_id, embedding, key_id, image_path FROM face_templates \
             WHERE key_id IS NULL OR image_path != '' ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(from_sqlx)?;
        rows.iter()
            .map(|r| {
                Ok(LegacyTemplate {
                    id: r.try_get("id")?,
                    user_id: r.try_get("user_id")?,
                    embedding: StoredBlob {
                        key_id: r.try_get("key_id")?,
                        bytes: r.try_get("embedding")?,
                    },
                    image_path: r.try_get("image_path")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(from_sqlx)
    }

    /// Stores a legacy template's sealed embedding (when it was plaintext)
    /// and photo (when its file was read), and forgets the file, in one
    /// transaction.
    pub async fn replace_legacy_template(
        &self,
        id: i64,
        embedding: Option<SealedBlob>,
        photo: Option<SealedBlob>,
    ) -> StoreResult<()> {
        let mut tx = WriteTx::begin(&self.pool).await?;
        if let Some(e) = embedding {
            sqlx::query("UPDATE face_templates SET embedding = ?, key_id = ? WHERE id = ?")
                .bind(&e.bytes)
                .bind(&e.key_id)
                .bind(id)
                .execute(tx.conn())
                .await
                .map_err(from_sqlx)?;
        }
        if let Some(p) = photo {
            sqlx::query(
                "INSERT OR REPLACE INTO face_photos (template_id, key_id, sealed) VALUES (?, ?, ?)",
            )
            .bind(id)
            .bind(&p.key_id)
            .bind(&p.bytes)
            .execute(tx.conn())
            .await
            .map_err(from_sqlx)?;
        }
        sqlx::query("UPDATE face_templates SET image_path = '' WHERE id = ?")
            .bind(id)
            .execute(tx.conn())
            .await
            .map_err(from_sqlx)?;
        tx.commit().await
    }

    /// Attempts whose probe is a file.
    pub async fn legacy_probes(&self) -> StoreResult<Vec<LegacyProbe>> {
        let rows: Vec<(i64, String)> = sqlx::query_as(
            "SELECT id, probe_path FROM login_attempts WHERE probe_path IS NOT NULL ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(from_sqlx)?;
        Ok(rows
            .into_iter()
            .map(|(attempt_id, probe_path)| LegacyProbe {
                attempt_id,
                probe_path,
            })
            .collect())
    }

    /// Stores a legacy probe sealed (when its file was read) and forgets
    /// the file, in one transaction.
    pub async fn replace_legacy_probe(
        &self,
        attempt_id: i64,
        probe: Option<SealedBlob>,
    ) -> StoreResult<()> {
        let mut tx = WriteTx::begin(&self.pool).await?;
        if let Some(p) = probe {
            sqlx::query(
                "INSERT OR REPLACE INTO login_probes (attempt_id, key_id, sealed) VALUES (?, ?, ?)",
            )
            .bind(attempt_id)
            .bind(&p.key_id)
            .bind(&p.bytes)
            .execute(tx.conn())
            .await
            .map_err(from_sqlx)?;
        }
        sqlx::query(
            "UPDATE login_attempts SET probe_path = NULL, probe_key_id = NULL WHERE id = ?",
        )
        .bind(attempt_id)
        .execute(tx.conn())
        .await
        .map_err(from_sqlx)?;
        tx.commit().await
    }
}
