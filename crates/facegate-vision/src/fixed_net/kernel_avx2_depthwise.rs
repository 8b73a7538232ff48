//! The AVX2 kernel of depthwise layers: each channel correlated with its
//! own k×k weights. `vpmaddwd` sums two products per lane, so the taps go
//! in pairs: the same 16 channels of two taps are interleaved
//! (`vpunpck{l,h}wd`) and multiplied by the two taps' weights, packed in the
//! same interleaved order (`Layer::packed`). The sums are exact; the
//! epilogue is the other kernels'.

use std::arch::x86_64::*;

use super::interface::{check_shapes, Out};
use super::kernel_avx2::{store, Acc};
use super::layer::{Layer, LANES};

/// One depthwise layer, valid padding, any stride, over a `w × h` input.
///
/// # Safety
/// The CPU must have AVX2.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn depthwise(l: &Layer, inp: &[i16], w: usize, h: usize, mut out: Out<'_>) {
    // SAFETY: the CPU has AVX2 (this function's contract, checked by its caller through
    // `Isa::available`). `check_shapes` and the assert above fix the sizes of `inp` and `out`;
    // `base` is the window of output pixel `(y, x)` inside `inp`, every tap offset plus `16v + 16`
    // stays inside the window's last pixel (`c` is a multiple of 16), the weights read are vector
    // `v`'s pairs inside `l.packed`, and `store` writes pixel `y × ow + x`, inside `out`.
    unsafe {
        let (ow, oh) = check_shapes(l, inp, w, h, &out);
        assert!(l.depthwise && l.cin == l.cout && l.cin.is_multiple_of(LANES));
        let (c, k, s) = (l.cin, l.k, l.stride);
        let taps = k * k;
        let pairs = taps.div_ceil(2);
        // Offsets of each pair's two taps from a window's first value; an odd
        // count's last tap pairs with itself, its second weight zero. The last
        // read is the input's last value.
        let tap = |t: usize| ((t / k) * w + t % k) * c;
        let offsets: Vec<(usize, usize)> = (0..pairs)
            .map(|j| (tap(2 * j), tap((2 * j + 1).min(taps - 1))))
            .collect();
        let src = inp.as_ptr();
        for y in 0..oh {
            for x in 0..ow {
                let base = src.add((y * s * w + x * s) * c);
                for v in 0..c / LANES {
                    let wp = l.packed.as_ptr().add(v * pairs * LANES);
                    let (mut lo, mut hi) = (_mm256_setzero_si256(), _mm256_setzero_si256());
                    for (j, &(a, b)) in offsets.iter().enumerate() {
                        let xa = _mm256_loadu_si256(base.add(a + v * LANES).cast());
                        let xb = _mm256_loadu_si256(base.add(b + v * LANES).cast());
                        let wl = _mm256_loadu_si256(wp.add(j * LANES).cast());
                        let wh = _mm256_loadu_si256(wp.add(j * LANES + LANES / 2).cast());
                        lo = _mm256_add_epi32(
                            lo,
                            _mm256_madd_epi16(_mm256_unpacklo_epi16(xa, xb), wl),
                        );
                        hi = _mm256_add_epi32(
                            hi,
                            _mm256_madd_epi16(_mm256_unpackhi_epi16(xa, xb), wh),
                        );
                    }
                    // `lo` holds channels 0-3 and 8-11, `hi` 4-7 and 12-15.
                    let acc = Acc {
                        lo: _mm256_permute2x128_si256::<0x20>(lo, hi),
                        hi: _mm256_permute2x128_si256::<0x31>(lo, hi),
                    };
                    store(l, &acc, v, &mut out, y * ow + x);
                }
            }
        }
    }
}
