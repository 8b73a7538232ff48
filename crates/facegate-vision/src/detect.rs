//! MTCNN face detection: an image pyramid through P-Net, then batched
//! R-Net and O-Net refinement, with non-maximum suppression, box regression
//! and five landmarks (eyes, nose, mouth corners).

use image::RgbImage;
use serde::{Deserialize, Serialize};

use crate::decode::fit_within;
use crate::error::VisionError;
use crate::models::ModelDir;
use crate::resample::{Integral, Region};
use crate::runtime::{SessionOptions, SessionPool};

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
}

impl Default for DetectorConfig {
    fn default() -> Self {
        DetectorConfig {
            min_face: 20.0,
            scale_factor: 0.709,
            thresholds: [0.7, 0.7, 0.7],
            max_side: 1280,
        }
    }
}

/// An axis-aligned box in pixel coordinates.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BoundingBox {
    pub x1: f32,
    pub y1: f32,
    pub x2: f32,
    pub y2: f32,
}

impl BoundingBox {
    pub fn width(&self) -> f32 {
        self.x2 - self.x1
    }
    pub fn height(&self) -> f32 {
        self.y2 - self.y1
    }
    fn area(&self) -> f32 {
        self.width().max(0.0) * self.height().max(0.0)
    }
    fn intersection(&self, o: &BoundingBox) -> f32 {
        let w = (self.x2.min(o.x2) - self.x1.max(o.x1)).max(0.0);
        let h = (self.y2.min(o.y2) - self.y1.max(o.y1)).max(0.0);
        w * h
    }
    /// Intersection over union.
    pub fn iou(&self, o: &BoundingBox) -> f32 {
        let inter = self.intersection(o);
        let union = self.area() + o.area() - inter;
        if union > 0.0 {
            inter / union
        } else {
            0.0
        }
    }
    /// The square of the same centre whose side is the longer side.
    fn square(&self) -> BoundingBox {
        let (w, h) = (self.width(), self.height());
        let l = w.max(h);
        let x1 = self.x1 + 0.5 * (w - l);
        let y1 = self.y1 + 0.5 * (h - l);
        BoundingBox {
            x1,
            y1,
            x2: x1 + l,
            y2: y1 + l,
        }
    }
    /// Applies a regression `[dx1, dy1, dx2, dy2]` relative to the box
    /// size; `inclusive` counts sizes as MTCNN's R- and O-Net stages do
    /// (a box covers `x2 − x1 + 1` pixels).
    fn regress(&self, r: &[f32], inclusive: bool) -> BoundingBox {
        let extra = if inclusive { 1.0 } else { 0.0 };
        let (w, h) = (self.width() + extra, self.height() + extra);
        BoundingBox {
            x1: self.x1 + r[0] * w,
            y1: self.y1 + r[1] * h,
            x2: self.x2 + r[2] * w,
            y2: self.y2 + r[3] * h,
        }
    }
    /// The box with every coordinate multiplied by `s`.
    pub fn scaled(&self, s: f32) -> BoundingBox {
        BoundingBox {
            x1: self.x1 * s,
            y1: self.y1 * s,
            x2: self.x2 * s,
            y2: self.y2 * s,
        }
    }
}

/// A detected face: box, confidence and five landmarks
/// (left eye, right eye, nose, left and right mouth corner, as seen in the image).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DetectedFace {
    pub bbox: BoundingBox,
    pub score: f32,
    pub landmarks: [[f32; 2]; 5],
}

#[derive(Clone, Copy)]
struct Candidate {
    bbox: BoundingBox,
    score: f32,
}

enum Overlap {
    Union,
    Min,
}

/// Greedy non-maximum suppression; returns the indices of the kept
/// candidates, best first.
fn nms(cands: &[Candidate], threshold: f32, overlap: Overlap) -> Vec<usize> {
    let mut order: Vec<usize> = (0..cands.len()).collect();
    order.sort_by(|&a, &b| cands[b].score.total_cmp(&cands[a].score));
    let mut keep: Vec<usize> = Vec::with_capacity(cands.len());
    for i in order {
        let c = &cands[i].bbox;
        let suppressed = keep.iter().any(|&k| {
            let k = &cands[k].bbox;
            let inter = k.intersection(c);
            let denom = match overlap {
                Overlap::Union => k.area() + c.area() - inter,
                Overlap::Min => k.area().min(c.area()),
            };
            denom > 0.0 && inter / denom > threshold
        });
        if !suppressed {
            keep.push(i);
        }
    }
    keep
}

/// The MTCNN cascade.
pub struct Detector {
    pnet: SessionPool,
    rnet: SessionPool,
    onet: SessionPool,
    config: DetectorConfig,
}

impl Detector {
    pub fn load(
        dir: &ModelDir,
        opts: &SessionOptions,
        config: DetectorConfig,
    ) -> Result<Self, VisionError> {
        Ok(Detector {
            pnet: SessionPool::load_lean(
                "mtcnn_pnet",
                &dir.read_verified("mtcnn_pnet.onnx", None)?,
                opts,
            )?,
            rnet: SessionPool::load(
                "mtcnn_rnet",
                &dir.read_verified("mtcnn_rnet.onnx", None)?,
                opts,
            )?,
            onet: SessionPool::load(
                "mtcnn_onet",
                &dir.read_verified("mtcnn_onet.onnx", None)?,
                opts,
            )?,
            config,
        })
    }

    pub fn config(&self) -> &DetectorConfig {
        &self.config
    }

    /// Finds every face in `img`, best score first.
    pub fn detect(&self, img: &RgbImage) -> Result<Vec<DetectedFace>, VisionError> {
        let long = img.width().max(img.height());
        if long > self.config.max_side {
            let small = fit_within(img, self.config.max_side);
            let back = long as f32 / small.width().max(small.height()) as f32;
            let faces = self.detect_at_scale(&small)?;
            return Ok(faces
                .into_iter()
                .map(|f| DetectedFace {
                    bbox: f.bbox.scaled(back),
                    score: f.score,
                    landmarks: f.landmarks.map(|[x, y]| [x * back, y * back]),
                })
                .collect());
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

    /// Faces in `img`, a frame of a sequence whose previous frame showed a
    /// face in `previous` (a box in `img`'s coordinates): O-Net runs
    /// directly on that box and on small shifts of it, since a head moves
    /// little between frames, while P- and R-Net only search the rest of
    /// the image for other faces. About half the cost of [`Self::detect`];
    /// falls back to it when the face is not found near its last place.
    pub fn detect_tracked(
        &self,
        img: &RgbImage,
        previous: &BoundingBox,
    ) -> Result<Vec<DetectedFace>, VisionError> {
        if img.width().max(img.height()) > self.config.max_side {
            return self.detect(img);
        }
        let integral = Integral::new(img);
        let prev = previous.square();
        let side = prev.width();
        let d = 0.06 * side;
        let mut cands: Vec<Candidate> = [(-d, -d), (d, -d), (-d, d), (d, d)]
            .iter()
            .map(|&(dx, dy)| Candidate {
                bbox: BoundingBox {
                    x1: (prev.x1 + dx).round(),
                    y1: (prev.y1 + dy).round(),
                    x2: (prev.x2 + dx).round(),
                    y2: (prev.y2 + dy).round(),
                },
                score: 1.0,
            })
            .collect();
        let elsewhere: Vec<Candidate> = self
            .proposals(img, &integral)?
            .into_iter()
            .filter(|c| {
                let inter = prev.intersection(&c.bbox);
                inter < 0.3 * prev.area().min(c.bbox.area())
            })
            .collect();
        if !elsewhere.is_empty() {
            cands.extend(self.refine(&integral, elsewhere)?);
        }
        let faces = self.output(&integral, cands)?;
        if faces.iter().any(|f| prev.iou(&f.bbox) >= 0.3) {
            Ok(faces)
        } else {
            self.detect_at_scale(img)
        }
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
            let planes = integral.resample(sw, sh);
            let out = self.pnet.run(
                "input",
                &[1, 3, planes.h, planes.w],
                &planes.data,
                &["reg", "logits"],
            )?;
            let (reg, logits) = (&out[0], &out[1]);
            let (oh, ow) = (logits.shape[2], logits.shape[3]);
            // p ≥ threshold  ⇔  l1 − l0 ≥ ln(threshold / (1 − threshold)).
            let t = self.config.thresholds[0].clamp(1e-6, 1.0 - 1e-6);
            let min_margin = (t / (1.0 - t)).ln();
            let cells = oh * ow;
            let mut level = Vec::new();
            for y in 0..oh {
                for x in 0..ow {
                    let i = y * ow + x;
                    let margin = logits.data[cells + i] - logits.data[i];
                    if margin < min_margin {
                        continue;
                    }
                    let p = 1.0 / (1.0 + (-margin).exp());
                    let q1x = ((2.0 * x as f32 + 1.0) / scale).floor();
                    let q1y = ((2.0 * y as f32 + 1.0) / scale).floor();
                    let q2x = ((2.0 * x as f32 + 12.0) / scale).floor();
                    let q2y = ((2.0 * y as f32 + 12.0) / scale).floor();
                    let r = [
                        reg.data[i],
                        reg.data[cells + i],
                        reg.data[2 * cells + i],
                        reg.data[3 * cells + i],
                    ];
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

    /// Crops every candidate's square (zero-padded past the border) into one batch.
    fn crop_batch(img: &Integral, cands: &[Candidate], size: usize) -> Vec<f32> {
        let plane = 3 * size * size;
        let mut batch = vec![0f32; cands.len() * plane];
        for (c, out) in cands.iter().zip(batch.chunks_mut(plane)) {
            let x0 = c.bbox.x1.trunc() as i64 - 1;
            let y0 = c.bbox.y1.trunc() as i64 - 1;
            let w = (c.bbox.x2.trunc() as i64 - x0).max(1) as usize;
            let h = (c.bbox.y2.trunc() as i64 - y0).max(1) as usize;
            img.resample_region(Region { x0, y0, w, h }, size, size, out);
        }
        batch
    }

    /// Stage 2: R-Net rejects most proposals and tightens the rest.
    fn refine(&self, img: &Integral, cands: Vec<Candidate>) -> Result<Vec<Candidate>, VisionError> {
        let batch = Self::crop_batch(img, &cands, 24);
        let out = self
            .rnet
            .run("input", &[cands.len(), 3, 24, 24], &batch, &["reg", "prob"])?;
        let (reg, prob) = (&out[0], &out[1]);
        let passed: Vec<(Candidate, [f32; 4])> = cands
            .iter()
            .enumerate()
            .filter_map(|(i, c)| {
                let score = prob.data[i * 2 + 1];
                (score > self.config.thresholds[1]).then(|| {
                    let r = &reg.data[i * 4..i * 4 + 4];
                    (
                        Candidate {
                            bbox: c.bbox,
                            score,
                        },
                        [r[0], r[1], r[2], r[3]],
                    )
                })
            })
            .collect();
        let (cands, regs): (Vec<Candidate>, Vec<[f32; 4]>) = passed.into_iter().unzip();
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
        let batch = Self::crop_batch(img, &cands, 48);
        let out = self.onet.run(
            "input",
            &[cands.len(), 3, 48, 48],
            &batch,
            &["reg", "landmarks", "prob"],
        )?;
        let (reg, marks, prob) = (&out[0], &out[1], &out[2]);
        let mut faces = Vec::new();
        for (i, c) in cands.iter().enumerate() {
            let score = prob.data[i * 2 + 1];
            if score <= self.config.thresholds[2] {
                continue;
            }
            let (w, h) = (c.bbox.width() + 1.0, c.bbox.height() + 1.0);
            let p = &marks.data[i * 10..i * 10 + 10];
            let landmarks = std::array::from_fn(|k| {
                [c.bbox.x1 - 1.0 + p[k] * w, c.bbox.y1 - 1.0 + p[k + 5] * h]
            });
            let bbox = c.bbox.regress(&reg.data[i * 4..i * 4 + 4], true);
            faces.push(DetectedFace {
                bbox,
                score,
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

/// `face` with its landmarks averaged, weighted by score, over every O-Net
/// output whose box overlaps its own (IoU ≥ 0.5), its own included. One
/// O-Net pass moves its landmarks by several pixels when its input box
/// moves by a few, enough to swing the head pose estimated from them by ten
/// degrees; the overlapping outputs are such shifted boxes of the same face,
/// and their average is much steadier.
fn vote_landmarks(face: &DetectedFace, all: &[DetectedFace]) -> DetectedFace {
    let mut sum = [[0f32; 2]; 5];
    let mut total = 0f32;
    for other in all {
        if face.bbox.iou(&other.bbox) < 0.5 {
            continue;
        }
        for (s, l) in sum.iter_mut().zip(other.landmarks) {
            s[0] += other.score * l[0];
            s[1] += other.score * l[1];
        }
        total += other.score;
    }
    if total <= 0.0 {
        return *face;
    }
    DetectedFace {
        landmarks: sum.map(|[x, y]| [x / total, y / total]),
        ..*face
    }
}
