//! The AVX-512 VNNI kernels of the fixed-point networks: a convolution
//! that keeps up to 64 output channels of several neighbouring pixels in
//! registers and feeds them two input channels at a time (`vpdpwssd`), the
//! same with the 2×2 max pool after it, and the max pool. Depthwise layers
//! have their own (`kernel_depthwise.rs`), which shares the epilogue here.
//! Called only after the CPU features were checked.

use std::arch::x86_64::*;

use super::interface::{check_pool, check_shapes, Out};
use super::layer::{Layer, A16, CHUNK, LANES};

/// One layer (not depthwise), valid padding, any stride, over a `w × h`
/// input.
///
/// # Safety
/// The CPU must have AVX-512 F, BW, VL and VNNI.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
pub(super) unsafe fn conv(l: &Layer, inp: &[i16], w: usize, h: usize, mut out: Out<'_>) {
    // SAFETY: the CPU has AVX-512 F, BW, VL and VNNI (this function's contract, checked by its
    // caller through `Isa::available`). `check_shapes` asserted that `inp` holds the `w × h × cin`
    // input and `out` the layer's output; the chunk's weights start inside `l.packed`, which holds
    // `nv` output vectors for every pair of `pairs` (packed at load), and the tile reads only the
    // windows of output pixels below `ow × oh`, which lie inside `inp`.
    unsafe {
        assert!(!l.depthwise, "depthwise layers have their own kernel");
        let (ow, oh) = check_shapes(l, inp, w, h, &out);
        let pairs = l.pair_offsets(w);
        for chunk in 0..l.nv.div_ceil(CHUNK) {
            let tile = Tile {
                l,
                src: inp.as_ptr(),
                wts: l.packed.as_ptr().add(chunk * CHUNK * LANES * pairs.len()),
                pairs: &pairs,
                first: chunk * CHUNK,
                w,
                ow,
            };
            // Accumulators, weights and the broadcast input must fit the 32
            // vector registers: wider chunks take fewer pixels at a time.
            let n = ow * oh;
            match (l.nv - chunk * CHUNK).min(CHUNK) {
                1 => tile.every_pixel::<1, 12>(n, &mut out),
                2 => tile.every_pixel::<2, 8>(n, &mut out),
                3 => tile.every_pixel::<3, 8>(n, &mut out),
                _ => tile.every_pixel::<4, 6>(n, &mut out),
            }
        }
    }
}

/// One chunk of a layer's output vectors, over any of its pixels.
struct Tile<'a> {
    l: &'a Layer,
    src: *const i16,
    /// The chunk's packed weights.
    wts: *const i32,
    pairs: &'a [usize],
    /// The chunk's first output vector.
    first: usize,
    /// Input and output width.
    w: usize,
    ow: usize,
}

impl Tile<'_> {
    /// Output pixels `0 .. n`, `P` at a time in row-major order (a block
    /// may span rows). The last few go one at a time if they are few, else
    /// in one more block whose missing pixels repeat its last one.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
    unsafe fn every_pixel<const NV: usize, const P: usize>(&self, n: usize, out: &mut Out<'_>) {
        // SAFETY: the CPU has AVX-512 F, BW, VL and VNNI (this function's contract, checked by its
        // caller through `Isa::available`); every block passed to `pixels` ends at or before pixel
        // `n`, the tile's output size.
        unsafe {
            let mut i = 0;
            while i + P <= n {
                self.pixels::<NV, P>(i, P, out);
                i += P;
            }
            let rest = n - i;
            if 3 * rest < P {
                for j in i..n {
                    self.pixels::<NV, 1>(j, 1, out);
                }
            } else if rest > 0 {
                self.pixels::<NV, P>(i, rest, out);
            }
        }
    }

    /// Output pixels `i .. i + count` (row-major), `count ≤ P`.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
    unsafe fn pixels<const NV: usize, const P: usize>(
        &self,
        i: usize,
        count: usize,
        out: &mut Out<'_>,
    ) {
        // SAFETY: the CPU has AVX-512 F, BW, VL and VNNI (this function's contract, checked by its
        // caller through `Isa::available`); pixels `i .. i + count` are output pixels (the caller's
        // contract), so each window start is inside the input and `store` writes inside `out`.
        unsafe {
            let l = self.l;
            // The input window of output pixel i + p; a short block repeats
            // its last pixel.
            let base =
                std::array::from_fn(|p| l.window_start(i + p.min(count - 1), self.w, self.ow));
            let acc = accumulate::<NV, P>(self.src, self.wts, self.pairs, base);
            store(l, &acc, count, self.first, out, i);
        }
    }
}

/// The int32 sums of `NV` output vectors of `P` pixels whose windows start
/// at `base`; `wts` holds the vectors' weights pair by pair.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn accumulate<const NV: usize, const P: usize>(
    src: *const i16,
    wts: *const i32,
    pairs: &[usize],
    base: [usize; P],
) -> [[__m512i; NV]; P] {
    // SAFETY: the CPU has AVX-512 F, BW, VL and VNNI (this function's contract, checked by its
    // caller through `Isa::available`). Every window start `base[p]` plus a pair offset `o`
    // (`Layer::pair_offsets`, within the window) is an even channel of an input pixel, so the two
    // int16 read at it are inside the input `src` points to; `wts` holds `NV × LANES` int32 for
    // each of `pairs` (the caller passes its chunk's packed weights).
    unsafe {
        let mut acc = [[_mm512_setzero_si512(); NV]; P];
        let mut wp = wts;
        let at: [*const i16; P] = std::array::from_fn(|p| src.add(base[p]));
        for &o in pairs {
            let wv: [__m512i; NV] =
                std::array::from_fn(|v| _mm512_loadu_si512(wp.add(v * LANES).cast()));
            wp = wp.add(NV * LANES);
            for (sums, at) in acc.iter_mut().zip(at) {
                // Two neighbouring channels of the pixel, as one int32, in every lane.
                let a = _mm512_set1_epi32(at.add(o).cast::<i32>().read_unaligned());
                for (s, w) in sums.iter_mut().zip(wv) {
                    *s = _mm512_dpwssd_epi32(*s, a, w);
                }
            }
        }
        acc
    }
}

// The epilogue's helpers are `#[inline(always)]` without `target_feature`
// (the two may not be combined): they are only called from the AVX-512
// functions here, so they and the intrinsics in them are inlined there.
// They hold no closures, which would be functions of their own without
// AVX-512.

/// One output vector's per-lane constants, loaded once for all the pixels
/// of a block.
#[derive(Clone, Copy)]
struct Epilogue {
    scale: __m512,
    shift: __m512,
    alpha: __m512,
    inv: __m512,
    res_scale: __m512,
    /// The lanes of the vector that the output has: int16 channels of the
    /// buffer (`cout_p`), or floats of the last layer (`cout`).
    mask: __mmask16,
    /// The vector's first channel.
    first: usize,
}

impl Epilogue {
    #[inline(always)]
    unsafe fn new(l: &Layer, v: usize) -> Epilogue {
        // SAFETY: only called from this file's AVX-512 functions, into which it is inlined, so the
        // CPU has AVX-512 F, BW, VL and VNNI. `lanes` reads output vector `v`'s 16 constants,
        // inside the per-lane vectors of `nv × 16` floats (built at load), as `v < nv`.
        unsafe {
            let real = if l.requant { l.cout_p } else { l.cout };
            Epilogue {
                scale: lanes(&l.scale, v),
                shift: lanes(&l.shift, v),
                alpha: lanes(&l.alpha, v),
                inv: lanes(&l.inv, v),
                res_scale: lanes(&l.res_scale, v),
                mask: mask((real - v * LANES).min(LANES)),
                first: v * LANES,
            }
        }
    }

    /// The sums scaled and shifted (multiply, then add: no fused
    /// multiply-add, as in the other kernels).
    #[inline(always)]
    unsafe fn scaled(&self, acc: __m512i) -> __m512 {
        // SAFETY: only called from this file's AVX-512 functions, into which it is inlined, so the
        // CPU has AVX-512 F, BW, VL and VNNI; no memory is touched.
        unsafe {
            _mm512_add_ps(
                _mm512_mul_ps(_mm512_cvtepi32_ps(acc), self.scale),
                self.shift,
            )
        }
    }

    /// PReLU: the negative values times their slopes. The scripts compute
    /// `max(f, 0) + min(f, 0) × alpha`, which differs from this only in the
    /// sign of a zero, and requantisation makes every zero 0.
    #[inline(always)]
    unsafe fn activated(&self, f: __m512) -> __m512 {
        // SAFETY: only called from this file's AVX-512 functions, into which it is inlined, so the
        // CPU has AVX-512 F, BW, VL and VNNI; no memory is touched.
        unsafe {
            let negative = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(f, _mm512_setzero_ps());
            _mm512_mask_mul_ps(f, negative, f, self.alpha)
        }
    }

    /// The saved tensor's values of the pixel whose channels start at
    /// `at`, times their scale, added to `f`: multiply, then add.
    #[inline(always)]
    unsafe fn plus_saved(&self, f: __m512, at: *const i16) -> __m512 {
        // SAFETY: only called from this file's AVX-512 functions, into which it is inlined, so the
        // CPU has AVX-512 F, BW, VL and VNNI. `at` is a pixel's first channel in the saved tensor
        // (the caller's `dst` inside `out`), and the mask limits the load to that pixel's channels
        // `first .. first + 16`, below `cout_p`.
        unsafe {
            let saved = _mm256_maskz_loadu_epi16(self.mask, at.add(self.first));
            let saved = _mm512_cvtepi32_ps(_mm512_cvtepi16_epi32(saved));
            _mm512_add_ps(f, _mm512_mul_ps(saved, self.res_scale))
        }
    }

    /// Requantisation to int16, stored for the pixel whose channels start
    /// at `dst`: times the inverse output scale, clamped, rounded half to
    /// even (the default rounding mode).
    #[inline(always)]
    unsafe fn quantise(&self, f: __m512, dst: *mut i16) {
        // SAFETY: only called from this file's AVX-512 functions, into which it is inlined, so the
        // CPU has AVX-512 F, BW, VL and VNNI. `dst` is a pixel's first channel in the output, and
        // the mask limits the store to that pixel's channels `first .. first + 16`, below `cout_p`.
        unsafe {
            let t = _mm512_mul_ps(f, self.inv);
            let t = _mm512_min_ps(_mm512_max_ps(t, _mm512_set1_ps(-A16)), _mm512_set1_ps(A16));
            let q = _mm512_cvtepi32_epi16(_mm512_cvtps_epi32(t));
            _mm256_mask_storeu_epi16(dst.add(self.first), self.mask, q);
        }
    }
}

/// Sixteen floats of a per-lane constant (`nv × 16` of them), from output
/// vector `v`.
#[inline(always)]
unsafe fn lanes(c: &[f32], v: usize) -> __m512 {
    // SAFETY: only called from this file's AVX-512 functions, into which it is inlined, so the CPU
    // has AVX-512 F, BW, VL and VNNI. The per-lane constants hold `nv × 16` floats (built at load)
    // and `v < nv`, so the 16 read are inside `c` (asserted in debug builds).
    unsafe {
        debug_assert!(c.len() >= (v + 1) * LANES);
        _mm512_loadu_ps(c.as_ptr().add(v * LANES))
    }
}

/// The epilogue of `count` pixels' sums of `NV` output vectors from
/// `first`, the pixels from `pixel` on: scale and shift; then PReLU (plus
/// the saved tensor) and requantisation into the int16 buffer, or the
/// floats of the last layer.
#[inline(always)]
pub(super) unsafe fn store<const NV: usize, const P: usize>(
    l: &Layer,
    acc: &[[__m512i; NV]; P],
    count: usize,
    first: usize,
    out: &mut Out<'_>,
    pixel: usize,
) {
    // SAFETY: only called from this file's AVX-512 functions, into which it is inlined, so the CPU
    // has AVX-512 F, BW, VL and VNNI. Pixels `pixel .. pixel + count` are output pixels (the
    // caller's contract), so each destination pixel starts inside `o`, whose size `check_shapes`
    // asserted; the epilogue's masks keep every access inside that pixel.
    unsafe {
        for v in 0..NV {
            let e = Epilogue::new(l, first + v);
            match out {
                Out::Fixed(o) => {
                    let dst = o.as_mut_ptr().add(pixel * l.cout_p);
                    for (p, sums) in acc.iter().enumerate().take(count) {
                        let f = e.activated(e.scaled(sums[v]));
                        e.quantise(f, dst.add(p * l.cout_p));
                    }
                }
                Out::Residual(o) => {
                    let dst = o.as_mut_ptr().add(pixel * l.cout_p);
                    for (p, sums) in acc.iter().enumerate().take(count) {
                        let at = dst.add(p * l.cout_p);
                        let f = e.plus_saved(e.activated(e.scaled(sums[v])), at);
                        e.quantise(f, at);
                    }
                }
                Out::Float(o) => {
                    let dst = o.as_mut_ptr().add(pixel * l.cout + e.first);
                    for (p, sums) in acc.iter().enumerate().take(count) {
                        _mm512_mask_storeu_ps(dst.add(p * l.cout), e.mask, e.scaled(sums[v]));
                    }
                }
            }
        }
    }
}

/// Pooled pixels one call of `accumulate` computes in `conv_pool2`.
const POOLED: usize = 3;

/// A layer of one output vector and the 2×2 max pool after it, in one
/// pass: each pooled pixel takes the largest activation of its (up to)
/// four pixels, then requantises once. Requantisation keeps the order of
/// values (checked at load: `Layer::monotone`), so this equals pooling the
/// layer's output, value for value, without writing that output.
///
/// # Safety
/// The CPU must have AVX-512 F, BW, VL and VNNI.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
pub(super) unsafe fn conv_pool2(l: &Layer, inp: &[i16], w: usize, h: usize, out: &mut [i16]) {
    // SAFETY: the CPU has AVX-512 F, BW, VL and VNNI (this function's contract, checked by its
    // caller through `Isa::available`). The asserts above fix the sizes of `inp` and `out`; every
    // corner in `base` is an input pixel (`x1 < cw`, `y1 < ch`) whose window lies inside `inp`, the
    // weights are `l.packed` of the layer's one output vector, and each store is pooled pixel `(oy,
    // ox + j)` with `oy < oh`, `ox + j < ow`, inside `out`.
    unsafe {
        assert!(l.plain() && l.nv == 1 && l.requant && l.monotone && w >= l.k && h >= l.k);
        assert_eq!(inp.len(), w * h * l.cin);
        let (cw, ch) = (w + 1 - l.k, h + 1 - l.k);
        let (ow, oh) = (cw.div_ceil(2), ch.div_ceil(2));
        assert_eq!(out.len(), ow * oh * l.cout_p);
        let pairs = l.pair_offsets(w);
        let e = Epilogue::new(l, 0);
        for oy in 0..oh {
            let (y0, y1) = (2 * oy, (2 * oy + 1).min(ch - 1));
            let mut ox = 0;
            while ox < ow {
                // Pooled pixels ox .. ox + count, the missing ones of a short
                // block repeating its last; a window cut by the edge repeats a
                // pixel. Neither changes a max.
                let count = (ow - ox).min(POOLED);
                let corners: [[usize; 4]; POOLED] = std::array::from_fn(|j| {
                    let x0 = 2 * (ox + j.min(count - 1));
                    let x1 = (x0 + 1).min(cw - 1);
                    [(y0, x0), (y0, x1), (y1, x0), (y1, x1)].map(|(y, x)| (y * w + x) * l.cin)
                });
                let base: [usize; 4 * POOLED] = std::array::from_fn(|i| corners[i / 4][i % 4]);
                let acc =
                    accumulate::<1, { 4 * POOLED }>(inp.as_ptr(), l.packed.as_ptr(), &pairs, base);
                for j in 0..count {
                    let mut f = e.activated(e.scaled(acc[4 * j][0]));
                    for sums in &acc[4 * j + 1..4 * j + 4] {
                        f = _mm512_max_ps(f, e.activated(e.scaled(sums[0])));
                    }
                    e.quantise(f, out.as_mut_ptr().add((oy * ow + ox + j) * l.cout_p));
                }
                ox += count;
            }
        }
    }
}

/// The first `n` of 16 lanes.
fn mask(n: usize) -> __mmask16 {
    ((1u32 << n) - 1) as __mmask16
}

/// `k × k` max pool, stride 2; a window cut by the right or bottom edge
/// takes the pixels it has (ceil mode).
///
/// # Safety
/// The CPU must have AVX-512 F, BW, VL and VNNI.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
pub(super) unsafe fn pool(inp: &[i16], w: usize, h: usize, c: usize, k: usize, out: &mut [i16]) {
    // SAFETY: the CPU has AVX-512 F, BW, VL and VNNI (this function's contract, checked by its
    // caller through `Isa::available`). `check_pool` asserted the sizes of `inp` and `out`; `x <
    // w`, `y < h`, `oy < oh` and `ox < ow`, and the mask limits each load and store to the pixel's
    // channels `16v .. c`.
    unsafe {
        let (ow, oh) = check_pool(inp, w, h, c, k, out);
        for v in 0..c.div_ceil(LANES) {
            let m = mask((c - v * LANES).min(LANES));
            let at = |x: usize, y: usize| {
                _mm256_maskz_loadu_epi16(m, inp.as_ptr().add((y * w + x) * c + v * LANES))
            };
            for oy in 0..oh {
                let rows = (2 * oy..2 * oy + k).map(|y| y.min(h - 1));
                for ox in 0..ow {
                    let mut best = _mm256_set1_epi16(i16::MIN);
                    for y in rows.clone() {
                        for x in (2 * ox..2 * ox + k).map(|x| x.min(w - 1)) {
                            best = _mm256_max_epi16(best, at(x, y));
                        }
                    }
                    let dst = out.as_mut_ptr().add((oy * ow + ox) * c + v * LANES);
                    _mm256_mask_storeu_epi16(dst, m, best);
                }
            }
        }
    }
}
