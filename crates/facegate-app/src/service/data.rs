//! A user's biometric data as a whole: export (templates decrypted, photos,
//! login attempts), complete erasure of an account, the sweep of photo
//! files left behind by a crash, and key rotation.

use std::collections::HashSet;

use serde::Serialize;
use time::OffsetDateTime;

use super::{Client, Media, ServiceError, ServiceResult, Services};
use crate::domain::{AuditKind, LoginAttempt, NewAuditEvent, User};
use crate::store::DynStore;

/// One enrolled face in an export.
#[derive(Debug, Clone, Serialize)]
pub struct ExportedFace {
    pub id: i64,
    pub model_id: String,
    pub quality: f32,
    #[serde(with = "time::serde::rfc3339")]
    pub created: OffsetDateTime,
    /// The decrypted embedding.
    pub embedding: Vec<f32>,
    /// The photo's file name inside an export directory.
    pub image_file: String,
    #[serde(skip)]
    pub jpeg: Vec<u8>,
}

/// Everything stored about a user.
#[derive(Debug, Clone, Serialize)]
pub struct UserExport {
    pub id: i64,
    pub username: String,
    pub email: String,
    pub is_active: bool,
    pub is_staff: bool,
    #[serde(with = "time::serde::rfc3339")]
    pub created: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub exported: OffsetDateTime,
    pub faces: Vec<ExportedFace>,
    pub login_attempts: Vec<LoginAttempt>,
}

impl Services {
    /// Collects all of `user`'s data, photos decrypted.
    pub async fn export_user(&self, user: &User) -> ServiceResult<UserExport> {
        export_with(&self.store, &self.media, user).await
    }

    /// Erases an account: user row, templates, login attempts, photos and
    /// the photo directory. `actor` is the user themself or a staff member.
    pub async fn delete_account(
        &self,
        user: &User,
        actor: &User,
        client: Option<&Client>,
    ) -> ServiceResult<usize> {
        let templates = self.store.delete_user(user.id).await?;
        self.invalidate_templates();
        let media = self.media.clone();
        let user_id = user.id;
        let paths: Vec<String> = templates.iter().map(|t| t.image_path.clone()).collect();
        tokio::task::spawn_blocking(move || {
            for p in &paths {
                media.remove(p);
            }
            media.remove_user(user_id);
        })
        .await
        .map_err(|e| ServiceError::Internal(e.to_string()))?;
        let mut event = NewAuditEvent::new(AuditKind::AccountDeleted, "success")
            .detail(format!("faces={}", templates.len()));
        event.actor_user_id = Some(actor.id);
        event.subject_user_id = Some(user.id);
        event.client_addr = client.map(|c| c.addr.to_string());
        self.record_event(event).await;
        Ok(templates.len())
    }

    /// Removes photo files no template refers to (a crash between writing a
    /// photo and committing its row, or between deleting a row and its
    /// file) and unfinished temporary files. Returns how many were removed.
    pub async fn sweep_orphan_photos(&self) -> ServiceResult<usize> {
        let known: HashSet<String> = self.store.image_paths().await?.into_iter().collect();
        let media = self.media.clone();
        tokio::task::spawn_blocking(move || sweep(&media, &known))
            .await
            .map_err(|e| ServiceError::Internal(e.to_string()))
    }
}

/// Collects all of `user`'s data from `store` and `media` (no face engine
/// needed) and audits the export.
pub async fn export_with(
    store: &DynStore,
    media: &Media,
    user: &User,
) -> ServiceResult<UserExport> {
    let templates = store.templates_for_user(user.id).await?;
    let mut faces = Vec::with_capacity(templates.len());
    for t in templates {
        let m = media.clone();
        let rel = t.image_path.clone();
        let jpeg = tokio::task::spawn_blocking(move || m.read(&rel))
            .await
            .map_err(|e| ServiceError::Internal(e.to_string()))?
            .map_err(|e| ServiceError::Internal(format!("photo of face {}: {e}", t.id)))?;
        faces.push(ExportedFace {
            id: t.id,
            model_id: t.model_id,
            quality: t.quality,
            created: t.created_at,
            embedding: t.embedding,
            image_file: format!("faces/{}.jpg", t.id),
            jpeg,
        });
    }
    let login_attempts = store.attempts_for_user(user.id).await?;
    store
        .append_audit(
            &NewAuditEvent::new(AuditKind::DataExported, "success").by(user.id, &user.username),
        )
        .await?;
    Ok(UserExport {
        id: user.id,
        username: user.username.clone(),
        email: user.email.clone(),
        is_active: user.is_active,
        is_staff: user.is_staff,
        created: user.created_at,
        exported: OffsetDateTime::now_utc(),
        faces,
        login_attempts,
    })
}

fn sweep(media: &Media, known: &HashSet<String>) -> usize {
    let users = media.root().join("users");
    let Ok(dirs) = std::fs::read_dir(&users) else {
        return 0;
    };
    let mut removed = 0;
    for dir in dirs.flatten() {
        let Ok(files) = std::fs::read_dir(dir.path()) else {
            continue;
        };
        for f in files.flatten() {
            let rel = format!(
                "users/{}/{}",
                dir.file_name().to_string_lossy(),
                f.file_name().to_string_lossy()
            );
            if !known.contains(&rel) && std::fs::remove_file(f.path()).is_ok() {
                tracing::warn!(path = %rel, "removed an orphaned photo file");
                removed += 1;
            }
        }
        let _ = std::fs::remove_dir(dir.path()); // only when empty
    }
    removed
}

/// What a key rotation did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RotationReport {
    pub key_id: String,
    pub resealed: usize,
    pub skipped: usize,
}

/// Re-seals every template and photo not yet on `store`'s primary key,
/// one record at a time (photo first, then the row in its own transaction),
/// so an interrupted rotation resumes where it stopped.
pub async fn rotate_keys(store: &DynStore, media: &Media) -> ServiceResult<RotationReport> {
    let vault = store.vault();
    let key_id = vault.primary_id();
    let mut report = RotationReport {
        key_id: key_id.clone(),
        ..Default::default()
    };
    for id in store.template_ids_not_on_key(&key_id).await? {
        let Some(t) = store.template(id).await? else {
            continue;
        };
        let m = media.clone();
        let rel = t.image_path.clone();
        tokio::task::spawn_blocking(move || m.reseal(&rel))
            .await
            .map_err(|e| ServiceError::Internal(e.to_string()))?
            .map_err(|e| ServiceError::Internal(format!("photo of template {id}: {e}")))?;
        if store.reseal_template(id).await? {
            report.resealed += 1;
        } else {
            report.skipped += 1;
        }
    }
    let mut event = NewAuditEvent::new(AuditKind::KeyRotated, "success");
    event.detail = format!("key_id={key_id} resealed={}", report.resealed);
    store.append_audit(&event).await?;
    Ok(report)
}
