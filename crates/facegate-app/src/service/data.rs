//! A user's biometric data as a whole: export (templates decrypted, photos,
//! login attempts and their kept probes), complete erasure of an account,
//! and key rotation.

use serde::Serialize;
use time::OffsetDateTime;

use super::error::ServiceResult;
use super::services::{Client, Services};
use crate::domain::{AuditKind, LoginAttempt, NewAuditEvent, User};
use crate::store::{DynStore, Resealed};

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
        export_with(&self.store, user).await
    }

    /// Erases an account: user row, templates with their photos, login
    /// attempts with their probes. `actor` is the user themself or a staff
    /// member.
    pub async fn delete_account(
        &self,
        user: &User,
        actor: &User,
        client: Option<&Client>,
    ) -> ServiceResult<usize> {
        let probes = self.remove_user_probes(user.id).await?;
        let templates = self.store.delete_user(user.id).await?;
        self.templates_changed(user.id).await;
        let mut event = NewAuditEvent::new(AuditKind::AccountDeleted, "success")
            .detail(format!("faces={templates} probes={probes}"));
        event.actor_user_id = Some(actor.id);
        event.subject_user_id = Some(user.id);
        event.client_addr = client.map(|c| c.addr.to_string());
        self.record_event(event).await;
        Ok(templates)
    }
}

/// Collects all of `user`'s data from `store` (no face engine needed) and
/// audits the export. A face whose photo is missing (or refused as
/// tampered) is exported without one.
pub async fn export_with(store: &DynStore, user: &User) -> ServiceResult<UserExport> {
    let templates = store.templates_for_user(user.id).await?;
    let mut faces = Vec::with_capacity(templates.len());
    for t in templates {
        let jpeg = store
            .face_photo(t.id)
            .await?
            .map(|j| j.0)
            .unwrap_or_default();
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
        // None: purged by the retention sweep meanwhile (or refused).
        if let Some(jpeg) = store.probe_image(a.id).await? {
            probes.push(ExportedProbe {
                attempt_id: a.id,
                at: a.at,
                image_file: format!("probes/{}.jpg", a.id),
                jpeg: jpeg.0,
            });
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

/// What a key rotation did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RotationReport {
    pub key_id: String,
    pub resealed: usize,
    pub skipped: usize,
    /// Kept login probes re-sealed.
    pub probes: usize,
    /// Records left as they were because they do not open (tampered).
    pub refused: usize,
}

/// Re-seals every template with its photo, then every kept login probe,
/// not yet on `store`'s primary key, one record at a time, so an
/// interrupted rotation resumes where it stopped; the key check last. A
/// record that does not open (tampered) is left as it is and counted in
/// `refused`.
pub async fn rotate_keys(store: &DynStore) -> ServiceResult<RotationReport> {
    let key_id = store.primary_key_id();
    let mut report = RotationReport {
        key_id: key_id.clone(),
        ..Default::default()
    };
    for id in store.templates_not_on_primary().await? {
        match store.reseal_template(id).await? {
            Resealed::Done => report.resealed += 1,
            Resealed::Unchanged => report.skipped += 1,
            Resealed::Refused => report.refused += 1,
        }
    }
    for id in store.probes_not_on_primary().await? {
        match store.reseal_probe(id).await? {
            Resealed::Done => report.probes += 1,
            Resealed::Unchanged => {}
            Resealed::Refused => report.refused += 1,
        }
    }
    store.reseal_signing_keys().await?;
    store.reseal_key_check().await?;
    let mut event = NewAuditEvent::new(AuditKind::KeyRotated, "success");
    event.detail = format!(
        "key_id={key_id} resealed={} probes={} refused={}",
        report.resealed, report.probes, report.refused
    );
    store.append_audit(&event).await?;
    Ok(report)
}
