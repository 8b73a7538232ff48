//! The AVX-512 VNNI kernel of depthwise layers: each channel correlated
//! with its own k×k weights. One `vpdpwssd` multiplies 32 channels of a
//! tap by weights that are zero in every other int16 (`Layer::packed_split`),
//! so one vector sums the even channels and another the odd ones; a
//! permutation puts them back in channel order for the epilogue of the
//! other layers. The sums are exact, so the outputs equal the other
//! kernels'.

use std::arch::x86_64::*;

use super::interface::{check_shapes, Out};
use super::kernel::store;
use super::layer::{Layer, LANES};

/// Output pixels computed together, sharing each weight load.
const PIXELS: usize = 4;

/// One depthwise layer, valid padding, any stride, over a `w × h` input.
///
/// # Safety
/// The CPU must have AVX-512 F, BW, VL and VNNI.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
pub(super) unsafe fn depthwise(l: &Layer, inp: &[i16], w: usize, h: usize, mut out: Out<'_>) {
    // SAFETY: the CPU has AVX-512 F, BW, VL and VNNI (this function's contract, checked by its
    // caller through `Isa::available`). `check_shapes` and the asserts above fix the sizes of
    // `inp`, `out` and the split weights; window starts come from output pixels below `ow × oh`,
    // and `group` and `store` stay inside them as they document.
    unsafe {
        let (ow, oh) = check_shapes(l, inp, w, h, &out);
        let c = l.cin;
        assert!(l.depthwise && l.cout == c && c.is_multiple_of(LANES));
        let taps = l.k * l.k;
        assert_eq!(
            l.packed_split.len(),
            c.div_ceil(2 * LANES) * taps * 2 * LANES
        );
        // Offsets of the taps from a window's first value; the last read is
        // within the input's last pixel (masked loads in a half group).
        let offsets: Vec<usize> = (0..taps).map(|t| ((t / l.k) * w + t % l.k) * c).collect();
        let n = ow * oh;
        let mut i = 0;
        while i < n {
            let count = (n - i).min(PIXELS);
            // The first value of the window of output pixel i + p; a short
            // block repeats its last pixel.
            let base: [usize; PIXELS] =
                std::array::from_fn(|p| l.window_start(i + p.min(count - 1), w, ow));
            for g in 0..c.div_ceil(2 * LANES) {
                let half = c - g * 2 * LANES == LANES;
                let acc = group(l, inp.as_ptr(), &offsets, base, g, half);
                if half {
                    store::<1, PIXELS>(l, &acc.map(|a| [a[0]]), count, 2 * g, &mut out, i);
                } else {
                    store::<2, PIXELS>(l, &acc, count, 2 * g, &mut out, i);
                }
            }
            i += count;
        }
    }
}

/// The sums of channel group `g` (32 channels, or the last 16 if `half`)
/// of the pixels whose windows start at `base`: channels `32g .. 32g + 16`
/// in the first vector, the rest in the second.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn group(
    l: &Layer,
    src: *const i16,
    offsets: &[usize],
    base: [usize; PIXELS],
    g: usize,
    half: bool,
) -> [[__m512i; 2]; PIXELS] {
    // SAFETY: the CPU has AVX-512 F, BW, VL and VNNI (this function's contract, checked by its
    // caller through `Isa::available`). The weights read are group `g`'s `2 × LANES` int32 per tap,
    // inside `l.packed_split` (its size asserted by the caller); each input read is a window start
    // plus a tap offset plus a channel of group `g`, inside the input pixel, and in a half group
    // the mask stops it after the pixel's 16 remaining channels.
    unsafe {
        let zero = _mm512_setzero_si512();
        let (mut even, mut odd) = ([zero; PIXELS], [zero; PIXELS]);
        let m: __mmask16 = if half { 0x00ff } else { 0xffff };
        let first = g * 2 * LANES;
        let mut wp = l.packed_split.as_ptr().add(g * offsets.len() * 2 * LANES);
        for &t in offsets {
            let we = _mm512_loadu_si512(wp.cast());
            let wo = _mm512_loadu_si512(wp.add(LANES).cast());
            wp = wp.add(2 * LANES);
            for p in 0..PIXELS {
                let x = _mm512_maskz_loadu_epi32(m, src.add(base[p] + t + first).cast());
                even[p] = _mm512_dpwssd_epi32(even[p], x, we);
                odd[p] = _mm512_dpwssd_epi32(odd[p], x, wo);
            }
        }
        // Lane j of the even sums is channel 2j, of the odd ones 2j + 1.
        let lo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
        let hi = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
        std::array::from_fn(|p| {
            [
                _mm512_permutex2var_epi32(even[p], lo, odd[p]),
                _mm512_permutex2var_epi32(even[p], hi, odd[p]),
            ]
        })
    }
}
