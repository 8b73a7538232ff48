//! Boxes and their bookkeeping for the detector: the box and face types,
//! candidates, non-maximum suppression and landmark voting over
//! overlapping outputs.

use serde::{Deserialize, Serialize};

/// A detected face: box, confidence and five landmarks
/// (left eye, right eye, nose, left and right mouth corner, as seen in the image).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DetectedFace {
    pub bbox: BoundingBox,
    pub score: f32,
    pub landmarks: [[f32; 2]; 5],
}

impl DetectedFace {
    /// The face with every coordinate multiplied by `s` (back to the
    /// image a shrunk copy was made from).
    pub fn scaled(&self, s: f32) -> DetectedFace {
        DetectedFace {
            bbox: self.bbox.scaled(s),
            score: self.score,
            landmarks: self.landmarks.map(|[x, y]| [x * s, y * s]),
        }
    }

    /// The face moved by (`dx`, `dy`).
    pub(super) fn moved(&self, dx: f32, dy: f32) -> DetectedFace {
        DetectedFace {
            bbox: self.bbox.moved(dx, dy),
            score: self.score,
            landmarks: self.landmarks.map(|[x, y]| [x + dx, y + dy]),
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
    pub(super) fn area(&self) -> f32 {
        self.width().max(0.0) * self.height().max(0.0)
    }
    pub(super) fn intersection(&self, o: &BoundingBox) -> f32 {
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
    pub(super) fn square(&self) -> BoundingBox {
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
    pub(super) fn regress(&self, r: &[f32], inclusive: bool) -> BoundingBox {
        let extra = if inclusive { 1.0 } else { 0.0 };
        let (w, h) = (self.width() + extra, self.height() + extra);
        BoundingBox {
            x1: self.x1 + r[0] * w,
            y1: self.y1 + r[1] * h,
            x2: self.x2 + r[2] * w,
            y2: self.y2 + r[3] * h,
        }
    }
    /// The box moved by (`dx`, `dy`).
    pub(super) fn moved(&self, dx: f32, dy: f32) -> BoundingBox {
        BoundingBox {
            x1: self.x1 + dx,
            y1: self.y1 + dy,
            x2: self.x2 + dx,
            y2: self.y2 + dy,
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

#[derive(Clone, Copy)]
pub(super) struct Candidate {
    pub(super) bbox: BoundingBox,
    pub(super) score: f32,
}

pub(super) enum Overlap {
    Union,
    Min,
}

/// Greedy non-maximum suppression; returns the indices of the kept
/// candidates, best first.
pub(super) fn nms(cands: &[Candidate], threshold: f32, overlap: Overlap) -> Vec<usize> {
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

/// `face` with its landmarks averaged, weighted by score, over every O-Net
/// output whose box overlaps its own (IoU ≥ 0.5), its own included. One
/// O-Net pass moves its landmarks by several pixels when its input box
/// moves by a few, enough to swing the head pose estimated from them by ten
/// degrees; the overlapping outputs are such shifted boxes of the same face,
/// and their average is much steadier.
pub(super) fn vote_landmarks(face: &DetectedFace, all: &[DetectedFace]) -> DetectedFace {
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
