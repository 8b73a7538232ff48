//! `facegate detect` and `facegate compare`, plus the engine options the
//! engine commands share.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use facegate_vision::{EngineConfig, FaceAnalysis, FaceEngine, VisionError};
use serde::Serialize;

/// Engine options shared by the engine commands.
#[derive(Args, Clone)]
pub struct EngineOpts {
    /// Directory with the ONNX models.
    #[arg(long, default_value = "models")]
    pub models: PathBuf,
    /// Smallest face looked for, in pixels.
    #[arg(long, default_value_t = 20.0)]
    pub min_face: f32,
    /// Similarity threshold (default: the embedding model's).
    #[arg(long)]
    pub threshold: Option<f32>,
    /// ONNX Runtime intra-op threads.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Run the detector's networks with ONNX Runtime even where the
    /// fixed-point kernels (AVX-512 VNNI or AVX2) run: to compare the two.
    #[arg(long)]
    pub onnx_detector: bool,
    /// Run the embedding model with ONNX Runtime even where its
    /// fixed-point version runs: to compare the two.
    #[arg(long)]
    pub onnx_embedding: bool,
}

impl EngineOpts {
    pub fn config(&self, sessions: usize) -> EngineConfig {
        let mut config = EngineConfig {
            models_dir: self.models.clone(),
            intra_threads: self.threads,
            sessions,
            threshold: self.threshold,
            ..EngineConfig::default()
        };
        config.detector.min_face = self.min_face;
        config.detector.fixed_point = !self.onnx_detector;
        config.fixed_point_embedding = !self.onnx_embedding;
        config
    }

    pub fn load(&self, sessions: usize) -> Result<FaceEngine> {
        FaceEngine::load(self.config(sessions)).context("loading the face engine")
    }
}

#[derive(Args)]
pub struct DetectArgs {
    /// Images to look at.
    #[arg(required = true)]
    pub images: Vec<PathBuf>,
    #[command(flatten)]
    pub engine: EngineOpts,
    /// Print JSON: an array with one {"file", "faces"} object per image.
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize)]
struct FaceReport {
    bbox: facegate_vision::BoundingBox,
    score: f32,
    landmarks: [[f32; 2]; 5],
    quality: facegate_vision::Quality,
    /// Whether the face counts as a person in view (confident, in focus, not in profile).
    in_view: bool,
}

#[derive(Serialize)]
struct ImageReport {
    file: String,
    faces: Vec<FaceReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<ErrorReport>,
}

#[derive(Serialize)]
struct ErrorReport {
    code: &'static str,
    message: String,
}

fn read_and_detect(engine: &FaceEngine, path: &Path) -> Result<Vec<FaceReport>, VisionError> {
    let bytes = std::fs::read(path).map_err(|e| {
        VisionError::InvalidImage(facegate_vision::InvalidImageReason::Corrupt(format!(
            "cannot read: {e}"
        )))
    })?;
    let img = engine.decode(&bytes)?;
    let faces = engine.detect(&img)?;
    Ok(faces
        .into_iter()
        .map(|face| {
            let quality = engine.quality(&img, &face);
            FaceReport {
                in_view: engine.in_view(&face, &quality),
                bbox: face.bbox,
                score: face.score,
                landmarks: face.landmarks,
                quality,
            }
        })
        .collect())
}

pub fn detect(args: DetectArgs) -> Result<()> {
    let engine = args.engine.load(1)?;
    let mut reports = Vec::new();
    for path in &args.images {
        let (faces, error) = match read_and_detect(&engine, path) {
            Ok(f) => (f, None),
            Err(e) => (
                Vec::new(),
                Some(ErrorReport {
                    code: e.code(),
                    message: e.to_string(),
                }),
            ),
        };
        reports.push(ImageReport {
            file: path.display().to_string(),
            faces,
            error,
        });
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&reports)?);
        return Ok(());
    }
    for r in &reports {
        match &r.error {
            Some(e) => println!("{}: error {}: {}", r.file, e.code, e.message),
            None => println!(
                "{}: {} face(s) in view, {} detection(s)",
                r.file,
                r.faces.iter().filter(|f| f.in_view).count(),
                r.faces.len()
            ),
        }
        for (i, f) in r.faces.iter().enumerate() {
            let issues: Vec<&str> = f.quality.issues.iter().map(|i| i.code()).collect();
            println!(
                "  #{i}{} box ({:.0},{:.0})-({:.0},{:.0}) score {:.3} size {:.0}px sharpness {:.0} brightness {:.0} yaw {:.0} pitch {:.0} roll {:.0} {}",
                if f.in_view { "" } else { " (not counted)" },
                f.bbox.x1, f.bbox.y1, f.bbox.x2, f.bbox.y2, f.score, f.quality.face_px, f.quality.sharpness,
                f.quality.brightness, f.quality.pose.yaw, f.quality.pose.pitch, f.quality.pose.roll,
                if issues.is_empty() { "ok".to_string() } else { issues.join(",") }
            );
        }
    }
    Ok(())
}

#[derive(Args)]
pub struct CompareArgs {
    pub a: PathBuf,
    pub b: PathBuf,
    #[command(flatten)]
    pub engine: EngineOpts,
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize)]
struct CompareReport {
    similarity: f32,
    threshold: f32,
    same_person: bool,
}

/// Reads an image that must show exactly one face and embeds it.
pub fn single_face(engine: &FaceEngine, path: &Path) -> Result<FaceAnalysis> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let face = engine
        .analyze_single(&bytes, false)
        .with_context(|| format!("{}", path.display()))?;
    Ok(face.analysis)
}

pub fn compare(args: CompareArgs) -> Result<()> {
    let engine = args.engine.load(1)?;
    let a = single_face(&engine, &args.a)?;
    let b = single_face(&engine, &args.b)?;
    let similarity = engine
        .compare(&a.embedding, &b.embedding)
        .context("templates of different models")?;
    let report = CompareReport {
        similarity,
        threshold: engine.threshold(),
        same_person: similarity >= engine.threshold(),
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "similarity {:.4} (threshold {:.4}): {}",
            report.similarity,
            report.threshold,
            if report.same_person {
                "same person"
            } else {
                "different people"
            }
        );
    }
    Ok(())
}
