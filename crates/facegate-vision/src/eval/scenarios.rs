//! Challenge answers built from the shared test photos, genuine and
//! attacks, for the API tests and `facegate liveness eval`/`bench`.
//!
//! Genuine answers are photos of one person (Barack Obama) in different
//! head poses, ordered to follow the challenge: level `obama_1`, left
//! `obama_4` or `obama_2` mirrored, right `obama_2` or `obama_4` mirrored,
//! up `obama_3`, each made into camera frames with small shifts, scale and
//! noise ([`super::attacks::camera_frame`]). These are real 3-D head poses
//! (a mirrored head is still a head), but they jump between poses instead
//! of moving smoothly. Each pose photo is turned well past the thresholds
//! (about 19° of yaw, 25° of pitch), so a genuine answer's margin does not
//! hang on a degree or two of landmark noise.

use std::collections::HashMap;
use std::path::Path;

use image::RgbImage;

use super::attacks::{camera_frame, in_room, path_for, phone_screen, turned_print, Lcg};
use crate::detect::BoundingBox;
use crate::engine::FaceEngine;
use crate::error::VisionError;
use crate::liveness::challenge::Step;

/// What a sequence is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    /// The person, following the challenge.
    Genuine,
    /// One camera frame of a photo sent again and again.
    Replay,
    /// A printed photo turned and tilted to follow the challenge.
    Print,
    /// A phone screen showing the photo, moved to follow the challenge.
    Screen,
    /// The person, with another person's face in the middle step.
    Swap,
    /// A pose album: the person's photos in the asked poses, each a
    /// hand-held print (even seeds) or shown on a phone (odd seeds),
    /// swapped to follow the challenge.
    Album,
}

impl Family {
    pub const ALL: [Family; 6] = [
        Family::Genuine,
        Family::Replay,
        Family::Print,
        Family::Screen,
        Family::Swap,
        Family::Album,
    ];

    pub fn name(&self) -> &'static str {
        match self {
            Family::Genuine => "genuine",
            Family::Replay => "replay (same frame repeated)",
            Family::Print => "print, turned and tilted",
            Family::Screen => "phone screen with bezel and glare",
            Family::Swap => "another face mid-sequence",
            Family::Album => "pose album (prints or phone, swapped)",
        }
    }
}

/// Photos used by the scenarios.
pub const PHOTOS: [&str; 5] = [
    "obama_1.jpg",
    "obama_2.jpg",
    "obama_3.jpg",
    "obama_4.jpg",
    "biden_2.jpg",
];

/// The pose photos used mirrored: (key, photo).
const MIRRORED: [(&str, &str); 2] = [
    ("obama_2.jpg mirrored", "obama_2.jpg"),
    ("obama_4.jpg mirrored", "obama_4.jpg"),
];

/// The decoded photos (and their mirror images) with the box of their
/// main face.
pub struct Library {
    photos: HashMap<&'static str, (RgbImage, BoundingBox)>,
}

impl Library {
    /// Loads [`PHOTOS`] from `dir` and finds their faces.
    pub fn load(engine: &FaceEngine, dir: &Path) -> Result<Library, VisionError> {
        let mut photos = HashMap::new();
        for name in PHOTOS {
            let bytes = std::fs::read(dir.join(name))
                .map_err(|e| VisionError::Model(format!("{}: {e}", dir.join(name).display())))?;
            let img = engine.decode(&bytes)?;
            let face = engine
                .faces_in_view(&img)?
                .into_iter()
                .next()
                .ok_or(VisionError::NoFace)?;
            photos.insert(name, (img, face.0.bbox));
        }
        for (key, name) in MIRRORED {
            let (img, b) = &photos[name];
            let w = img.width() as f32;
            let bbox = BoundingBox {
                x1: w - b.x2,
                y1: b.y1,
                x2: w - b.x1,
                y2: b.y2,
            };
            photos.insert(key, (image::imageops::flip_horizontal(img), bbox));
        }
        Ok(Library { photos })
    }

    fn frame(&self, name: &str, seed: u64) -> RgbImage {
        let (img, bbox) = &self.photos[name];
        camera_frame(img, bbox, seed)
    }
}

/// The photo that shows `step`'s pose (alternatives chosen by `rng`).
fn photo_for(step: Option<Step>, rng: &mut Lcg) -> &'static str {
    let pick = rng.uniform() > 0.0;
    match step {
        None | Some(Step::Center) => "obama_1.jpg",
        Some(Step::Left) if pick => "obama_4.jpg",
        Some(Step::Left) => "obama_2.jpg mirrored",
        Some(Step::Right) if pick => "obama_2.jpg",
        Some(Step::Right) => "obama_4.jpg mirrored",
        Some(Step::Up) => "obama_3.jpg",
    }
}

/// Frames of `family` answering `steps` (three level frames, then
/// `per_step` frames per step), with capture timestamps (ms).
pub fn build(
    lib: &Library,
    family: Family,
    steps: &[Step],
    per_step: usize,
    seed: u64,
) -> (Vec<RgbImage>, Vec<f64>) {
    let mut rng = Lcg::new(seed);
    let mut frames = Vec::new();
    let mut k = seed.wrapping_mul(1000);
    let mut next_seed = || {
        k += 1;
        k
    };
    match family {
        Family::Genuine | Family::Swap | Family::Album => {
            let swap_at = steps.len() / 2;
            let mut poses: Vec<Option<Step>> = vec![None; 3];
            for s in steps {
                poses.extend(std::iter::repeat_n(Some(*s), per_step));
            }
            let photos: Vec<&str> = {
                let mut chosen: HashMap<Option<Step>, &str> = HashMap::new();
                poses
                    .iter()
                    .map(|p| *chosen.entry(*p).or_insert_with(|| photo_for(*p, &mut rng)))
                    .collect()
            };
            for (i, name) in photos.iter().enumerate() {
                let first = 3 + per_step * swap_at;
                let in_swap = family == Family::Swap && i >= first && i < first + per_step;
                let name = if in_swap { "biden_2.jpg" } else { name };
                let frame = lib.frame(name, next_seed());
                frames.push(if family != Family::Album {
                    in_room(&frame, next_seed())
                } else {
                    // Held by hand: a few degrees of wobble, no more.
                    let (yaw, up) = (3.0 * rng.uniform(), 2.0 * rng.uniform());
                    if seed.is_multiple_of(2) {
                        turned_print(&frame, yaw, up, next_seed())
                    } else {
                        phone_screen(&frame, yaw, up, next_seed())
                    }
                });
            }
        }
        Family::Replay => {
            let one = lib.frame("obama_1.jpg", next_seed());
            frames = vec![one; 3 + per_step * steps.len()];
        }
        Family::Print | Family::Screen => {
            let picture = lib.frame("obama_1.jpg", next_seed());
            for (yaw, up) in path_for(steps, 30.0) {
                let (yaw, up) = (yaw + rng.uniform(), up + rng.uniform());
                frames.push(if family == Family::Print {
                    turned_print(&picture, yaw, up, next_seed())
                } else {
                    phone_screen(&picture, yaw, up, next_seed())
                });
            }
        }
    }
    let mut t = 0.0;
    let times = (0..frames.len())
        .map(|_| {
            t += 200.0 + 20.0 * f64::from(rng.uniform());
            t
        })
        .collect();
    (frames, times)
}

/// Every challenge of two or three distinct consecutive steps.
pub fn all_challenges() -> Vec<Vec<Step>> {
    let mut out = Vec::new();
    for a in Step::ALL {
        for b in Step::ALL {
            if a == b {
                continue;
            }
            out.push(vec![a, b]);
            for c in Step::ALL {
                if c != b {
                    out.push(vec![a, b, c]);
                }
            }
        }
    }
    out
}
