//! Appearance of the face from frame to frame: the colour cast of the
//! skin under the light it is in. A live head turning in front of one
//! camera keeps its light; photos of the same person taken on other days
//! and shown one after another (a pose album) bring their own.

use image::RgbImage;

/// The colour cast of an aligned face: `[ln(R/G), ln(B/G)]` of the mean
/// colour of its middle (cheeks, nose and mouth; no hair, little
/// background), which shading and a turn of the head change far less than
/// a different light or camera does.
pub fn face_tint(aligned: &RgbImage) -> [f32; 2] {
    let (w, h) = aligned.dimensions();
    let (x0, x1, y0, y1) = (w / 4, w - w / 4, h * 2 / 5, h - h / 8);
    let mut sum = [1.0f64; 3];
    for y in y0..y1 {
        for x in x0..x1 {
            let p = aligned.get_pixel(x, y);
            for c in 0..3 {
                sum[c] += f64::from(p[c]);
            }
        }
    }
    [(sum[0] / sum[1]).ln() as f32, (sum[2] / sum[1]).ln() as f32]
}

/// The largest distance of one frame's tint from the median tint of all
/// of them, or `None` with fewer than two.
pub fn tint_shift(tints: &[[f32; 2]]) -> Option<f32> {
    if tints.len() < 2 {
        return None;
    }
    let median = |c: usize| {
        let mut v: Vec<f32> = tints.iter().map(|t| t[c]).collect();
        v.sort_by(f32::total_cmp);
        let n = v.len();
        (v[(n - 1) / 2] + v[n / 2]) / 2.0
    };
    let m = [median(0), median(1)];
    tints
        .iter()
        .map(|t| ((t[0] - m[0]).powi(2) + (t[1] - m[1]).powi(2)).sqrt())
        .reduce(f32::max)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn face(rgb: [u8; 3], hair: [u8; 3]) -> RgbImage {
        RgbImage::from_fn(112, 112, |_, y| image::Rgb(if y < 30 { hair } else { rgb }))
    }

    #[test]
    fn the_tint_is_the_skin_colour_cast_not_the_hair_nor_the_brightness() {
        let t = face([200, 150, 120], [20, 20, 20]);
        let [r, b] = face_tint(&t);
        assert!((r - (200.0f32 / 150.0).ln()).abs() < 0.01, "{r}");
        assert!((b - (120.0f32 / 150.0).ln()).abs() < 0.01, "{b}");
        // Darker (a head turned away from the light): the same cast.
        let shaded = face_tint(&face([100, 75, 60], [200, 200, 0]));
        assert!((shaded[0] - r).abs() < 0.02 && (shaded[1] - b).abs() < 0.02);
    }

    #[test]
    fn one_frame_in_another_light_shifts_the_tint() {
        let warm = face_tint(&face([200, 150, 120], [0, 0, 0]));
        let cold = face_tint(&face([150, 150, 170], [0, 0, 0]));
        let same = tint_shift(&[warm, warm, warm]).unwrap();
        let one_off = tint_shift(&[warm, warm, cold, warm]).unwrap();
        assert!(same < 1e-6, "{same}");
        assert!(one_off > 0.3, "{one_off}");
        assert_eq!(tint_shift(&[warm]), None);
    }
}
