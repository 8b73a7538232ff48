//! Face login in the three modes: `identify` (1:N with margin refusal),
//! `verify` (username + face, 1:1) and `second_factor` (after the
//! password), on one decision path whatever the probe came from (a single
//! frame, or a liveness challenge's answer). Consecutive failures lock an
//! account's face login.
//!
//! Which account a failure counts against: in `verify` the claimed one, in
//! `second_factor` the one whose password was given, and in `identify` the
//! closest account when its score came within `lockout_score_band` below the
//! threshold (a near miss is what a targeted attack looks like); attempts
//! far from everyone, or ambiguous between two accounts, charge nobody. An
//! identify probe whose best match is a locked account is refused with
//! `locked` even when it reaches the threshold.
//!
//! In `verify`, a claimed username that names no active account is locked
//! the same way (finding 7 of issue 16), by a counter keyed by the name in
//! the store's shared rate limits: `lockout_threshold` failures within
//! `lockout_seconds` lock it, so that the lockout does not tell which
//! usernames exist.
//!
//! With `probe_retention_days` > 0 the image a probe was matched on is
//! kept with its attempt (see the retention module).

use std::time::Instant;

use time::{Duration, OffsetDateTime};

use super::attempt::{face_login_method, Stop};
use super::error::{ServiceError, ServiceResult};
use super::liveness::{ChallengeAnswer, IssuedChallenge};
use super::matching::{decide, Decision};
use super::metrics::Stage;
use super::probe::Probe;
use super::services::{Client, Services};
use crate::config::FaceLoginMode;
use crate::domain::{
    claimed_username, AuditKind, NewAuditEvent, NewLoginAttempt, User, ValidationError,
};
use crate::store::FaceFailure;

/// One face login attempt.
#[derive(Debug, Clone)]
pub struct FaceLoginRequest {
    /// The claimed username (`verify` mode).
    pub username: Option<String>,
    /// The user whose password was already checked (`second_factor` mode).
    pub pending_user: Option<i64>,
    pub input: ProbeInput,
}

/// What the client sent to be recognised by.
#[derive(Debug, Clone)]
pub enum ProbeInput {
    /// One camera frame or photo (`POST /api/face-login`).
    Frame(Vec<u8>),
    /// The answer to a liveness challenge, already admitted
    /// ([`Services::admit_answer`]).
    Challenge(IssuedChallenge, ChallengeAnswer),
}

/// A successful face login.
#[derive(Debug, Clone)]
pub struct FaceLoginOk {
    pub user: User,
    pub score: f32,
}

/// The account a 1:1 attempt is about: `None` in identify mode;
/// `Some(None)` for an unknown or inactive claimed username.
type Target = Option<Option<User>>;

fn unknown() -> ServiceError {
    ServiceError::FaceRejected {
        code: "unknown",
        message: "We could not recognise you.",
    }
}

impl Services {
    /// Tries to log a face in according to the configured mode; every
    /// attempt that gets past input validation is recorded.
    pub async fn face_login(
        &self,
        req: FaceLoginRequest,
        client: &Client,
    ) -> ServiceResult<FaceLoginOk> {
        let claimed = match req.username.as_deref() {
            Some(raw) => claimed_username(raw)?,
            None => None,
        };
        let mut attempt = NewLoginAttempt::rate_limited(
            claimed.clone(),
            client.addr.to_string(),
            face_login_method(self.config.face_login),
        );
        let result = self.judge_face(req, claimed, client, &mut attempt).await;
        self.finish(attempt, result).await
    }

    /// The decision path: admission, the target account, the probe, the
    /// match, the lock.
    async fn judge_face(
        &self,
        req: FaceLoginRequest,
        claimed: Option<String>,
        client: &Client,
        attempt: &mut NewLoginAttempt,
    ) -> Result<FaceLoginOk, Stop> {
        self.admit(&req.input, client).await?;
        let target = self.target(claimed.as_deref(), req.pending_user).await?;
        match (&target, claimed.as_deref()) {
            (Some(Some(user)), _) => {
                attempt.user_id = Some(user.id);
                if user.face_locked(OffsetDateTime::now_utc()) {
                    return Err(Stop::locked());
                }
            }
            (Some(None), Some(name)) if self.name_locked(name).await? => {
                return Err(Stop::locked());
            }
            _ => {}
        }
        let mut probe = match req.input {
            ProbeInput::Frame(bytes) => self.frame_probe(bytes, &mut attempt.liveness).await?,
            ProbeInput::Challenge(challenge, answer) => {
                let liveness = &mut attempt.liveness;
                self.challenge_probe(challenge, answer, liveness).await?
            }
        };
        attempt.probe = self.keep_probe(probe.image.take()).await;
        let (user, score) = match target {
            None => self.identify(&probe, attempt).await?,
            Some(target) => self.verify(target, &probe, attempt).await?,
        };
        self.accept(user, score, attempt).await
    }

    /// A single frame must respect the address limit, and never logs in
    /// when the policy requires a challenge (a challenge answer was
    /// admitted when its body arrived).
    async fn admit(&self, input: &ProbeInput, client: &Client) -> Result<(), Stop> {
        if matches!(input, ProbeInput::Challenge(..)) {
            return Ok(());
        }
        self.limit_address(client).await?;
        if self.config.liveness.active() {
            let e = ServiceError::FaceRejected {
                code: "challenge_required",
                message: "A liveness challenge is required: use POST /api/face-login/challenge.",
            };
            return Err(Stop::refused("challenge_required", e));
        }
        Ok(())
    }

    /// The account a 1:1 attempt is about, by mode.
    async fn target(&self, claimed: Option<&str>, pending: Option<i64>) -> Result<Target, Stop> {
        match self.config.face_login {
            FaceLoginMode::Identify => Ok(None),
            FaceLoginMode::Verify => {
                let name = claimed.ok_or_else(|| {
                    ServiceError::from(ValidationError {
                        field: "username",
                        message: "Enter your username.".into(),
                    })
                })?;
                let user = self.store.user_by_username(name).await?;
                Ok(Some(user.filter(|u| u.is_active)))
            }
            FaceLoginMode::SecondFactor => {
                let id = pending.ok_or(ServiceError::NotAuthenticated)?;
                let user = self.active_user(id).await?;
                Ok(Some(Some(user.ok_or(ServiceError::NotAuthenticated)?)))
            }
        }
    }

    /// 1:N: the best user at or above the threshold, unless another is
    /// within the margin; a near miss charges the closest account.
    async fn identify(
        &self,
        probe: &Probe,
        attempt: &mut NewLoginAttempt,
    ) -> Result<(User, f32), Stop> {
        let started = Instant::now();
        let gallery = self
            .gallery
            .get(&self.store, &probe.embedding.model_id)
            .await?;
        let ranked = gallery.rank(&probe.embedding.vector);
        let threshold = self.engine.threshold();
        let (margin, band) = (self.config.match_margin, self.config.lockout_score_band);
        let decision = decide(&ranked, threshold, margin, band);
        self.metrics.observe_stage(Stage::Match, started.elapsed());
        match decision {
            Decision::Match { user_id, score } => {
                attempt.best_score = Some(score);
                attempt.user_id = Some(user_id);
                match self.active_user(user_id).await? {
                    Some(u) if u.face_locked(OffsetDateTime::now_utc()) => Err(Stop::locked()),
                    Some(u) => Ok((u, score)),
                    None => Err(self.reject("inactive", None, attempt).await),
                }
            }
            Decision::Ambiguous { score, .. } => {
                attempt.best_score = Some(score);
                Err(self.reject("ambiguous", None, attempt).await)
            }
            Decision::NoMatch { closest, best } => {
                attempt.best_score = best;
                attempt.user_id = closest.map(|c| c.0);
                let charge = closest.map(|c| c.0);
                Err(self.reject("no_match", charge, attempt).await)
            }
        }
    }

    /// 1:1: the claimed (or pending) user's best template against the
    /// threshold; an unknown or inactive username gets the same answer as a
    /// mismatch.
    async fn verify(
        &self,
        target: Option<User>,
        probe: &Probe,
        attempt: &mut NewLoginAttempt,
    ) -> Result<(User, f32), Stop> {
        // The same work for an unknown username as for a known one.
        let started = Instant::now();
        let gallery = self
            .gallery
            .get(&self.store, &probe.embedding.model_id)
            .await?;
        let id = target.as_ref().map(|u| u.id);
        let best = gallery.user_best(id, &probe.embedding.vector);
        self.metrics.observe_stage(Stage::Match, started.elapsed());
        let Some(user) = target else {
            return Err(self.reject_name(attempt).await);
        };
        attempt.best_score = best;
        match best {
            Some(score) if score >= self.engine.threshold() => Ok((user, score)),
            Some(_) => Err(self.reject("no_match", Some(user.id), attempt).await),
            None => Err(self.reject("no_templates", None, attempt).await),
        }
    }

    /// Lets `user` in unless their face login got locked meanwhile (on
    /// any instance): the store resets the count only when not locked.
    async fn accept(
        &self,
        user: User,
        score: f32,
        attempt: &mut NewLoginAttempt,
    ) -> Result<FaceLoginOk, Stop> {
        let now = OffsetDateTime::now_utc();
        match self.active_user(user.id).await? {
            Some(u) if u.face_locked(now) => Err(Stop::locked()),
            Some(u) => {
                if !self.store.reset_face_failures(u.id, now).await? {
                    return Err(Stop::locked());
                }
                attempt.reason = "ok".into();
                Ok(FaceLoginOk { user: u, score })
            }
            None => Err(Stop::refused("inactive", unknown())),
        }
    }

    /// A refusal answering `unknown` that charges `charge` a failure. The
    /// charge is one atomic step in the store: once the account is locked
    /// (by any instance), further attempts get `locked` and are not
    /// counted.
    async fn reject(&self, reason: &str, charge: Option<i64>, attempt: &NewLoginAttempt) -> Stop {
        let Some(id) = charge else {
            return Stop::refused(reason, unknown());
        };
        match self.charge_failure(id, &attempt.client_addr).await {
            Ok(true) => Stop::locked(),
            Ok(false) => Stop::refused(reason, unknown()),
            Err(e) => e,
        }
    }

    /// The shared counter of failed attempts claiming the username `name`
    /// that names no active account.
    fn name_key(name: &str) -> String {
        format!("face-name:{}", name.to_lowercase())
    }

    /// The lockout window and threshold, as a rate limit.
    fn name_limit(&self) -> (u32, std::time::Duration) {
        let seconds = self.config.lockout_seconds.max(1).unsigned_abs();
        let threshold = self.config.lockout_threshold.max(1);
        (threshold, std::time::Duration::from_secs(seconds))
    }

    /// Whether the claimed name (of no active account) is locked, as an
    /// account would be.
    async fn name_locked(&self, name: &str) -> Result<bool, Stop> {
        let (limit, window) = self.name_limit();
        Ok(self
            .store
            .rate_full(&Self::name_key(name), limit, window)
            .await?)
    }

    /// A refusal answering `unknown` for a claimed name of no active
    /// account, counted against the name as a mismatch is against an
    /// account; `locked` when another attempt locked it meanwhile.
    async fn reject_name(&self, attempt: &NewLoginAttempt) -> Stop {
        let Some(name) = attempt.claimed_username.as_deref() else {
            return Stop::refused("no_match", unknown());
        };
        let (limit, window) = self.name_limit();
        match self
            .store
            .rate_hit(&Self::name_key(name), limit, window)
            .await
        {
            Ok(hit) if hit.allowed() => Stop::refused("no_match", unknown()),
            Ok(_) => Stop::locked(),
            Err(e) => e.into(),
        }
    }

    /// Counts a failed face attempt against `id`; true when the account was
    /// already locked (the attempt is then answered `locked`, uncounted).
    async fn charge_failure(&self, id: i64, client_addr: &str) -> Result<bool, Stop> {
        let now = OffsetDateTime::now_utc();
        let until = now + Duration::seconds(self.config.lockout_seconds.max(1));
        let threshold = self.config.lockout_threshold;
        let counted = self
            .store
            .record_face_failure(id, threshold, until, now)
            .await?;
        if counted == FaceFailure::AlreadyLocked {
            return Ok(true);
        }
        if counted == FaceFailure::Locked {
            tracing::warn!(user_id = id, "face login locked after repeated failures");
            self.metrics.observe_lockout();
            let mut event = NewAuditEvent::new(AuditKind::Lockout, "locked")
                .detail(format!("until={}", until.unix_timestamp()));
            event.subject_user_id = Some(id);
            event.client_addr = Some(client_addr.to_string());
            self.record_event(event).await;
        }
        Ok(false)
    }
}
