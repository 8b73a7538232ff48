//! Liveness: is the face in front of the camera a live person, not a
//! photo, a screen or a mask?
//!
//! - [`challenge`]: the active checks, judging a sequence of frames
//!   against the head movements the user was asked to make;
//! - [`passive`]: the cues measured on one frame (the network's score,
//!   moiré, glare, blur) and the reduction of a frame to what the active
//!   checks need;
//! - [`antispoof`]: the FaceAntiSpoofing network behind the first cue;
//! - [`appearance`]: the face's colour cast from frame to frame (measured
//!   with every answer, not judged);
//! - [`surround`]: whether the room around the face stays put from frame
//!   to frame;
//! - [`sequence`]: all of them on one challenge answer, frame by frame.
//!
//! The engine ([`crate::FaceEngine`]) holds the networks and offers these
//! checks as its methods; liveness reaches the networks only through
//! [`Pipeline`], which the engine implements, so it does not import the
//! engine.

pub(crate) mod antispoof;
pub(crate) mod appearance;
pub(crate) mod challenge;
pub(crate) mod passive;
pub(crate) mod sequence;
pub(crate) mod surround;

use image::RgbImage;

use crate::detect::{BoundingBox, DetectedFace};
use crate::embed::Embedding;
use crate::error::VisionError;

/// The steps of the face pipeline the liveness checks use.
pub(crate) trait Pipeline {
    /// The detector's smallest face, in pixels.
    fn min_face(&self) -> f32;
    /// Every face in an image, best first.
    fn detect(&self, img: &RgbImage) -> Result<Vec<DetectedFace>, VisionError>;
    /// Every face in a frame of a sequence, given the face's box in the
    /// previous frame.
    fn detect_tracked(
        &self,
        img: &RgbImage,
        previous: &BoundingBox,
    ) -> Result<Vec<DetectedFace>, VisionError>;
    /// Every face in a frame, looked for on `small` (the frame shrunk
    /// `back` times) and measured on the frame itself, tracking the
    /// face's box in the previous frame when there is one.
    fn detect_shrunk(
        &self,
        small: &RgbImage,
        img: &RgbImage,
        back: f32,
        previous: Option<&BoundingBox>,
    ) -> Result<Vec<DetectedFace>, VisionError>;
    /// Whether a detection counts as a person in view, with the face
    /// warped to the embedding model's input (one warp for both when the
    /// model's input has quality's size).
    fn in_view_aligned(&self, img: &RgbImage, face: &DetectedFace) -> (bool, RgbImage);
    /// Laplacian variance of the aligned face.
    fn sharpness(&self, img: &RgbImage, face: &DetectedFace) -> f32;
    /// The template of an aligned face.
    fn embed_aligned(&self, aligned: &RgbImage) -> Result<Embedding, VisionError>;
    /// The anti-spoofing network's score of a face.
    fn spoof_score(&self, img: &RgbImage, face: &DetectedFace) -> Result<f32, VisionError>;
}
