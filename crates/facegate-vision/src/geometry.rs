//! Plane geometry on landmarks: least-squares similarity transforms (for
//! alignment) and head-pose estimates.

/// Landmark positions of the standard 112×112 face template (left eye,
/// right eye, nose tip, left and right mouth corner) used by ArcFace-style
/// embedding models, MobileFaceNet among them.
pub const TEMPLATE_112: [[f32; 2]; 5] = [
    [38.2946, 51.6963],
    [73.5318, 51.5014],
    [56.0252, 71.7366],
    [41.5493, 92.3655],
    [70.7299, 92.2041],
];

/// A 2-D similarity transform `p ↦ [a −b; b a]·p + t` (rotation, uniform
/// scale, translation).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Similarity {
    pub a: f32,
    pub b: f32,
    pub tx: f32,
    pub ty: f32,
}

impl Similarity {
    /// The transform that maps `src` onto `dst` with the least squared error.
    pub fn fit(src: &[[f32; 2]], dst: &[[f32; 2]]) -> Similarity {
        let n = src.len().min(dst.len()).max(1) as f32;
        let mean = |pts: &[[f32; 2]]| {
            let (sx, sy) = pts
                .iter()
                .fold((0.0, 0.0), |(x, y), p| (x + p[0], y + p[1]));
            [sx / n, sy / n]
        };
        let (ms, md) = (mean(src), mean(dst));
        let (mut num_a, mut num_b, mut den) = (0.0f32, 0.0f32, 0.0f32);
        for (p, q) in src.iter().zip(dst) {
            let (px, py) = (p[0] - ms[0], p[1] - ms[1]);
            let (qx, qy) = (q[0] - md[0], q[1] - md[1]);
            num_a += px * qx + py * qy;
            num_b += px * qy - py * qx;
            den += px * px + py * py;
        }
        let (a, b) = if den > f32::EPSILON {
            (num_a / den, num_b / den)
        } else {
            (1.0, 0.0)
        };
        Similarity {
            a,
            b,
            tx: md[0] - (a * ms[0] - b * ms[1]),
            ty: md[1] - (b * ms[0] + a * ms[1]),
        }
    }

    pub fn apply(&self, p: [f32; 2]) -> [f32; 2] {
        [
            self.a * p[0] - self.b * p[1] + self.tx,
            self.b * p[0] + self.a * p[1] + self.ty,
        ]
    }

    pub fn inverse(&self) -> Similarity {
        let d = self.a * self.a + self.b * self.b;
        let (a, b) = (self.a / d, -self.b / d);
        Similarity {
            a,
            b,
            tx: -(a * self.tx - b * self.ty),
            ty: -(b * self.tx + a * self.ty),
        }
    }
}

/// Head pose in degrees, estimated from five landmarks.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Pose {
    /// Positive when the nose points to the image's right.
    pub yaw: f32,
    /// Positive when the face looks down.
    pub pitch: f32,
    /// Positive when the eye line tilts clockwise in the image.
    pub roll: f32,
}

/// Where the nose sits between the eye line and the mouth line on a
/// frontal face of the standard template.
const FRONTAL_NOSE_DEPTH: f32 = 0.494;

/// Estimates yaw, pitch and roll from (left eye, right eye, nose, left
/// mouth, right mouth): roll from the eye line, yaw from the nose's offset
/// from the eyes' midline, pitch from the nose's height between eyes and mouth.
pub fn pose(l: &[[f32; 2]; 5]) -> Pose {
    let (le, re, nose, lm, rm) = (l[0], l[1], l[2], l[3], l[4]);
    let roll = (re[1] - le[1]).atan2(re[0] - le[0]);
    let (c, s) = (roll.cos(), roll.sin());
    let eye_mid = [(le[0] + re[0]) / 2.0, (le[1] + re[1]) / 2.0];
    // Express points in a frame where the eye line is horizontal.
    let local = |p: [f32; 2]| {
        let (dx, dy) = (p[0] - eye_mid[0], p[1] - eye_mid[1]);
        [c * dx + s * dy, -s * dx + c * dy]
    };
    let half_iod = (((re[0] - le[0]).powi(2) + (re[1] - le[1]).powi(2)).sqrt() / 2.0).max(1e-3);
    let n = local(nose);
    let mouth_mid = local([(lm[0] + rm[0]) / 2.0, (lm[1] + rm[1]) / 2.0]);
    let yaw = (n[0] / half_iod).clamp(-1.0, 1.0).asin();
    let depth = if mouth_mid[1].abs() > 1e-3 {
        n[1] / mouth_mid[1]
    } else {
        FRONTAL_NOSE_DEPTH
    };
    let pitch = ((depth - FRONTAL_NOSE_DEPTH) * 2.0).clamp(-1.0, 1.0).asin();
    Pose {
        yaw: yaw.to_degrees(),
        pitch: pitch.to_degrees(),
        roll: roll.to_degrees(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_recovers_a_known_transform() {
        let t = Similarity {
            a: 0.8,
            b: 0.3,
            tx: 5.0,
            ty: -2.0,
        };
        let src = [
            [10.0, 10.0],
            [30.0, 12.0],
            [20.0, 25.0],
            [12.0, 35.0],
            [28.0, 36.0],
        ];
        let dst: Vec<[f32; 2]> = src.iter().map(|&p| t.apply(p)).collect();
        let f = Similarity::fit(&src, &dst);
        assert!((f.a - t.a).abs() < 1e-4 && (f.b - t.b).abs() < 1e-4);
        assert!((f.tx - t.tx).abs() < 1e-3 && (f.ty - t.ty).abs() < 1e-3);
        let back = f.inverse().apply(f.apply([3.0, 4.0]));
        assert!((back[0] - 3.0).abs() < 1e-3 && (back[1] - 4.0).abs() < 1e-3);
    }

    #[test]
    fn frontal_template_has_no_pose() {
        let p = pose(&TEMPLATE_112);
        assert!(
            p.yaw.abs() < 3.0 && p.pitch.abs() < 3.0 && p.roll.abs() < 1.0,
            "{p:?}"
        );
    }

    #[test]
    fn nose_to_the_side_is_yaw() {
        let mut l = TEMPLATE_112;
        l[2][0] += 12.0;
        assert!(pose(&l).yaw > 20.0);
        l[2][0] -= 24.0;
        assert!(pose(&l).yaw < -20.0);
    }
}
