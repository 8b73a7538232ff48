//! The encrypted side of [`SqliteStore`]: unlocking with the master key
//! (refusing a key that does not match the data, templates and kept login
//! probes alike), sealing and opening template embeddings, re-sealing one
//! record for a key rotation, and erasing an account.

use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqlitePool};

use super::sqlite::{backend, from_ts, now};
use super::{embedding_from_bytes, embedding_to_bytes, Keys, SqliteStore, StoreError, StoreResult};
use crate::crypto::{self, template_aad, Vault};
use crate::domain::{NewTemplate, Template};

fn key_error(e: crypto::CryptoError) -> StoreError {
    StoreError::Backend(e.to_string())
}

impl SqliteStore {
    /// Loads the keys and checks that they open every sealed record. With
    /// no key configured or on disk, `master.key` is created — but only when
    /// no record is sealed yet, so a lost key is an error, never a new key
    /// that silently orphans the data.
    pub(super) async fn unlock(pool: &SqlitePool, keys: Keys) -> StoreResult<Vault> {
        let in_use: Vec<String> = sqlx::query_scalar(
            "SELECT key_id FROM face_templates WHERE key_id IS NOT NULL \
             UNION SELECT probe_key_id FROM login_attempts WHERE probe_key_id IS NOT NULL",
        )
        .fetch_all(pool)
        .await
        .map_err(backend)?;
        let vault = match keys {
            Keys::Vault(v) => v,
            Keys::Configured {
                data_dir,
                master_key,
            } => match crypto::load_keys(&data_dir, master_key.as_deref()).map_err(key_error)? {
                Some(v) => v,
                None if in_use.is_empty() => {
                    Vault::new(crypto::create_key_file(&data_dir).map_err(key_error)?, [])
                }
                None => {
                    return Err(StoreError::Backend(format!(
                        "no master key: the database holds face data sealed with key id(s) {} \
                         but neither FACEGATE_MASTER_KEY nor {} is present; restore the key",
                        in_use.join(", "),
                        data_dir.join(crypto::KEY_FILE).display()
                    )))
                }
            },
        };
        let missing: Vec<&String> = in_use.iter().filter(|id| !vault.has_key(id)).collect();
        if !missing.is_empty() {
            return Err(StoreError::Backend(format!(
                "wrong master key: face data is sealed with key id(s) {:?} but the loaded key id(s) are {:?}; \
                 check FACEGATE_MASTER_KEY / master.key (a rotation in progress also needs master.key.next)",
                missing,
                vault.key_ids()
            )));
        }
        let legacy: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM face_templates WHERE key_id IS NULL")
                .fetch_one(pool)
                .await
                .map_err(backend)?;
        if legacy > 0 {
            tracing::warn!(
                templates = legacy,
                "face templates stored before encryption; run `facegate rotate-key` to seal them"
            );
        }
        Ok(vault)
    }

    /// The plaintext embedding of a `face_templates` row.
    pub(super) fn open_embedding(&self, r: &SqliteRow) -> StoreResult<Vec<f32>> {
        let id: i64 = r.try_get("id").map_err(backend)?;
        let user_id: i64 = r.try_get("user_id").map_err(backend)?;
        let blob: Vec<u8> = r.try_get("embedding").map_err(backend)?;
        let key_id: Option<String> = r.try_get("key_id").map_err(backend)?;
        let plain = match key_id {
            None => blob, // legacy plaintext, sealed by rotate-key
            Some(_) => self
                .vault
                .open(&blob, &template_aad(id, user_id))
                .map_err(|e| StoreError::Backend(format!("face template {id}: {e}")))?,
        };
        Ok(embedding_from_bytes(&plain))
    }

    pub(super) fn template_from_row(&self, r: &SqliteRow) -> StoreResult<Template> {
        let t = Template {
            id: r.try_get("id").map_err(backend)?,
            user_id: r.try_get("user_id").map_err(backend)?,
            model_id: r.try_get("model_id").map_err(backend)?,
            embedding: self.open_embedding(r)?,
            quality: r.try_get::<f64, _>("quality").map_err(backend)? as f32,
            image_path: r.try_get("image_path").map_err(backend)?,
            created_at: from_ts(r.try_get("created_at").map_err(backend)?),
        };
        Ok(t)
    }

    /// Inserts a template sealed with its own id as associated data: the
    /// row is inserted, sealed and updated in one transaction. The returned
    /// template is built from what was written, not read back: once the
    /// commit succeeded nothing can fail (a caller that sees an error
    /// removes the photo, which must never happen to a committed row).
    pub(super) async fn insert_sealed_template(&self, new: &NewTemplate) -> StoreResult<Template> {
        let created = now();
        let mut tx = self.pool.begin().await.map_err(backend)?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO face_templates (user_id, model_id, embedding, quality, image_path, created_at, key_id) \
             VALUES (?, ?, x'', ?, ?, ?, ?) RETURNING id",
        )
        .bind(new.user_id)
        .bind(&new.model_id)
        .bind(f64::from(new.quality))
        .bind(&new.image_path)
        .bind(created)
        .bind(self.vault.primary_id())
        .fetch_one(&mut *tx)
        .await
        .map_err(backend)?;
        let sealed = self.vault.seal(
            &embedding_to_bytes(&new.embedding),
            &template_aad(id, new.user_id),
        );
        sqlx::query("UPDATE face_templates SET embedding = ? WHERE id = ?")
            .bind(sealed)
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        Ok(Template {
            id,
            user_id: new.user_id,
            model_id: new.model_id.clone(),
            embedding: new.embedding.clone(),
            quality: new.quality,
            image_path: new.image_path.clone(),
            created_at: from_ts(created),
        })
    }

    /// Re-seals one template's embedding with the primary key in its own
    /// transaction; false when it already was (or is gone).
    pub(super) async fn reseal(&self, id: i64) -> StoreResult<bool> {
        let primary = self.vault.primary_id();
        let mut tx = self.pool.begin().await.map_err(backend)?;
        let row = sqlx::query("SELECT * FROM face_templates WHERE id = ?")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(backend)?;
        let Some(row) = row else {
            return Ok(false);
        };
        let key_id: Option<String> = row.try_get("key_id").map_err(backend)?;
        if key_id.as_deref() == Some(primary.as_str()) {
            return Ok(false);
        }
        let user_id: i64 = row.try_get("user_id").map_err(backend)?;
        let plain = embedding_to_bytes(&self.open_embedding(&row)?);
        let sealed = self.vault.seal(&plain, &template_aad(id, user_id));
        sqlx::query("UPDATE face_templates SET embedding = ?, key_id = ? WHERE id = ?")
            .bind(sealed)
            .bind(&primary)
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        Ok(true)
    }

    /// Deletes a user with their templates (returned, so the caller can
    /// remove the photos), login attempts and sessions.
    pub(super) async fn delete_user_everywhere(&self, id: i64) -> StoreResult<Vec<Template>> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        let rows = sqlx::query("DELETE FROM face_templates WHERE user_id = ? RETURNING *")
            .bind(id)
            .fetch_all(&mut *tx)
            .await
            .map_err(backend)?;
        sqlx::query("DELETE FROM login_attempts WHERE user_id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        sqlx::query("DELETE FROM users WHERE id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        self.checkpoint().await;
        rows.iter().map(|r| self.template_from_row(r)).collect()
    }

    /// Moves the WAL into the database and truncates it, so deleted data
    /// (overwritten thanks to `secure_delete`) leaves no copy in the log.
    pub(super) async fn checkpoint(&self) {
        if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&self.pool)
            .await
        {
            tracing::warn!(error = %e, "WAL checkpoint failed");
        }
    }
}
