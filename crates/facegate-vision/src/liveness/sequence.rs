//! All liveness checks on one challenge answer: every frame observed
//! (detection, landmarks), the frames for the identity check picked and
//! embedded, the active checks judged, and the passive cues measured on at
//! most two frames. The web app and the `facegate liveness` tools share
//! this entry point.

use std::borrow::Cow;
use std::time::{Duration, Instant};

use image::RgbImage;
use serde::Serialize;

use super::challenge::{
    judge, mean_embedding, step_frames, ChallengeConfig, FrameObservation, Judgement, SpoofCheck,
    Step, Verdict,
};
use super::passive::{observe_frame, passive_scores, PassiveConfig, PassiveScores};
use super::Pipeline;
use crate::detect::{BoundingBox, DetectedFace};
use crate::error::VisionError;

/// The challenge being answered.
#[derive(Debug, Clone)]
pub struct ChallengeSpec<'a> {
    pub steps: &'a [Step],
    /// Lifetime of the challenge.
    pub life_ms: f64,
    /// Time from its issue to the frames' arrival.
    pub elapsed_ms: f64,
    /// Secret seed of the random part of the frames embedded for the
    /// identity check (fresh and unpredictable for every answer).
    pub identity_seed: u64,
}

/// Everything measured on a sequence.
#[derive(Debug, Clone, Serialize)]
pub struct SequenceReport {
    pub active: Judgement,
    /// Passive cues of the frames they ran on (none when passive is off or
    /// the active checks already refused).
    pub passive: Vec<PassiveScores>,
    /// The first passive cue past its threshold.
    pub passive_failure: Option<&'static str>,
    /// The first passive cue past its threshold that asks for a second
    /// step rather than refusing ([`crate::CueAction::StepUp`]).
    pub passive_doubt: Option<&'static str>,
    /// Milliseconds spent getting the frames (decoding them, when the
    /// caller streams encoded frames), observing and embedding them and
    /// judging them, and on the passive cues.
    pub decode_ms: f64,
    pub observe_ms: f64,
    pub passive_ms: f64,
    /// The normalised mean embedding of the frames (for matching).
    #[serde(skip)]
    pub embedding: Option<Vec<f32>>,
    /// Index of the most frontal frame with a face (the probe a login may
    /// keep), if any frame had one.
    #[serde(skip)]
    pub frontal_frame: Option<usize>,
    /// That frame itself.
    #[serde(skip)]
    pub frontal_image: Option<RgbImage>,
}

impl SequenceReport {
    /// True when every check that ran passed, and none was unsure.
    pub fn is_live(&self) -> bool {
        self.active.verdict == Verdict::Live
            && self.passive_failure.is_none()
            && self.doubt().is_none()
    }

    /// True when nothing refused the answer but a check asks for a second
    /// step before it counts as live.
    pub fn needs_step_up(&self) -> bool {
        self.active.verdict == Verdict::Live
            && self.passive_failure.is_none()
            && self.doubt().is_some()
    }

    /// The active check that was unsure ("identity", else "motion": a
    /// head's 3-D motion barely told from a picture's, else
    /// "surroundings": the room around the face changed), if any.
    pub fn active_doubt(&self) -> Option<&'static str> {
        let s = &self.active.scores;
        (s.identity_unsure.then_some("identity"))
            .or(s.motion_unsure.then_some("motion"))
            .or(s.surround_unsure.then_some("surroundings"))
    }

    /// True when the answer counts as live on a second chance (the longer
    /// challenge after a step-up): an active check's doubt refuses it
    /// there, a passive cue's doubt no longer stops it.
    pub fn is_live_on_second_chance(&self) -> bool {
        self.is_live() || (self.needs_step_up() && self.active_doubt().is_none())
    }

    /// The first unsure check: active, else passive.
    pub fn doubt(&self) -> Option<&'static str> {
        self.active_doubt().or(self.passive_doubt)
    }
}

/// Most frames the passive network runs on.
pub const MAX_PASSIVE_FRAMES: usize = 2;

/// The `keep` most frontal frames seen so far, kept whole (at most
/// [`MAX_PASSIVE_FRAMES`]) while the others are dropped once observed.
/// Ties keep the earlier frame, as a stable sort of all frames would.
struct Frontmost<'a> {
    keep: usize,
    kept: Vec<(f32, usize, Cow<'a, RgbImage>, DetectedFace)>,
}

impl<'a> Frontmost<'a> {
    fn offer(&mut self, score: f32, i: usize, img: Cow<'a, RgbImage>, face: DetectedFace) {
        let at = self.kept.partition_point(|k| k.0 <= score);
        if at < self.keep {
            self.kept.insert(at, (score, i, img, face));
            self.kept.truncate(self.keep);
        }
    }
}

/// All checks on the `count` frames of a challenge answer, taken one at a
/// time from `frame(i)` (see [`crate::FaceEngine::check_streamed`]).
pub(crate) fn check_streamed<'a>(
    p: &(impl Pipeline + ?Sized),
    count: usize,
    mut frame: impl FnMut(usize) -> Result<Cow<'a, RgbImage>, VisionError>,
    timestamps: &[f64],
    spec: &ChallengeSpec,
    active: &ChallengeConfig,
    passive: Option<&PassiveConfig>,
) -> Result<SequenceReport, VisionError> {
    let start = Instant::now();
    let mut decode = Duration::ZERO;
    let mut observations = Vec::with_capacity(count);
    let mut aligned: Vec<Option<RgbImage>> = Vec::with_capacity(count);
    // The frames the network runs on, or the one the other cues and the
    // probe need.
    let mut frontmost = Frontmost {
        keep: passive.map_or(1, |c| c.frames.clamp(1, MAX_PASSIVE_FRAMES)),
        kept: Vec::new(),
    };
    let mut previous: Option<BoundingBox> = None;
    for (i, &t) in timestamps.iter().enumerate().take(count) {
        let got = Instant::now();
        let img = frame(i)?;
        decode += got.elapsed();
        let (obs, face) = observe_frame(p, &img, t, active.min_face_px, previous.as_ref())?;
        previous = face.as_ref().map(|f| f.0.bbox);
        let (face, warp) = face.unzip();
        aligned.push(warp);
        if let Some(f) = face.filter(|_| obs.landmarks.is_some()) {
            frontmost.offer(frontality(&obs), i, img, f);
        }
        observations.push(obs);
    }
    // Frames with a face, most frontal first: the identity check always
    // embeds the first, the passive cues run on the first one or two,
    // and a login may keep the first as its probe.
    let frontal = frontal_order(&observations);
    for i in identity_picks(&observations, spec, active, frontal.first().copied()) {
        if let Some(face) = &aligned[i] {
            observations[i].embedding = Some(p.embed_aligned(face)?.vector);
        }
    }
    drop(aligned);
    let active_j = if count == timestamps.len() {
        judge(
            &observations,
            spec.steps,
            active,
            spec.life_ms,
            spec.elapsed_ms,
        )
    } else {
        let mut j = judge(&[], spec.steps, active, spec.life_ms, spec.elapsed_ms);
        j.verdict = Verdict::Spoof(SpoofCheck::Timing);
        j
    };
    let observe_ms = (start.elapsed() - decode).as_secs_f64() * 1000.0;
    let embs: Vec<&Vec<f32>> = observations
        .iter()
        .filter_map(|o| o.embedding.as_ref())
        .collect();
    let embedding = mean_embedding(&embs);
    let mut report = SequenceReport {
        active: active_j,
        passive: Vec::new(),
        passive_failure: None,
        passive_doubt: None,
        decode_ms: decode.as_secs_f64() * 1000.0,
        observe_ms,
        passive_ms: 0.0,
        embedding,
        frontal_frame: frontal.first().copied(),
        frontal_image: None,
    };
    if let (Some(cfg), Verdict::Live) = (passive, report.active.verdict) {
        let start = Instant::now();
        // The most frontal frames: the network was trained on frontal
        // faces. Without the network the other cues need one frame.
        for (_, _, img, face) in &frontmost.kept {
            let s = passive_scores(p, img, face, cfg.frames > 0)?;
            if report.passive_failure.is_none() {
                report.passive_failure = s.failing(cfg);
            }
            if report.passive_doubt.is_none() {
                report.passive_doubt = s.doubt(cfg);
            }
            report.passive.push(s);
        }
        report.passive_ms = start.elapsed().as_secs_f64() * 1000.0;
    }
    report.frontal_image = frontmost
        .kept
        .into_iter()
        .next()
        .map(|(_, _, img, _)| img.into_owned());
    Ok(report)
}

/// The frames whose face is embedded for the identity check (see
/// [`ChallengeConfig::identity_frames`]), in capture order.
pub(crate) fn identity_picks(
    obs: &[FrameObservation],
    spec: &ChallengeSpec,
    cfg: &ChallengeConfig,
    most_frontal: Option<usize>,
) -> Vec<usize> {
    let with_face: Vec<usize> = (0..obs.len())
        .filter(|&i| obs[i].landmarks.is_some())
        .collect();
    if cfg.identity_frames == 0 || with_face.len() <= cfg.identity_frames {
        return with_face;
    }
    let mut picked = vec![false; obs.len()];
    for i in step_frames(obs, spec.steps, cfg) {
        picked[i] = true;
    }
    picked[with_face[0]] = true;
    picked[with_face[with_face.len() - 1]] = true;
    if let Some(i) = most_frontal {
        picked[i] = true;
    }
    // The rest at random: a partial Fisher-Yates shuffle of the others.
    let mut others: Vec<usize> = with_face.iter().copied().filter(|&i| !picked[i]).collect();
    let mut state = spec.identity_seed;
    let mut count = picked.iter().filter(|&&p| p).count();
    let mut k = 0;
    while count < cfg.identity_frames && k < others.len() {
        let j = k + (splitmix(&mut state) % (others.len() - k) as u64) as usize;
        others.swap(k, j);
        picked[others[k]] = true;
        count += 1;
        k += 1;
    }
    // Never two frames with a face left out in a row: a face shown for
    // longer than one frame is always seen.
    for pair in with_face.windows(2) {
        if !picked[pair[0]] && !picked[pair[1]] {
            picked[pair[1]] = true;
        }
    }
    (0..obs.len()).filter(|&i| picked[i]).collect()
}

/// The frames with a face, most frontal first.
pub(crate) fn frontal_order(obs: &[FrameObservation]) -> Vec<usize> {
    let mut order: Vec<(f32, usize)> = obs
        .iter()
        .enumerate()
        .filter(|(_, o)| o.landmarks.is_some())
        .map(|(i, o)| (frontality(o), i))
        .collect();
    order.sort_by(|a, b| a.0.total_cmp(&b.0));
    order.into_iter().map(|(_, i)| i).collect()
}

/// How far a face is from frontal (the passive cues run on the most
/// frontal frames).
fn frontality(o: &FrameObservation) -> f32 {
    o.landmarks.map_or(f32::INFINITY, |l| {
        let p = crate::geometry::pose(&l);
        p.yaw.abs() + p.roll.abs()
    })
}

/// SplitMix64: spreads a secret seed into a stream of well-mixed numbers.
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
