//! Data minimisation over time: how long login attempts
//! (`login_attempt_retention_days`) and the probe images face logins may
//! keep (`probe_retention_days`) are stored. Keeping a probe (sealed like
//! an enrolment photo, linked to its attempt), staff viewing it, removing
//! a user's probes, and the sweep that deletes what is past its retention
//! and audits how much it purged.

use facegate_vision::RgbImage;
use serde::Serialize;
use time::{Duration, OffsetDateTime};

use super::{ServiceError, ServiceResult, Services};
use crate::domain::{AuditKind, NewAuditEvent, User};

/// What one retention sweep deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RetentionSweep {
    /// Login attempts deleted.
    pub login_attempts: u64,
    /// Probe images deleted (with their attempt or on their own).
    pub probes: usize,
}

fn days(n: u32) -> Duration {
    Duration::days(i64::from(n))
}

impl Services {
    /// Seals and writes the probe a face login is matched on, when probes
    /// are kept; returns its path. A failure to write is logged and the
    /// login goes on without it.
    pub(super) async fn keep_probe(&self, image: Option<RgbImage>) -> Option<String> {
        let image = image.filter(|_| self.config.probe_retention_days > 0)?;
        let media = self.media.clone();
        match tokio::task::spawn_blocking(move || media.save_probe(&image)).await {
            Ok(Ok(rel)) => Some(rel),
            Ok(Err(e)) => {
                tracing::error!(error = %e, "could not keep a face-login probe");
                None
            }
            Err(e) => {
                tracing::error!(error = %e, "probe writer task failed");
                None
            }
        }
    }

    /// Removes probe files whose references are already gone.
    pub(super) async fn remove_media(&self, paths: Vec<String>) -> ServiceResult<()> {
        if paths.is_empty() {
            return Ok(());
        }
        let media = self.media.clone();
        tokio::task::spawn_blocking(move || media.remove_all(&paths))
            .await
            .map_err(|e| ServiceError::Internal(e.to_string()))
    }

    /// The decrypted probe (JPEG) kept with login attempt `attempt_id`:
    /// staff only, and every view is audited.
    pub async fn probe_image(&self, viewer: &User, attempt_id: i64) -> ServiceResult<Vec<u8>> {
        if !viewer.is_staff {
            return Err(ServiceError::Forbidden);
        }
        let attempt = self
            .store
            .attempt(attempt_id)
            .await?
            .ok_or(ServiceError::NotFound)?;
        let rel = attempt.probe_path.ok_or(ServiceError::NotFound)?;
        let media = self.media.clone();
        let jpeg = tokio::task::spawn_blocking(move || media.read(&rel))
            .await
            .map_err(|e| ServiceError::Internal(e.to_string()))?
            .map_err(|_| ServiceError::NotFound)?;
        let mut event = NewAuditEvent::new(AuditKind::AdminAction, "success")
            .detail(format!("action=view_probe attempt={attempt_id}"));
        event.actor_user_id = Some(viewer.id);
        event.subject_user_id = attempt.user_id;
        event.username = Some(viewer.username.clone());
        self.record_event(event).await;
        Ok(jpeg)
    }

    /// Unlinks and removes the probes of a user's login attempts (account
    /// deletion, erasure of face data); returns how many.
    pub(super) async fn remove_user_probes(&self, user_id: i64) -> ServiceResult<usize> {
        let paths = self.store.take_probes_for_user(user_id).await?;
        let n = paths.len();
        self.remove_media(paths).await?;
        Ok(n)
    }

    /// Deletes what is past its retention at `now`: probes older than
    /// `probe_retention_days` (all of them when it is 0, i.e. probes kept
    /// under an earlier setting) and login attempts older than
    /// `login_attempt_retention_days` (unless 0) with their probes. Rows go
    /// first, then files. Anything purged is recorded in the audit trail,
    /// which itself is never purged.
    pub async fn sweep_retention(&self, now: OffsetDateTime) -> ServiceResult<RetentionSweep> {
        let probes_before = now - days(self.config.probe_retention_days);
        let mut files = self.store.clear_probes_before(probes_before).await?;
        let mut report = RetentionSweep {
            login_attempts: 0,
            probes: files.len(),
        };
        let attempt_days = self.config.login_attempt_retention_days;
        if attempt_days > 0 {
            let (n, paths) = self
                .store
                .delete_attempts_before(now - days(attempt_days))
                .await?;
            report.login_attempts = n;
            report.probes += paths.len();
            files.extend(paths);
        }
        self.remove_media(files).await?;
        if report != RetentionSweep::default() {
            tracing::info!(
                login_attempts = report.login_attempts,
                probes = report.probes,
                "retention sweep purged old records"
            );
            self.record_event(
                NewAuditEvent::new(AuditKind::RetentionPurge, "success").detail(format!(
                    "login_attempts={} probes={} login_attempt_retention_days={attempt_days} \
                     probe_retention_days={}",
                    report.login_attempts, report.probes, self.config.probe_retention_days
                )),
            )
            .await;
        }
        Ok(report)
    }
}
