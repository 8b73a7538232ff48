//! Key rotation through the sealing layer: each record not yet on the
//! primary key is opened with whichever loaded key sealed it and sealed
//! again with the primary, in its own backend transaction. A record that
//! does not open is left as it is, audited as tampering, and counts as
//! not re-sealed; it stays refused.

use std::sync::Mutex;

use async_trait::async_trait;

use super::layer::{on_key, open_with, seal_with, Refused, SealingStore, Why};
use crate::crypto::{photo_aad, probe_aad, template_aad, KEY_CHECK_AAD};
use crate::store::backend::{StoredBlob, StoredTemplate, TemplateSeals};
use crate::store::biometrics::{KeyRotation, Resealed};
use crate::store::error::{StoreError, StoreResult};

#[async_trait]
impl KeyRotation for SealingStore {
    fn primary_key_id(&self) -> String {
        self.vault.primary_id()
    }

    async fn templates_not_on_primary(&self) -> StoreResult<Vec<i64>> {
        self.backend
            .template_ids_not_on_key(&self.vault.primary_id())
            .await
    }

    async fn reseal_template(&self, id: i64) -> StoreResult<Resealed> {
        let primary = self.vault.primary_id();
        let refused: Mutex<Option<Refused>> = Mutex::new(None);
        let reseal = |t: &StoredTemplate| {
            let photo_done = t.photo.as_ref().is_none_or(|p| on_key(p, &primary));
            if on_key(&t.embedding, &primary) && photo_done {
                return Ok(None);
            }
            let refuse = |record: String, reason: Why| {
                *refused.lock().unwrap_or_else(|p| p.into_inner()) = Some(Refused {
                    record,
                    user_id: Some(t.user_id),
                    reason,
                });
            };
            let aad = template_aad(t.id, t.user_id);
            let embedding = match open_with(&self.vault, &t.embedding, &aad) {
                Ok(plain) => plain,
                Err(reason) => {
                    refuse(format!("face_templates/{}", t.id), reason);
                    return Ok(None);
                }
            };
            // A photo that does not open stays as it is; the embedding
            // still moves to the new key.
            let photo_aad = photo_aad(t.id, t.user_id);
            let photo = t.photo.as_ref().and_then(|p| {
                open_with(&self.vault, p, &photo_aad)
                    .map_err(|reason| refuse(format!("face_photos/{}", t.id), reason))
                    .ok()
            });
            Ok(Some(TemplateSeals {
                embedding: seal_with(&self.vault, &embedding, &aad),
                photo: photo.map(|p| seal_with(&self.vault, &p, &photo_aad)),
            }))
        };
        let done = self.backend.reseal_template_row(id, &reseal).await?;
        match refused.into_inner().unwrap_or_else(|p| p.into_inner()) {
            Some(r) => {
                self.report(vec![r]).await;
                Ok(Resealed::Refused)
            }
            None if done => Ok(Resealed::Done),
            None => Ok(Resealed::Unchanged),
        }
    }

    async fn probes_not_on_primary(&self) -> StoreResult<Vec<i64>> {
        self.backend
            .probe_ids_not_on_key(&self.vault.primary_id())
            .await
    }

    async fn reseal_probe(&self, attempt_id: i64) -> StoreResult<Resealed> {
        let primary = self.vault.primary_id();
        let refused: Mutex<Option<Why>> = Mutex::new(None);
        let aad = probe_aad(attempt_id);
        let reseal = |b: &StoredBlob| {
            if on_key(b, &primary) {
                return Ok(None);
            }
            match open_with(&self.vault, b, &aad) {
                Ok(plain) => Ok(Some(seal_with(&self.vault, &plain, &aad))),
                Err(reason) => {
                    *refused.lock().unwrap_or_else(|p| p.into_inner()) = Some(reason);
                    Ok(None)
                }
            }
        };
        let done = self.backend.reseal_probe_row(attempt_id, &reseal).await?;
        match refused.into_inner().unwrap_or_else(|p| p.into_inner()) {
            Some(reason) => {
                let record = format!("login_probes/{attempt_id}");
                self.report(vec![Refused {
                    record,
                    user_id: None,
                    reason,
                }])
                .await;
                Ok(Resealed::Refused)
            }
            None if done => Ok(Resealed::Done),
            None => Ok(Resealed::Unchanged),
        }
    }

    async fn reseal_key_check(&self) -> StoreResult<()> {
        let check = self.backend.key_check().await?.ok_or_else(|| {
            StoreError::Backend("the key check is missing (it is written at start)".into())
        })?;
        if on_key(&check, &self.vault.primary_id()) {
            return Ok(());
        }
        let plain = open_with(&self.vault, &check, KEY_CHECK_AAD)
            .map_err(|e| StoreError::Config(format!("the key check does not open: {e}")))?;
        let sealed = seal_with(&self.vault, &plain, KEY_CHECK_AAD);
        self.backend.replace_key_check(&sealed).await
    }
}
