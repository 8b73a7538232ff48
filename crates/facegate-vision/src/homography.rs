//! Plane-to-plane homographies fitted to landmarks with the normalised
//! direct linear transform (Hartley's DLT), and the residual that tells a
//! flat picture from a head: the 5 landmarks of a picture that is tilted or
//! turned move by one homography (low residual), while a real head's nose
//! moves against its eyes and mouth (high residual).

/// A 3×3 projective transform, row-major.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Homography(pub [[f64; 3]; 3]);

impl Homography {
    /// Maps a point; points sent to infinity come back as `NaN`.
    pub fn apply(&self, p: [f32; 2]) -> [f32; 2] {
        let h = &self.0;
        let (x, y) = (f64::from(p[0]), f64::from(p[1]));
        let w = h[2][0] * x + h[2][1] * y + h[2][2];
        if w.abs() < 1e-12 {
            return [f32::NAN, f32::NAN];
        }
        [
            ((h[0][0] * x + h[0][1] * y + h[0][2]) / w) as f32,
            ((h[1][0] * x + h[1][1] * y + h[1][2]) / w) as f32,
        ]
    }

    /// The least-squares (algebraic) homography taking `src` to `dst`,
    /// computed on normalised coordinates. Needs at least 4 points.
    pub fn fit(src: &[[f32; 2]], dst: &[[f32; 2]]) -> Option<Homography> {
        let n = src.len().min(dst.len());
        if n < 4 {
            return None;
        }
        let (ts, ps) = normalise(&src[..n])?;
        let (td, pd) = normalise(&dst[..n])?;
        // AᵀA accumulated row by row (9×9, symmetric).
        let mut ata = [[0.0f64; 9]; 9];
        for (p, q) in ps.iter().zip(&pd) {
            let (x, y, u, v) = (p[0], p[1], q[0], q[1]);
            let rows = [
                [0.0, 0.0, 0.0, -x, -y, -1.0, v * x, v * y, v],
                [x, y, 1.0, 0.0, 0.0, 0.0, -u * x, -u * y, -u],
            ];
            for r in &rows {
                for i in 0..9 {
                    for j in 0..9 {
                        ata[i][j] += r[i] * r[j];
                    }
                }
            }
        }
        let h = smallest_eigenvector(ata);
        let hn = [[h[0], h[1], h[2]], [h[3], h[4], h[5]], [h[6], h[7], h[8]]];
        // H = Td⁻¹ · Hn · Ts
        let full = mul(&mul(&invert_similarity(&td), &hn), &ts);
        let s = full[2][2];
        let full = if s.abs() > 1e-12 {
            full.map(|r| r.map(|v| v / s))
        } else {
            full
        };
        Some(Homography(full))
    }
}

/// Root-mean-square distance of `pts` from their centroid: the face size
/// that residuals are measured against.
pub fn spread(pts: &[[f32; 2]]) -> f32 {
    let n = pts.len().max(1) as f32;
    let (cx, cy) = pts
        .iter()
        .fold((0.0, 0.0), |(x, y), p| (x + p[0] / n, y + p[1] / n));
    (pts.iter()
        .map(|p| (p[0] - cx).powi(2) + (p[1] - cy).powi(2))
        .sum::<f32>()
        / n)
        .sqrt()
}

/// How far `dst` is from being a projective image of `src`: the RMS
/// reprojection error of the best DLT homography, divided by the spread of
/// `dst`. About the landmark noise (≤ 0.02) for a flat picture; several
/// times more for a head that turned or nodded.
pub fn planar_residual(src: &[[f32; 2]], dst: &[[f32; 2]]) -> Option<f32> {
    let h = Homography::fit(src, dst)?;
    let size = spread(dst);
    if size < 1e-3 {
        return None;
    }
    let mut sum = 0.0f32;
    for (p, q) in src.iter().zip(dst) {
        let m = h.apply(*p);
        if !m[0].is_finite() || !m[1].is_finite() {
            return Some(f32::INFINITY);
        }
        sum += (m[0] - q[0]).powi(2) + (m[1] - q[1]).powi(2);
    }
    Some((sum / src.len() as f32).sqrt() / size)
}

type M3 = [[f64; 3]; 3];

/// Translates the centroid to the origin and scales the mean distance to √2.
/// Returns the transform (as a similarity matrix) and the moved points.
fn normalise(pts: &[[f32; 2]]) -> Option<(M3, Vec<[f64; 2]>)> {
    let n = pts.len() as f64;
    let (cx, cy) = pts.iter().fold((0.0, 0.0), |(x, y), p| {
        (x + f64::from(p[0]) / n, y + f64::from(p[1]) / n)
    });
    let mean_d = pts
        .iter()
        .map(|p| ((f64::from(p[0]) - cx).powi(2) + (f64::from(p[1]) - cy).powi(2)).sqrt())
        .sum::<f64>()
        / n;
    if mean_d < 1e-9 {
        return None;
    }
    let s = std::f64::consts::SQRT_2 / mean_d;
    let t = [[s, 0.0, -s * cx], [0.0, s, -s * cy], [0.0, 0.0, 1.0]];
    let moved = pts
        .iter()
        .map(|p| [s * (f64::from(p[0]) - cx), s * (f64::from(p[1]) - cy)])
        .collect();
    Some((t, moved))
}

fn invert_similarity(t: &M3) -> M3 {
    let s = t[0][0];
    [
        [1.0 / s, 0.0, -t[0][2] / s],
        [0.0, 1.0 / s, -t[1][2] / s],
        [0.0, 0.0, 1.0],
    ]
}

fn mul(a: &M3, b: &M3) -> M3 {
    let mut out = [[0.0; 3]; 3];
    for (i, row) in out.iter_mut().enumerate() {
        for (j, v) in row.iter_mut().enumerate() {
            *v = (0..3).map(|k| a[i][k] * b[k][j]).sum();
        }
    }
    out
}

/// The unit eigenvector of the smallest eigenvalue of a symmetric 9×9
/// matrix, by cyclic Jacobi rotations.
#[allow(clippy::needless_range_loop)]
fn smallest_eigenvector(mut a: [[f64; 9]; 9]) -> [f64; 9] {
    let mut v = [[0.0f64; 9]; 9];
    for (i, row) in v.iter_mut().enumerate() {
        row[i] = 1.0;
    }
    for _sweep in 0..60 {
        let off: f64 = (0..9)
            .flat_map(|i| (0..9).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| a[i][j] * a[i][j])
            .sum();
        if off < 1e-22 {
            break;
        }
        for p in 0..8 {
            for q in p + 1..9 {
                if a[p][q].abs() < 1e-300 {
                    continue;
                }
                let theta = (a[q][q] - a[p][p]) / (2.0 * a[p][q]);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..9 {
                    let (akp, akq) = (a[k][p], a[k][q]);
                    a[k][p] = c * akp - s * akq;
                    a[k][q] = s * akp + c * akq;
                }
                for k in 0..9 {
                    let (apk, aqk) = (a[p][k], a[q][k]);
                    a[p][k] = c * apk - s * aqk;
                    a[q][k] = s * apk + c * aqk;
                }
                for row in v.iter_mut() {
                    let (vkp, vkq) = (row[p], row[q]);
                    row[p] = c * vkp - s * vkq;
                    row[q] = s * vkp + c * vkq;
                }
            }
        }
    }
    let min = (0..9)
        .min_by(|&i, &j| a[i][i].total_cmp(&a[j][j]))
        .unwrap_or(8);
    let mut out = [0.0; 9];
    for (k, o) in out.iter_mut().enumerate() {
        *o = v[k][min];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const FACE: [[f32; 2]; 5] = [
        [38.3, 51.7],
        [73.5, 51.5],
        [56.0, 71.7],
        [41.5, 92.4],
        [70.7, 92.2],
    ];

    #[test]
    fn recovers_a_projective_map_exactly() {
        let h = Homography([[1.1, 0.2, 5.0], [-0.1, 0.9, 3.0], [0.001, -0.002, 1.0]]);
        let dst: Vec<[f32; 2]> = FACE.iter().map(|&p| h.apply(p)).collect();
        let fit = Homography::fit(&FACE, &dst).unwrap();
        for p in FACE {
            let (a, b) = (fit.apply(p), h.apply(p));
            assert!((a[0] - b[0]).abs() < 1e-3 && (a[1] - b[1]).abs() < 1e-3);
        }
        assert!(planar_residual(&FACE, &dst).unwrap() < 1e-4);
    }

    #[test]
    fn a_moved_nose_leaves_a_residual() {
        let mut dst = FACE;
        dst[2][0] += 8.0;
        assert!(planar_residual(&FACE, &dst).unwrap() > 0.05);
    }

    #[test]
    fn degenerate_input_gives_none() {
        assert!(planar_residual(&[[1.0, 1.0]; 5], &FACE).is_none());
        assert!(Homography::fit(&FACE[..3], &FACE[..3]).is_none());
    }
}
