//! Synthetic presentation attacks and camera frames for testing and
//! measuring liveness (API tests, `facegate liveness eval` and `bench`):
//! a camera frame around a photo's face with sensor-like jitter; a print
//! turned in front of the camera (a perspective warp); a phone screen with a
//! bezel and glare; JPEG encoding. Nothing here is used to decide a login.

use std::io::Cursor;

use image::{Rgb, RgbImage};

use crate::detect::BoundingBox;
use crate::homography::Homography;

/// Width and height of the synthetic camera frames (the page sends ≤ 480 px).
pub const FRAME_W: u32 = 480;
pub const FRAME_H: u32 = 360;

/// A small deterministic generator (no randomness crate in the engine).
#[derive(Debug, Clone)]
pub struct Lcg(u64);

impl Lcg {
    pub fn new(seed: u64) -> Lcg {
        Lcg(seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407))
    }

    /// Uniform in [-1, 1).
    pub fn uniform(&mut self) -> f32 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
}

fn bilinear(img: &RgbImage, x: f32, y: f32) -> Option<Rgb<u8>> {
    if x < 0.0 || y < 0.0 || x > (img.width() - 1) as f32 || y > (img.height() - 1) as f32 {
        return None;
    }
    let (x0, y0) = (x.floor() as u32, y.floor() as u32);
    let (x1, y1) = (
        (x0 + 1).min(img.width() - 1),
        (y0 + 1).min(img.height() - 1),
    );
    let (fx, fy) = (x - x0 as f32, y - y0 as f32);
    let mut out = [0u8; 3];
    for (c, o) in out.iter_mut().enumerate() {
        let v = |px: u32, py: u32| f32::from(img.get_pixel(px, py)[c]);
        let top = v(x0, y0) * (1.0 - fx) + v(x1, y0) * fx;
        let bottom = v(x0, y1) * (1.0 - fx) + v(x1, y1) * fx;
        *o = (top * (1.0 - fy) + bottom * fy).round().clamp(0.0, 255.0) as u8;
    }
    Some(Rgb(out))
}

/// Draws `src` through `h` (source → destination pixels) onto `dst`.
pub fn warp_onto(src: &RgbImage, h: &Homography, dst: &mut RgbImage) {
    let inv = invert(&h.0);
    for y in 0..dst.height() {
        for x in 0..dst.width() {
            let p = Homography(inv).apply([x as f32, y as f32]);
            if let Some(px) = bilinear(src, p[0], p[1]) {
                dst.put_pixel(x, y, px);
            }
        }
    }
}

fn invert(m: &[[f64; 3]; 3]) -> [[f64; 3]; 3] {
    let c =
        |r0: usize, r1: usize, c0: usize, c1: usize| m[r0][c0] * m[r1][c1] - m[r0][c1] * m[r1][c0];
    let adj = [
        [c(1, 2, 1, 2), -c(0, 2, 1, 2), c(0, 1, 1, 2)],
        [-c(1, 2, 0, 2), c(0, 2, 0, 2), -c(0, 1, 0, 2)],
        [c(1, 2, 0, 1), -c(0, 2, 0, 1), c(0, 1, 0, 1)],
    ];
    let det = m[0][0] * adj[0][0] + m[0][1] * adj[1][0] + m[0][2] * adj[2][0];
    adj.map(|r| r.map(|v| v / det))
}

/// The homography of a flat picture centred at `(cx, cy)` turned by `yaw`
/// and tilted by `up` degrees, seen by a camera with focal length `f`
/// pixels that sees it unturned at scale 1.
pub fn turn(cx: f32, cy: f32, f: f32, yaw: f32, up: f32) -> Homography {
    let (sy, cyw) = f64::from(yaw).to_radians().sin_cos();
    let (sp, cp) = f64::from(up).to_radians().sin_cos();
    // R = Rx(up) · Ry(yaw); only its first two columns act on the plane.
    let r = [
        [cyw, 0.0, -sy],
        [sp * sy, cp, sp * cyw],
        [cp * sy, -sp, cp * cyw],
    ];
    let (f, cx, cy) = (f64::from(f), f64::from(cx), f64::from(cy));
    // Plane point (x − cx, y − cy, 0) → camera (R·p + (0, 0, f)) → pixels.
    let mut h = [[0.0; 3]; 3];
    for i in 0..3 {
        h[i] = [r[i][0], r[i][1], -r[i][0] * cx - r[i][1] * cy];
    }
    h[2][2] += f;
    let k = [[f, 0.0, cx], [0.0, f, cy], [0.0, 0.0, 1.0]];
    let mut out = [[0.0; 3]; 3];
    for i in 0..3 {
        for j in 0..3 {
            out[i][j] = (0..3).map(|q| k[i][q] * h[q][j]).sum();
        }
    }
    Homography(out)
}

/// A `FRAME_W`×`FRAME_H` camera frame around the face in `bbox`, the face
/// about 40 % of the frame's width, shifted and scaled a little, with
/// brightness drift and sensor noise drawn from `seed`.
pub fn camera_frame(photo: &RgbImage, bbox: &BoundingBox, seed: u64) -> RgbImage {
    let mut rng = Lcg::new(seed);
    let side = bbox.width().max(bbox.height());
    let scale = FRAME_W as f32 * 0.4 / side * (1.0 + 0.03 * rng.uniform());
    let (cx, cy) = ((bbox.x1 + bbox.x2) / 2.0, (bbox.y1 + bbox.y2) / 2.0);
    let (dx, dy) = (6.0 * rng.uniform(), 6.0 * rng.uniform());
    let gain = 1.0 + 0.04 * rng.uniform();
    let mut out = RgbImage::from_pixel(FRAME_W, FRAME_H, Rgb([90, 90, 90]));
    for y in 0..FRAME_H {
        for x in 0..FRAME_W {
            let sx = cx + (x as f32 - FRAME_W as f32 / 2.0 + dx) / scale;
            let sy = cy + (y as f32 - FRAME_H as f32 / 2.0 + dy) / scale;
            if let Some(p) = bilinear(photo, sx, sy) {
                let n = 3.0 * rng.uniform();
                out.put_pixel(
                    x,
                    y,
                    Rgb(p
                        .0
                        .map(|v| (f32::from(v) * gain + n).round().clamp(0.0, 255.0) as u8)),
                );
            }
        }
    }
    out
}

/// `frame` (from [`camera_frame`]) as a live person at a webcam sees it:
/// the head and shoulders of the photo (a band 60 % of the frame wide
/// about its middle, where the face is, down to the frame's foot) in
/// front of one room that does not
/// move from frame to frame (a wall, a poster and a lamp), with the
/// camera's noise drawn from `seed`.
pub fn in_room(frame: &RgbImage, seed: u64) -> RgbImage {
    let (w, h) = (frame.width() as f32, frame.height() as f32);
    let mut rng = Lcg::new(seed ^ 0x200f);
    let half = 0.3 * w;
    let mut out = frame.clone();
    for (x, y, p) in out.enumerate_pixels_mut() {
        let (fx, fy) = (x as f32, y as f32);
        let beyond = ((fx - w / 2.0).abs() - half) / 8.0;
        if beyond <= -1.0 {
            continue;
        }
        let alpha = ((beyond + 1.0) / 2.0).clamp(0.0, 1.0);
        let wall = room_pixel(fx / w, fy / h);
        let n = 2.0 * rng.uniform();
        p.0 = std::array::from_fn(|c| {
            let v = alpha * (wall[c] + n) + (1.0 - alpha) * f32::from(p[c]);
            v.round().clamp(0.0, 255.0) as u8
        });
    }
    out
}

/// The room behind the live person, at (`u`, `v`) in fractions of the frame.
fn room_pixel(u: f32, v: f32) -> [f32; 3] {
    let poster = (0.02..0.14).contains(&u) && (0.1..0.55).contains(&v);
    let lamp = ((u - 0.92) / 0.07).powi(2) + ((v - 0.8) / 0.12).powi(2) < 1.0;
    if poster {
        let band = ((u * 40.0) as usize + (v * 12.0) as usize) % 3;
        [
            [70.0, 120.0, 190.0],
            [200.0, 90.0, 80.0],
            [230.0, 210.0, 120.0],
        ][band]
    } else if lamp {
        [250.0, 235.0, 200.0]
    } else {
        let shade = 175.0 - 40.0 * v + if u > 0.88 { -25.0 } else { 0.0 };
        [shade + 8.0, shade, shade - 12.0]
    }
}

/// A flat picture (`frame`) held up and turned by `yaw`/`up` degrees.
pub fn turned_print(frame: &RgbImage, yaw: f32, up: f32, seed: u64) -> RgbImage {
    let (w, h) = (frame.width() as f32, frame.height() as f32);
    let mut out = RgbImage::from_pixel(frame.width(), frame.height(), Rgb([200, 198, 190]));
    warp_onto(frame, &turn(w / 2.0, h / 2.0, 1.2 * w, yaw, up), &mut out);
    add_noise(&mut out, seed, 2.0);
    out
}

/// A phone showing `frame` on its screen, held in front of the camera:
/// the picture shrunk into a black bezel on a desk background, with a glare
/// streak across the glass, turned by `yaw`/`up` degrees.
pub fn phone_screen(frame: &RgbImage, yaw: f32, up: f32, seed: u64) -> RgbImage {
    let (w, h) = (frame.width(), frame.height());
    let mut phone = RgbImage::from_pixel(w, h, Rgb([60, 52, 45]));
    let (sw, sh) = (w * 3 / 4, h * 3 / 4);
    let (bx, by) = ((w - sw) / 2, (h - sh) / 2);
    let bezel = 14;
    for y in by.saturating_sub(bezel)..(by + sh + bezel).min(h) {
        for x in bx.saturating_sub(bezel)..(bx + sw + bezel).min(w) {
            phone.put_pixel(x, y, Rgb([12, 12, 14]));
        }
    }
    let screen = image::imageops::resize(frame, sw, sh, image::imageops::FilterType::Triangle);
    for (x, y, p) in screen.enumerate_pixels() {
        // A faint pixel grid and a cool backlight tint.
        let grid = if (x % 3 == 0) || (y % 3 == 0) {
            0.9
        } else {
            1.0
        };
        let q = [
            f32::from(p[0]) * 0.92 * grid,
            f32::from(p[1]) * 0.97 * grid,
            (f32::from(p[2]) * 1.05 + 8.0) * grid,
        ];
        // Glare: a bright diagonal streak over the upper part of the glass.
        let d = (x as f32 - sw as f32 * 0.35) + (y as f32 - sh as f32 * 0.3) * 0.8;
        let g = 190.0 * (-(d * d) / (2.0 * (sw as f32 * 0.08).powi(2))).exp();
        phone.put_pixel(
            bx + x,
            by + y,
            Rgb(q.map(|v| (v + g).clamp(0.0, 255.0) as u8)),
        );
    }
    turned_print(&phone, yaw, up, seed)
}

/// Adds uniform noise of ±`amp` grey levels.
pub fn add_noise(img: &mut RgbImage, seed: u64, amp: f32) {
    let mut rng = Lcg::new(seed ^ 0x5eed);
    for p in img.pixels_mut() {
        let n = amp * rng.uniform();
        p.0 =
            p.0.map(|v| (f32::from(v) + n).round().clamp(0.0, 255.0) as u8);
    }
}

/// Encodes a frame as JPEG (quality 90), as the page does.
pub fn jpeg(img: &RgbImage) -> Vec<u8> {
    let mut buf = Cursor::new(Vec::new());
    let enc = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut buf, 90);
    img.write_with_encoder(enc)
        .expect("encoding a JPEG in memory");
    buf.into_inner()
}

/// The (yaw, up) a face or picture passes through to answer `steps`
/// (degrees; `left` is positive yaw as seen by the camera), three frames
/// per pose, starting and resting level.
pub fn path_for(steps: &[crate::liveness::challenge::Step], amplitude: f32) -> Vec<(f32, f32)> {
    use crate::liveness::challenge::Step;
    let mut out = vec![(0.0, 0.0); 3];
    for s in steps {
        let target = match s {
            Step::Left => (amplitude, 0.0),
            Step::Right => (-amplitude, 0.0),
            Step::Up => (0.0, amplitude),
            Step::Center => (0.0, 0.0),
        };
        let last = *out.last().unwrap_or(&(0.0, 0.0));
        out.push(((last.0 + target.0) / 2.0, (last.1 + target.1) / 2.0));
        out.extend([target; 3]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unturned_print_is_the_identity() {
        let h = turn(240.0, 180.0, 576.0, 0.0, 0.0);
        let p = h.apply([100.0, 50.0]);
        assert!((p[0] - 100.0).abs() < 1e-3 && (p[1] - 50.0).abs() < 1e-3);
        let h = turn(240.0, 180.0, 576.0, 30.0, 0.0);
        let c = h.apply([240.0, 180.0]);
        assert!((c[0] - 240.0).abs() < 1e-3, "{c:?}");
    }

    #[test]
    fn paths_rest_level_between_steps() {
        use crate::liveness::challenge::Step;
        let p = path_for(&[Step::Left, Step::Up], 25.0);
        assert_eq!(p.len(), 3 + 4 + 4);
        assert_eq!(p[4], (25.0, 0.0));
        assert_eq!(p[10], (0.0, 25.0));
    }
}
