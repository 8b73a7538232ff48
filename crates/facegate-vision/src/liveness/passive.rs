//! Passive liveness cues on one frame, and the engine side of active
//! liveness (reducing a frame to a [`FrameObservation`]).
//!
//! Cues: the FaceAntiSpoofing network's score ([`super::antispoof`]); the
//! share of the face's spectral energy at high frequencies (a screen's pixel
//! grid and a print's halftone leave moiré there); the fraction of
//! near-white pixels on the face (glare on glass or glossy paper); and the
//! face's sharpness (recaptures are often soft). Each cue has a threshold in
//! [`PassiveConfig`]; [`PassiveScores::failing`] names the first one crossed.

use image::RgbImage;
use serde::{Deserialize, Serialize};

use super::challenge::{thumbnail, FrameObservation};
use super::Pipeline;
use crate::detect::{BoundingBox, DetectedFace};
use crate::error::VisionError;

/// What a cue past its threshold does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CueAction {
    /// The face is refused as a presentation attack.
    Refuse,
    /// The person is asked for a second step (another challenge, or the
    /// password where the mode allows) instead of being refused.
    StepUp,
    /// The cue is measured and recorded but decides nothing.
    Record,
}

/// Thresholds of the passive cues (defaults in docs/LIVENESS.md).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PassiveConfig {
    /// Network score above which a face is suspect (its authors use 0.2;
    /// see docs/LIVENESS.md for why the default is higher).
    pub max_net_score: f32,
    /// What a network score above `max_net_score` does.
    pub net_action: CueAction,
    /// Largest share of spectral energy beyond half the Nyquist frequency.
    pub max_hf_energy: f32,
    /// Largest fraction of near-white pixels on the face.
    pub max_glare: f32,
    /// Smallest Laplacian variance of the aligned face (0 turns it off).
    pub min_sharpness: f32,
    /// Frames of a challenge answer the network runs on, the most frontal
    /// first: 0 (the default) runs it on none, 1 or 2 (each costs about
    /// 75 ms on one core). The other cues always run on the most frontal
    /// frame, and a single frame (`passive`) always gets the network.
    pub frames: usize,
}

impl Default for PassiveConfig {
    fn default() -> Self {
        PassiveConfig {
            max_net_score: 0.5,
            net_action: CueAction::StepUp,
            max_hf_energy: 0.2,
            max_glare: 0.06,
            min_sharpness: 0.0,
            frames: 0,
        }
    }
}

/// The passive cues measured on one face.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PassiveScores {
    /// The network's score, when it ran (see [`PassiveConfig::frames`]).
    pub net: Option<f32>,
    pub hf_energy: f32,
    pub glare: f32,
    pub sharpness: f32,
}

/// What the passive cues of one face decide.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "decision", content = "cue")]
pub enum PassiveDecision {
    Pass,
    /// A cue whose action is [`CueAction::StepUp`] is past its threshold
    /// (and none that refuses).
    StepUp(&'static str),
    /// A cue that refuses is past its threshold.
    Refuse(&'static str),
}

impl PassiveDecision {
    pub fn as_str(&self) -> &'static str {
        match self {
            PassiveDecision::Pass => "pass",
            PassiveDecision::StepUp(_) => "step_up",
            PassiveDecision::Refuse(_) => "refuse",
        }
    }
}

impl PassiveScores {
    /// Every cue past its threshold, with what it does, in order.
    fn crossed(&self, cfg: &PassiveConfig) -> Vec<(&'static str, CueAction)> {
        let mut out = Vec::new();
        if self.net.is_some_and(|n| n > cfg.max_net_score) {
            out.push(("net", cfg.net_action));
        }
        if self.hf_energy > cfg.max_hf_energy {
            out.push(("moire", CueAction::Refuse));
        }
        if self.glare > cfg.max_glare {
            out.push(("glare", CueAction::Refuse));
        }
        if self.sharpness < cfg.min_sharpness {
            out.push(("blur", CueAction::Refuse));
        }
        out
    }

    /// The first cue past its threshold that refuses, if any.
    pub fn failing(&self, cfg: &PassiveConfig) -> Option<&'static str> {
        self.crossed(cfg)
            .into_iter()
            .find(|c| c.1 == CueAction::Refuse)
            .map(|c| c.0)
    }

    /// The first cue past its threshold that asks for a second step.
    pub fn doubt(&self, cfg: &PassiveConfig) -> Option<&'static str> {
        self.crossed(cfg)
            .into_iter()
            .find(|c| c.1 == CueAction::StepUp)
            .map(|c| c.0)
    }

    /// Refuse, step up or pass.
    pub fn decide(&self, cfg: &PassiveConfig) -> PassiveDecision {
        match (self.failing(cfg), self.doubt(cfg)) {
            (Some(cue), _) => PassiveDecision::Refuse(cue),
            (None, Some(cue)) => PassiveDecision::StepUp(cue),
            (None, None) => PassiveDecision::Pass,
        }
    }
}

/// Side of the grey face crop the spectrum is taken on.
const SPECTRUM: usize = 64;

/// The square face box as a grey `SPECTRUM`² crop (bilinear; outside the
/// image clamps to the border).
fn grey_face(img: &RgbImage, face: &DetectedFace) -> Vec<f32> {
    let b = face.bbox;
    let side = b.width().max(b.height()).max(1.0);
    let (cx, cy) = ((b.x1 + b.x2) / 2.0, (b.y1 + b.y2) / 2.0);
    let (w, h) = (img.width() as i64, img.height() as i64);
    let at = |x: i64, y: i64| {
        let p = img.get_pixel(x.clamp(0, w - 1) as u32, y.clamp(0, h - 1) as u32);
        0.299 * f32::from(p[0]) + 0.587 * f32::from(p[1]) + 0.114 * f32::from(p[2])
    };
    let mut out = Vec::with_capacity(SPECTRUM * SPECTRUM);
    for j in 0..SPECTRUM {
        for i in 0..SPECTRUM {
            let x = cx - side / 2.0 + (i as f32 + 0.5) * side / SPECTRUM as f32 - 0.5;
            let y = cy - side / 2.0 + (j as f32 + 0.5) * side / SPECTRUM as f32 - 0.5;
            let (x0, y0) = (x.floor(), y.floor());
            let (fx, fy) = (x - x0, y - y0);
            let (x0, y0) = (x0 as i64, y0 as i64);
            let top = at(x0, y0) * (1.0 - fx) + at(x0 + 1, y0) * fx;
            let bottom = at(x0, y0 + 1) * (1.0 - fx) + at(x0 + 1, y0 + 1) * fx;
            out.push(top * (1.0 - fy) + bottom * fy);
        }
    }
    out
}

/// Share of the windowed face spectrum's energy (DC excluded) beyond half
/// the Nyquist frequency.
pub fn hf_energy(grey: &[f32]) -> f32 {
    let n = SPECTRUM;
    let mean = grey.iter().sum::<f32>() / grey.len().max(1) as f32;
    let hann: Vec<f32> = (0..n)
        .map(|i| 0.5 - 0.5 * (2.0 * std::f32::consts::PI * i as f32 / (n - 1) as f32).cos())
        .collect();
    let (cos, sin): (Vec<f32>, Vec<f32>) = (0..n)
        .map(|k| {
            let a = -2.0 * std::f32::consts::PI * k as f32 / n as f32;
            (a.cos(), a.sin())
        })
        .unzip();
    // Rows first, then columns (separable DFT).
    let mut re = vec![0.0f32; n * n];
    let mut im = vec![0.0f32; n * n];
    for y in 0..n {
        for u in 0..n {
            let (mut sr, mut si) = (0.0, 0.0);
            for x in 0..n {
                let v = (grey[y * n + x] - mean) * hann[x] * hann[y];
                let k = (u * x) % n;
                sr += v * cos[k];
                si += v * sin[k];
            }
            re[y * n + u] = sr;
            im[y * n + u] = si;
        }
    }
    let (mut high, mut total) = (0.0f64, 0.0f64);
    for u in 0..n {
        for v in 0..n {
            let (mut sr, mut si) = (0.0, 0.0);
            for y in 0..n {
                let k = (v * y) % n;
                let (a, b) = (re[y * n + u], im[y * n + u]);
                sr += a * cos[k] - b * sin[k];
                si += a * sin[k] + b * cos[k];
            }
            let fu = u.min(n - u) as f32;
            let fv = v.min(n - v) as f32;
            let r = (fu * fu + fv * fv).sqrt() / (n as f32 / 2.0);
            if r == 0.0 {
                continue;
            }
            let e = f64::from(sr * sr + si * si);
            total += e;
            if r > 0.5 {
                high += e;
            }
        }
    }
    if total <= 0.0 {
        0.0
    } else {
        (high / total) as f32
    }
}

/// Fraction of the face box's pixels that are near white in every channel.
pub fn glare(img: &RgbImage, face: &DetectedFace) -> f32 {
    let b = face.bbox;
    let x0 = b.x1.max(0.0) as u32;
    let y0 = b.y1.max(0.0) as u32;
    let x1 = (b.x2.max(0.0) as u32).min(img.width());
    let y1 = (b.y2.max(0.0) as u32).min(img.height());
    let (mut bright, mut all) = (0u32, 0u32);
    for y in y0..y1 {
        for x in x0..x1 {
            let p = img.get_pixel(x, y);
            all += 1;
            if p[0] >= 240 && p[1] >= 240 && p[2] >= 240 {
                bright += 1;
            }
        }
    }
    if all == 0 {
        0.0
    } else {
        bright as f32 / all as f32
    }
}

/// Every passive cue on one face; the network's only `with_net`.
pub(crate) fn passive_scores(
    p: &(impl Pipeline + ?Sized),
    img: &RgbImage,
    face: &DetectedFace,
    with_net: bool,
) -> Result<PassiveScores, VisionError> {
    Ok(PassiveScores {
        net: with_net.then(|| p.spoof_score(img, face)).transpose()?,
        hf_energy: hf_energy(&grey_face(img, face)),
        glare: glare(img, face),
        sharpness: p.sharpness(img, face),
    })
}

/// Reduces one challenge frame to what [`super::challenge::judge`] needs,
/// but for the embedding ([`super::sequence`] embeds the frames it picks);
/// also returns the face when there is exactly one, with its warp to the
/// embedding model's input. Faces smaller than
/// `min_face_px` are not looked for: the frame is shrunk so that they would
/// fall below the detector's smallest size, which makes detection several
/// times cheaper; quality and landmarks are measured on the full frame.
/// `previous` is the face's box in the previous frame, when it had one,
/// which detection tracks.
pub(crate) fn observe_frame(
    p: &(impl Pipeline + ?Sized),
    img: &RgbImage,
    t_ms: f64,
    min_face_px: f32,
    previous: Option<&BoundingBox>,
) -> Result<(FrameObservation, Option<(DetectedFace, RgbImage)>), VisionError> {
    let detector_min = p.min_face().max(12.0);
    let factor = (detector_min / min_face_px.max(detector_min)).min(1.0);
    let (detected, thumb) = if factor < 0.95 {
        let (w, h) = (
            ((img.width() as f32 * factor).round() as u32).max(1),
            ((img.height() as f32 * factor).round() as u32).max(1),
        );
        let small = crate::resample::shrink(img, w, h);
        let back = img.width() as f32 / w as f32;
        // Found small, a face's landmarks are coarse (a 100-pixel face is
        // 15 pixels there, too few to align it for the identity check):
        // O-Net measures each face on the frame itself.
        let faces = p.detect_shrunk(&small, img, back, previous)?;
        (faces, thumbnail(&small))
    } else {
        let faces = match previous {
            Some(b) => p.detect_tracked(img, b)?,
            None => p.detect(img)?,
        };
        (faces, thumbnail(img))
    };
    let mut faces: Vec<(DetectedFace, RgbImage)> = detected
        .into_iter()
        .filter_map(|f| match p.in_view_aligned(img, &f) {
            (true, aligned) => Some((f, aligned)),
            (false, _) => None,
        })
        .collect();
    let count = faces.len();
    let single = faces.pop().filter(|_| count == 1);
    let obs = FrameObservation {
        t_ms,
        faces: count,
        thumb,
        landmarks: single.as_ref().map(|(f, _)| f.landmarks),
        embedding: None,
        tint: single
            .as_ref()
            .map(|(_, a)| super::appearance::face_tint(a)),
        face_box: single.as_ref().map(|(f, _)| {
            let (w, h) = (img.width() as f32, img.height() as f32);
            [f.bbox.x1 / w, f.bbox.y1 / h, f.bbox.x2 / w, f.bbox.y2 / h]
        }),
    };
    Ok((obs, single))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fine_stripes_have_more_high_frequency_energy_than_smooth_shading() {
        let n = SPECTRUM;
        let smooth: Vec<f32> = (0..n * n)
            .map(|i| 100.0 + 0.5 * (i % n) as f32 + 0.3 * (i / n) as f32)
            .collect();
        let stripes: Vec<f32> = (0..n * n)
            .map(|i| 100.0 + 30.0 * (((i % n) * 3 / 2) % 2) as f32)
            .collect();
        let (s, m) = (hf_energy(&smooth), hf_energy(&stripes));
        assert!(s < 0.05 && m > 0.3, "{s} {m}");
    }

    #[test]
    fn the_network_asks_for_a_second_step_by_default_and_moire_refuses() {
        let cfg = PassiveConfig::default();
        let fine = PassiveScores {
            net: Some(0.01),
            hf_energy: 0.05,
            glare: 0.0,
            sharpness: 500.0,
        };
        assert_eq!(fine.decide(&cfg), PassiveDecision::Pass);
        let doubted = PassiveScores {
            net: Some(0.99),
            ..fine
        };
        assert_eq!(doubted.decide(&cfg), PassiveDecision::StepUp("net"));
        assert_eq!(doubted.failing(&cfg), None);
        let moire = PassiveScores {
            hf_energy: 0.3,
            ..doubted
        };
        assert_eq!(moire.decide(&cfg), PassiveDecision::Refuse("moire"));
        let strict = PassiveConfig {
            net_action: CueAction::Refuse,
            ..cfg
        };
        assert_eq!(doubted.decide(&strict), PassiveDecision::Refuse("net"));
        let record = PassiveConfig {
            net_action: CueAction::Record,
            ..strict
        };
        assert_eq!(doubted.decide(&record), PassiveDecision::Pass);
    }
}
