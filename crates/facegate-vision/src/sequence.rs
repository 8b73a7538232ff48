//! All liveness checks on one challenge answer: every frame observed
//! (detection, landmarks, embedding), the active checks judged, and the
//! passive cues measured on at most two frames. The web app and the
//! `facegate liveness` tools share this entry point.

use std::time::Instant;

use image::RgbImage;
use serde::Serialize;

use crate::challenge::{judge, mean_embedding, ChallengeConfig, Judgement, Step, Verdict};
use crate::engine::FaceEngine;
use crate::error::VisionError;
use crate::passive::{PassiveConfig, PassiveScores};

/// The challenge being answered.
#[derive(Debug, Clone)]
pub struct ChallengeSpec<'a> {
    pub steps: &'a [Step],
    /// Lifetime of the challenge.
    pub life_ms: f64,
    /// Time from its issue to the frames' arrival.
    pub elapsed_ms: f64,
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
    /// Milliseconds spent observing frames, and on the passive cues.
    pub observe_ms: f64,
    pub passive_ms: f64,
    /// The normalised mean embedding of the frames (for matching).
    #[serde(skip)]
    pub embedding: Option<Vec<f32>>,
}

impl SequenceReport {
    /// True when every check that ran passed.
    pub fn is_live(&self) -> bool {
        self.active.verdict == Verdict::Live && self.passive_failure.is_none()
    }
}

/// Most frames the passive network runs on.
pub const MAX_PASSIVE_FRAMES: usize = 2;

impl FaceEngine {
    /// Runs the active checks on `frames` (decoded, in capture order, with
    /// their timestamps) and, when `passive` is given and they pass, the
    /// passive cues on the most frontal frames (`PassiveConfig::frames`,
    /// at most [`MAX_PASSIVE_FRAMES`]).
    pub fn check_sequence(
        &self,
        frames: &[RgbImage],
        timestamps: &[f64],
        spec: &ChallengeSpec,
        active: &ChallengeConfig,
        passive: Option<&PassiveConfig>,
    ) -> Result<SequenceReport, VisionError> {
        let start = Instant::now();
        let mut observations = Vec::with_capacity(frames.len());
        let mut faces = Vec::with_capacity(frames.len());
        for (img, &t) in frames.iter().zip(timestamps) {
            let (obs, face) = self.observe_frame(img, t, active.min_face_px)?;
            observations.push(obs);
            faces.push(face);
        }
        let observe_ms = start.elapsed().as_secs_f64() * 1000.0;
        let active_j = if frames.len() == timestamps.len() {
            judge(
                &observations,
                spec.steps,
                active,
                spec.life_ms,
                spec.elapsed_ms,
            )
        } else {
            let mut j = judge(&[], spec.steps, active, spec.life_ms, spec.elapsed_ms);
            j.verdict = Verdict::Spoof(crate::challenge::SpoofCheck::Timing);
            j
        };
        let embs: Vec<&Vec<f32>> = observations
            .iter()
            .filter_map(|o| o.embedding.as_ref())
            .collect();
        let embedding = mean_embedding(&embs);
        let mut report = SequenceReport {
            active: active_j,
            passive: Vec::new(),
            passive_failure: None,
            observe_ms,
            passive_ms: 0.0,
            embedding,
        };
        if let (Some(cfg), Verdict::Live) = (passive, report.active.verdict) {
            let start = Instant::now();
            // The most frontal frames: the network was trained on frontal
            // faces.
            let mut with_face: Vec<(f32, usize)> = observations
                .iter()
                .enumerate()
                .filter_map(|(i, o)| {
                    let p = crate::geometry::pose(&o.landmarks?);
                    Some((p.yaw.abs() + p.roll.abs(), i))
                })
                .collect();
            with_face.sort_by(|a, b| a.0.total_cmp(&b.0));
            let picks: Vec<usize> = with_face.iter().map(|w| w.1).collect();
            for i in picks
                .into_iter()
                .take(cfg.frames.clamp(1, MAX_PASSIVE_FRAMES))
            {
                if let Some(face) = &faces[i] {
                    let s = self.passive_scores(&frames[i], face)?;
                    if report.passive_failure.is_none() {
                        report.passive_failure = s.failing(cfg);
                    }
                    report.passive.push(s);
                }
            }
            report.passive_ms = start.elapsed().as_secs_f64() * 1000.0;
        }
        Ok(report)
    }
}
