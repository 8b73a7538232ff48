//! A user's biometric data as a whole: export (templates decrypted, photos,
//! login attempts and their kept probes), complete erasure of an account,
//! the sweep of photo and probe files left behind by a crash, and key
//! rotation.

use std::collections::HashSet;

use serde::Serialize;
use time::OffsetDateTime;

use super::media::PROBES_DIR;
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

/// A face-login probe kept with one of the user's login attempts.
#[derive(Debug, Clone, Serialize)]
pub struct ExportedProbe {
    pub attempt_id: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// The image's file name inside an export directory.
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
    /// Probe images kept with those attempts (`probe_retention_days`).
    pub probes: Vec<ExportedProbe>,
}

impl Services {
    /// Collects all of `user`'s data, photos decrypted.
    pub async fn export_user(&self, user: &User) -> ServiceResult<UserExport> {
        export_with(&self.store, &self.media, user).await
    }

    /// Erases an account: kept login probes, user row, templates, login
    /// attempts, photos and the photo directory. `actor` is the user
    /// themself or a staff member.
    pub async fn delete_account(
        &self,
        user: &User,
        actor: &User,
        client: Option<&Client>,
    ) -> ServiceResult<usize> {
        let probes = self.remove_user_probes(user.id).await?;
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
            .detail(format!("faces={} probes={probes}", templates.len()));
        event.actor_user_id = Some(actor.id);
        event.subject_user_id = Some(user.id);
        event.client_addr = client.map(|c| c.addr.to_string());
        self.record_event(event).await;
        Ok(templates.len())
    }

    /// Removes photo and probe files no row refers to (a crash between
    /// writing a file and committing its row, or between deleting a row and
    /// its file) and unfinished temporary files. Returns how many were
    /// removed.
    pub async fn sweep_orphan_photos(&self) -> ServiceResult<usize> {
        let mut known: HashSet<String> = self.store.image_paths().await?.into_iter().collect();
        known.extend(self.store.probe_paths().await?);
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
    let mut probes = Vec::new();
    for a in login_attempts.iter().filter(|a| a.has_probe()) {
        let (m, rel) = (media.clone(), a.probe_path.clone().unwrap_or_default());
        let read = tokio::task::spawn_blocking(move || m.read(&rel))
            .await
            .map_err(|e| ServiceError::Internal(e.to_string()))?;
        match read {
            Ok(jpeg) => probes.push(ExportedProbe {
                attempt_id: a.id,
                at: a.at,
                image_file: format!("probes/{}.jpg", a.id),
                jpeg,
            }),
            // Purged by the retention sweep meanwhile.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(ServiceError::Internal(format!(
                    "probe of login attempt {}: {e}",
                    a.id
                )))
            }
        }
    }
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
        probes,
    })
}

fn sweep(media: &Media, known: &HashSet<String>) -> usize {
    let mut removed = sweep_dir(media, PROBES_DIR, known);
    let users = media.root().join("users");
    let Ok(dirs) = std::fs::read_dir(&users) else {
        return removed;
    };
    for dir in dirs.flatten() {
        let rel = format!("users/{}", dir.file_name().to_string_lossy());
        removed += sweep_dir(media, &rel, known);
        let _ = std::fs::remove_dir(dir.path()); // only when empty
    }
    removed
}

/// Removes the files of media directory `rel_dir` that are not `known`.
fn sweep_dir(media: &Media, rel_dir: &str, known: &HashSet<String>) -> usize {
    let Ok(files) = std::fs::read_dir(media.root().join(rel_dir)) else {
        return 0;
    };
    let mut removed = 0;
    for f in files.flatten() {
        let rel = format!("{rel_dir}/{}", f.file_name().to_string_lossy());
        if !known.contains(&rel) && std::fs::remove_file(f.path()).is_ok() {
            tracing::warn!(path = %rel, "removed an orphaned media file");
            removed += 1;
        }
    }
    removed
}

/// What a key rotation did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RotationReport {
    pub key_id: String,
    pub resealed: usize,
    pub skipped: usize,
    /// Kept login probes re-sealed.
    pub probes: usize,
}

/// Re-seals every template and photo, then every kept login probe, not yet
/// on `store`'s primary key, one record at a time (file first, then the
/// row), so an interrupted rotation resumes where it stopped.
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
    for (id, rel) in store.probes_not_on_key(&key_id).await? {
        let m = media.clone();
        tokio::task::spawn_blocking(move || m.reseal(&rel))
            .await
            .map_err(|e| ServiceError::Internal(e.to_string()))?
            .map_err(|e| ServiceError::Internal(format!("probe of login attempt {id}: {e}")))?;
        store.set_probe_key(id, &key_id).await?;
        report.probes += 1;
    }
    let mut event = NewAuditEvent::new(AuditKind::KeyRotated, "success");
    event.detail = format!(
        "key_id={key_id} resealed={} probes={}",
        report.resealed, report.probes
    );
    store.append_audit(&event).await?;
    Ok(report)
}
