//! Active liveness: judging a sequence of frames against a challenge, a
//! short list of head movements (`left`, `right`, `up`, `center`) the user
//! was asked to make in order.
//!
//! Each frame is reduced to a [`FrameObservation`] (face count, landmarks,
//! embedding, a grey thumbnail, a timestamp); [`judge`] then checks, in this
//! order: enough frames; timestamps increasing and within the challenge's
//! life; one face in every frame; the same identity throughout; no run of
//! (near-)duplicate frames; the head pose following the steps in order with
//! plausible timing; and motion that is three-dimensional, not that of a
//! flat picture (see `homography.rs`). The first failing check gives
//! the [`Verdict`]; every measured score is returned in [`ActiveScores`].
//!
//! Directions are the user's own: `left` means the user turns their head to
//! their left, so in an unmirrored camera frame the nose moves to the
//! image's right (positive yaw in [`crate::geometry::pose`]).

use serde::{Deserialize, Serialize};

use crate::geometry::{pose, Pose};
use crate::homography::planar_residual;

mod config;
pub use config::ChallengeConfig;

/// One asked movement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Step {
    Left,
    Right,
    Up,
    Center,
}

impl Step {
    pub const ALL: [Step; 4] = [Step::Left, Step::Right, Step::Up, Step::Center];

    pub fn as_str(&self) -> &'static str {
        match self {
            Step::Left => "left",
            Step::Right => "right",
            Step::Up => "up",
            Step::Center => "center",
        }
    }

    pub fn parse(s: &str) -> Option<Step> {
        Step::ALL.into_iter().find(|st| st.as_str() == s)
    }
}

/// What the judge needs to know about one frame.
#[derive(Debug, Clone, Default)]
pub struct FrameObservation {
    /// Capture time in milliseconds (any origin; only differences count).
    pub t_ms: f64,
    /// Faces in view (see [`crate::FaceEngine::faces_in_view`]).
    pub faces: usize,
    /// The landmarks of the face when there is exactly one.
    pub landmarks: Option<[[f32; 2]; 5]>,
    /// Its L2-normalised embedding, when the frame was picked for the
    /// identity check (see [`ChallengeConfig::identity_frames`]).
    pub embedding: Option<Vec<f32>>,
    /// A grey thumbnail of the whole frame ([`thumbnail`]).
    pub thumb: Vec<u8>,
    /// The colour cast of the face when there is exactly one
    /// ([`super::appearance::face_tint`]).
    pub tint: Option<[f32; 2]>,
    /// The box of that face as fractions of the frame's width and height
    /// (`[x1, y1, x2, y2]`), to tell it from its surroundings.
    pub face_box: Option<[f32; 4]>,
}

/// Which active check refused a sequence as a presentation attack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SpoofCheck {
    TooFewFrames,
    Timing,
    Duplicates,
    Steps,
    Flat,
    /// The room around the face changed from frame to frame.
    Surroundings,
}

impl SpoofCheck {
    pub fn as_str(&self) -> &'static str {
        match self {
            SpoofCheck::TooFewFrames => "too_few_frames",
            SpoofCheck::Timing => "timing",
            SpoofCheck::Duplicates => "duplicates",
            SpoofCheck::Steps => "steps",
            SpoofCheck::Flat => "flat",
            SpoofCheck::Surroundings => "surroundings",
        }
    }
}

/// The outcome of [`judge`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "verdict", content = "check")]
pub enum Verdict {
    Live,
    Expired,
    NoFace,
    MultipleFaces,
    IdentityMismatch,
    Spoof(SpoofCheck),
}

/// Every score the active checks measured (written to the login attempt).
#[derive(Debug, Clone, Default, Serialize)]
pub struct ActiveScores {
    pub frames: usize,
    pub span_ms: f64,
    pub faceless_frames: usize,
    pub max_faces: usize,
    /// Lowest similarity of a frame to the mean face of the others.
    pub identity_min: Option<f32>,
    /// Whether that was under `min_identity_similarity` but not under
    /// `doubt_identity_similarity` (the answer can only ask for more).
    pub identity_unsure: bool,
    /// Whether the planar residual was under `min_planar_residual` but not
    /// under `doubt_planar_residual` (the answer can only ask for more).
    pub motion_unsure: bool,
    pub longest_duplicate_run: usize,
    pub steps_done: usize,
    pub steps_total: usize,
    /// Completion time of each done step, from the first frame.
    pub step_times_ms: Vec<f64>,
    pub yaw_range: Option<[f32; 2]>,
    pub pitch_range: Option<[f32; 2]>,
    /// Largest change of head pose (degrees of yaw or pitch, whichever
    /// moved more) between two consecutive frames with a face: a live head
    /// passes through the poses between two others, a swapped photo jumps
    /// (measured, not judged: docs/LIVENESS.md, "Pose jumps").
    pub pose_jump_deg: Option<f32>,
    /// Largest change of the face's colour cast from its median over the
    /// frames (measured, not judged: docs/LIVENESS.md, "Appearance").
    pub tint_shift: Option<f32>,
    /// Largest share of the face's surroundings that changed between two
    /// consecutive frames (docs/LIVENESS.md, "Surroundings").
    pub surround_change: Option<f32>,
    /// Whether that reached `doubt_surround_change` (the answer can only
    /// ask for more).
    pub surround_unsure: bool,
    /// Pairs of frames whose pose differs enough to test for 3-D motion.
    pub informative_pairs: usize,
    /// Median planar residual over those pairs.
    pub planar_residual: Option<f32>,
}

/// A verdict with its scores.
#[derive(Debug, Clone, Serialize)]
pub struct Judgement {
    #[serde(flatten)]
    pub verdict: Verdict,
    pub scores: ActiveScores,
}

/// Side of the thumbnails used to spot duplicate frames.
pub const THUMB_W: u32 = 96;
pub const THUMB_H: u32 = 72;

/// A grey thumbnail of a whole frame for the duplicate check.
pub fn thumbnail(img: &image::RgbImage) -> Vec<u8> {
    crate::resample::shrink(img, THUMB_W, THUMB_H)
        .pixels()
        .map(|p| ((u32::from(p[0]) * 77 + u32::from(p[1]) * 150 + u32::from(p[2]) * 29) >> 8) as u8)
        .collect()
}

/// Mean absolute difference of two thumbnails (grey levels).
pub fn thumb_mad(a: &[u8], b: &[u8]) -> f32 {
    if a.len() != b.len() || a.is_empty() {
        return f32::INFINITY;
    }
    let sum: u64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| u64::from(x.abs_diff(*y)))
        .sum();
    sum as f32 / a.len() as f32
}

/// Judges `frames` (in capture order) against `steps`. `life_ms` is the
/// challenge's lifetime and `elapsed_ms` the time between its issue and the
/// frames' arrival: the frames cannot span more than either.
pub fn judge(
    frames: &[FrameObservation],
    steps: &[Step],
    cfg: &ChallengeConfig,
    life_ms: f64,
    elapsed_ms: f64,
) -> Judgement {
    let mut s = ActiveScores {
        frames: frames.len(),
        steps_total: steps.len(),
        ..ActiveScores::default()
    };
    let verdict = check_all(frames, steps, cfg, life_ms, elapsed_ms, &mut s);
    Judgement { verdict, scores: s }
}

fn check_all(
    frames: &[FrameObservation],
    steps: &[Step],
    cfg: &ChallengeConfig,
    life_ms: f64,
    elapsed_ms: f64,
    s: &mut ActiveScores,
) -> Verdict {
    if frames.len() < cfg.min_frames.max(2) || frames.len() > cfg.max_frames {
        return Verdict::Spoof(SpoofCheck::TooFewFrames);
    }
    // Timing: increasing, plausible gaps, within the challenge's life.
    s.span_ms = frames[frames.len() - 1].t_ms - frames[0].t_ms;
    if elapsed_ms > life_ms || s.span_ms > life_ms || s.span_ms > elapsed_ms + 1000.0 {
        return Verdict::Expired;
    }
    let gaps_ok = frames.windows(2).all(|w| {
        let d = w[1].t_ms - w[0].t_ms;
        d.is_finite() && d >= cfg.min_frame_gap_ms && d <= cfg.max_frame_gap_ms
    });
    if !gaps_ok {
        return Verdict::Spoof(SpoofCheck::Timing);
    }
    // One face per frame.
    s.max_faces = frames.iter().map(|f| f.faces).max().unwrap_or(0);
    s.faceless_frames = frames.iter().filter(|f| f.landmarks.is_none()).count();
    if s.max_faces > 1 {
        return Verdict::MultipleFaces;
    }
    let with_face: Vec<&FrameObservation> =
        frames.iter().filter(|f| f.landmarks.is_some()).collect();
    if s.faceless_frames > cfg.max_faceless_frames || with_face.len() < cfg.min_frames.max(2) {
        return Verdict::NoFace;
    }
    // The same identity throughout.
    s.identity_min = identity_min(&with_face);
    match s.identity_min {
        Some(m) if m >= cfg.min_identity_similarity => {}
        Some(m) if m >= cfg.doubt_identity_similarity => s.identity_unsure = true,
        _ => return Verdict::IdentityMismatch,
    }
    // No long run of near-duplicate frames.
    let mut run = 0;
    for w in frames.windows(2) {
        if thumb_mad(&w[0].thumb, &w[1].thumb) < cfg.duplicate_mad {
            run += 1;
            s.longest_duplicate_run = s.longest_duplicate_run.max(run);
        } else {
            run = 0;
        }
    }
    if s.longest_duplicate_run > cfg.max_duplicate_run {
        return Verdict::Spoof(SpoofCheck::Duplicates);
    }
    // The pose follows the steps.
    let poses: Vec<(f64, Pose, [[f32; 2]; 5])> = with_face
        .iter()
        .filter_map(|f| f.landmarks.map(|l| (f.t_ms, pose(&l), l)))
        .collect();
    let range = |v: &mut dyn Iterator<Item = f32>| {
        v.fold(None, |acc: Option<[f32; 2]>, x| {
            Some(acc.map_or([x, x], |[lo, hi]| [lo.min(x), hi.max(x)]))
        })
    };
    s.yaw_range = range(&mut poses.iter().map(|p| p.1.yaw));
    s.pitch_range = range(&mut poses.iter().map(|p| p.1.pitch));
    s.pose_jump_deg = poses
        .windows(2)
        .map(|w| pose_change(&w[0].1, &w[1].1))
        .reduce(f32::max);
    let tints: Vec<[f32; 2]> = with_face.iter().filter_map(|f| f.tint).collect();
    s.tint_shift = super::appearance::tint_shift(&tints);
    let around: Vec<super::surround::Surroundings> = frames
        .iter()
        .map(|f| super::surround::Surroundings {
            thumb: &f.thumb,
            face: f.face_box,
        })
        .collect();
    s.surround_change =
        super::surround::surround_change(&around, THUMB_W as usize, THUMB_H as usize);
    follow_steps(&poses, steps, cfg, frames[0].t_ms, s);
    if s.steps_done < steps.len() {
        return Verdict::Spoof(SpoofCheck::Steps);
    }
    // Three-dimensional motion.
    let mut residuals = Vec::new();
    for i in 0..poses.len() {
        for j in i + 1..poses.len() {
            if pose_change(&poses[i].1, &poses[j].1) >= cfg.min_pose_change_deg {
                if let Some(r) = planar_residual(&poses[i].2, &poses[j].2) {
                    residuals.push(r);
                }
            }
        }
    }
    s.informative_pairs = residuals.len();
    s.planar_residual = median(&mut residuals);
    match s.planar_residual {
        Some(r) if r >= cfg.min_planar_residual => {}
        Some(r) if r >= cfg.doubt_planar_residual => s.motion_unsure = true,
        _ => return Verdict::Spoof(SpoofCheck::Flat),
    }
    s.surround_unsure = s
        .surround_change
        .is_some_and(|c| c >= cfg.doubt_surround_change);
    Verdict::Live
}

/// How far the head turned between two poses: degrees of yaw or pitch,
/// whichever changed more.
fn pose_change(a: &Pose, b: &Pose) -> f32 {
    (a.yaw - b.yaw).abs().max((a.pitch - b.pitch).abs())
}

/// Indices of the frames that complete each step, as [`judge`] walks them
/// (fewer than the steps when the pose does not follow them).
pub fn step_frames(
    frames: &[FrameObservation],
    steps: &[Step],
    cfg: &ChallengeConfig,
) -> Vec<usize> {
    let Some(t0) = frames.first().map(|f| f.t_ms) else {
        return Vec::new();
    };
    let poses: Vec<(f64, Pose, [[f32; 2]; 5])> = frames
        .iter()
        .filter_map(|f| f.landmarks.map(|l| (f.t_ms, pose(&l), l)))
        .collect();
    let mut s = ActiveScores::default();
    follow_steps(&poses, steps, cfg, t0, &mut s);
    s.step_times_ms
        .iter()
        .filter_map(|dt| frames.iter().position(|f| f.t_ms - t0 == *dt))
        .collect()
}

/// Lowest similarity of a frame's embedding to the normalised mean of the
/// other frames' (leaving the frame out, so that one other face among many
/// frames of the same person does not pull the mean towards itself).
fn identity_min(frames: &[&FrameObservation]) -> Option<f32> {
    let embs: Vec<&Vec<f32>> = frames.iter().filter_map(|f| f.embedding.as_ref()).collect();
    if embs.len() < 2 {
        return mean_embedding(&embs).map(|_| 1.0);
    }
    (0..embs.len())
        .map(|i| {
            let others: Vec<&Vec<f32>> = (0..embs.len())
                .filter(|&j| j != i)
                .map(|j| embs[j])
                .collect();
            mean_embedding(&others).map(|m| crate::embed::cosine_similarity(embs[i], &m))
        })
        .try_fold(f32::INFINITY, |acc, x| x.map(|x| acc.min(x)))
}

/// The L2-normalised mean of embeddings of one model.
pub fn mean_embedding(embs: &[&Vec<f32>]) -> Option<Vec<f32>> {
    let dim = embs.first()?.len();
    if embs.iter().any(|e| e.len() != dim) {
        return None;
    }
    let mut mean = vec![0.0f32; dim];
    for e in embs {
        for (m, v) in mean.iter_mut().zip(e.iter()) {
            *m += v;
        }
    }
    let norm = mean.iter().map(|v| v * v).sum::<f32>().sqrt();
    (norm > 0.0).then(|| mean.into_iter().map(|v| v / norm).collect())
}

/// Walks the frames in order and completes each step when `hold_frames`
/// frames in a row show its pose, no sooner than `min_step_ms` after the
/// previous step. Pitch is measured from the start (median of the first
/// three faces), since users and landmark detectors differ in what a level
/// head looks like.
fn follow_steps(
    poses: &[(f64, Pose, [[f32; 2]; 5])],
    steps: &[Step],
    cfg: &ChallengeConfig,
    t0: f64,
    s: &mut ActiveScores,
) {
    let mut first: Vec<f32> = poses.iter().take(3).map(|p| p.1.pitch).collect();
    let Some(base_pitch) = median(&mut first) else {
        return;
    };
    let shows = |step: Step, p: &Pose| {
        let up = base_pitch - p.pitch; // positive pitch looks down
        match step {
            Step::Left => p.yaw >= cfg.turn_yaw_deg,
            Step::Right => p.yaw <= -cfg.turn_yaw_deg,
            Step::Up => up >= cfg.up_pitch_deg && p.yaw.abs() < cfg.turn_yaw_deg * 2.0,
            Step::Center => p.yaw.abs() <= cfg.center_deg && up.abs() <= cfg.center_deg,
        }
    };
    let (mut k, mut held, mut last_done) = (0usize, 0usize, f64::NEG_INFINITY);
    for (t, p, _) in poses {
        if k >= steps.len() {
            break;
        }
        if shows(steps[k], p) {
            held += 1;
            if held >= cfg.hold_frames.max(1) && t - last_done >= cfg.min_step_ms {
                s.step_times_ms.push(t - t0);
                last_done = *t;
                k += 1;
                held = 0;
            }
        } else {
            held = 0;
        }
    }
    s.steps_done = k;
}

fn median(v: &mut [f32]) -> Option<f32> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f32::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

#[cfg(test)]
mod tests;
