//! Face quality: size, sharpness, brightness and head pose, each with a
//! limit and a reason code when it fails.

use image::RgbImage;
use serde::{Deserialize, Serialize};

use crate::align::align_face;
use crate::detect::DetectedFace;
use crate::error::QualityIssue;
use crate::geometry::{pose, Pose};

/// Limits a face must meet to be enrolled.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct QualityLimits {
    /// Smallest face (shorter box side) in pixels.
    pub min_face_px: f32,
    /// Smallest variance of the Laplacian on the aligned 112×112 grey face.
    pub min_sharpness: f32,
    pub min_brightness: f32,
    pub max_brightness: f32,
    pub max_yaw: f32,
    pub max_pitch: f32,
    pub max_roll: f32,
    /// A detection counts as a person in view only with at least this
    /// detector score ...
    pub presence_min_score: f32,
    /// ... this sharpness (out-of-focus faces on posters, screens and in the
    /// far background do not count) ...
    pub presence_min_sharpness: f32,
    /// ... and at most this yaw (a bystander in profile does not count).
    pub presence_max_yaw: f32,
}

impl Default for QualityLimits {
    fn default() -> Self {
        QualityLimits {
            min_face_px: 40.0,
            min_sharpness: 20.0,
            min_brightness: 40.0,
            max_brightness: 225.0,
            max_yaw: 35.0,
            max_pitch: 30.0,
            max_roll: 30.0,
            presence_min_score: 0.9,
            presence_min_sharpness: 15.0,
            presence_max_yaw: 45.0,
        }
    }
}

/// Measured quality of one face.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Quality {
    /// Shorter side of the face box, in pixels.
    pub face_px: f32,
    /// Variance of the Laplacian of the aligned grey face.
    pub sharpness: f32,
    /// Mean grey level of the aligned face's centre (0–255).
    pub brightness: f32,
    pub pose: Pose,
    /// Failed checks, most important first; empty when the face is fine.
    pub issues: Vec<QualityIssue>,
}

impl Quality {
    pub fn is_ok(&self) -> bool {
        self.issues.is_empty()
    }
}

/// Whether a detection is a person in view (see [`QualityLimits`]); only
/// those count when exactly one face is required.
pub fn is_present(face: &DetectedFace, quality: &Quality, limits: &QualityLimits) -> bool {
    face.score >= limits.presence_min_score
        && quality.sharpness >= limits.presence_min_sharpness
        && quality.pose.yaw.abs() <= limits.presence_max_yaw
}

fn grey(img: &RgbImage) -> Vec<f32> {
    img.pixels()
        .map(|p| 0.299 * p[0] as f32 + 0.587 * p[1] as f32 + 0.114 * p[2] as f32)
        .collect()
}

/// Variance of the 4-neighbour Laplacian over the inner part of a square grey image.
fn laplacian_variance(g: &[f32], size: usize, margin: usize) -> f32 {
    let mut vals = Vec::new();
    for y in margin.max(1)..size - margin.max(1) {
        for x in margin.max(1)..size - margin.max(1) {
            let c = g[y * size + x];
            let l = g[(y - 1) * size + x]
                + g[(y + 1) * size + x]
                + g[y * size + x - 1]
                + g[y * size + x + 1]
                - 4.0 * c;
            vals.push(l);
        }
    }
    let n = vals.len().max(1) as f32;
    let mean = vals.iter().sum::<f32>() / n;
    vals.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / n
}

/// Side of the aligned face quality is measured on.
pub const ALIGNED_SIZE: u32 = 112;

/// Measures a face against `limits`.
pub fn assess(img: &RgbImage, face: &DetectedFace, limits: &QualityLimits) -> Quality {
    assess_aligned(
        &align_face(img, &face.landmarks, ALIGNED_SIZE),
        face,
        limits,
    )
}

/// [`assess`] on the face already warped by [`align_face`] to
/// [`ALIGNED_SIZE`] (the embedding model's usual input, so one warp can
/// serve both).
pub fn assess_aligned(aligned: &RgbImage, face: &DetectedFace, limits: &QualityLimits) -> Quality {
    const SIZE: usize = ALIGNED_SIZE as usize;
    debug_assert_eq!(aligned.dimensions(), (ALIGNED_SIZE, ALIGNED_SIZE));
    let g = grey(aligned);
    let sharpness = laplacian_variance(&g, SIZE, 24);
    let centre: Vec<f32> = (32..96)
        .flat_map(|y| (28..84).map(move |x| (x, y)))
        .map(|(x, y)| g[y * SIZE + x])
        .collect();
    let brightness = centre.iter().sum::<f32>() / centre.len() as f32;
    let face_px = face.bbox.width().min(face.bbox.height());
    let pose = pose(&face.landmarks);
    let mut issues = Vec::new();
    if face_px < limits.min_face_px {
        issues.push(QualityIssue::TooSmall);
    }
    if pose.yaw.abs() > limits.max_yaw {
        issues.push(QualityIssue::TurnedAway);
    }
    if pose.pitch.abs() > limits.max_pitch {
        issues.push(QualityIssue::TiltedUpDown);
    }
    if pose.roll.abs() > limits.max_roll {
        issues.push(QualityIssue::TiltedSideways);
    }
    if brightness < limits.min_brightness {
        issues.push(QualityIssue::TooDark);
    }
    if brightness > limits.max_brightness {
        issues.push(QualityIssue::TooBright);
    }
    if sharpness < limits.min_sharpness {
        issues.push(QualityIssue::Blurry);
    }
    Quality {
        face_px,
        sharpness,
        brightness,
        pose,
        issues,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::BoundingBox;
    use crate::geometry::TEMPLATE_112;

    fn template_face() -> DetectedFace {
        DetectedFace {
            bbox: BoundingBox {
                x1: 10.0,
                y1: 10.0,
                x2: 100.0,
                y2: 110.0,
            },
            score: 0.99,
            landmarks: TEMPLATE_112,
        }
    }

    #[test]
    fn flat_grey_image_is_blurry() {
        let img = RgbImage::from_pixel(112, 112, image::Rgb([128, 128, 128]));
        let q = assess(&img, &template_face(), &QualityLimits::default());
        assert_eq!(q.issues, vec![QualityIssue::Blurry]);
    }

    #[test]
    fn dark_textured_image_is_too_dark() {
        let img = RgbImage::from_fn(112, 112, |x, y| {
            image::Rgb([if (x + y) % 2 == 0 { 0 } else { 40 }; 3])
        });
        let q = assess(&img, &template_face(), &QualityLimits::default());
        assert_eq!(q.issues, vec![QualityIssue::TooDark]);
    }
}
