//! Face alignment: a least-squares similarity transform from the five
//! detected landmarks to the standard 112×112 template, then a bilinear warp.

use image::RgbImage;

use crate::geometry::{Similarity, TEMPLATE_112};

/// The transform from image coordinates to the `size`×`size` template.
pub fn alignment_transform(landmarks: &[[f32; 2]; 5], size: u32) -> Similarity {
    let s = size as f32 / 112.0;
    let dst = TEMPLATE_112.map(|[x, y]| [x * s, y * s]);
    Similarity::fit(landmarks, &dst)
}

/// Warps the face to an upright `size`×`size` crop.
pub fn align_face(img: &RgbImage, landmarks: &[[f32; 2]; 5], size: u32) -> RgbImage {
    let inv = alignment_transform(landmarks, size).inverse();
    warp(img, &inv, size, size)
}

/// Samples `img` at `map(output pixel)` with bilinear interpolation;
/// outside the image is black.
pub fn warp(img: &RgbImage, map: &Similarity, w: u32, h: u32) -> RgbImage {
    let mut out = vec![0u8; w as usize * h as usize * 3];
    for (v, row) in out.chunks_exact_mut(w as usize * 3).enumerate() {
        for (u, px) in row.chunks_exact_mut(3).enumerate() {
            let [sx, sy] = map.apply([u as f32, v as f32]);
            let (x0, y0) = (floor(sx), floor(sy));
            let (fx, fy) = (sx - x0 as f32, sy - y0 as f32);
            let [p00, p10, p01, p11] = corners(img, x0, y0);
            for c in 0..3 {
                let top = p00[c] * (1.0 - fx) + p10[c] * fx;
                let bottom = p01[c] * (1.0 - fx) + p11[c] * fx;
                // + 0.5 and truncation rounds these non-negative values
                // without a call to `roundf` per channel.
                px[c] = (top * (1.0 - fy) + bottom * fy + 0.5).clamp(0.0, 255.0) as u8;
            }
        }
    }
    RgbImage::from_raw(w, h, out).expect("w × h × 3 values")
}

/// `v.floor()` as an integer, without the call to `floorf` that
/// `f32::floor` costs on x86-64's baseline instruction set.
fn floor(v: f32) -> i64 {
    let t = v as i64;
    if (t as f32) > v {
        t - 1
    } else {
        t
    }
}

/// The pixels at (x, y), (x + 1, y), (x, y + 1) and (x + 1, y + 1), black
/// outside the image; the four are read from two rows at once when all are
/// inside (a face's crop nearly always is).
fn corners(img: &RgbImage, x: i64, y: i64) -> [[f32; 3]; 4] {
    let (iw, ih) = (i64::from(img.width()), i64::from(img.height()));
    let raw = img.as_raw();
    let rgb = |s: &[u8]| [f32::from(s[0]), f32::from(s[1]), f32::from(s[2])];
    if x >= 0 && y >= 0 && x + 1 < iw && y + 1 < ih {
        let i = ((y * iw + x) * 3) as usize;
        let j = i + (iw * 3) as usize;
        let (top, bottom) = (&raw[i..i + 6], &raw[j..j + 6]);
        return [rgb(top), rgb(&top[3..]), rgb(bottom), rgb(&bottom[3..])];
    }
    let px = |x: i64, y: i64| -> [f32; 3] {
        if x < 0 || y < 0 || x >= iw || y >= ih {
            return [0.0; 3];
        }
        let i = ((y * iw + x) * 3) as usize;
        rgb(&raw[i..i + 3])
    };
    [px(x, y), px(x + 1, y), px(x, y + 1), px(x + 1, y + 1)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgb;

    /// The first version of [`warp`], one pixel at a time with every
    /// corner checked: the faster one must give the same bytes.
    fn reference_warp(img: &RgbImage, map: &Similarity, w: u32, h: u32) -> RgbImage {
        let (iw, ih) = (img.width() as i64, img.height() as i64);
        let raw = img.as_raw();
        let px = |x: i64, y: i64| -> [f32; 3] {
            if x < 0 || y < 0 || x >= iw || y >= ih {
                return [0.0; 3];
            }
            let i = ((y * iw + x) * 3) as usize;
            [raw[i] as f32, raw[i + 1] as f32, raw[i + 2] as f32]
        };
        RgbImage::from_fn(w, h, |u, v| {
            let [sx, sy] = map.apply([u as f32, v as f32]);
            let (x0, y0) = (sx.floor(), sy.floor());
            let (fx, fy) = (sx - x0, sy - y0);
            let (x0, y0) = (x0 as i64, y0 as i64);
            let (p00, p10, p01, p11) = (
                px(x0, y0),
                px(x0 + 1, y0),
                px(x0, y0 + 1),
                px(x0 + 1, y0 + 1),
            );
            let mut out = [0u8; 3];
            for c in 0..3 {
                let top = p00[c] * (1.0 - fx) + p10[c] * fx;
                let bottom = p01[c] * (1.0 - fx) + p11[c] * fx;
                // + 0.5 and truncation rounds these non-negative values
                // without a call to `roundf` per channel.
                out[c] = (top * (1.0 - fy) + bottom * fy + 0.5).clamp(0.0, 255.0) as u8;
            }
            Rgb(out)
        })
    }

    #[test]
    fn the_warp_gives_the_bytes_of_its_first_version() {
        let img = RgbImage::from_fn(97, 61, |x, y| {
            Rgb([
                (x * 7 % 256) as u8,
                (y * 13 % 256) as u8,
                ((x * y) % 256) as u8,
            ])
        });
        // Inside, partly outside (black borders) and wholly outside the image.
        for (a, b, tx, ty) in [
            (0.83, 0.11, 5.3, 2.7),
            (1.7, -0.4, -30.2, 10.9),
            (0.5, 0.0, 90.0, 50.0),
            (2.1, 0.9, -300.0, -200.0),
        ] {
            let map = Similarity { a, b, tx, ty };
            assert_eq!(
                warp(&img, &map, 112, 112),
                reference_warp(&img, &map, 112, 112)
            );
        }
    }

    #[test]
    fn template_landmarks_map_to_themselves() {
        let t = alignment_transform(&TEMPLATE_112, 112);
        assert!((t.a - 1.0).abs() < 1e-5 && t.b.abs() < 1e-5 && t.tx.abs() < 1e-3);
    }

    #[test]
    fn a_shifted_face_is_moved_back() {
        let img = RgbImage::from_fn(200, 200, |x, y| Rgb([(x % 256) as u8, (y % 256) as u8, 0]));
        let shifted = TEMPLATE_112.map(|[x, y]| [x + 40.0, y + 30.0]);
        let out = align_face(&img, &shifted, 112);
        // Output pixel (10, 20) samples input (50, 50).
        assert_eq!(out.get_pixel(10, 20).0, [50, 50, 0]);
    }
}
