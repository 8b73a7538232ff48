//! MTCNN face detection: an image pyramid through P-Net, then R-Net and
//! O-Net refinement, with non-maximum suppression, box regression and five
//! landmarks (eyes, nose, mouth corners). The networks run in fixed point
//! ([`crate::fixed_net`]) where the CPU allows, else with ONNX Runtime.

use image::RgbImage;
use serde::{Deserialize, Serialize};

use crate::decode::fit_within;
use crate::error::VisionError;
use crate::fixed_net::{Isa, NetMap};
use crate::models::ModelDir;
use crate::resample::Integral;
use crate::runtime::SessionOptions;

mod boxes;
mod nets;
mod track;

use boxes::{nms, vote_landmarks, Candidate, Overlap};
pub use boxes::{BoundingBox, DetectedFace};
use nets::{Cascade, Crops, Level, Scored, OUTPUTS};

/// Detector settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct DetectorConfig {
    /// Smallest face looked for, in pixels of the (possibly downscaled) image.
    pub min_face: f32,
    /// Scale step between pyramid levels.
    pub scale_factor: f32,
    /// Score thresholds of P-, R- and O-Net.
    pub thresholds: [f32; 3],
    /// Images are downscaled to this longer side before detection;
    /// boxes and landmarks are mapped back to the full image.
    pub max_side: u32,
    /// Runs the three networks in fixed point
    /// (`models/mtcnn_*_fixed.json`) where the CPU has AVX-512 VNNI or
    /// AVX2, several times faster than the ONNX models; `false` always uses
    /// the ONNX models.
    pub fixed_point: bool,
}

impl Default for DetectorConfig {
    fn default() -> Self {
        DetectorConfig {
            min_face: 20.0,
            scale_factor: 0.709,
            thresholds: [0.7, 0.7, 0.7],
            max_side: 1280,
            fixed_point: true,
        }
    }
}

/// The MTCNN cascade.
pub(crate) struct Detector {
    nets: Cascade,
    fixed_point: bool,
    config: DetectorConfig,
}

impl Detector {
    pub fn load(
        dir: &ModelDir,
        opts: &SessionOptions,
        config: DetectorConfig,
    ) -> Result<Self, VisionError> {
        let isa = Isa::best().filter(|_| config.fixed_point);
        let nets = Cascade::load(dir, opts, isa)?;
        Ok(Detector {
            nets,
            fixed_point: isa.is_some(),
            config,
        })
    }

    /// Whether the networks run in fixed point on this machine.
    pub fn fixed_point(&self) -> bool {
        self.fixed_point
    }

    /// How the networks run on this machine, for logs and reports:
    /// `fixed-point (AVX-512 VNNI)`, `fixed-point (AVX2)` or `ONNX Runtime`.
    pub fn backend(&self) -> &'static str {
        self.nets.pnet.backend()
    }

    /// Finds every face in `img`, best score first.
    pub fn detect(&self, img: &RgbImage) -> Result<Vec<DetectedFace>, VisionError> {
        let long = img.width().max(img.height());
        if long > self.config.max_side {
            let small = fit_within(img, self.config.max_side);
            let back = long as f32 / small.width().max(small.height()) as f32;
            let faces = self.detect_at_scale(&small)?;
            return Ok(faces.into_iter().map(|f| f.scaled(back)).collect());
        }
        self.detect_at_scale(img)
    }

    fn detect_at_scale(&self, img: &RgbImage) -> Result<Vec<DetectedFace>, VisionError> {
        let integral = Integral::new(img);
        let cands = self.proposals(img, &integral)?;
        if cands.is_empty() {
            return Ok(Vec::new());
        }
        let cands = self.refine(&integral, cands)?;
        if cands.is_empty() {
            return Ok(Vec::new());
        }
        self.output(&integral, cands)
    }

    /// Pyramid scales: the first maps `min_face` to P-Net's 12-pixel window.
    fn scales(&self, w: u32, h: u32) -> Vec<f32> {
        let m = 12.0 / self.config.min_face.max(12.0);
        let mut min_side = w.min(h) as f32 * m;
        let mut scale = m;
        let mut out = Vec::new();
        while min_side >= 12.0 {
            out.push(scale);
            scale *= self.config.scale_factor;
            min_side *= self.config.scale_factor;
        }
        out
    }

    /// Stage 1: P-Net over the pyramid.
    fn proposals(
        &self,
        img: &RgbImage,
        integral: &Integral,
    ) -> Result<Vec<Candidate>, VisionError> {
        let mut all = Vec::new();
        for scale in self.scales(img.width(), img.height()) {
            let sw = (img.width() as f32 * scale + 1.0) as usize;
            let sh = (img.height() as f32 * scale + 1.0) as usize;
            let map = self.pnet_level(integral, sw, sh)?;
            let (oh, ow) = (map.h, map.w);
            // p ≥ threshold  ⇔  l1 − l0 ≥ ln(threshold / (1 − threshold)).
            let t = self.config.thresholds[0].clamp(1e-6, 1.0 - 1e-6);
            let min_margin = (t / (1.0 - t)).ln();
            let mut level = Vec::new();
            for y in 0..oh {
                for x in 0..ow {
                    let cell = &map.data[(y * ow + x) * OUTPUTS..][..OUTPUTS];
                    let margin = cell[1] - cell[0];
                    if margin < min_margin {
                        continue;
                    }
                    let p = 1.0 / (1.0 + (-margin).exp());
                    let q1x = ((2.0 * x as f32 + 1.0) / scale).floor();
                    let q1y = ((2.0 * y as f32 + 1.0) / scale).floor();
                    let q2x = ((2.0 * x as f32 + 12.0) / scale).floor();
                    let q2y = ((2.0 * y as f32 + 12.0) / scale).floor();
                    let r = [cell[2], cell[3], cell[4], cell[5]];
                    let bbox = BoundingBox {
                        x1: q1x,
                        y1: q1y,
                        x2: q2x,
                        y2: q2y,
                    };
                    level.push((Candidate { bbox, score: p }, r));
                }
            }
            let (cands, regs): (Vec<Candidate>, Vec<[f32; 4]>) = level.into_iter().unzip();
            for k in nms(&cands, 0.5, Overlap::Union) {
                all.push((cands[k], regs[k]));
            }
        }
        let (cands, regs): (Vec<Candidate>, Vec<[f32; 4]>) = all.into_iter().unzip();
        Ok(nms(&cands, 0.7, Overlap::Union)
            .into_iter()
            .map(|k| Candidate {
                bbox: cands[k].bbox.regress(&regs[k], false).square(),
                score: cands[k].score,
            })
            .collect())
    }

    /// P-Net over one `sw × sh` pyramid level.
    fn pnet_level(&self, integral: &Integral, sw: usize, sh: usize) -> Result<NetMap, VisionError> {
        self.nets.pnet.run(&Level {
            integral,
            w: sw,
            h: sh,
        })
    }

    /// R-Net (`onet` false, 24-pixel crops) or O-Net (48) on every
    /// candidate.
    fn score(
        &self,
        integral: &Integral,
        cands: &[Candidate],
        onet: bool,
    ) -> Result<Vec<Scored>, VisionError> {
        let (net, size) = if onet {
            (&self.nets.onet, 48)
        } else {
            (&self.nets.rnet, 24)
        };
        net.run(&Crops {
            integral,
            cands,
            size,
        })
    }

    /// Stage 2: R-Net rejects most proposals and tightens the rest.
    fn refine(&self, img: &Integral, cands: Vec<Candidate>) -> Result<Vec<Candidate>, VisionError> {
        let scored = self.score(img, &cands, false)?;
        let (cands, regs): (Vec<Candidate>, Vec<[f32; 4]>) = cands
            .iter()
            .zip(scored)
            .filter(|(_, s)| s.prob > self.config.thresholds[1])
            .map(|(c, s)| {
                let bbox = c.bbox;
                (
                    Candidate {
                        bbox,
                        score: s.prob,
                    },
                    s.reg,
                )
            })
            .unzip();
        Ok(nms(&cands, 0.7, Overlap::Union)
            .into_iter()
            .map(|k| Candidate {
                bbox: cands[k].bbox.regress(&regs[k], true).square(),
                score: cands[k].score,
            })
            .collect())
    }

    /// Stage 3: O-Net gives the final score, box and landmarks.
    fn output(
        &self,
        img: &Integral,
        cands: Vec<Candidate>,
    ) -> Result<Vec<DetectedFace>, VisionError> {
        let scored = self.score(img, &cands, true)?;
        let mut faces = Vec::new();
        for (c, s) in cands.iter().zip(scored) {
            if s.prob <= self.config.thresholds[2] {
                continue;
            }
            let (w, h) = (c.bbox.width() + 1.0, c.bbox.height() + 1.0);
            let p = &s.marks;
            let landmarks = std::array::from_fn(|k| {
                [c.bbox.x1 - 1.0 + p[k] * w, c.bbox.y1 - 1.0 + p[k + 5] * h]
            });
            faces.push(DetectedFace {
                bbox: c.bbox.regress(&s.reg, true),
                score: s.prob,
                landmarks,
            });
        }
        let cands: Vec<Candidate> = faces
            .iter()
            .map(|f| Candidate {
                bbox: f.bbox,
                score: f.score,
            })
            .collect();
        Ok(nms(&cands, 0.7, Overlap::Min)
            .into_iter()
            .map(|k| vote_landmarks(&faces[k], &faces))
            .collect())
    }
}
