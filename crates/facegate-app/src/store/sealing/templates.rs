//! Templates, photos and kept probes through the sealing layer: sealed on
//! the way in (bound to their record's id, which the backend supplies
//! inside its transaction), opened on the way out, refused when they do
//! not open.

use async_trait::async_trait;

use super::layer::{embedding_from_bytes, embedding_to_bytes, open_with, Refused, SealingStore};
use crate::crypto::{photo_aad, probe_aad, template_aad, Vault};
use crate::domain::{Jpeg, MatchTemplate, NewLoginAttempt, NewTemplate, Template};
use crate::store::backend::{stamp_now, MatchRow, NewTemplateRow, TemplateRow, TemplateSeals};
use crate::store::biometrics::{Probes, Templates};
use crate::store::error::{StoreError, StoreResult};

impl SealingStore {
    /// Opens a template row; `Err` says why it is refused.
    fn open_template(&self, r: TemplateRow) -> Result<Template, Refused> {
        match open_with(&self.vault, &r.embedding, &template_aad(r.id, r.user_id)) {
            Ok(plain) => Ok(Template {
                id: r.id,
                user_id: r.user_id,
                model_id: r.model_id,
                embedding: embedding_from_bytes(&plain),
                quality: r.quality,
                created_at: r.created_at,
            }),
            Err(reason) => Err(Refused {
                record: format!("face_templates/{}", r.id),
                user_id: Some(r.user_id),
                reason,
            }),
        }
    }

    /// Opens template rows, reporting the refused ones.
    async fn open_templates(&self, rows: Vec<TemplateRow>) -> Vec<Template> {
        let (mut open, mut refused) = (Vec::with_capacity(rows.len()), Vec::new());
        for r in rows {
            match self.open_template(r) {
                Ok(t) => open.push(t),
                Err(r) => refused.push(r),
            }
        }
        self.report(refused).await;
        open
    }
}

#[async_trait]
impl Templates for SealingStore {
    async fn add_template(&self, new: &NewTemplate) -> StoreResult<Template> {
        let created_at = stamp_now();
        let id = self.insert(std::slice::from_ref(new), created_at).await?[0];
        Ok(Template {
            id,
            user_id: new.user_id,
            model_id: new.model_id.clone(),
            embedding: new.embedding.clone(),
            quality: new.quality,
            created_at,
        })
    }

    async fn add_templates(&self, new: &[NewTemplate]) -> StoreResult<Vec<i64>> {
        self.insert(new, stamp_now()).await
    }

    async fn template(&self, id: i64) -> StoreResult<Option<Template>> {
        let Some(row) = self.backend.template_row(id).await? else {
            return Ok(None);
        };
        Ok(self.open_templates(vec![row]).await.pop())
    }

    async fn templates_for_user(&self, user_id: i64) -> StoreResult<Vec<Template>> {
        let rows = self.backend.template_rows_for_user(user_id).await?;
        Ok(self.open_templates(rows).await)
    }

    async fn active_templates(&self, model_id: &str) -> StoreResult<Vec<MatchTemplate>> {
        // Page by page, each opened and dropped before the next is read:
        // a million sealed rows are never held beside their opened form.
        let (mut open, mut after) = (Vec::new(), 0);
        loop {
            let rows = self.backend.match_rows(model_id, after, MATCH_PAGE).await?;
            let Some(last) = rows.last() else { break };
            after = last.id;
            let full = rows.len() as i64 == MATCH_PAGE;
            let vault = self.vault.clone();
            // Opening takes a while: off the async workers.
            let (page, refused) = tokio::task::spawn_blocking(move || open_matches(&vault, rows))
                .await
                .map_err(|e| StoreError::Backend(format!("opening templates: {e}")))?;
            open.extend(page);
            self.report(refused).await;
            if !full {
                break;
            }
        }
        Ok(open)
    }

    async fn face_photo(&self, template_id: i64) -> StoreResult<Option<Jpeg>> {
        let Some(row) = self.backend.photo_row(template_id).await? else {
            return Ok(None);
        };
        let aad = photo_aad(row.template_id, row.user_id);
        match open_with(&self.vault, &row.photo, &aad) {
            Ok(jpeg) => Ok(Some(Jpeg(jpeg))),
            Err(reason) => {
                let refused = Refused {
                    record: format!("face_photos/{template_id}"),
                    user_id: Some(row.user_id),
                    reason,
                };
                self.report(vec![refused]).await;
                Ok(None)
            }
        }
    }

    async fn delete_template(&self, id: i64) -> StoreResult<()> {
        self.backend.delete_template_row(id).await.map(|_| ())
    }

    async fn delete_templates_for_user(&self, user_id: i64) -> StoreResult<usize> {
        self.backend.delete_template_rows_for_user(user_id).await
    }
}

impl SealingStore {
    /// Inserts templates, each embedding and photo sealed with the id the
    /// backend gives it.
    async fn insert(
        &self,
        new: &[NewTemplate],
        created_at: time::OffsetDateTime,
    ) -> StoreResult<Vec<i64>> {
        let rows: Vec<NewTemplateRow> = new
            .iter()
            .map(|t| NewTemplateRow {
                user_id: t.user_id,
                model_id: t.model_id.clone(),
                quality: t.quality,
                created_at,
            })
            .collect();
        let seal = |index: usize, id: i64| {
            let t = &new[index];
            TemplateSeals {
                embedding: self.seal(
                    &embedding_to_bytes(&t.embedding),
                    &template_aad(id, t.user_id),
                ),
                photo: t
                    .photo
                    .as_ref()
                    .map(|p| self.seal(&p.0, &photo_aad(id, t.user_id))),
            }
        };
        self.backend.insert_templates(&rows, &seal).await
    }
}

#[async_trait]
impl Probes for SealingStore {
    async fn record_attempt(&self, attempt: &NewLoginAttempt) -> StoreResult<()> {
        let Some(probe) = &attempt.probe else {
            return self.backend.insert_attempt(attempt, None).await;
        };
        let mut row = attempt.clone();
        row.probe = None;
        let seal = |id: i64| self.seal(&probe.0, &probe_aad(id));
        self.backend.insert_attempt(&row, Some(&seal)).await
    }

    async fn probe_image(&self, attempt_id: i64) -> StoreResult<Option<Jpeg>> {
        let Some(blob) = self.backend.probe_blob(attempt_id).await? else {
            return Ok(None);
        };
        match open_with(&self.vault, &blob, &probe_aad(attempt_id)) {
            Ok(jpeg) => Ok(Some(Jpeg(jpeg))),
            Err(reason) => {
                let refused = Refused {
                    record: format!("login_probes/{attempt_id}"),
                    user_id: None,
                    reason,
                };
                self.report(vec![refused]).await;
                Ok(None)
            }
        }
    }
}

/// Rows of the 1:N gallery read and opened at a time.
const MATCH_PAGE: i64 = 10_000;

/// Opens sealed gallery rows; the ones that do not open are refused.
fn open_matches(vault: &Vault, rows: Vec<MatchRow>) -> (Vec<MatchTemplate>, Vec<Refused>) {
    let (mut open, mut refused) = (Vec::with_capacity(rows.len()), Vec::new());
    for r in rows {
        match open_with(vault, &r.embedding, &template_aad(r.id, r.user_id)) {
            Ok(plain) => open.push(MatchTemplate {
                user_id: r.user_id,
                embedding: embedding_from_bytes(&plain),
            }),
            Err(reason) => refused.push(Refused {
                record: format!("face_templates/{}", r.id),
                user_id: Some(r.user_id),
                reason,
            }),
        }
    }
    (open, refused)
}
