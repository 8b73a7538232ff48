//! facegate-vision: the face engine.
//!
//! It owns everything between image bytes and a comparable face template:
//! decoding with limits ([`decode`]), MTCNN detection ([`detect`], in fixed
//! point by [`fixed_net`] where the CPU allows), alignment
//! to the 112×112 template ([`align`]), embeddings ([`embed`]), face quality
//! ([`quality`]) and the passive anti-spoofing network ([`liveness`]).
//! It knows nothing about users, HTTP or storage. [`FaceEngine`] is the
//! small public entry point, in the spirit of Python's `face_recognition`.

pub mod align;
pub mod attacks;
pub mod challenge;
pub mod decode;
pub mod detect;
pub mod embed;
pub mod engine;
pub mod error;
pub mod fixed_net;
pub mod geometry;
pub mod homography;
pub mod liveness;
pub mod models;
pub mod passive;
pub mod quality;
pub mod resample;
pub mod runtime;
pub mod scenarios;
pub mod sequence;

pub use challenge::{ChallengeConfig, Judgement, Step, Verdict};
pub use decode::DecodeLimits;
pub use detect::{BoundingBox, DetectedFace, DetectorConfig};
pub use embed::{cosine_similarity, Embedding};
pub use engine::{EngineConfig, FaceAnalysis, FaceEngine, SingleFace};
pub use error::{InvalidImageReason, VisionError};
pub use image::RgbImage;
pub use passive::{PassiveConfig, PassiveScores};
pub use quality::{Quality, QualityIssue, QualityLimits};
pub use sequence::{ChallengeSpec, SequenceReport};
