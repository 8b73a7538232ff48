//! The AVX2 kernels of the fixed-point networks, for CPUs without AVX-512
//! VNNI. The arithmetic is the AVX-512 kernel's, value for value: a
//! 16-lane output vector lives in two 256-bit registers, and each pair of
//! int16 products is summed into int32 by `vpmaddwd` and then added
//! (`vpaddd`), where VNNI does both in one instruction. The sums are exact
//! in both (checked at load: no int32 sum can overflow), and the float
//! epilogue is the same sequence of multiplies and adds, so the outputs are
//! identical. Called only after the CPU features were checked.

use std::arch::x86_64::*;

use super::interface::{check_pool, check_shapes, Out};
use super::layer::{Layer, A16, CHUNK, LANES};

/// int32 or f32 lanes of one 256-bit register: half of a 16-lane vector.
const HALF: usize = LANES / 2;

/// A 16-lane int32 vector as two registers.
#[derive(Clone, Copy)]
pub(super) struct Acc {
    pub lo: __m256i,
    pub hi: __m256i,
}

/// A 16-lane float vector as two registers.
#[derive(Clone, Copy)]
struct Floats {
    lo: __m256,
    hi: __m256,
}

/// One layer (not depthwise), valid padding, any stride, over a `w × h`
/// input.
///
/// # Safety
/// The CPU must have AVX2.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn conv(l: &Layer, inp: &[i16], w: usize, h: usize, mut out: Out<'_>) {
    // SAFETY: the CPU has AVX2 (this function's contract, checked by its caller through
    // `Isa::available`). `check_shapes` asserted that `inp` holds the `w × h × cin` input and `out`
    // the layer's output; each output vector's weights start inside `l.packed` (`nv` vectors per
    // pair, packed at load), and the block reads only the windows of output pixels below `ow × oh`,
    // inside `inp`.
    unsafe {
        let (ow, oh) = check_shapes(l, inp, w, h, &out);
        assert!(!l.depthwise);
        let pairs = l.pair_offsets(w);
        for chunk in 0..l.nv.div_ceil(CHUNK) {
            let nvc = (l.nv - chunk * CHUNK).min(CHUNK);
            // One output vector at a time over six pixels: twelve registers of
            // sums and two of weights, each weight loaded serving six pixels.
            // Measured against two vectors over three pixels, three over two
            // and four over one (which spill): faster on every layer of the
            // three MTCNN nets (3-8%) and MobileFaceNet (2%).
            for v in 0..nvc {
                let wts = l
                    .packed
                    .as_ptr()
                    .add(chunk * CHUNK * LANES * pairs.len() + v * LANES);
                let block = Block {
                    l,
                    src: inp.as_ptr(),
                    wts: (wts, nvc * LANES),
                    pairs: &pairs,
                    vector: chunk * CHUNK + v,
                    w,
                    ow,
                };
                block.every_pixel(ow * oh, &mut out);
            }
        }
    }
}

/// Pixels one call of `accumulate` sums at once in `Block::every_pixel`.
const PIXELS: usize = 6;

/// One output vector of a layer, over any of its pixels.
struct Block<'a> {
    l: &'a Layer,
    src: *const i16,
    /// The first weight vector, and the distance from one pair's to the next's.
    wts: (*const i32, usize),
    pairs: &'a [usize],
    /// The output vector.
    vector: usize,
    /// Input and output width.
    w: usize,
    ow: usize,
}

impl Block<'_> {
    /// Output pixels `0 .. n`, `PIXELS` at a time in row-major order (a
    /// block may span two rows), then the last few in one smaller block.
    #[target_feature(enable = "avx2")]
    unsafe fn every_pixel(&self, n: usize, out: &mut Out<'_>) {
        // SAFETY: the CPU has AVX2 (this function's contract, checked by its caller through
        // `Isa::available`); every block passed to `pixels` ends at or before pixel `n`, the
        // block's output size.
        unsafe {
            let mut i = 0;
            while i + PIXELS <= n {
                self.pixels::<PIXELS>(i, out);
                i += PIXELS;
            }
            match n - i {
                0 => {}
                1 => self.pixels::<1>(i, out),
                2 => self.pixels::<2>(i, out),
                3 => self.pixels::<3>(i, out),
                4 => self.pixels::<4>(i, out),
                _ => self.pixels::<5>(i, out),
            }
        }
    }

    /// Output pixels `i .. i + P` (row-major).
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn pixels<const P: usize>(&self, i: usize, out: &mut Out<'_>) {
        // SAFETY: the CPU has AVX2 (this function's contract, checked by its caller through
        // `Isa::available`); pixels `i .. i + P` are output pixels (the caller's contract), so each
        // window start is inside the input and `store` writes inside `out`.
        unsafe {
            let l = self.l;
            // The input window of output pixel i + p.
            let base = std::array::from_fn(|p| l.window_start(i + p, self.w, self.ow));
            let acc = accumulate::<P>(self.src, self.wts, self.pairs, base);
            for (p, a) in acc.iter().enumerate() {
                store(l, a, self.vector, out, i + p);
            }
        }
    }
}

/// The int32 sums of one output vector of `P` pixels whose windows start
/// at `base`; `wts` is the vector's first weights and the distance from
/// one pair's weights to the next's.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn accumulate<const P: usize>(
    src: *const i16,
    wts: (*const i32, usize),
    pairs: &[usize],
    base: [usize; P],
) -> [Acc; P] {
    // SAFETY: the CPU has AVX2 (this function's contract, checked by its caller through
    // `Isa::available`). Every window start `base[p]` plus a pair offset `o` is an even channel of
    // an input pixel, so the two int16 read are inside the input `src` points to; `wts` points at
    // 16 int32 of weights for each of `pairs`, `step` apart (the caller's packed weights).
    unsafe {
        let zero = _mm256_setzero_si256();
        let mut acc = [Acc { lo: zero, hi: zero }; P];
        let (mut wp, step) = wts;
        let at: [*const i16; P] = std::array::from_fn(|p| src.add(base[p]));
        for &o in pairs {
            let w = Acc {
                lo: _mm256_loadu_si256(wp.cast()),
                hi: _mm256_loadu_si256(wp.add(HALF).cast()),
            };
            wp = wp.add(step);
            for (s, at) in acc.iter_mut().zip(at) {
                // Two neighbouring channels of the pixel, as one int32, in every lane.
                let a = _mm256_set1_epi32(at.add(o).cast::<i32>().read_unaligned());
                s.lo = _mm256_add_epi32(s.lo, _mm256_madd_epi16(a, w.lo));
                s.hi = _mm256_add_epi32(s.hi, _mm256_madd_epi16(a, w.hi));
            }
        }
        acc
    }
}

// The epilogue's helpers are `#[inline(always)]` without `target_feature`
// (the two may not be combined): they are only called from the AVX2
// functions here, so they and the intrinsics in them are inlined there.
// They hold no closures, which would be functions of their own without AVX2.

/// Scale and shift one pixel's sums of output vector `v`; then PReLU
/// (plus the saved tensor) and requantisation into the int16 buffer, or
/// the floats of the last layer.
#[inline(always)]
pub(super) unsafe fn store(l: &Layer, acc: &Acc, v: usize, out: &mut Out<'_>, pixel: usize) {
    // SAFETY: only called from this file's AVX2 functions, into which it is inlined, so the CPU has
    // AVX2. `pixel` is an output pixel (the caller's contract), so its first channel is inside `o`,
    // whose size `check_shapes` asserted; `quantise`, `plus_saved` and the masked float stores
    // touch only that pixel's channels of vector `v`.
    unsafe {
        let f = scaled(l, acc, v);
        match out {
            Out::Fixed(o) => quantise(
                l,
                activated(l, f, v),
                v,
                o.as_mut_ptr().add(pixel * l.cout_p),
            ),
            Out::Residual(o) => {
                let at = o.as_mut_ptr().add(pixel * l.cout_p);
                let f = plus_saved(l, activated(l, f, v), v, at);
                quantise(l, f, v, at);
            }
            Out::Float(o) => {
                let n = (l.cout - v * LANES).min(LANES);
                let dst = o.as_mut_ptr().add(pixel * l.cout + v * LANES);
                _mm256_maskstore_ps(dst, mask(n.min(HALF)), f.lo);
                if n > HALF {
                    _mm256_maskstore_ps(dst.add(HALF), mask(n - HALF), f.hi);
                }
            }
        }
    }
}

/// Eight floats of a per-lane constant, from lane `at`.
#[inline(always)]
unsafe fn lanes(c: &[f32], at: usize) -> __m256 {
    // SAFETY: only called from this file's AVX2 functions, into which it is inlined, so the CPU has
    // AVX2; the slice `c[at..at + 8]` is bounds-checked.
    unsafe { _mm256_loadu_ps(c[at..at + HALF].as_ptr()) }
}

/// Output vector `v`'s sums, scaled and shifted (multiply, then add: no
/// fused multiply-add, as in the other kernels).
#[inline(always)]
unsafe fn scaled(l: &Layer, acc: &Acc, v: usize) -> Floats {
    // SAFETY: only called from this file's AVX2 functions, into which it is inlined, so the CPU has
    // AVX2; no memory is touched but through the bounds-checked `lanes`.
    unsafe {
        Floats {
            lo: scaled_half(l, acc.lo, v * LANES),
            hi: scaled_half(l, acc.hi, v * LANES + HALF),
        }
    }
}

#[inline(always)]
unsafe fn scaled_half(l: &Layer, a: __m256i, at: usize) -> __m256 {
    // SAFETY: only called from this file's AVX2 functions, into which it is inlined, so the CPU has
    // AVX2; no memory is touched but through the bounds-checked `lanes`.
    unsafe {
        _mm256_add_ps(
            _mm256_mul_ps(_mm256_cvtepi32_ps(a), lanes(&l.scale, at)),
            lanes(&l.shift, at),
        )
    }
}

/// PReLU of output vector `v`'s scaled sums.
#[inline(always)]
unsafe fn activated(l: &Layer, f: Floats, v: usize) -> Floats {
    // SAFETY: only called from this file's AVX2 functions, into which it is inlined, so the CPU has
    // AVX2; no memory is touched but through the bounds-checked `lanes`.
    unsafe {
        Floats {
            lo: activated_half(l, f.lo, v * LANES),
            hi: activated_half(l, f.hi, v * LANES + HALF),
        }
    }
}

#[inline(always)]
unsafe fn activated_half(l: &Layer, x: __m256, at: usize) -> __m256 {
    // SAFETY: only called from this file's AVX2 functions, into which it is inlined, so the CPU has
    // AVX2; no memory is touched but through the bounds-checked `lanes`.
    unsafe {
        let zero = _mm256_setzero_ps();
        _mm256_add_ps(
            _mm256_max_ps(x, zero),
            _mm256_mul_ps(_mm256_min_ps(x, zero), lanes(&l.alpha, at)),
        )
    }
}

/// `f` plus output vector `v` of the saved tensor (int16 at `at`) times its
/// scale: multiply, then add.
#[inline(always)]
unsafe fn plus_saved(l: &Layer, f: Floats, v: usize, at: *const i16) -> Floats {
    // SAFETY: only called from this file's AVX2 functions, into which it is inlined, so the CPU has
    // AVX2. `at` is a pixel's first channel in the saved tensor, and `load_i16` reads its channels
    // `16v .. 16v + n` with `n` capped at `cout_p − 16v`, inside the pixel.
    unsafe {
        let n = (l.cout_p - v * LANES).min(LANES);
        let r = load_i16(at.add(v * LANES), n);
        let lo = _mm256_cvtepi16_epi32(_mm256_castsi256_si128(r));
        let hi = _mm256_cvtepi16_epi32(_mm256_extracti128_si256::<1>(r));
        Floats {
            lo: _mm256_add_ps(f.lo, saved_half(l, lo, v * LANES)),
            hi: _mm256_add_ps(f.hi, saved_half(l, hi, v * LANES + HALF)),
        }
    }
}

#[inline(always)]
unsafe fn saved_half(l: &Layer, x: __m256i, at: usize) -> __m256 {
    // SAFETY: only called from this file's AVX2 functions, into which it is inlined, so the CPU has
    // AVX2; no memory is touched but through the bounds-checked `lanes`.
    unsafe { _mm256_mul_ps(_mm256_cvtepi32_ps(x), lanes(&l.res_scale, at)) }
}

/// The larger of each lane.
#[inline(always)]
unsafe fn max(x: Floats, y: Floats) -> Floats {
    // SAFETY: only called from this file's AVX2 functions, into which it is inlined, so the CPU has
    // AVX2; no memory is touched.
    unsafe {
        Floats {
            lo: _mm256_max_ps(x.lo, y.lo),
            hi: _mm256_max_ps(x.hi, y.hi),
        }
    }
}

/// Requantisation to int16 of output vector `v`'s activations, and their
/// store for the pixel whose channels start at `dst`.
#[inline(always)]
unsafe fn quantise(l: &Layer, f: Floats, v: usize, dst: *mut i16) {
    // SAFETY: only called from this file's AVX2 functions, into which it is inlined, so the CPU has
    // AVX2. `dst` is a pixel's first channel in the output, and `store_i16` writes its channels
    // `16v .. 16v + n` with `n` capped at `cout_p − 16v`, inside the pixel.
    unsafe {
        let lo = quantise_half(l, f.lo, v * LANES);
        let hi = quantise_half(l, f.hi, v * LANES + HALF);
        // Packing works per 128-bit half: lanes come out as lo 0-3, hi 0-3,
        // lo 4-7, hi 4-7; the permutation puts them back in order. The values
        // are within ±2047, so the saturation never acts.
        let q = _mm256_permute4x64_epi64::<0b11_01_10_00>(_mm256_packs_epi32(lo, hi));
        let n = (l.cout_p - v * LANES).min(LANES);
        store_i16(dst.add(v * LANES), n, q);
    }
}

/// Eight activations times their channels' inverse output scales, clamped
/// and rounded half to even (the default rounding mode).
#[inline(always)]
unsafe fn quantise_half(l: &Layer, x: __m256, at: usize) -> __m256i {
    // SAFETY: only called from this file's AVX2 functions, into which it is inlined, so the CPU has
    // AVX2; no memory is touched but through the bounds-checked `lanes`.
    unsafe {
        let t = _mm256_mul_ps(x, lanes(&l.inv, at));
        let t = _mm256_min_ps(_mm256_max_ps(t, _mm256_set1_ps(-A16)), _mm256_set1_ps(A16));
        _mm256_cvtps_epi32(t)
    }
}

/// Stores the first `n` (even, ≤ 16) int16 lanes of `q` at `dst`.
#[inline(always)]
unsafe fn store_i16(dst: *mut i16, n: usize, q: __m256i) {
    // SAFETY: only called from this file's AVX2 functions, into which it is inlined, so the CPU has
    // AVX2. The caller passes `dst` with at least `n` int16 after it; a full store writes 16, a
    // masked one the first `n / 2` int32, i.e. `n` int16.
    unsafe {
        if n == LANES {
            _mm256_storeu_si256(dst.cast(), q);
        } else {
            _mm256_maskstore_epi32(dst.cast(), mask(n / 2), q);
        }
    }
}

/// The first `n` (even, ≤ 16) int16 lanes at `src`, zero in the others.
#[inline(always)]
unsafe fn load_i16(src: *const i16, n: usize) -> __m256i {
    // SAFETY: only called from this file's AVX2 functions, into which it is inlined, so the CPU has
    // AVX2. The caller passes `src` with at least `n` int16 after it; a full load reads 16, a
    // masked one the first `n / 2` int32, i.e. `n` int16.
    unsafe {
        if n == LANES {
            _mm256_loadu_si256(src.cast())
        } else {
            _mm256_maskload_epi32(src.cast(), mask(n / 2))
        }
    }
}

/// A layer of one output vector and the 2×2 max pool after it, in one
/// pass (see the AVX-512 kernel's `conv_pool2`).
///
/// # Safety
/// The CPU must have AVX2.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn conv_pool2(l: &Layer, inp: &[i16], w: usize, h: usize, out: &mut [i16]) {
    // SAFETY: the CPU has AVX2 (this function's contract, checked by its caller through
    // `Isa::available`). The asserts above fix the sizes of `inp` and `out`; every corner in `base`
    // is an input pixel (`x1 < cw`, `y1 < ch`) whose window lies inside `inp`, the weights are
    // `l.packed` of the layer's one output vector, and each store is pooled pixel `(oy, ox)`,
    // inside `out`.
    unsafe {
        assert!(l.plain() && l.nv == 1 && l.requant && l.monotone && w >= l.k && h >= l.k);
        assert_eq!(inp.len(), w * h * l.cin);
        let (cw, ch) = (w + 1 - l.k, h + 1 - l.k);
        let (ow, oh) = (cw.div_ceil(2), ch.div_ceil(2));
        assert_eq!(out.len(), ow * oh * l.cout_p);
        let pairs = l.pair_offsets(w);
        for oy in 0..oh {
            let (y0, y1) = (2 * oy, (2 * oy + 1).min(ch - 1));
            for ox in 0..ow {
                // A window cut by the edge repeats a pixel: the max is the same.
                let (x0, x1) = (2 * ox, (2 * ox + 1).min(cw - 1));
                let base =
                    [(y0, x0), (y0, x1), (y1, x0), (y1, x1)].map(|(y, x)| (y * w + x) * l.cin);
                let acc = accumulate::<4>(inp.as_ptr(), (l.packed.as_ptr(), LANES), &pairs, base);
                let f = |p: usize| activated(l, scaled(l, &acc[p], 0), 0);
                let f = max(max(f(0), f(1)), max(f(2), f(3)));
                quantise(l, f, 0, out.as_mut_ptr().add((oy * ow + ox) * l.cout_p));
            }
        }
    }
}

/// All bits set in the first `n` of eight 32-bit lanes.
#[inline(always)]
unsafe fn mask(n: usize) -> __m256i {
    // SAFETY: only called from this file's AVX2 functions, into which it is inlined, so the CPU has
    // AVX2; no memory is touched.
    unsafe {
        _mm256_cmpgt_epi32(
            _mm256_set1_epi32(n as i32),
            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
        )
    }
}

/// `k × k` max pool, stride 2; a window cut by the right or bottom edge
/// takes the pixels it has (ceil mode). `c` is even (a layer's `cout_p`).
///
/// # Safety
/// The CPU must have AVX2.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn pool(inp: &[i16], w: usize, h: usize, c: usize, k: usize, out: &mut [i16]) {
    // SAFETY: the CPU has AVX2 (this function's contract, checked by its caller through
    // `Isa::available`). `check_pool` asserted the sizes of `inp` and `out`; `x < w`, `y < h`, `oy
    // < oh` and `ox < ow`, and `load_i16`/`store_i16` touch only the pixel's channels `16v .. 16v +
    // n`, `n` capped at `c − 16v`.
    unsafe {
        let (ow, oh) = check_pool(inp, w, h, c, k, out);
        assert!(
            c.is_multiple_of(2),
            "pools follow layers, whose channels are even"
        );
        for v in 0..c.div_ceil(LANES) {
            let n = (c - v * LANES).min(LANES);
            let at =
                |x: usize, y: usize| load_i16(inp.as_ptr().add((y * w + x) * c + v * LANES), n);
            for oy in 0..oh {
                let rows = (2 * oy..2 * oy + k).map(|y| y.min(h - 1));
                for ox in 0..ow {
                    let mut best = _mm256_set1_epi16(i16::MIN);
                    for y in rows.clone() {
                        for x in (2 * ox..2 * ox + k).map(|x| x.min(w - 1)) {
                            best = _mm256_max_epi16(best, at(x, y));
                        }
                    }
                    store_i16(
                        out.as_mut_ptr().add((oy * ow + ox) * c + v * LANES),
                        n,
                        best,
                    );
                }
            }
        }
    }
}
