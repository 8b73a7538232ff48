//! Passive liveness: the FaceAntiSpoofing network on a square face crop.
//! It scores how much a face looks like a presentation attack (a print or
//! a screen); higher is more suspicious.
//!
//! The network is a tree: each unit's features choose one of two children,
//! down to one of eight leaf classifiers. The engine runs
//! `anti_spoofing_routed.onnx` (tools/route_antispoof.py), the converted
//! graph with each choice made by an ONNX `If`, so only the branch taken
//! runs (about three quarters of the work of computing every branch); its
//! score is the full graph's (models/MODELS.md).

use image::RgbImage;

use crate::detect::DetectedFace;
use crate::error::VisionError;
use crate::models::ModelDir;
use crate::runtime::{SessionOptions, SessionPool};

/// Side of the network's square input.
pub const INPUT_SIZE: u32 = 256;

/// The anti-spoofing network.
pub(crate) struct AntiSpoof {
    pool: SessionPool,
}

impl AntiSpoof {
    pub fn load(dir: &ModelDir, opts: &SessionOptions) -> Result<Self, VisionError> {
        let bytes = dir.read_verified("anti_spoofing_routed.onnx", None)?;
        Ok(AntiSpoof {
            pool: SessionPool::load_lean("anti_spoofing", &bytes, opts)?,
        })
    }

    /// Score of one face: Σ |class score| · mask over the network's eight
    /// leaf classifiers.
    pub fn score(&self, img: &RgbImage, face: &DetectedFace) -> Result<f32, VisionError> {
        let crop = face_crop(img, face);
        let s = INPUT_SIZE as usize;
        let mut data = Vec::with_capacity(s * s * 3);
        for p in crop.pixels() {
            data.extend(p.0.iter().map(|&v| v as f32 / 255.0));
        }
        let out = self
            .pool
            .run("input", &[1, s, s, 3], &data, &["cls_pred", "leaf_mask"])?;
        let (cls, mask) = (&out[0].data, &out[1].data);
        Ok(cls.iter().zip(mask).map(|(c, m)| c.abs() * m).sum())
    }
}

/// The square face box, clipped to the image, resized to 256×256.
fn face_crop(img: &RgbImage, face: &DetectedFace) -> RgbImage {
    let b = face.bbox;
    let side = b.width().max(b.height());
    let cx = (b.x1 + b.x2) / 2.0;
    let cy = (b.y1 + b.y2) / 2.0;
    let x0 = (cx - side / 2.0).max(0.0) as u32;
    let y0 = (cy - side / 2.0).max(0.0) as u32;
    let x1 = ((cx + side / 2.0) as u32).min(img.width());
    let y1 = ((cy + side / 2.0) as u32).min(img.height());
    let (w, h) = (x1.saturating_sub(x0).max(1), y1.saturating_sub(y0).max(1));
    let crop =
        image::imageops::crop_imm(img, x0.min(img.width() - 1), y0.min(img.height() - 1), w, h)
            .to_image();
    image::imageops::resize(
        &crop,
        INPUT_SIZE,
        INPUT_SIZE,
        image::imageops::FilterType::Triangle,
    )
}
