//! Login attempts as they are recorded: how an attempt that stops early
//! says why ([`Stop`]), the address limit and its aggregated refusals, and
//! the one place an attempt is written to the attempts table and the audit
//! trail ([`Services::audit`]).

use facegate_vision::VisionError;

use super::error::{ServiceError, ServiceResult};
use super::services::{Client, Services};
use crate::config::FaceLoginMode;
use crate::domain::{AuditKind, LoginMethod, NewAuditEvent, NewLoginAttempt, Outcome};
use crate::store::{RateHit, StoreError};

/// The window of the per-address and per-account limits.
const RATE_WINDOW: std::time::Duration = std::time::Duration::from_secs(60);

/// Why a login attempt stopped before it succeeded.
#[derive(Debug)]
pub(super) enum Stop {
    /// Refused for a reason the attempt records (`outcome`, `reason`).
    Refused {
        outcome: Outcome,
        reason: String,
        error: ServiceError,
    },
    /// Failed without a record of its own: invalid input, a storage
    /// failure, or a rate-limited refusal already counted in aggregate.
    Failed(ServiceError),
}

impl Stop {
    /// A failure recorded with `reason`.
    pub fn refused(reason: impl Into<String>, error: ServiceError) -> Self {
        Stop::Refused {
            outcome: Outcome::Failure,
            reason: reason.into(),
            error,
        }
    }

    /// The account's face login is locked.
    pub fn locked() -> Self {
        Stop::Refused {
            outcome: Outcome::Locked,
            reason: "locked".into(),
            error: ServiceError::Locked,
        }
    }
}

impl From<ServiceError> for Stop {
    fn from(e: ServiceError) -> Self {
        Stop::Failed(e)
    }
}

impl From<StoreError> for Stop {
    fn from(e: StoreError) -> Self {
        Stop::Failed(e.into())
    }
}

impl From<VisionError> for Stop {
    fn from(e: VisionError) -> Self {
        Stop::Failed(e.into())
    }
}

/// How a face login in `mode` is recorded.
pub(super) fn face_login_method(mode: FaceLoginMode) -> LoginMethod {
    match mode {
        FaceLoginMode::Identify => LoginMethod::FaceIdentify,
        FaceLoginMode::Verify => LoginMethod::FaceVerify,
        FaceLoginMode::SecondFactor => LoginMethod::FaceSecondFactor,
    }
}

impl Services {
    /// Counts a login attempt from `client` against the address limit; a
    /// refusal is recorded only when the limiter reports it (once per
    /// minute, standing for all of that minute's refusals), so hammering a
    /// limit cannot fill the disk.
    pub(super) async fn limit_address(&self, client: &Client) -> Result<(), Stop> {
        rate_limit_stop(self.address_hit(client).await?)
    }

    /// Counts a hit from `client` against the per-address limit (shared
    /// by every instance on the store).
    pub(super) async fn address_hit(&self, client: &Client) -> ServiceResult<RateHit> {
        let key = format!("addr:{}", client.addr);
        let limit = self.config.rate_limit_per_address;
        Ok(self.store.rate_hit(&key, limit, RATE_WINDOW).await?)
    }

    /// Counts a login attempt for the claimed account against the
    /// per-account limit.
    pub(super) async fn limit_account(&self, claimed: &str) -> Result<(), Stop> {
        let key = format!("user:{}", claimed.to_ascii_lowercase());
        let limit = self.config.rate_limit_per_account;
        rate_limit_stop(self.store.rate_hit(&key, limit, RATE_WINDOW).await?)
    }

    /// Writes a finished attempt: a success (with the reason the caller
    /// set) when `result` is `Ok`, else the refusal's outcome and reason (a
    /// [`Stop::Failed`] writes nothing).
    pub(super) async fn finish<T>(
        &self,
        mut attempt: NewLoginAttempt,
        result: Result<T, Stop>,
    ) -> ServiceResult<T> {
        match result {
            Ok(v) => {
                attempt.outcome = Outcome::Success;
                self.audit(attempt).await;
                Ok(v)
            }
            Err(Stop::Refused {
                outcome,
                reason,
                error,
            }) => {
                attempt.outcome = outcome;
                attempt.reason = reason;
                self.audit(attempt).await;
                Err(error)
            }
            Err(Stop::Failed(e)) => Err(e),
        }
    }

    /// Writes an attempt to the attempts table and the audit trail; a
    /// failure is logged, not fatal.
    pub(super) async fn audit(&self, attempt: NewLoginAttempt) {
        let attempt = attempt.bounded();
        // The probe, if one is kept, is written with the attempt or not at all.
        if let Err(e) = self.store.record_attempt(&attempt).await {
            tracing::error!(error = %e, "could not record a login attempt");
        }
        let kind = match attempt.method {
            LoginMethod::Password => AuditKind::PasswordLogin,
            _ => {
                self.metrics.observe_face_login(attempt.outcome.as_str());
                AuditKind::FaceLogin
            }
        };
        let user = attempt.user_id;
        // A face login names no one: record the account's name it matched,
        // so that staff can find it by name.
        let username = match (&attempt.claimed_username, user) {
            (Some(name), _) => Some(name.clone()),
            (None, Some(id)) => self
                .usernames([id])
                .await
                .ok()
                .and_then(|mut m| m.remove(&id)),
            (None, None) => None,
        };
        self.record_event(NewAuditEvent {
            kind,
            outcome: attempt.outcome.as_str().to_string(),
            actor_user_id: user,
            subject_user_id: user,
            username,
            client_addr: Some(attempt.client_addr.clone()),
            score: attempt.best_score,
            detail: format!(
                "method={} reason={}",
                attempt.method.as_str(),
                attempt.reason
            ),
        })
        .await;
    }
}

/// The [`Stop`] of a limiter's answer: nothing when allowed; a recorded
/// refusal when the limiter reports it; else a refusal without a record.
pub(super) fn rate_limit_stop(hit: RateHit) -> Result<(), Stop> {
    match hit {
        RateHit::Allowed => Ok(()),
        RateHit::Refused { report: Some(n) } => Err(Stop::Refused {
            outcome: Outcome::RateLimited,
            reason: if n > 1 {
                format!("rate_limited refused={n}")
            } else {
                "rate_limited".into()
            },
            error: ServiceError::RateLimited,
        }),
        RateHit::Refused { report: None } => Err(Stop::Failed(ServiceError::RateLimited)),
    }
}
