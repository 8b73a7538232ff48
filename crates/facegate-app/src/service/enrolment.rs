//! Face enrolment: analyse an uploaded photo (exactly one face of good
//! quality), store its template with the re-encoded photo (one record,
//! sealed by the store); list and delete.

use facegate_vision::{Quality, QualityLimits, VisionError};

use super::error::{ServiceError, ServiceResult};
use super::metrics::Stage;
use super::services::Services;
use crate::domain::{AuditKind, NewAuditEvent, NewTemplate, Template, User};

/// A 0–1 summary of a face's quality: half size, half sharpness, scaled so
/// that a face at twice the enrolment minimums scores 1, minus a pose
/// penalty.
pub fn quality_score(q: &Quality, limits: &QualityLimits) -> f32 {
    let size = (q.face_px / (2.0 * limits.min_face_px.max(1.0))).clamp(0.0, 1.0);
    let sharp = (q.sharpness / (2.0 * limits.min_sharpness.max(1.0))).clamp(0.0, 1.0);
    let pose = 1.0 - (q.pose.yaw.abs() / 90.0).clamp(0.0, 1.0) * 0.5;
    ((0.5 * size + 0.5 * sharp) * pose * 1000.0).round() / 1000.0
}

impl Services {
    /// Enrols one photo for `user`.
    pub async fn enrol(&self, user: &User, bytes: Vec<u8>) -> ServiceResult<Template> {
        let metrics = self.metrics.clone();
        let user_id = user.id;
        let result = self
            .blocking(move |engine| {
                let image = metrics.time(Stage::Decode, || engine.decode(&bytes))?;
                let analysis = metrics.time(Stage::DetectEmbed, || {
                    engine.analyze_single_image(&image, true)
                })?;
                let photo = super::jpeg::encode(&image)
                    .map_err(|e| VisionError::Model(format!("encoding the photo: {e}")))?;
                let score = quality_score(&analysis.quality, &engine.config().quality);
                Ok((analysis.embedding, score, photo))
            })
            .await?;
        let (embedding, quality, photo) = match result {
            Ok(v) => v,
            Err(VisionError::Model(m)) => return Err(ServiceError::Internal(m)),
            Err(e) => return Err(ServiceError::Vision(e)),
        };
        let new = NewTemplate {
            user_id,
            model_id: embedding.model_id,
            embedding: embedding.vector,
            quality,
            photo: Some(photo),
        };
        // Template and photo in one transaction: both or neither (a full
        // disk is a typed error).
        let t = self.store.add_template(&new).await?;
        self.invalidate_templates();
        self.record_event(
            NewAuditEvent::new(AuditKind::Enrolment, "success")
                .by(user.id, &user.username)
                .detail(format!("template={} quality={:.3}", t.id, t.quality)),
        )
        .await;
        Ok(t)
    }

    pub async fn faces(&self, user_id: i64) -> ServiceResult<Vec<Template>> {
        Ok(self.store.templates_for_user(user_id).await?)
    }

    /// A template that `viewer` may see: their own, or any for staff.
    pub async fn face_for(&self, viewer: &User, template_id: i64) -> ServiceResult<Template> {
        let t = self
            .store
            .template(template_id)
            .await?
            .ok_or(ServiceError::NotFound)?;
        if t.user_id != viewer.id && !viewer.is_staff {
            // Not found rather than forbidden: do not confirm it exists.
            return Err(ServiceError::NotFound);
        }
        Ok(t)
    }

    /// The stored JPEG of a template that `viewer` may see.
    pub async fn face_image(&self, viewer: &User, template_id: i64) -> ServiceResult<Vec<u8>> {
        let t = self.face_for(viewer, template_id).await?;
        let photo = self.store.face_photo(t.id).await?;
        Ok(photo.ok_or(ServiceError::NotFound)?.0)
    }

    pub async fn delete_face(&self, viewer: &User, template_id: i64) -> ServiceResult<()> {
        let t = self.face_for(viewer, template_id).await?;
        self.store.delete_template(t.id).await?;
        self.invalidate_templates();
        let mut event = NewAuditEvent::new(AuditKind::FaceDeleted, "success")
            .by(viewer.id, &viewer.username)
            .detail(format!("template={}", t.id));
        event.subject_user_id = Some(t.user_id);
        self.record_event(event).await;
        Ok(())
    }

    /// Deletes all templates and photos of a user, and the login probes
    /// kept for their attempts; returns how many templates.
    pub async fn delete_all_faces(&self, user_id: i64) -> ServiceResult<usize> {
        let deleted = self.store.delete_templates_for_user(user_id).await?;
        self.invalidate_templates();
        let probes = self.remove_user_probes(user_id).await?;
        let mut event = NewAuditEvent::new(AuditKind::FacesDeleted, "success")
            .detail(format!("faces={deleted} probes={probes}"));
        event.subject_user_id = Some(user_id);
        self.record_event(event).await;
        Ok(deleted)
    }
}
