//! Faces in the frames of a sequence: tracking a face from the previous
//! frame's box (O-Net on small shifts of it, P- and R-Net only for other
//! faces), and measuring a face found on a shrunk frame again on the frame
//! itself, whose landmarks the identity check's alignment needs.

use image::RgbImage;

use super::boxes::{BoundingBox, Candidate, DetectedFace};
use super::Detector;
use crate::error::VisionError;
use crate::resample::Integral;

impl Detector {
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
        let mut cands = shifts(&prev);
        let elsewhere = self.proposals_away(img, &integral, &prev)?;
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

    /// The face at `bbox` (found on a shrunk copy of `img`, in `img`'s
    /// coordinates) measured again by O-Net on `img` itself, from the
    /// box's four diagonal shifts as in tracking: the landmarks of a face
    /// found a dozen pixels wide are too coarse to align it. `None` when
    /// O-Net sees no face there.
    pub fn refine_at(
        &self,
        img: &RgbImage,
        bbox: &BoundingBox,
    ) -> Result<Option<DetectedFace>, VisionError> {
        let square = bbox.square();
        // Only the pixels around the box are summed: a margin wider than
        // the shifts, clamped to the image (outside it is black either way).
        let margin = 0.1 * square.width();
        let clamp = |v: f32, max: u32| v.clamp(0.0, max as f32) as u32;
        let (x0, y0) = (
            clamp((square.x1 - margin).floor(), img.width()),
            clamp((square.y1 - margin).floor(), img.height()),
        );
        let (x1, y1) = (
            clamp((square.x2 + margin).ceil(), img.width()),
            clamp((square.y2 + margin).ceil(), img.height()),
        );
        if x1 <= x0 || y1 <= y0 {
            return Ok(None);
        }
        let integral = Integral::of_region(img, x0, y0, x1 - x0, y1 - y0);
        let (dx, dy) = (x0 as f32, y0 as f32);
        let faces = self.output(&integral, shifts(&square.moved(-dx, -dy)))?;
        Ok(faces
            .into_iter()
            .map(|f| f.moved(dx, dy))
            .find(|f| square.iou(&f.bbox) >= 0.3))
    }

    /// Faces in `img` looked for on `small`, a copy shrunk `back` times
    /// (cheaper), each face's box and landmarks then measured by O-Net on
    /// `img` itself ([`Self::refine_at`]). `previous`, the face's box in the
    /// previous frame of a sequence (in `img`'s coordinates), is tracked as
    /// in [`Self::detect_tracked`]: O-Net on `img` around it, P- and R-Net
    /// on `small` for other faces. Boxes and landmarks in `img`'s
    /// coordinates, the tracked face first.
    pub fn detect_shrunk(
        &self,
        small: &RgbImage,
        img: &RgbImage,
        back: f32,
        previous: Option<&BoundingBox>,
    ) -> Result<Vec<DetectedFace>, VisionError> {
        if let Some(prev) = previous {
            if let Some(faces) = self.track_shrunk(small, img, back, prev)? {
                return Ok(faces);
            }
        }
        self.detect(small)?
            .into_iter()
            .map(|f| {
                let f = f.scaled(back);
                Ok(self.refine_at(img, &f.bbox)?.unwrap_or(f))
            })
            .collect()
    }

    /// [`Self::detect_shrunk`] with the face's previous box `prev`: the face
    /// measured on `img` around it (again where it is now, when it moved
    /// far), other faces looked for on `small`. `None` when the face is not
    /// near its last place.
    fn track_shrunk(
        &self,
        small: &RgbImage,
        img: &RgbImage,
        back: f32,
        prev: &BoundingBox,
    ) -> Result<Option<Vec<DetectedFace>>, VisionError> {
        let Some(mut tracked) = self.refine_at(img, prev)? else {
            return Ok(None);
        };
        // O-Net's landmarks are best on a box centred on the face.
        if moved_far(prev, &tracked.bbox) {
            tracked = self.refine_at(img, &tracked.bbox)?.unwrap_or(tracked);
        }
        let integral = Integral::new(small);
        let around = tracked.bbox.scaled(1.0 / back).square();
        let elsewhere = self.proposals_away(small, &integral, &around)?;
        let tracked_box = tracked.bbox;
        let mut faces = vec![tracked];
        if !elsewhere.is_empty() {
            let others = self.refine(&integral, elsewhere)?;
            let others = self.output(&integral, others)?;
            // The tracked face found again on `small` is not another.
            let others = others.into_iter().map(|f| f.scaled(back));
            faces.extend(others.filter(|f| !same_face(&tracked_box, &f.bbox)));
        }
        Ok(Some(faces))
    }

    /// P-Net proposals of `img` that do not overlap `square` (a tracked
    /// face's box) by 30 % of the smaller box or more.
    fn proposals_away(
        &self,
        img: &RgbImage,
        integral: &Integral,
        square: &BoundingBox,
    ) -> Result<Vec<Candidate>, VisionError> {
        Ok(self
            .proposals(img, integral)?
            .into_iter()
            .filter(|c| {
                let inter = square.intersection(&c.bbox);
                inter < 0.3 * square.area().min(c.bbox.area())
            })
            .collect())
    }
}

/// Four small diagonal shifts of a square box, O-Net's inputs around a
/// face's last place (a head moves little between frames).
fn shifts(square: &BoundingBox) -> Vec<Candidate> {
    let d = 0.06 * square.width();
    [(-d, -d), (d, -d), (-d, d), (d, d)]
        .iter()
        .map(|&(dx, dy)| Candidate {
            bbox: BoundingBox {
                x1: (square.x1 + dx).round(),
                y1: (square.y1 + dy).round(),
                x2: (square.x2 + dx).round(),
                y2: (square.y2 + dy).round(),
            },
            score: 1.0,
        })
        .collect()
}

/// Whether a face's box moved by more than a tenth of its side since `prev`.
fn moved_far(prev: &BoundingBox, now: &BoundingBox) -> bool {
    let centre = |b: &BoundingBox| ((b.x1 + b.x2) / 2.0, (b.y1 + b.y2) / 2.0);
    let ((px, py), (nx, ny)) = (centre(prev), centre(now));
    (px - nx).hypot(py - ny) > 0.1 * prev.width().max(prev.height())
}

/// Whether two boxes are the same face, as non-maximum suppression of the
/// detector's last stage would judge them (overlap ≥ 70 % of the smaller).
fn same_face(a: &BoundingBox, b: &BoundingBox) -> bool {
    a.intersection(b) >= 0.7 * a.area().min(b.area())
}
