//! Face enrolment: analyse an uploaded photo (exactly one face of good
//! quality), check that the face fits the account (the person already
//! enrolled; in `identify` mode, nobody else's face), store its template
//! with the re-encoded photo (one record, sealed by the store); list and
//! delete.

use facegate_vision::{Quality, QualityLimits, VisionError};

use super::error::{ServiceError, ServiceResult};
use super::matching::rank;
use super::metrics::Stage;
use super::services::Services;
use crate::config::FaceLoginMode;
use crate::domain::{AuditKind, NewAuditEvent, NewTemplate, Template, User};

/// The refusal of a face that is not the person already enrolled.
const NOT_THE_SAME_PERSON: ServiceError = ServiceError::EnrolmentRefused {
    code: "face_mismatch",
    message: "This photo does not look like the person already enrolled on your account. \
              To enrol someone else, delete your face data first.",
};

/// The refusal of a face that already logs in to another account; it does
/// not say which.
const FACE_TAKEN: ServiceError = ServiceError::EnrolmentRefused {
    code: "face_taken",
    message: "This face cannot be added to your account. If you think this is a mistake, \
              contact the staff.",
};

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
        self.check_face_fits(user, &embedding.model_id, &embedding.vector)
            .await?;
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
        self.templates_changed(t.user_id).await;
        // The owner is told at their next login (issue 16, finding 6).
        let now = time::OffsetDateTime::now_utc();
        if let Err(e) = self.store.set_face_added(user_id, Some(now)).await {
            tracing::warn!(error = %e, user_id, "could not record the face-added notice");
        }
        self.record_event(
            NewAuditEvent::new(AuditKind::Enrolment, "success")
                .by(user.id, &user.username)
                .detail(format!("template={} quality={:.3}", t.id, t.quality)),
        )
        .await;
        Ok(t)
    }

    /// Refuses a face that does not match the account's own templates of
    /// the same model (below the match threshold), and in `identify` mode
    /// a face that matches another active account at or above it: face
    /// login would become ambiguous for both. That refusal is audited for
    /// staff, with the other account as subject.
    async fn check_face_fits(
        &self,
        user: &User,
        model_id: &str,
        embedding: &[f32],
    ) -> ServiceResult<()> {
        let threshold = self.engine.threshold();
        let own: Vec<_> = self
            .store
            .templates_for_user(user.id)
            .await?
            .into_iter()
            .filter(|t| t.model_id == model_id)
            .map(|t| crate::domain::MatchTemplate {
                user_id: t.user_id,
                embedding: t.embedding,
            })
            .collect();
        if let Some(&(_, best)) = rank(&own, embedding).first() {
            if best < threshold {
                return Err(NOT_THE_SAME_PERSON);
            }
        }
        if self.config.face_login != FaceLoginMode::Identify {
            return Ok(());
        }
        let gallery = self.gallery.get(&self.store, model_id).await?;
        let other = gallery
            .rank(embedding)
            .into_iter()
            .find(|&(id, score)| id != user.id && score >= threshold);
        if let Some((other_id, score)) = other {
            let mut event = NewAuditEvent::new(AuditKind::Enrolment, "refused")
                .by(user.id, &user.username)
                .detail("reason=face_matches_other_account");
            event.subject_user_id = Some(other_id);
            event.score = Some(score);
            self.record_event(event).await;
            return Err(FACE_TAKEN);
        }
        Ok(())
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

    /// The stored JPEG of a template that `viewer` may see. A staff member
    /// opening someone else's photo is audited, as probe views are; owners
    /// looking at their own thumbnails are not.
    pub async fn face_image(&self, viewer: &User, template_id: i64) -> ServiceResult<Vec<u8>> {
        let t = self.face_for(viewer, template_id).await?;
        let photo = self.store.face_photo(t.id).await?;
        let photo = photo.ok_or(ServiceError::NotFound)?.0;
        if t.user_id != viewer.id {
            let mut event = NewAuditEvent::new(AuditKind::AdminAction, "success")
                .by(viewer.id, &viewer.username)
                .detail(format!("action=view_face_photo template={}", t.id));
            event.subject_user_id = Some(t.user_id);
            self.record_event(event).await;
        }
        Ok(photo)
    }

    pub async fn delete_face(&self, viewer: &User, template_id: i64) -> ServiceResult<()> {
        let t = self.face_for(viewer, template_id).await?;
        self.store.delete_template(t.id).await?;
        self.templates_changed(t.user_id).await;
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
        self.templates_changed(user_id).await;
        let probes = self.remove_user_probes(user_id).await?;
        let mut event = NewAuditEvent::new(AuditKind::FacesDeleted, "success")
            .detail(format!("faces={deleted} probes={probes}"));
        event.subject_user_id = Some(user_id);
        self.record_event(event).await;
        Ok(deleted)
    }
}
