//! Typed outcomes of the face engine that a caller can act on. This file
//! imports nothing from the rest of the engine, so every other file may
//! import it.

use serde::{Deserialize, Serialize};

/// Why an image could not be used at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidImageReason {
    #[error("the image is empty")]
    Empty,
    #[error("the format is not JPEG, PNG or WebP")]
    UnsupportedFormat,
    #[error("the image data is corrupt or truncated: {0}")]
    Corrupt(String),
    #[error("the image is too small ({width}x{height}) to hold a face")]
    TooSmall { width: u32, height: u32 },
}

/// Every failure the engine reports.
#[derive(Debug, Clone, thiserror::Error)]
pub enum VisionError {
    #[error("invalid image: {0}")]
    InvalidImage(InvalidImageReason),
    #[error("image too large: {0}")]
    TooLarge(String),
    #[error("no face found")]
    NoFace,
    #[error("{0} faces found where exactly one is required")]
    MultipleFaces(usize),
    #[error("face quality too low: {0}")]
    LowQuality(QualityIssue),
    #[error("model error: {0}")]
    Model(String),
}

impl VisionError {
    /// A stable, machine-readable code for APIs and logs.
    pub fn code(&self) -> &'static str {
        match self {
            VisionError::InvalidImage(_) => "invalid_image",
            VisionError::TooLarge(_) => "too_large",
            VisionError::NoFace => "no_face",
            VisionError::MultipleFaces(_) => "multiple_faces",
            VisionError::LowQuality(_) => "low_quality",
            VisionError::Model(_) => "model_error",
        }
    }
}

impl From<ort::Error> for VisionError {
    fn from(e: ort::Error) -> Self {
        VisionError::Model(e.to_string())
    }
}

/// Why a face is not good enough to enrol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(rename_all = "snake_case")]
pub enum QualityIssue {
    #[error("the face is too small; come closer or use a larger photo")]
    TooSmall,
    #[error("the face is blurred")]
    Blurry,
    #[error("the face is too dark")]
    TooDark,
    #[error("the face is overexposed")]
    TooBright,
    #[error("the head is turned to the side; look straight at the camera")]
    TurnedAway,
    #[error("the head is tilted up or down; look straight at the camera")]
    TiltedUpDown,
    #[error("the head is tilted sideways; hold it upright")]
    TiltedSideways,
}

impl QualityIssue {
    pub fn code(&self) -> &'static str {
        match self {
            QualityIssue::TooSmall => "too_small",
            QualityIssue::Blurry => "blurry",
            QualityIssue::TooDark => "too_dark",
            QualityIssue::TooBright => "too_bright",
            QualityIssue::TurnedAway => "turned_away",
            QualityIssue::TiltedUpDown => "tilted_up_down",
            QualityIssue::TiltedSideways => "tilted_sideways",
        }
    }
}
