//! Liveness in face login (docs/LIVENESS.md): issuing head-movement
//! challenges, judging their answers with the engine's active checks and
//! passive cues, and the passive check of single-frame logins. A live
//! answer is then matched like any face login ([`Services::face_login`]
//! with a precomputed [`LiveProbe`]); every check's score is written to the
//! login attempt, and every decision is counted in the metrics with the
//! time of each stage.

use std::time::Duration;

use facegate_vision::challenge::{SpoofCheck, Step, Verdict};
use facegate_vision::{ChallengeSpec, Embedding, FaceEngine, PassiveConfig, RgbImage, VisionError};
use rand::seq::SliceRandom;
use rand::{Rng, RngCore};
use serde::{Deserialize, Serialize};
use serde_json::json;
use time::OffsetDateTime;

use super::face_login::face_login_method;
use super::metrics::{Metrics, Stage};
use super::{Client, FaceLoginOk, FaceLoginRequest, ServiceError, ServiceResult, Services};
use crate::domain::{NewLoginAttempt, Outcome};

/// A challenge as issued (kept in the server-side session).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IssuedChallenge {
    pub id: String,
    pub steps: Vec<Step>,
    /// Unix milliseconds.
    pub issued_ms: i64,
    pub expires_ms: i64,
}

/// A face already checked for liveness, ready for matching.
#[derive(Debug, Clone)]
pub struct LiveProbe {
    pub embedding: Embedding,
    /// The liveness scores (JSON) for the login attempt.
    pub liveness: String,
    /// The most frontal frame, when face-login probes are kept.
    pub image: Option<RgbImage>,
}

/// A login probe ready for matching: a single frame analysed, or a
/// challenge's [`LiveProbe`].
pub(super) struct FrameProbe {
    pub embedding: Embedding,
    /// The liveness scores (JSON), when any were measured.
    pub liveness: Option<String>,
    /// The first failing passive cue of a single frame.
    pub failing: Option<&'static str>,
    /// The image the embedding comes from (may be kept, see retention).
    pub image: Option<RgbImage>,
}

/// The frames answering a challenge.
#[derive(Debug, Clone, Default)]
pub struct ChallengeAnswer {
    /// JPEG frames in capture order.
    pub frames: Vec<Vec<u8>>,
    /// Capture times in milliseconds, one per frame.
    pub timestamps: Vec<f64>,
    pub username: Option<String>,
    pub pending_user: Option<i64>,
}

/// Largest accepted frame of a challenge answer, in bytes (the page sends
/// ≤ 480-px JPEGs of about 30 KB).
pub const MAX_FRAME_BYTES: usize = 512 * 1024;

/// Largest accepted side of a challenge frame, in pixels, read from its
/// header before it is decoded.
pub const MAX_FRAME_SIDE: u32 = 480;

pub fn now_ms() -> i64 {
    (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// The error a refused liveness check answers with.
pub fn rejection(verdict: Verdict, passive_cue: Option<&str>) -> ServiceError {
    let (code, message) = match (verdict, passive_cue) {
        (Verdict::Expired, _) => ("expired", "The challenge expired. Please start again."),
        (Verdict::NoFace, _) => (
            "no_face",
            "Your face was not in view all the time. Stay in front of the camera.",
        ),
        (Verdict::MultipleFaces, _) => (
            "multiple_faces",
            "Several faces were in view; only one person, please.",
        ),
        (Verdict::IdentityMismatch, _) => ("unknown", "We could not recognise you."),
        (Verdict::Spoof(check), _) => ("spoof", spoof_message(check)),
        (Verdict::Live, Some(_)) => (
            "spoof",
            "This looks like a photo or a screen, not a live person.",
        ),
        (Verdict::Live, None) => ("unknown", "We could not recognise you."),
    };
    ServiceError::FaceRejected { code, message }
}

fn spoof_message(check: SpoofCheck) -> &'static str {
    match check {
        SpoofCheck::TooFewFrames => {
            "Too few camera pictures arrived to check that you are a live person."
        }
        SpoofCheck::Timing => "The camera pictures' timing was not plausible for a live camera.",
        SpoofCheck::Duplicates => {
            "The camera picture did not change: this looks like a still photo, not a live person."
        }
        SpoofCheck::Steps => "Your head movements did not follow the instructions.",
        SpoofCheck::Flat => {
            "The face moved like a flat picture, not like a live head. Use your own face."
        }
    }
}

fn reason_of(verdict: Verdict, passive_cue: Option<&str>) -> String {
    match (verdict, passive_cue) {
        (Verdict::Spoof(c), _) => format!("spoof_{}", c.as_str()),
        (Verdict::Live, Some(cue)) => format!("spoof_passive_{cue}"),
        (Verdict::Expired, _) => "expired".into(),
        (Verdict::NoFace, _) => "no_face".into(),
        (Verdict::MultipleFaces, _) => "multiple_faces".into(),
        (Verdict::IdentityMismatch, _) => "identity_mismatch".into(),
        (Verdict::Live, None) => "ok".into(),
    }
}

/// The `facegate_liveness_total` outcome of a liveness decision.
fn outcome_of(verdict: Verdict, passive_cue: Option<&str>) -> String {
    match (verdict, passive_cue) {
        (Verdict::Live, None) => "live".into(),
        (Verdict::Live, Some(cue)) => format!("passive_{cue}"),
        (Verdict::Spoof(c), _) => format!("spoof_{}", c.as_str()),
        (Verdict::IdentityMismatch, _) => "unknown".into(),
        (Verdict::NoFace, _) => "no_face".into(),
        (Verdict::MultipleFaces, _) => "multiple_faces".into(),
        (Verdict::Expired, _) => "expired".into(),
    }
}

fn millis(ms: f64) -> Duration {
    Duration::from_secs_f64(ms.max(0.0) / 1000.0)
}

/// Analyses a single-frame login probe, timing each stage; with `passive`,
/// also measures (and counts) the passive cues.
pub(super) fn single_frame(
    engine: &FaceEngine,
    metrics: &Metrics,
    bytes: &[u8],
    passive: Option<&PassiveConfig>,
) -> Result<FrameProbe, VisionError> {
    let image = metrics.time(Stage::Decode, || engine.decode(bytes))?;
    let analysis = metrics.time(Stage::DetectEmbed, || {
        engine.analyze_single_image(&image, false)
    })?;
    let (liveness, failing) = match passive {
        Some(cfg) => {
            let scores = metrics.time(Stage::LivenessPassive, || {
                engine.passive_scores(&image, &analysis.face)
            })?;
            let failing = scores.failing(cfg);
            metrics.observe_liveness(&outcome_of(Verdict::Live, failing));
            let doc = json!({"mode": "passive", "passive": [scores], "passive_failure": failing});
            (Some(doc.to_string()), failing)
        }
        None => (None, None),
    };
    Ok(FrameProbe {
        embedding: analysis.embedding,
        liveness,
        failing,
        image: Some(image),
    })
}

impl Services {
    /// A new challenge: two or three steps, no step twice in a row.
    pub fn issue_challenge(&self) -> IssuedChallenge {
        let mut rng = rand::thread_rng();
        let n = rng.gen_range(2..=3);
        let mut steps: Vec<Step> = Vec::with_capacity(n);
        while steps.len() < n {
            let s = *Step::ALL.choose(&mut rng).unwrap_or(&Step::Left);
            if steps.last() != Some(&s) {
                steps.push(s);
            }
        }
        let mut id = [0u8; 16];
        rng.fill_bytes(&mut id);
        let issued_ms = now_ms();
        IssuedChallenge {
            id: hex::encode(id),
            steps,
            issued_ms,
            expires_ms: issued_ms + self.config.challenge_ttl_ms as i64,
        }
    }

    /// The cheap checks of a challenge answer, made before its body is
    /// read: the address's rate limit and the challenge's expiry. A refusal
    /// is audited.
    pub async fn admit_answer(
        &self,
        challenge: &IssuedChallenge,
        client: &Client,
    ) -> ServiceResult<()> {
        let mut attempt = NewLoginAttempt::rate_limited(
            None,
            client.addr.to_string(),
            face_login_method(self.config.face_login),
        );
        let hit = self.limit_address(client);
        if !hit.allowed() {
            return Err(self.rate_limited(attempt, hit).await);
        }
        if now_ms() > challenge.expires_ms {
            self.metrics.observe_liveness("expired");
            attempt.outcome = Outcome::Failure;
            attempt.reason = "expired".into();
            self.audit(attempt).await;
            return Err(rejection(Verdict::Expired, None));
        }
        Ok(())
    }

    /// Checks one frame of an answer as it arrives, before anything is
    /// decoded: its size and the dimensions in its header. Frames are at
    /// most [`MAX_FRAME_SIDE`] pixels on their longer side (the page sends
    /// ≤ 480-px frames), which bounds what judging an answer decodes.
    pub fn admit_frame(&self, bytes: &[u8]) -> ServiceResult<()> {
        let limits = facegate_vision::DecodeLimits {
            max_bytes: MAX_FRAME_BYTES,
            max_pixels: u64::from(MAX_FRAME_SIDE) * u64::from(MAX_FRAME_SIDE),
        };
        let (w, h) = facegate_vision::decode::probe_dimensions(bytes, &limits)?;
        if w.max(h) > MAX_FRAME_SIDE {
            return Err(VisionError::TooLarge(format!(
                "{w}x{h} pixels, a frame may be at most {MAX_FRAME_SIDE} pixels wide and high"
            ))
            .into());
        }
        Ok(())
    }

    /// Judges the answer to `challenge` (already taken out of the session,
    /// so it is used once, and admitted by [`Services::admit_answer`]) and,
    /// when live, logs the face in.
    pub async fn face_login_challenge(
        &self,
        challenge: IssuedChallenge,
        answer: ChallengeAnswer,
        client: &Client,
    ) -> ServiceResult<FaceLoginOk> {
        let mut attempt = NewLoginAttempt::rate_limited(
            answer.username.clone(),
            client.addr.to_string(),
            face_login_method(self.config.face_login),
        );
        let now = now_ms();
        attempt.outcome = Outcome::Failure;
        if now > challenge.expires_ms {
            self.metrics.observe_liveness("expired");
            attempt.reason = "expired".into();
            self.audit(attempt).await;
            return Err(rejection(Verdict::Expired, None));
        }
        let active = self.config.liveness_challenge.clone();
        let passive = self
            .config
            .liveness
            .passive()
            .then(|| self.config.liveness_passive.clone());
        let steps = challenge.steps.clone();
        let life_ms = (challenge.expires_ms - challenge.issued_ms) as f64;
        let elapsed_ms = (now - challenge.issued_ms) as f64;
        let (frames, timestamps) = (answer.frames, answer.timestamps);
        let keep_frame = self.config.probe_retention_days > 0;
        let metrics = self.metrics.clone();
        let report = self
            .blocking(move |e| {
                let spec = ChallengeSpec {
                    steps: &steps,
                    life_ms,
                    elapsed_ms,
                    identity_seed: rand::random(),
                };
                // One frame decoded at a time (its header was checked on
                // arrival, see `admit_frame`): an answer holds its bytes,
                // the few frames the checks keep, and no more.
                let frame = |i: usize| e.decode(&frames[i]).map(std::borrow::Cow::Owned);
                let mut report = e.check_streamed(
                    frames.len(),
                    frame,
                    &timestamps,
                    &spec,
                    &active,
                    passive.as_ref(),
                )?;
                metrics.observe_stage(Stage::Decode, millis(report.decode_ms));
                metrics.observe_stage(Stage::LivenessActive, millis(report.observe_ms));
                if !report.passive.is_empty() {
                    metrics.observe_stage(Stage::LivenessPassive, millis(report.passive_ms));
                }
                let frontal = report.frontal_image.take().filter(|_| keep_frame);
                Ok((report, frontal))
            })
            .await?;
        let (report, frontal) = match report {
            Ok(r) => r,
            Err(e) => {
                self.metrics.observe_liveness("error");
                attempt.reason = e.code().into();
                self.audit(attempt).await;
                return Err(match e {
                    VisionError::Model(m) => ServiceError::Internal(m),
                    other => ServiceError::Vision(other),
                });
            }
        };
        let doc = json!({
            "mode": self.config.liveness.as_str(),
            "challenge": challenge.steps,
            "report": report,
        })
        .to_string();
        attempt.liveness = Some(doc.clone());
        if !report.is_live() {
            self.metrics
                .observe_liveness(&outcome_of(report.active.verdict, report.passive_failure));
            attempt.reason = reason_of(report.active.verdict, report.passive_failure);
            self.audit(attempt).await;
            return Err(rejection(report.active.verdict, report.passive_failure));
        }
        let Some(vector) = report.embedding else {
            self.metrics.observe_liveness("no_face");
            attempt.reason = "no_face".into();
            self.audit(attempt).await;
            return Err(rejection(Verdict::NoFace, None));
        };
        self.metrics.observe_liveness("live");
        let req = FaceLoginRequest {
            image: Vec::new(),
            username: answer.username,
            pending_user: answer.pending_user,
            probe: Some(LiveProbe {
                embedding: Embedding {
                    model_id: self.engine.model_id().to_string(),
                    vector,
                },
                liveness: doc,
                image: frontal,
            }),
        };
        self.face_login(req, client).await
    }
}
