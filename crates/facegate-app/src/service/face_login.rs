//! Face login in the three modes: `identify` (1:N with margin refusal),
//! `verify` (username + face, 1:1) and `second_factor` (after the
//! password). Consecutive failures lock an account's face login.
//!
//! Which account a failure counts against: in `verify` the claimed one, in
//! `second_factor` the one whose password was given, and in `identify` the
//! closest account when its score came within `lockout_score_band` below the
//! threshold (a near miss is what a targeted attack looks like); attempts
//! far from everyone, or ambiguous between two accounts, charge nobody. An
//! identify probe whose best match is a locked account is refused with
//! `locked` even when it reaches the threshold.
//!
//! With `probe_retention_days` > 0 the image a probe was matched on is
//! kept with its attempt (see the retention module).

use std::time::Instant;

use facegate_vision::VisionError;
use time::{Duration, OffsetDateTime};

use super::liveness::FrameProbe;
use super::matching::{decide, rank, Decision};
use super::metrics::Stage;
use super::{Client, ServiceError, ServiceResult, Services};
use crate::config::FaceLoginMode;
use crate::domain::{
    claimed_username, AuditKind, LoginMethod, NewAuditEvent, NewLoginAttempt, Outcome, User,
};

/// One face login attempt.
#[derive(Debug, Clone, Default)]
pub struct FaceLoginRequest {
    pub image: Vec<u8>,
    /// The claimed username (`verify` mode).
    pub username: Option<String>,
    /// The user whose password was already checked (`second_factor` mode).
    pub pending_user: Option<i64>,
    /// A face that already passed a liveness challenge (`image` unused).
    pub probe: Option<super::liveness::LiveProbe>,
}

/// A successful face login.
#[derive(Debug, Clone)]
pub struct FaceLoginOk {
    pub user: User,
    pub score: f32,
}

const UNKNOWN: ServiceError = ServiceError::FaceRejected {
    code: "unknown",
    message: "We could not recognise you.",
};

/// How a face login in `mode` is recorded.
pub(super) fn face_login_method(mode: FaceLoginMode) -> LoginMethod {
    match mode {
        FaceLoginMode::Identify => LoginMethod::FaceIdentify,
        FaceLoginMode::Verify => LoginMethod::FaceVerify,
        FaceLoginMode::SecondFactor => LoginMethod::FaceSecondFactor,
    }
}

impl Services {
    /// Tries to log a face in according to the configured mode.
    pub async fn face_login(
        &self,
        req: FaceLoginRequest,
        client: &Client,
    ) -> ServiceResult<FaceLoginOk> {
        let mode = self.config.face_login;
        let claimed = match req.username.as_deref() {
            Some(raw) => claimed_username(raw)?,
            None => None,
        };
        let claimed = claimed.as_deref();
        let mut attempt = NewLoginAttempt::rate_limited(
            claimed.map(str::to_string),
            client.addr.to_string(),
            face_login_method(mode),
        );
        // A challenge answer was counted against the address already.
        if req.probe.is_none() {
            let hit = self.limit_address(client);
            if !hit.allowed() {
                return Err(self.rate_limited(attempt, hit).await);
            }
        }
        // With active liveness a single picture never logs anyone in.
        if req.probe.is_none() && self.config.liveness.active() {
            attempt.outcome = Outcome::Failure;
            attempt.reason = "challenge_required".into();
            self.audit(attempt).await;
            return Err(ServiceError::FaceRejected {
                code: "challenge_required",
                message: "A liveness challenge is required: use POST /api/face-login/challenge.",
            });
        }

        // The account a 1:1 attempt is about, checked for a lock first.
        let target = match mode {
            FaceLoginMode::Identify => None,
            FaceLoginMode::Verify => {
                let name = claimed.ok_or_else(|| crate::domain::ValidationError {
                    field: "username",
                    message: "Enter your username.".into(),
                })?;
                Some(
                    self.store
                        .user_by_username(name)
                        .await?
                        .filter(|u| u.is_active),
                )
            }
            FaceLoginMode::SecondFactor => {
                let id = req.pending_user.ok_or(ServiceError::NotAuthenticated)?;
                Some(Some(
                    self.active_user(id)
                        .await?
                        .ok_or(ServiceError::NotAuthenticated)?,
                ))
            }
        };
        let now = OffsetDateTime::now_utc();
        if let Some(Some(user)) = &target {
            attempt.user_id = Some(user.id);
            if user.face_locked(now) {
                attempt.outcome = Outcome::Locked;
                attempt.reason = "locked".into();
                self.audit(attempt).await;
                return Err(ServiceError::Locked);
            }
        }

        let passive = (self.config.liveness == crate::config::Liveness::Passive)
            .then(|| self.config.liveness_passive.clone());
        let analysed = match req.probe {
            Some(p) => Ok(FrameProbe {
                embedding: p.embedding,
                liveness: Some(p.liveness),
                failing: None,
                image: p.image,
            }),
            None => {
                let image = req.image;
                let metrics = self.metrics.clone();
                self.blocking(move |e| {
                    super::liveness::single_frame(e, &metrics, &image, passive.as_ref())
                })
                .await?
            }
        };
        let (probe, probe_image) = match analysed {
            Ok(FrameProbe {
                embedding,
                liveness,
                failing,
                image,
            }) => {
                attempt.liveness = liveness;
                if let Some(cue) = failing {
                    attempt.outcome = Outcome::Failure;
                    attempt.reason = format!("spoof_passive_{cue}");
                    self.audit(attempt).await;
                    return Err(super::liveness::rejection(
                        facegate_vision::Verdict::Live,
                        Some(cue),
                    ));
                }
                (embedding, image)
            }
            Err(e) => {
                attempt.outcome = Outcome::Failure;
                attempt.reason = e.code().into();
                self.audit(attempt).await;
                return Err(match e {
                    VisionError::NoFace => ServiceError::FaceRejected {
                        code: "no_face",
                        message: "No face was found in the picture.",
                    },
                    VisionError::MultipleFaces(_) => ServiceError::FaceRejected {
                        code: "multiple_faces",
                        message: "Several faces are in view; only one person, please.",
                    },
                    VisionError::Model(m) => ServiceError::Internal(m),
                    other => ServiceError::Vision(other),
                });
            }
        };
        // The image this probe is matched on, kept when probes are.
        attempt.probe_path = self.keep_probe(probe_image).await;
        let threshold = self.engine.threshold();
        let matching = Instant::now();
        let templates = self.cache.get(&self.store, &probe.model_id).await?;
        let matched = || self.metrics.observe_stage(Stage::Match, matching.elapsed());

        let (user, score) = match target {
            None => {
                let ranked = rank(&templates, &probe.vector);
                let decision = decide(
                    &ranked,
                    threshold,
                    self.config.match_margin,
                    self.config.lockout_score_band,
                );
                matched();
                match decision {
                    Decision::Match { user_id, score } => {
                        attempt.best_score = Some(score);
                        attempt.user_id = Some(user_id);
                        let user = self.active_user(user_id).await?;
                        match user {
                            Some(u) if u.face_locked(now) => {
                                attempt.outcome = Outcome::Locked;
                                attempt.reason = "locked".into();
                                self.audit(attempt).await;
                                return Err(ServiceError::Locked);
                            }
                            Some(u) => (u, score),
                            None => return self.reject(attempt, "inactive", None).await,
                        }
                    }
                    Decision::Ambiguous { score, .. } => {
                        attempt.best_score = Some(score);
                        return self.reject(attempt, "ambiguous", None).await;
                    }
                    Decision::NoMatch { closest, best } => {
                        attempt.best_score = best;
                        attempt.user_id = closest.map(|c| c.0);
                        return self.reject(attempt, "no_match", closest.map(|c| c.0)).await;
                    }
                }
            }
            Some(None) => {
                matched();
                // Unknown or inactive username: the same answer as a mismatch.
                return self.reject(attempt, "no_match", None).await;
            }
            Some(Some(user)) => {
                let best = templates
                    .iter()
                    .filter(|t| t.user_id == user.id)
                    .map(|t| facegate_vision::cosine_similarity(&t.embedding, &probe.vector))
                    .fold(None, |acc: Option<f32>, s| {
                        Some(acc.map_or(s, |a| a.max(s)))
                    });
                matched();
                attempt.best_score = best;
                match best {
                    Some(score) if score >= threshold => (user, score),
                    Some(_) => return self.reject(attempt, "no_match", Some(user.id)).await,
                    None => return self.reject(attempt, "no_templates", None).await,
                }
            }
        };

        self.accept(attempt, user, score).await
    }

    /// Lets `user` in unless their face login got locked meanwhile; the
    /// check and the reset happen under the account's gate.
    async fn accept(
        &self,
        mut attempt: NewLoginAttempt,
        user: User,
        score: f32,
    ) -> ServiceResult<FaceLoginOk> {
        let _gate = self.gate.enter(user.id).await;
        let fresh = self.active_user(user.id).await?;
        match fresh {
            Some(u) if u.face_locked(OffsetDateTime::now_utc()) => {
                attempt.outcome = Outcome::Locked;
                attempt.reason = "locked".into();
                self.audit(attempt).await;
                Err(ServiceError::Locked)
            }
            Some(u) => {
                self.store.reset_face_failures(u.id).await?;
                attempt.outcome = Outcome::Success;
                attempt.reason = "ok".into();
                self.audit(attempt).await;
                Ok(FaceLoginOk { user: u, score })
            }
            None => {
                attempt.outcome = Outcome::Failure;
                attempt.reason = "inactive".into();
                self.audit(attempt).await;
                Err(UNKNOWN)
            }
        }
    }

    /// Audits a failed attempt, charges `charge` a failure, answers `unknown`.
    /// The charge happens under the account's gate: once the account is
    /// locked, further attempts get `locked` and are not counted.
    async fn reject(
        &self,
        mut attempt: NewLoginAttempt,
        reason: &str,
        charge: Option<i64>,
    ) -> ServiceResult<FaceLoginOk> {
        if let Some(id) = charge {
            let _gate = self.gate.enter(id).await;
            let now = OffsetDateTime::now_utc();
            if let Some(u) = self.store.user_by_id(id).await? {
                if u.face_locked(now) {
                    attempt.outcome = Outcome::Locked;
                    attempt.reason = "locked".into();
                    self.audit(attempt).await;
                    return Err(ServiceError::Locked);
                }
            }
            let until = now + Duration::seconds(self.config.lockout_seconds.max(1));
            if self
                .store
                .record_face_failure(id, self.config.lockout_threshold, until)
                .await?
            {
                tracing::warn!(user_id = id, "face login locked after repeated failures");
                self.metrics.observe_lockout();
                let mut event = NewAuditEvent::new(AuditKind::Lockout, "locked")
                    .detail(format!("until={}", until.unix_timestamp()));
                event.subject_user_id = Some(id);
                event.client_addr = Some(attempt.client_addr.clone());
                self.record_event(event).await;
            }
        }
        attempt.outcome = Outcome::Failure;
        attempt.reason = reason.into();
        self.audit(attempt).await;
        Err(UNKNOWN)
    }
}
