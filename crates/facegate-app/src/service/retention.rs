//! Data minimisation over time: how long login attempts
//! (`login_attempt_retention_days`) and the probe images face logins may
//! keep (`probe_retention_days`) are stored. Keeping a probe (stored with
//! its attempt, sealed like an enrolment photo), staff viewing it,
//! removing a user's probes, and the sweep that deletes what is past its
//! retention and audits how much it purged.

use facegate_vision::RgbImage;
use serde::Serialize;
use time::{Duration, OffsetDateTime};

use super::error::{ServiceError, ServiceResult};
use super::services::Services;
use crate::domain::{AuditKind, Jpeg, NewAuditEvent, User};

/// What one retention sweep deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RetentionSweep {
    /// Login attempts deleted.
    pub login_attempts: u64,
    /// Probe images deleted (with their attempt or on their own).
    pub probes: u64,
}

fn days(n: u32) -> Duration {
    Duration::days(i64::from(n))
}

impl Services {
    /// The probe a face login is matched on, as kept with its attempt
    /// (the store seals it) when probes are kept. A failure to encode it is
    /// logged and the login goes on without it.
    pub(super) async fn keep_probe(&self, image: Option<RgbImage>) -> Option<Jpeg> {
        let image = image.filter(|_| self.config.probe_retention_days > 0)?;
        match tokio::task::spawn_blocking(move || super::jpeg::encode(&image)).await {
            Ok(Ok(jpeg)) => Some(jpeg),
            Ok(Err(e)) => {
                tracing::error!(error = %e, "could not encode a face-login probe");
                None
            }
            Err(e) => {
                tracing::error!(error = %e, "probe encoder task failed");
                None
            }
        }
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
        if !attempt.has_probe() {
            return Err(ServiceError::NotFound);
        }
        let jpeg = self
            .store
            .probe_image(attempt_id)
            .await?
            .ok_or(ServiceError::NotFound)?;
        let mut event = NewAuditEvent::new(AuditKind::AdminAction, "success")
            .detail(format!("action=view_probe attempt={attempt_id}"));
        event.actor_user_id = Some(viewer.id);
        event.subject_user_id = attempt.user_id;
        event.username = Some(viewer.username.clone());
        self.record_event(event).await;
        Ok(jpeg.0)
    }

    /// Deletes the probes of a user's login attempts (account deletion,
    /// erasure of face data); returns how many.
    pub(super) async fn remove_user_probes(&self, user_id: i64) -> ServiceResult<u64> {
        Ok(self.store.delete_probes_for_user(user_id).await?)
    }

    /// Deletes what is past its retention at `now`: probes older than
    /// `probe_retention_days` (all of them when it is 0, i.e. probes kept
    /// under an earlier setting) and login attempts older than
    /// `login_attempt_retention_days` (unless 0) with their probes.
    /// Also deletes OpenID Connect codes and tokens a day past their
    /// expiry. Anything purged is recorded in the audit trail, which itself is
    /// never purged.
    pub async fn sweep_retention(&self, now: OffsetDateTime) -> ServiceResult<RetentionSweep> {
        let probes_before = now - days(self.config.probe_retention_days);
        let mut report = RetentionSweep {
            login_attempts: 0,
            probes: self.store.clear_probes_before(probes_before).await?,
        };
        let attempt_days = self.config.login_attempt_retention_days;
        if attempt_days > 0 {
            let (n, probes) = self
                .store
                .delete_attempts_before(now - days(attempt_days))
                .await?;
            report.login_attempts = n;
            report.probes += probes;
        }
        // OpenID Connect codes and tokens a day past their expiry (kept
        // that long so a late replay is still recognised as one).
        let expired = self.store.delete_expired_oidc(now - days(1)).await?;
        if expired > 0 {
            tracing::info!(expired, "deleted expired OpenID Connect codes and tokens");
        }
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
