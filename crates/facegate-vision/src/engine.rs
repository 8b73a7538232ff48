//! [`FaceEngine`]: the engine's public entry point, tying decoding,
//! detection, quality, alignment, embedding and liveness together. Every
//! public method of the engine is in this file; liveness's lie in
//! `liveness/`, reached through [`Pipeline`].

use std::borrow::Cow;
use std::path::PathBuf;

use image::RgbImage;
use serde::{Deserialize, Serialize};

use crate::align::align_face;
use crate::decode::{self, DecodeLimits};
use crate::detect::{BoundingBox, DetectedFace, Detector, DetectorConfig};
use crate::embed::{Embedder, Embedding};
use crate::error::VisionError;
use crate::liveness::antispoof::AntiSpoof;
use crate::liveness::challenge::ChallengeConfig;
use crate::liveness::passive::{self, PassiveConfig, PassiveScores};
use crate::liveness::sequence::{self, ChallengeSpec, SequenceReport};
use crate::liveness::Pipeline;
use crate::models::ModelDir;
use crate::quality::{self, Quality, QualityLimits};
use crate::runtime::SessionOptions;

/// Everything the engine needs to load and run.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct EngineConfig {
    /// Directory holding the ONNX files, `models.toml` and `embedding.toml`.
    pub models_dir: PathBuf,
    /// Embedding manifest; `<models_dir>/embedding.toml` when unset.
    pub embedding_manifest: Option<PathBuf>,
    /// ONNX Runtime intra-op threads per inference.
    pub intra_threads: usize,
    /// Sessions per model, i.e. inferences that can run at the same time.
    pub sessions: usize,
    pub detector: DetectorConfig,
    /// Runs the embedding model in fixed point where its manifest names a
    /// fixed-point version and the CPU has AVX-512 VNNI or AVX2; `false`
    /// always uses ONNX Runtime.
    pub fixed_point_embedding: bool,
    pub decode: DecodeLimits,
    pub quality: QualityLimits,
    /// Similarity at or above which two faces are the same person;
    /// the embedding manifest's default when unset.
    pub threshold: Option<f32>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            models_dir: PathBuf::from("models"),
            embedding_manifest: None,
            intra_threads: 1,
            sessions: 2,
            detector: DetectorConfig::default(),
            fixed_point_embedding: true,
            decode: DecodeLimits::default(),
            quality: QualityLimits::default(),
            threshold: None,
        }
    }
}

/// One face found in an image with its quality and template.
#[derive(Debug, Clone, Serialize)]
pub struct FaceAnalysis {
    pub face: DetectedFace,
    pub quality: Quality,
    pub embedding: Embedding,
}

/// The result of analysing an image that must hold exactly one face.
#[derive(Debug, Clone)]
pub struct SingleFace {
    /// The decoded, upright image (for re-encoding and storage).
    pub image: RgbImage,
    pub analysis: FaceAnalysis,
}

/// The face engine. Cheap to share behind an `Arc`; all methods take `&self`
/// and may be called from many threads.
pub struct FaceEngine {
    config: EngineConfig,
    detector: Detector,
    embedder: Embedder,
    anti_spoof: AntiSpoof,
    threshold: f32,
}

impl FaceEngine {
    /// Loads every model after verifying its sha256. ONNX Runtime must have
    /// been initialised with `runtime::init` or `runtime::init_located` first.
    pub fn load(config: EngineConfig) -> Result<Self, VisionError> {
        let mut config = config;
        config.models_dir = crate::models::locate_dir(&config.models_dir);
        let dir = ModelDir::open(&config.models_dir)?;
        let opts = SessionOptions {
            intra_threads: config.intra_threads.max(1),
            sessions: config.sessions.max(1),
        };
        let detector = Detector::load(&dir, &opts, config.detector.clone())?;
        let manifest_path = config
            .embedding_manifest
            .clone()
            .unwrap_or_else(|| config.models_dir.join("embedding.toml"));
        let embedder = Embedder::load(&dir, &manifest_path, &opts, config.fixed_point_embedding)?;
        let anti_spoof = AntiSpoof::load(&dir, &opts)?;
        let threshold = config
            .threshold
            .unwrap_or(embedder.manifest().default_threshold);
        Ok(FaceEngine {
            config,
            detector,
            embedder,
            anti_spoof,
            threshold,
        })
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// Similarity threshold for "same person".
    pub fn threshold(&self) -> f32 {
        self.threshold
    }

    /// Whether the detector's networks run in fixed point (AVX-512 VNNI
    /// or AVX2) rather than with ONNX Runtime.
    pub fn fixed_point(&self) -> bool {
        self.detector.fixed_point()
    }

    /// How the detector's networks run here: `fixed-point (AVX-512 VNNI)`,
    /// `fixed-point (AVX2)` or `ONNX Runtime`.
    pub fn detector_backend(&self) -> &'static str {
        self.detector.backend()
    }

    /// How the embedding model runs here: `fixed-point (AVX-512 VNNI)`,
    /// `fixed-point (AVX2)` or `ONNX Runtime`.
    pub fn embedder_backend(&self) -> &'static str {
        self.embedder.backend()
    }

    /// Identifier of the embedding model; templates record it.
    pub fn model_id(&self) -> &str {
        &self.embedder.manifest().id
    }

    /// Decodes image bytes within the configured limits.
    pub fn decode(&self, bytes: &[u8]) -> Result<RgbImage, VisionError> {
        decode::decode(bytes, &self.config.decode)
    }

    /// Finds all faces, best first.
    pub fn detect(&self, img: &RgbImage) -> Result<Vec<DetectedFace>, VisionError> {
        self.detector.detect(img)
    }

    /// Finds all faces in a frame of a sequence, given where the face was
    /// in the previous frame: about half the cost of [`Self::detect`].
    pub fn detect_tracked(
        &self,
        img: &RgbImage,
        previous: &BoundingBox,
    ) -> Result<Vec<DetectedFace>, VisionError> {
        self.detector.detect_tracked(img, previous)
    }

    /// Finds the faces that count as people in view, with their quality:
    /// confident, in focus and not in profile (see [`QualityLimits`]).
    pub fn faces_in_view(
        &self,
        img: &RgbImage,
    ) -> Result<Vec<(DetectedFace, Quality)>, VisionError> {
        Ok(self
            .detect(img)?
            .into_iter()
            .map(|f| (f, self.quality(img, &f)))
            .filter(|(f, q)| quality::is_present(f, q, &self.config.quality))
            .collect())
    }

    /// Whether a detected face with this quality counts as a person in
    /// view (see [`QualityLimits`]).
    pub fn in_view(&self, face: &DetectedFace, quality: &Quality) -> bool {
        quality::is_present(face, quality, &self.config.quality)
    }

    /// Measures the quality of a detected face.
    pub fn quality(&self, img: &RgbImage, face: &DetectedFace) -> Quality {
        quality::assess(img, face, &self.config.quality)
    }

    /// Warps a face to the embedding model's upright square input.
    pub fn align(&self, img: &RgbImage, face: &DetectedFace) -> RgbImage {
        align_face(img, &face.landmarks, self.embedder.manifest().input_size)
    }

    /// Embeds a face already aligned with [`FaceEngine::align`].
    pub fn embed_aligned(&self, aligned: &RgbImage) -> Result<Embedding, VisionError> {
        self.embedder.embed(aligned)
    }

    /// Aligns a face to the template and embeds it.
    pub fn embed(&self, img: &RgbImage, face: &DetectedFace) -> Result<Embedding, VisionError> {
        self.embed_aligned(&self.align(img, face))
    }

    /// Embeds several faces of one image in a single batched call.
    fn embed_all(
        &self,
        img: &RgbImage,
        faces: &[DetectedFace],
    ) -> Result<Vec<Embedding>, VisionError> {
        let aligned: Vec<RgbImage> = faces.iter().map(|f| self.align(img, f)).collect();
        self.embedder.embed_batch(&aligned)
    }

    /// Analyses every face in view of an image.
    pub fn analyze_all(&self, img: &RgbImage) -> Result<Vec<FaceAnalysis>, VisionError> {
        let (faces, qualities): (Vec<DetectedFace>, Vec<Quality>) =
            self.faces_in_view(img)?.into_iter().unzip();
        let embeddings = self.embed_all(img, &faces)?;
        Ok(faces
            .into_iter()
            .zip(qualities)
            .zip(embeddings)
            .map(|((face, quality), embedding)| FaceAnalysis {
                face,
                quality,
                embedding,
            })
            .collect())
    }

    /// Decodes bytes that must show exactly one face. With `enforce_quality`
    /// a face failing a quality check gives [`VisionError::LowQuality`]
    /// (enrolment); without it the quality is only reported (login probes).
    pub fn analyze_single(
        &self,
        bytes: &[u8],
        enforce_quality: bool,
    ) -> Result<SingleFace, VisionError> {
        let image = self.decode(bytes)?;
        let analysis = self.analyze_single_image(&image, enforce_quality)?;
        Ok(SingleFace { image, analysis })
    }

    /// Like [`FaceEngine::analyze_single`] for an already decoded image.
    pub fn analyze_single_image(
        &self,
        img: &RgbImage,
        enforce_quality: bool,
    ) -> Result<FaceAnalysis, VisionError> {
        let mut faces = self.faces_in_view(img)?;
        let (face, quality) = match faces.len() {
            0 => return Err(VisionError::NoFace),
            1 => faces.remove(0),
            n => return Err(VisionError::MultipleFaces(n)),
        };
        if enforce_quality {
            if let Some(issue) = quality.issues.first() {
                return Err(VisionError::LowQuality(*issue));
            }
        }
        let embedding = self.embed(img, &face)?;
        Ok(FaceAnalysis {
            face,
            quality,
            embedding,
        })
    }

    /// Cosine similarity of two templates; `None` when they come from
    /// different models and must never be compared.
    pub fn compare(&self, a: &Embedding, b: &Embedding) -> Option<f32> {
        (a.model_id == b.model_id).then(|| crate::embed::cosine_similarity(&a.vector, &b.vector))
    }

    /// Passive anti-spoofing network's score of a face: higher means more
    /// likely a presentation attack (print, screen).
    pub fn spoof_score(&self, img: &RgbImage, face: &DetectedFace) -> Result<f32, VisionError> {
        self.anti_spoof.score(img, face)
    }

    /// Every passive liveness cue on one face, the network's included.
    pub fn passive_scores(
        &self,
        img: &RgbImage,
        face: &DetectedFace,
    ) -> Result<PassiveScores, VisionError> {
        passive::passive_scores(self, img, face, true)
    }

    /// Runs the active liveness checks on `frames` (decoded, in capture
    /// order, with their timestamps) and, when `passive` is given and they
    /// pass, the passive cues on the most frontal frame (the network on
    /// the `PassiveConfig::frames` most frontal ones, at most two).
    pub fn check_sequence(
        &self,
        frames: &[RgbImage],
        timestamps: &[f64],
        spec: &ChallengeSpec,
        active: &ChallengeConfig,
        passive: Option<&PassiveConfig>,
    ) -> Result<SequenceReport, VisionError> {
        let frame = |i: usize| Ok(Cow::Borrowed(&frames[i]));
        self.check_streamed(frames.len(), frame, timestamps, spec, active, passive)
    }

    /// Like [`FaceEngine::check_sequence`], but takes the `count` frames one
    /// at a time from `frame(i)` (e.g. decoding each from its bytes), so
    /// that at most three whole frames are held at once; of the others only
    /// what the checks need is kept (a thumbnail, the landmarks and the
    /// aligned face). The first error of `frame` ends the check.
    pub fn check_streamed<'a>(
        &self,
        count: usize,
        frame: impl FnMut(usize) -> Result<Cow<'a, RgbImage>, VisionError>,
        timestamps: &[f64],
        spec: &ChallengeSpec,
        active: &ChallengeConfig,
        passive: Option<&PassiveConfig>,
    ) -> Result<SequenceReport, VisionError> {
        sequence::check_streamed(self, count, frame, timestamps, spec, active, passive)
    }
}

/// The steps liveness uses, each the engine's own.
impl Pipeline for FaceEngine {
    fn min_face(&self) -> f32 {
        self.config.detector.min_face
    }

    fn detect(&self, img: &RgbImage) -> Result<Vec<DetectedFace>, VisionError> {
        FaceEngine::detect(self, img)
    }

    fn detect_tracked(
        &self,
        img: &RgbImage,
        previous: &BoundingBox,
    ) -> Result<Vec<DetectedFace>, VisionError> {
        FaceEngine::detect_tracked(self, img, previous)
    }

    fn detect_shrunk(
        &self,
        small: &RgbImage,
        img: &RgbImage,
        back: f32,
        previous: Option<&BoundingBox>,
    ) -> Result<Vec<DetectedFace>, VisionError> {
        self.detector.detect_shrunk(small, img, back, previous)
    }

    fn in_view_aligned(&self, img: &RgbImage, face: &DetectedFace) -> (bool, RgbImage) {
        let aligned = FaceEngine::align(self, img, face);
        let quality = if aligned.dimensions() == (quality::ALIGNED_SIZE, quality::ALIGNED_SIZE) {
            quality::assess_aligned(&aligned, face, &self.config.quality)
        } else {
            self.quality(img, face)
        };
        (FaceEngine::in_view(self, face, &quality), aligned)
    }

    fn sharpness(&self, img: &RgbImage, face: &DetectedFace) -> f32 {
        self.quality(img, face).sharpness
    }

    fn embed_aligned(&self, aligned: &RgbImage) -> Result<Embedding, VisionError> {
        FaceEngine::embed_aligned(self, aligned)
    }

    fn spoof_score(&self, img: &RgbImage, face: &DetectedFace) -> Result<f32, VisionError> {
        FaceEngine::spoof_score(self, img, face)
    }
}
