//! The model directory: sha256-verified ONNX files and the embedding
//! manifest that makes the embedding model pluggable.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::VisionError;

/// `models.toml`: the expected sha256 of every model file.
#[derive(Debug, Deserialize)]
struct Checksums {
    files: BTreeMap<String, String>,
}

/// A directory of models whose files are checked before use.
pub(crate) struct ModelDir {
    dir: PathBuf,
    checksums: BTreeMap<String, String>,
}

impl ModelDir {
    pub fn open(dir: &Path) -> Result<Self, VisionError> {
        let path = dir.join("models.toml");
        let text = std::fs::read_to_string(&path)
            .map_err(|e| VisionError::Model(format!("cannot read {}: {e}", path.display())))?;
        let checksums: Checksums = toml::from_str(&text)
            .map_err(|e| VisionError::Model(format!("{}: {e}", path.display())))?;
        Ok(ModelDir {
            dir: dir.to_path_buf(),
            checksums: checksums.files,
        })
    }

    /// Reads a model file and checks it against `models.toml`, or against
    /// `expected` (for a manifest that carries its own checksum).
    pub fn read_verified(
        &self,
        file: &str,
        expected: Option<&str>,
    ) -> Result<Vec<u8>, VisionError> {
        let path = self.dir.join(file);
        let bytes = std::fs::read(&path)
            .map_err(|e| VisionError::Model(format!("cannot read {}: {e}", path.display())))?;
        let want = expected
            .or_else(|| self.checksums.get(file).map(String::as_str))
            .ok_or_else(|| VisionError::Model(format!("no sha256 recorded for {file}")))?;
        let got = hex::encode(Sha256::digest(&bytes));
        if !got.eq_ignore_ascii_case(want) {
            return Err(VisionError::Model(format!(
                "{} fails its integrity check: sha256 {got}, expected {want}",
                path.display()
            )));
        }
        Ok(bytes)
    }
}

/// Tensor layout of an image input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    Nhwc,
    Nchw,
}

/// Channel order of an image input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChannelOrder {
    Rgb,
    Bgr,
}

/// `embedding.toml`: how to feed and read an ONNX face-embedding model.
/// Another model (a FaceNet or ArcFace export) drops in by writing one.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EmbeddingManifest {
    /// Recorded with every template; templates of different ids never compare.
    pub id: String,
    pub file: String,
    /// Optional; otherwise `models.toml` must list the file.
    pub sha256: Option<String>,
    /// Side of the square aligned face, in pixels.
    pub input_size: u32,
    pub layout: Layout,
    pub channel_order: ChannelOrder,
    /// Input value = (pixel − mean) / std.
    pub mean: f32,
    pub std: f32,
    pub output_dim: usize,
    pub input_name: Option<String>,
    pub output_name: Option<String>,
    /// Cosine similarity at or above which two faces match.
    pub default_threshold: f32,
    /// Optional: the same model in fixed point (a parameter file of
    /// `tools/quantize_mobilefacenet.py`), run instead where the CPU has
    /// its kernels. Its embeddings agree with the float model's (cosine
    /// ≥ 0.999, checked when the file is made), so templates of either
    /// compare.
    #[serde(default)]
    pub fixed_point: Option<String>,
}

impl EmbeddingManifest {
    pub fn read(path: &Path) -> Result<Self, VisionError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| VisionError::Model(format!("cannot read {}: {e}", path.display())))?;
        toml::from_str(&text).map_err(|e| VisionError::Model(format!("{}: {e}", path.display())))
    }
}

/// Resolves a models directory: `configured` when it holds `models.toml`,
/// else the first `models/` with a `models.toml` above the working
/// directory or the executable (so `target/release/facegate` works from
/// anywhere inside the repository).
pub fn locate_dir(configured: &Path) -> PathBuf {
    if configured.join("models.toml").is_file() || configured.is_absolute() {
        return configured.to_path_buf();
    }
    let starts = [std::env::current_dir().ok(), std::env::current_exe().ok()];
    starts
        .iter()
        .flatten()
        .flat_map(|s| s.ancestors())
        .map(|dir| dir.join(configured))
        .find(|dir| dir.join("models.toml").is_file())
        .unwrap_or_else(|| configured.to_path_buf())
}
