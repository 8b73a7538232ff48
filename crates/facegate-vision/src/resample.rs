//! Area resampling: into normalised planar tensors for MTCNN (whole images
//! through a summed-area table, so each pyramid level costs only its own
//! pixels, and face regions with zero padding past the border), and
//! [`shrink`] for downscaling an RGB image cheaply.

use image::RgbImage;

/// A planar float image, channels first, values already normalised.
pub struct Planes {
    pub w: usize,
    pub h: usize,
    pub data: Vec<f32>, // 3 × h × w
}

/// MTCNN's input normalisation.
pub fn normalise(v: f32) -> f32 {
    (v - 127.5) * 0.0078125
}

/// The source cells output index `o` of `out` averages over `len` inputs,
/// as adaptive average pooling does: `floor(o·len/out) .. ceil((o+1)·len/out)`.
fn cell(o: usize, len: usize, out: usize) -> (usize, usize) {
    let start = o * len / out;
    let end = ((o + 1) * len).div_ceil(out).max(start + 1);
    (start, end)
}

/// `img` downscaled to `ow × oh` by averaging each output pixel's source
/// cell (the cells of [`cell`]): cheap, and free of aliasing.
pub fn shrink(img: &RgbImage, ow: u32, oh: u32) -> RgbImage {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let (ow, oh) = (ow.clamp(1, w.max(1) as u32), oh.clamp(1, h.max(1) as u32));
    if w == 0 || h == 0 {
        return img.clone();
    }
    let raw = img.as_raw();
    let cols: Vec<(usize, usize)> = (0..ow as usize).map(|o| cell(o, w, ow as usize)).collect();
    let mut out = Vec::with_capacity(ow as usize * oh as usize * 3);
    // Each output row: its source rows summed column by column first (one
    // add per byte, which the compiler vectorises), then each cell's
    // columns.
    let mut column_sums = vec![0u32; w * 3];
    for oy in 0..oh as usize {
        let (y0, y1) = cell(oy, h, oh as usize);
        column_sums.fill(0);
        for row in raw.chunks_exact(w * 3).take(y1).skip(y0) {
            for (s, &v) in column_sums.iter_mut().zip(row) {
                *s += u32::from(v);
            }
        }
        for &(x0, x1) in &cols {
            let n = ((x1 - x0) * (y1 - y0)) as u32;
            let mut a = [0u32; 3];
            for px in column_sums[x0 * 3..x1 * 3].chunks_exact(3) {
                a[0] += px[0];
                a[1] += px[1];
                a[2] += px[2];
            }
            out.extend(a.map(|v| ((v + n / 2) / n) as u8));
        }
    }
    RgbImage::from_raw(ow, oh, out).expect("ow × oh × 3 bytes")
}

/// A rectangle of source pixels; it may reach past the image.
#[derive(Clone, Copy)]
pub struct Region {
    pub x0: i64,
    pub y0: i64,
    pub w: usize,
    pub h: usize,
}

/// Summed-area table of an RGB image: any box sum in constant time.
pub struct Integral {
    w: usize,
    h: usize,
    sums: Vec<u32>, // (h + 1) × (w + 1) × 3
}

impl Integral {
    pub fn new(img: &RgbImage) -> Integral {
        Self::of_region(img, 0, 0, img.width(), img.height())
    }

    /// The table of the `w × h` rectangle of `img` at (`x0`, `y0`), which
    /// must lie inside the image: coordinates are then relative to it.
    pub fn of_region(img: &RgbImage, x0: u32, y0: u32, w: u32, h: u32) -> Integral {
        let (x0, y0, w, h) = (x0 as usize, y0 as usize, w as usize, h as usize);
        let stride = (w + 1) * 3;
        let mut sums = vec![0u32; (h + 1) * stride];
        let rows = img.as_raw().chunks_exact(img.width() as usize * 3);
        let region = rows.skip(y0).take(h).map(|r| &r[x0 * 3..(x0 + w) * 3]);
        for (y, pixels) in region.enumerate() {
            let (above, below) = sums.split_at_mut((y + 1) * stride);
            let above = &above[y * stride + 3..];
            let below = &mut below[3..stride];
            let mut row = [0u32; 3];
            for ((px, up), out) in pixels
                .chunks_exact(3)
                .zip(above.chunks_exact(3))
                .zip(below.chunks_exact_mut(3))
            {
                for c in 0..3 {
                    row[c] += u32::from(px[c]);
                    out[c] = up[c] + row[c];
                }
            }
        }
        Integral { w, h, sums }
    }

    /// The whole image area-resampled to `ow × oh`, normalised.
    pub fn resample(&self, ow: usize, oh: usize) -> Planes {
        let mut data = vec![0f32; 3 * ow * oh];
        let whole = Region {
            x0: 0,
            y0: 0,
            w: self.w,
            h: self.h,
        };
        self.resample_region(whole, ow, oh, &mut data);
        Planes { w: ow, h: oh, data }
    }

    /// The whole image area-resampled to `ow × oh` for the fixed-point
    /// networks: four int16 per pixel, R, G, B rounded to 0..255, then 0
    /// (`tools/quantize_mtcnn.py`'s `area_resample_u8`, value for value).
    pub fn resample_rgbx(&self, ow: usize, oh: usize) -> Vec<i16> {
        let whole = Region {
            x0: 0,
            y0: 0,
            w: self.w,
            h: self.h,
        };
        self.resample_region_rgbx(whole, ow, oh)
    }

    /// [`Self::resample_region`] for the fixed-point networks: four int16
    /// per pixel (R, G, B rounded to 0..255, then 0); pixels outside the
    /// image count as black.
    pub fn resample_region_rgbx(&self, region: Region, ow: usize, oh: usize) -> Vec<i16> {
        let stride = (self.w + 1) * 3;
        let clip = |start: i64, o: usize, len: usize, out_len: usize, max: usize| {
            let (s, e) = cell(o, len, out_len);
            let (s, e) = (start + s as i64, start + e as i64);
            let c = |v: i64| v.clamp(0, max as i64) as usize;
            (c(s), c(e), (e - s) as u32)
        };
        // Per output column: its cell's first and last sum index, its
        // width, and 1 / width.
        let xs: Vec<(usize, usize, u32, f64)> = (0..ow)
            .map(|o| {
                let (sx, ex, cw) = clip(region.x0, o, region.w, ow, self.w);
                (sx * 3, ex * 3, cw, 1.0 / f64::from(cw))
            })
            .collect();
        let mut out = vec![0i16; ow * oh * 4];
        // Column sums of the output row's source rows: bottom minus top row
        // of the table, so each value then takes one difference; only over
        // the columns the region's cells use (a face crop is a small part
        // of the frame's width).
        let (lo, hi) = match (xs.first(), xs.last()) {
            (Some(first), Some(last)) => (first.0, last.1 + 3),
            _ => (0, 0),
        };
        let mut rows = vec![0u32; stride];
        for (oy, line) in out.chunks_exact_mut(ow * 4).enumerate() {
            let (sy, ey, ch) = clip(region.y0, oy, region.h, oh, self.h);
            let (top, bottom) = (
                &self.sums[sy * stride..][..stride],
                &self.sums[ey * stride..][..stride],
            );
            for ((r, &t), &b) in rows[lo..hi]
                .iter_mut()
                .zip(&top[lo..hi])
                .zip(&bottom[lo..hi])
            {
                *r = b - t;
            }
            let inv_h = 1.0 / f64::from(ch);
            for (px, &(s, e, cw, inv_w)) in line.chunks_exact_mut(4).zip(&xs) {
                if sy == ey || s == e {
                    continue; // wholly outside the image: black
                }
                let half = ch * cw / 2;
                // (sum + n/2) / n without an integer division per value:
                // times 1/n in f64, plus a margin. The product is within
                // 1e-13 of the true quotient, while a quotient just below an
                // integer is at least 1/n > 1e-8 below it (n < 2^24).
                let inv = inv_h * inv_w;
                let (a, b) = (&rows[s..s + 3], &rows[e..e + 3]);
                for c in 0..3 {
                    let q = f64::from(b[c] - a[c] + half) * inv + 1e-9;
                    // SAFETY: a cell's sum is at most 255·n, so 0 ≤ q < 256.
                    px[c] = unsafe { q.to_int_unchecked::<i32>() } as i16;
                }
            }
        }
        out
    }

    /// Area resampling of `region` to `ow × oh` into `out` (planar,
    /// normalised); pixels outside the image count as black, as in the
    /// original MTCNN, so a face cut by the border keeps its proportions.
    pub fn resample_region(&self, region: Region, ow: usize, oh: usize, out: &mut [f32]) {
        let stride = (self.w + 1) * 3;
        let plane = ow * oh;
        // Source cell bounds in image coordinates, clipped to the image,
        // and the cell's full area (outside pixels add zero).
        let clip = |start: i64, o: usize, len: usize, out_len: usize, max: usize| {
            let (s, e) = cell(o, len, out_len);
            let (s, e) = (start + s as i64, start + e as i64);
            (
                s.clamp(0, max as i64) as usize,
                e.clamp(0, max as i64) as usize,
                (e - s) as f32,
            )
        };
        let xs: Vec<(usize, usize, f32)> = (0..ow)
            .map(|o| clip(region.x0, o, region.w, ow, self.w))
            .collect();
        for oy in 0..oh {
            let (sy, ey, ch) = clip(region.y0, oy, region.h, oh, self.h);
            for (ox, &(sx, ex, cw)) in xs.iter().enumerate() {
                for c in 0..3 {
                    let sum = if sy < ey && sx < ex {
                        self.sums[ey * stride + ex * 3 + c] + self.sums[sy * stride + sx * 3 + c]
                            - self.sums[sy * stride + ex * 3 + c]
                            - self.sums[ey * stride + sx * 3 + c]
                    } else {
                        0
                    };
                    out[c * plane + oy * ow + ox] = normalise(sum as f32 / (ch * cw));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shrink_averages_each_cell() {
        // 4×2 → 2×1: each output pixel is the mean of a 2×2 block.
        let img = RgbImage::from_fn(4, 2, |x, y| {
            let v = (x * 10 + y * 100) as u8;
            image::Rgb([v, 255 - v, 7])
        });
        let s = shrink(&img, 2, 1);
        assert_eq!((s.width(), s.height()), (2, 1));
        assert_eq!(s.get_pixel(0, 0).0, [55, 200, 7]);
        assert_eq!(s.get_pixel(1, 0).0, [75, 180, 7]);
    }

    #[test]
    fn a_region_table_equals_the_table_of_the_cropped_image() {
        let img = pattern();
        let crop = image::imageops::crop_imm(&img, 5, 3, 20, 11).to_image();
        let (a, b) = (
            Integral::of_region(&img, 5, 3, 20, 11),
            Integral::new(&crop),
        );
        assert_eq!(a.resample_rgbx(7, 5), b.resample_rgbx(7, 5));
        assert_eq!(a.resample_rgbx(20, 11), b.resample_rgbx(20, 11));
    }

    #[test]
    fn shrink_rounds_each_cells_mean_at_uneven_ratios() {
        let img = pattern();
        for (ow, oh) in [(10, 7), (5, 3), (36, 22), (37, 23), (1, 1)] {
            let s = shrink(&img, ow, oh);
            for (ox, oy, px) in s.enumerate_pixels() {
                let (x0, x1) = cell(ox as usize, 37, ow as usize);
                let (y0, y1) = cell(oy as usize, 23, oh as usize);
                let n = ((x1 - x0) * (y1 - y0)) as u32;
                let mean = |c: usize| {
                    let sum: u32 = (y0..y1)
                        .flat_map(|y| (x0..x1).map(move |x| (x, y)))
                        .map(|(x, y)| u32::from(img.get_pixel(x as u32, y as u32)[c]))
                        .sum();
                    ((sum + n / 2) / n) as u8
                };
                assert_eq!(px.0, [mean(0), mean(1), mean(2)], "{ow}×{oh} at {ox},{oy}");
            }
        }
    }

    /// Area resampling of a region of `img` to `ow × oh`; pixels outside the
    /// image count as black, as in the original MTCNN.
    fn direct(img: &RgbImage, region: Region, ow: usize, oh: usize, out: &mut [f32]) {
        let Region {
            x0,
            y0,
            w: rw,
            h: rh,
        } = region;
        let (iw, ih) = (img.width() as i64, img.height() as i64);
        let raw = img.as_raw();
        let plane = ow * oh;
        for oy in 0..oh {
            let (sy, ey) = cell(oy, rh, oh);
            for ox in 0..ow {
                let (sx, ex) = cell(ox, rw, ow);
                let mut acc = [0f32; 3];
                for y in sy..ey {
                    let py = y0 + y as i64;
                    if py < 0 || py >= ih {
                        continue;
                    }
                    let row = (py * iw) as usize * 3;
                    for x in sx..ex {
                        let px = x0 + x as i64;
                        if px < 0 || px >= iw {
                            continue;
                        }
                        let i = row + px as usize * 3;
                        acc[0] += raw[i] as f32;
                        acc[1] += raw[i + 1] as f32;
                        acc[2] += raw[i + 2] as f32;
                    }
                }
                let n = ((ey - sy) * (ex - sx)) as f32;
                for c in 0..3 {
                    out[c * plane + oy * ow + ox] = normalise(acc[c] / n);
                }
            }
        }
    }

    fn worst(a: &[f32], b: &[f32]) -> f32 {
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0f32, f32::max)
    }

    /// A region of [`pattern`] reaching past its left border.
    const PAST_BORDER: Region = Region {
        x0: -5,
        y0: 3,
        w: 30,
        h: 30,
    };

    /// A 37×23 image with different gradients in each channel.
    fn pattern() -> RgbImage {
        RgbImage::from_fn(37, 23, |x, y| {
            image::Rgb([
                (x * 7 % 256) as u8,
                (y * 11 % 256) as u8,
                ((x + y) * 5 % 256) as u8,
            ])
        })
    }

    #[test]
    fn integral_resampling_equals_direct_area_averaging() {
        let img = pattern();
        let integral = Integral::new(&img);
        for (ow, oh) in [(20, 13), (37, 23), (5, 4), (50, 30)] {
            let mut slow = vec![0f32; 3 * ow * oh];
            direct(
                &img,
                Region {
                    x0: 0,
                    y0: 0,
                    w: 37,
                    h: 23,
                },
                ow,
                oh,
                &mut slow,
            );
            let fast = integral.resample(ow, oh);
            assert!(worst(&fast.data, &slow) < 1e-4, "{ow}x{oh}");
            // A region reaching past the border.
            let region = PAST_BORDER;
            let mut fast = vec![0f32; 3 * ow * oh];
            integral.resample_region(region, ow, oh, &mut fast);
            direct(&img, region, ow, oh, &mut slow);
            assert!(worst(&fast, &slow) < 1e-4, "{ow}x{oh} past the border");
        }
    }

    #[test]
    fn fixed_point_resampling_rounds_the_area_mean() {
        let img = pattern();
        let integral = Integral::new(&img);
        for (ow, oh) in [(20, 13), (37, 23), (5, 4), (11, 7)] {
            let fixed = integral.resample_rgbx(ow, oh);
            for (i, px) in fixed.chunks_exact(4).enumerate() {
                let ((y0, y1), (x0, x1)) = (cell(i / ow, 23, oh), cell(i % ow, 37, ow));
                let n = ((y1 - y0) * (x1 - x0)) as u32;
                for (c, &value) in px[..3].iter().enumerate() {
                    let sum: u32 = (y0..y1)
                        .flat_map(|y| (x0..x1).map(move |x| (x, y)))
                        .map(|(x, y)| u32::from(img.get_pixel(x as u32, y as u32)[c]))
                        .sum();
                    assert_eq!(value, ((sum + n / 2) / n) as i16, "{ow}x{oh} pixel {i}");
                }
                assert_eq!(px[3], 0);
            }
            // A region reaching past the border (outside pixels are black),
            // and one inside the image, away from its left edge.
            let inside = Region {
                x0: 9,
                y0: 2,
                w: 20,
                h: 15,
            };
            for region in [PAST_BORDER, inside] {
                let mut mean = vec![0f32; 3 * ow * oh];
                direct(&img, region, ow, oh, &mut mean);
                let fixed = integral.resample_region_rgbx(region, ow, oh);
                for (i, px) in fixed.chunks_exact(4).enumerate() {
                    for (c, &value) in px[..3].iter().enumerate() {
                        let raw = mean[c * ow * oh + i] * 128.0 + 127.5;
                        assert!(
                            (f32::from(value) - raw).abs() <= 0.5 + 1e-3,
                            "{ow}x{oh} region at x {}",
                            region.x0
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn outside_the_image_is_black() {
        let img = RgbImage::from_pixel(4, 4, image::Rgb([255, 255, 255]));
        let mut out = vec![0f32; 3 * 2 * 2];
        Integral::new(&img).resample_region(
            Region {
                x0: -4,
                y0: 0,
                w: 8,
                h: 4,
            },
            2,
            2,
            &mut out,
        );
        assert_eq!(out[0], normalise(0.0));
        assert_eq!(out[1], normalise(255.0));
    }
}
