//! Liveness challenges (docs/LIVENESS.md): issuing head-movement
//! challenges, the cheap checks of an answer made before anything is
//! decoded, and judging an answer with the engine's active checks and
//! passive cues into the [`Probe`] a face login is matched on. Every
//! check's score goes to the login attempt, and every decision is counted
//! in the metrics with the time of each stage.

use std::time::Duration;

use facegate_vision::{ChallengeSpec, Embedding, SequenceReport, VisionError};
use facegate_vision::{SpoofCheck, Step, Verdict};
use rand::seq::SliceRandom;
use rand::{Rng, RngCore};
use serde::{Deserialize, Serialize};
use serde_json::json;
use time::OffsetDateTime;

use super::attempt::{face_login_method, Stop};
use super::error::{ServiceError, ServiceResult};
use super::metrics::Stage;
use super::probe::{Probe, PASSIVE_REFUSAL};
use super::services::{Client, Services};
use crate::domain::NewLoginAttempt;
use crate::store::StoredChallenge;

/// A challenge as issued, kept in the store until it is answered (its id
/// also in the session it was issued to).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IssuedChallenge {
    pub id: String,
    pub steps: Vec<Step>,
    /// Unix milliseconds.
    pub issued_ms: i64,
    pub expires_ms: i64,
    /// A second chance after a step-up: more steps, and a doubt of the
    /// passive network no longer stops it (its active checks and the
    /// passive cues that refuse still do).
    #[serde(default)]
    pub second: bool,
}

/// The frames answering a challenge.
#[derive(Debug, Clone, Default)]
pub struct ChallengeAnswer {
    /// JPEG frames in capture order.
    pub frames: Vec<Vec<u8>>,
    /// Capture times in milliseconds, one per frame.
    pub timestamps: Vec<f64>,
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
        (Verdict::Live, Some(_)) => return PASSIVE_REFUSAL,
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
        SpoofCheck::Surroundings => {
            "What was around the face changed from picture to picture, as when photos are \
             swapped in front of the camera. Use your own face, with the camera kept still."
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

/// What a challenge answer that left the passive network unsure says:
/// the next steps that can succeed (a second, longer challenge, which the
/// page starts, or the password).
const STEP_UP_CHALLENGE: ServiceError = ServiceError::FaceRejected {
    code: "step_up",
    message: "Almost there: we need one more, slightly longer head movement to be sure it is \
              you. Try once more, or sign in with your password.",
};

/// What an answer whose frames were not surely one person says (a head
/// turned far, or blurred by a fast turn, looks less like itself): the
/// same next steps, with what helps.
const STEP_UP_IDENTITY: ServiceError = ServiceError::FaceRejected {
    code: "step_up",
    message: "Almost there: we could not see your face clearly in every frame. Keep your face \
              in view and turn your head a little, not far, as the arrows ask. Try once more, \
              or sign in with your password.",
};

/// What an answer whose head motion was barely told from a picture's says
/// (small turns seen by a small webcam image): the same next steps, with
/// what helps.
const STEP_UP_MOTION: ServiceError = ServiceError::FaceRejected {
    code: "step_up",
    message: "Almost there: we need to see your head turn a little more. Follow the arrows \
              with your whole head, not only your eyes. Try once more, or sign in with your \
              password.",
};

/// What an answer whose surroundings changed from frame to frame says (the
/// camera moved, or photos were swapped in front of it): the same next
/// steps, with what helps.
const STEP_UP_SURROUNDINGS: ServiceError = ServiceError::FaceRejected {
    code: "step_up",
    message: "Almost there: the view around your face changed while you moved. Keep the \
              camera still (rest your phone or laptop on something) and move only your head. \
              Try once more, or sign in with your password.",
};

/// What an active doubt (`SequenceReport::active_doubt`) says on a first
/// answer, and the verdict it becomes when the second chance is unsure
/// again: a doubtful motion is a picture's, doubtful surroundings are
/// swapped photos', a doubtful identity another person's.
fn active_step_up(doubt: &str) -> (ServiceError, Verdict) {
    match doubt {
        "motion" => (STEP_UP_MOTION, Verdict::Spoof(SpoofCheck::Flat)),
        "surroundings" => (
            STEP_UP_SURROUNDINGS,
            Verdict::Spoof(SpoofCheck::Surroundings),
        ),
        _ => (STEP_UP_IDENTITY, Verdict::IdentityMismatch),
    }
}

/// Steps of a second-chance challenge (a first one has two or three).
const SECOND_CHANCE_STEPS: usize = 4;

fn millis(ms: f64) -> Duration {
    Duration::from_secs_f64(ms.max(0.0) / 1000.0)
}

impl Services {
    /// A new challenge, kept in the store (shared by every instance) until
    /// it is taken to be answered or expires.
    /// `second`: the session's previous answer was stepped up (see
    /// [`IssuedChallenge::second`]).
    pub async fn issue_challenge(&self, second: bool) -> ServiceResult<IssuedChallenge> {
        let ch = self.new_challenge(second);
        let payload = serde_json::to_string(&ch)
            .map_err(|e| ServiceError::Internal(format!("challenge: {e}")))?;
        let expires_at =
            OffsetDateTime::from_unix_timestamp_nanos(i128::from(ch.expires_ms) * 1_000_000)
                .map_err(|e| ServiceError::Internal(format!("challenge expiry: {e}")))?;
        let stored = StoredChallenge {
            id: ch.id.clone(),
            payload,
            expires_at,
        };
        self.store.put_challenge(&stored).await?;
        Ok(ch)
    }

    /// Takes challenge `id` out of the store to be answered: of concurrent
    /// answers (on any instance) one gets it, the others `None`.
    pub async fn take_challenge(&self, id: &str) -> ServiceResult<Option<IssuedChallenge>> {
        let Some(stored) = self.store.take_challenge(id).await? else {
            return Ok(None);
        };
        let ch = serde_json::from_str(&stored.payload)
            .map_err(|e| ServiceError::Internal(format!("stored challenge: {e}")))?;
        Ok(Some(ch))
    }

    /// Two or three steps (a second chance: four), no step twice in a row.
    fn new_challenge(&self, second: bool) -> IssuedChallenge {
        let mut rng = rand::thread_rng();
        let n = if second {
            SECOND_CHANCE_STEPS
        } else {
            rng.gen_range(2..=3)
        };
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
            second,
        }
    }

    /// The cheap checks of a challenge answer, made before its body is
    /// read: the address's rate limit and the challenge's expiry. A refusal
    /// is recorded as a login attempt.
    pub async fn admit_answer(
        &self,
        challenge: &IssuedChallenge,
        client: &Client,
    ) -> ServiceResult<()> {
        let attempt = NewLoginAttempt::rate_limited(
            None,
            client.addr.to_string(),
            face_login_method(self.config.face_login),
        );
        let admitted = match self.limit_address(client).await {
            Ok(()) if now_ms() > challenge.expires_ms => {
                self.metrics.observe_liveness("expired");
                Err(Stop::refused("expired", rejection(Verdict::Expired, None)))
            }
            other => other,
        };
        match admitted {
            Ok(()) => Ok(()),
            Err(stop) => self.finish(attempt, Err(stop)).await,
        }
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

    /// Judges the answer to `challenge` (taken out of the session, so used
    /// once, and admitted by [`Services::admit_answer`]) into the probe a
    /// face login is matched on. `liveness` receives the scores, live or not.
    pub(super) async fn challenge_probe(
        &self,
        challenge: IssuedChallenge,
        answer: ChallengeAnswer,
        liveness: &mut Option<String>,
    ) -> Result<Probe, Stop> {
        let now = now_ms();
        if now > challenge.expires_ms {
            self.metrics.observe_liveness("expired");
            return Err(Stop::refused("expired", rejection(Verdict::Expired, None)));
        }
        let spec = JudgedSpec {
            steps: challenge.steps.clone(),
            life_ms: (challenge.expires_ms - challenge.issued_ms) as f64,
            elapsed_ms: (now - challenge.issued_ms) as f64,
        };
        let report = match self.judge_answer(spec, answer).await? {
            Ok(r) => r,
            Err(e) => {
                self.metrics.observe_liveness("error");
                return Err(Stop::refused(e.code(), e.into()));
            }
        };
        let doc = json!({
            "mode": self.config.liveness.as_str(),
            "challenge": challenge.steps,
            "second_chance": challenge.second,
            "report": report,
        });
        *liveness = Some(doc.to_string());
        let (verdict, cue) = (report.active.verdict, report.passive_failure);
        let doubted = report.needs_step_up();
        if let Some(doubt) = report.doubt().filter(|_| doubted) {
            let active = report.active_doubt().is_some();
            if !challenge.second {
                self.metrics.observe_liveness(&format!("step_up_{doubt}"));
                let (kind, message) = if active {
                    ("active", active_step_up(doubt).0)
                } else {
                    ("passive", STEP_UP_CHALLENGE)
                };
                return Err(Stop::refused(format!("step_up_{kind}_{doubt}"), message));
            }
            if !report.is_live_on_second_chance() {
                // Unsure twice that the frames are one person, that the
                // head moved as a head does, or that the room around it
                // stayed put: refused.
                let verdict = active_step_up(doubt).1;
                self.metrics.observe_liveness(&outcome_of(verdict, None));
                return Err(Stop::refused(
                    reason_of(verdict, None),
                    rejection(verdict, None),
                ));
            }
            // The second, longer challenge: a passive doubt is kept in the
            // attempt's scores and counted below, and no longer stops it.
        }
        // A doubt passed on the second chance counts as live.
        if !report.is_live() && !doubted {
            self.metrics.observe_liveness(&outcome_of(verdict, cue));
            return Err(Stop::refused(
                reason_of(verdict, cue),
                rejection(verdict, cue),
            ));
        }
        let Some(vector) = report.embedding else {
            self.metrics.observe_liveness("no_face");
            let e = rejection(Verdict::NoFace, None);
            return Err(Stop::refused("no_face", e));
        };
        self.metrics.observe_liveness(if doubted {
            "live_after_step_up"
        } else {
            "live"
        });
        let keep_frame = self.config.probe_retention_days > 0;
        Ok(Probe {
            embedding: Embedding {
                model_id: self.engine.model_id().to_string(),
                vector,
            },
            liveness: liveness.clone(),
            image: report.frontal_image.filter(|_| keep_frame),
        })
    }

    /// Runs the engine's checks on an answer, decoding its frames one at a
    /// time (their headers were checked on arrival, see
    /// [`Services::admit_frame`]): an answer holds its bytes, the few frames
    /// the checks keep, and no more.
    async fn judge_answer(
        &self,
        spec: JudgedSpec,
        answer: ChallengeAnswer,
    ) -> ServiceResult<Result<SequenceReport, VisionError>> {
        let active = self.config.liveness_challenge.clone();
        let passive = self
            .config
            .liveness
            .passive()
            .then(|| self.config.liveness_passive.clone());
        let metrics = self.metrics.clone();
        let (frames, timestamps) = (answer.frames, answer.timestamps);
        self.blocking(move |e| {
            let spec = ChallengeSpec {
                steps: &spec.steps,
                life_ms: spec.life_ms,
                elapsed_ms: spec.elapsed_ms,
                identity_seed: rand::random(),
            };
            let frame = |i: usize| e.decode(&frames[i]).map(std::borrow::Cow::Owned);
            let n = frames.len();
            let report =
                e.check_streamed(n, frame, &timestamps, &spec, &active, passive.as_ref())?;
            metrics.observe_stage(Stage::Decode, millis(report.decode_ms));
            metrics.observe_stage(Stage::LivenessActive, millis(report.observe_ms));
            if !report.passive.is_empty() {
                metrics.observe_stage(Stage::LivenessPassive, millis(report.passive_ms));
            }
            Ok(report)
        })
        .await
    }
}

/// The timing of a challenge as the engine judges it.
struct JudgedSpec {
    steps: Vec<Step>,
    life_ms: f64,
    elapsed_ms: f64,
}
