//! facegate-vision: the face engine.
//!
//! It owns everything between image bytes and a comparable face template,
//! and the liveness checks; it knows nothing about users, HTTP or storage.
//! Its public API fits on a card, in the spirit of Python's
//! `face_recognition`:
//!
//! | to | call |
//! | --- | --- |
//! | set up | [`runtime::init_located`] (or [`runtime::init`]), then [`FaceEngine::load`]`(`[`EngineConfig`]`)` |
//! | read an image | [`FaceEngine::decode`]; without an engine [`decode::decode`], [`decode::probe_dimensions`] |
//! | find faces | [`FaceEngine::faces_in_view`] (people in view, with their [`Quality`]), [`FaceEngine::detect`] (every detection) |
//! | get templates | [`FaceEngine::analyze_single`] / [`FaceEngine::analyze_single_image`] (exactly one face), [`FaceEngine::analyze_all`] |
//! | compare | [`FaceEngine::compare`] against [`FaceEngine::threshold`] |
//! | liveness | [`FaceEngine::check_streamed`] / [`FaceEngine::check_sequence`] (a challenge answer → [`SequenceReport`]), [`FaceEngine::passive_scores`] (one frame) |
//!
//! The steps behind those (`detect_tracked`, `quality`, `in_view`,
//! `align`, `embed`, `embed_aligned`, `spoof_score`) are public for tools,
//! tests and benchmarks. Every failure is a [`VisionError`]. Everything else
//! is private to the crate; the synthetic attacks and challenge answers
//! used to measure liveness are in [`eval`], behind the `eval` feature
//! (the `facegate` binary and the tests turn it on).
//!
//! Inside: `decode` → `detect` (MTCNN; its networks run in fixed point by
//! `fixed_net` where the CPU allows, else with ONNX Runtime, both behind
//! one `Net` trait) → `quality` → `align` → `embed`; `liveness/` holds the
//! active checks, the passive cues and the anti-spoofing network. Unit
//! tests sit at the bottom of the file they test (`mod tests`), or in
//! `tests.rs` of the module's directory when long (`fixed_net/tests.rs`,
//! `liveness/challenge/tests.rs`); tests that load the models are in
//! `tests/`.

#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

mod align;
pub mod decode;
mod detect;
mod embed;
mod engine;
mod error;
#[cfg(feature = "eval")]
pub mod eval;
mod fixed_net;
mod geometry;
mod homography;
mod liveness;
mod models;
mod net;
mod quality;
mod resample;
pub mod runtime;

pub use decode::DecodeLimits;
pub use detect::{BoundingBox, DetectedFace, DetectorConfig};
pub use embed::{cosine_similarity, l2_normalise, CosineProbe, Embedding};
pub use engine::{EngineConfig, FaceAnalysis, FaceEngine, SingleFace};
pub use error::{InvalidImageReason, QualityIssue, VisionError};
pub use geometry::Pose;
pub use image::RgbImage;
pub use liveness::challenge::{
    ActiveScores, ChallengeConfig, Judgement, SpoofCheck, Step, Verdict,
};
pub use liveness::passive::{CueAction, PassiveConfig, PassiveDecision, PassiveScores};
pub use liveness::sequence::{ChallengeSpec, SequenceReport};
pub use models::{locate_dir as locate_models_dir, EmbeddingManifest};
pub use quality::{Quality, QualityLimits};
