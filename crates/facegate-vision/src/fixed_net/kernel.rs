//! The AVX-512 VNNI kernels of the fixed-point networks: a convolution
//! that keeps up to 64 output channels of several neighbouring pixels in
//! registers and feeds them two input channels at a time (`vpdpwssd`), and
//! the max pool. Both are called only after the CPU features were checked.

use std::arch::x86_64::*;

use super::{check_pool, check_shapes, Layer, Out, A16, CHUNK, LANES};

/// One layer, valid padding, stride 1, over a `w × h` input.
///
/// # Safety
/// The CPU must have AVX-512 F, BW, VL and VNNI.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
pub(super) unsafe fn conv(l: &Layer, inp: &[i16], w: usize, h: usize, mut out: Out<'_>) {
    assert!(
        l.plain(),
        "the AVX-512 kernel runs valid, stride-1 layers only"
    );
    let (ow, oh) = check_shapes(l, inp, w, h, &out);
    // Every read is in bounds (see `Layer::tap_offsets`).
    let taps = l.tap_offsets(w);
    let g = Geometry {
        w,
        ow,
        oh,
        taps: &taps,
    };
    for chunk in 0..l.nv.div_ceil(CHUNK) {
        // Wider chunks hold fewer pixels: accumulators and weights must fit
        // the 32 vector registers.
        match (l.nv - chunk * CHUNK).min(CHUNK) {
            1 => conv_chunk::<1, 4>(l, inp, &g, chunk, &mut out),
            2 => conv_chunk::<2, 4>(l, inp, &g, chunk, &mut out),
            3 => conv_chunk::<3, 2>(l, inp, &g, chunk, &mut out),
            _ => conv_chunk::<4, 2>(l, inp, &g, chunk, &mut out),
        }
    }
}

struct Geometry<'a> {
    w: usize,
    ow: usize,
    oh: usize,
    taps: &'a [usize],
}

/// Output vectors `chunk × CHUNK ..` (`NV` of them) of every pixel, `P`
/// pixels at a time.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn conv_chunk<const NV: usize, const P: usize>(
    l: &Layer,
    inp: &[i16],
    g: &Geometry<'_>,
    chunk: usize,
    out: &mut Out<'_>,
) {
    let src = inp.as_ptr();
    let wts = l
        .packed
        .as_ptr()
        .add(chunk * CHUNK * LANES * g.taps.len() * (l.cin / 2));
    let first = chunk * CHUNK;
    for y in 0..g.oh {
        let mut x = 0;
        while x + P <= g.ow {
            let base = std::array::from_fn(|p| (y * g.w + x + p) * l.cin);
            let acc = accumulate::<NV, P>(l, src, wts, g.taps, base);
            for (p, a) in acc.into_iter().enumerate() {
                store::<NV>(l, a, first, out, y * g.ow + x + p);
            }
            x += P;
        }
        while x < g.ow {
            let acc = accumulate::<NV, 1>(l, src, wts, g.taps, [(y * g.w + x) * l.cin]);
            store::<NV>(l, acc[0], first, out, y * g.ow + x);
            x += 1;
        }
    }
}

/// The int32 sums of `P` output pixels whose windows start at `base`.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn accumulate<const NV: usize, const P: usize>(
    l: &Layer,
    src: *const i16,
    wts: *const i32,
    taps: &[usize],
    base: [usize; P],
) -> [[__m512i; NV]; P] {
    let mut acc = [[_mm512_setzero_si512(); NV]; P];
    let pairs = l.cin / 2;
    let mut wp = wts;
    for &t in taps {
        for g in 0..pairs {
            let wv: [__m512i; NV] =
                std::array::from_fn(|v| _mm512_loadu_si512(wp.add(v * LANES).cast()));
            wp = wp.add(NV * LANES);
            for p in 0..P {
                // Channels 2g and 2g + 1 of the pixel, as one int32, in every lane.
                let pair = src.add(base[p] + t + 2 * g).cast::<i32>().read_unaligned();
                let a = _mm512_set1_epi32(pair);
                for v in 0..NV {
                    acc[p][v] = _mm512_dpwssd_epi32(acc[p][v], a, wv[v]);
                }
            }
        }
    }
    acc
}

/// Scale and shift one pixel's sums for output vectors `first ..`; then
/// PReLU and requantisation into the int16 buffer, or the floats of the
/// last layer.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn store<const NV: usize>(
    l: &Layer,
    acc: [__m512i; NV],
    first: usize,
    out: &mut Out<'_>,
    pixel: usize,
) {
    for (i, a) in acc.into_iter().enumerate() {
        let v = first + i;
        let f = scaled(l, a, v);
        match out {
            Out::Fixed(o) => quantise(
                l,
                activated(l, f, v),
                v,
                o.as_mut_ptr().add(pixel * l.cout_p),
            ),
            Out::Float(o) => {
                let n = (l.cout - v * LANES).min(LANES);
                let dst = o.as_mut_ptr().add(pixel * l.cout + v * LANES);
                _mm512_mask_storeu_ps(dst, mask(n), f);
            }
            Out::Residual(_) => unreachable!("checked in `conv`: no residual layers here"),
        }
    }
}

/// Output vector `v`'s sums, scaled and shifted.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn scaled(l: &Layer, acc: __m512i, v: usize) -> __m512 {
    let lane = |c: &[f32]| _mm512_loadu_ps(c.as_ptr().add(v * LANES));
    _mm512_add_ps(
        _mm512_mul_ps(_mm512_cvtepi32_ps(acc), lane(&l.scale)),
        lane(&l.shift),
    )
}

/// PReLU of output vector `v`'s scaled sums.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn activated(l: &Layer, f: __m512, v: usize) -> __m512 {
    let alpha = _mm512_loadu_ps(l.alpha.as_ptr().add(v * LANES));
    let zero = _mm512_setzero_ps();
    _mm512_add_ps(
        _mm512_max_ps(f, zero),
        _mm512_mul_ps(_mm512_min_ps(f, zero), alpha),
    )
}

/// Requantisation to int16 of output vector `v`'s activations, and their
/// store for the pixel whose channels start at `dst`.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn quantise(l: &Layer, f: __m512, v: usize, dst: *mut i16) {
    let t = _mm512_mul_ps(f, _mm512_loadu_ps(l.inv.as_ptr().add(v * LANES)));
    let t = _mm512_min_ps(_mm512_max_ps(t, _mm512_set1_ps(-A16)), _mm512_set1_ps(A16));
    // Round half to even (the default rounding mode).
    let q = _mm512_cvtepi32_epi16(_mm512_cvtps_epi32(t));
    let n = (l.cout_p - v * LANES).min(LANES);
    _mm256_mask_storeu_epi16(dst.add(v * LANES), mask(n), q);
}

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
    assert!(l.plain() && l.nv == 1 && l.requant && l.monotone && w >= l.k && h >= l.k);
    assert_eq!(inp.len(), w * h * l.cin);
    let (cw, ch) = (w + 1 - l.k, h + 1 - l.k);
    let (ow, oh) = (cw.div_ceil(2), ch.div_ceil(2));
    assert_eq!(out.len(), ow * oh * l.cout_p);
    let taps = l.tap_offsets(w);
    for oy in 0..oh {
        let (y0, y1) = (2 * oy, (2 * oy + 1).min(ch - 1));
        for ox in 0..ow {
            // A window cut by the edge repeats a pixel: the max is the same.
            let (x0, x1) = (2 * ox, (2 * ox + 1).min(cw - 1));
            let base = [(y0, x0), (y0, x1), (y1, x0), (y1, x1)].map(|(y, x)| (y * w + x) * l.cin);
            let acc = accumulate::<1, 4>(l, inp.as_ptr(), l.packed.as_ptr(), &taps, base);
            let [a, b, c, d] = acc.map(|a| activated(l, scaled(l, a[0], 0), 0));
            let f = _mm512_max_ps(_mm512_max_ps(a, b), _mm512_max_ps(c, d));
            quantise(l, f, 0, out.as_mut_ptr().add((oy * ow + ox) * l.cout_p));
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
