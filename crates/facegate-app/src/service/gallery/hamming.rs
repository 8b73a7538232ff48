//! Hamming distances from one sketch to every stored sketch: the inner
//! loop of the large-gallery search. The loop is compiled three times and
//! picked at run time: with AVX-512's vector popcount (eight sketches'
//! words at once), with the scalar `popcnt` instruction, and portable
//! (x86-64's baseline has no popcount instruction at all).

/// Writes into `out` the Hamming distance from `q` to each `q.len()`-word
/// sketch of `codes` (`out` gets one entry per sketch).
pub fn distances(codes: &[u64], q: &[u64], out: &mut Vec<u16>) {
    out.clear();
    if q.is_empty() {
        return;
    }
    out.resize(codes.len() / q.len(), 0);
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        if has!("avx512f") && has!("avx512bw") && has!("avx512vpopcntdq") {
            // SAFETY: the CPU has the features the function is compiled for.
            return unsafe { scan_avx512(codes, q, out) };
        }
        if has!("popcnt") {
            // SAFETY: as above.
            return unsafe { scan_popcnt(codes, q, out) };
        }
    }
    scan(codes, q, out)
}

/// Appends to `out` the indices of the nearest of `distances`, in order:
/// every one ≤ a cut-off that keeps at least `wanted` (all of them when
/// there are fewer). The cut-off is first estimated from every 8th
/// distance, aiming a little high; only when that keeps too few is it
/// counted over all of them ([`cut_off`]).
pub fn nearest(distances: &[u16], bits: usize, wanted: usize, out: &mut Vec<u32>) {
    const STRIDE: usize = 8;
    let sample: Vec<u16> = distances.iter().step_by(STRIDE).copied().collect();
    let aim = (wanted + wanted / 8).div_ceil(STRIDE);
    out.clear();
    within(distances, cut_off(&sample, bits, aim), out);
    if out.len() < wanted.min(distances.len()) {
        out.clear();
        within(distances, cut_off(distances, bits, wanted), out);
    }
}

/// The smallest distance `cut` such that at least `wanted` of
/// `distances` are ≤ `cut` (`bits` when there are fewer). Counted in four
/// interleaved histograms: distances cluster around half the bits, and
/// one table would make every count wait for the previous one.
fn cut_off(distances: &[u16], bits: usize, wanted: usize) -> u16 {
    let mut histograms = vec![[0u32; 4]; bits + 1];
    let mut chunks = distances.chunks_exact(4);
    for c in &mut chunks {
        for (lane, &d) in c.iter().enumerate() {
            histograms[(d as usize).min(bits)][lane] += 1;
        }
    }
    for &d in chunks.remainder() {
        histograms[(d as usize).min(bits)][0] += 1;
    }
    let mut kept = 0u64;
    for (cut, h) in histograms.iter().enumerate() {
        kept += h.iter().map(|&n| n as u64).sum::<u64>();
        if kept >= wanted as u64 {
            return cut as u16;
        }
    }
    bits as u16
}

/// Appends to `out` the index of every distance ≤ `cut`, in order: a
/// mask per 64 distances (vector compares), indices only where it is set.
fn within(distances: &[u16], cut: u16, out: &mut Vec<u32>) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        if has!("avx512f") && has!("avx512bw") {
            // SAFETY: the CPU has the features the function is compiled for.
            return unsafe { within_avx512(distances, cut, out) };
        }
        if has!("avx2") {
            // SAFETY: as above.
            return unsafe { within_avx2(distances, cut, out) };
        }
    }
    within_any(distances, cut, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn within_avx512(distances: &[u16], cut: u16, out: &mut Vec<u32>) {
    within_any(distances, cut, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn within_avx2(distances: &[u16], cut: u16, out: &mut Vec<u32>) {
    within_any(distances, cut, out)
}

#[inline(always)]
fn within_any(distances: &[u16], cut: u16, out: &mut Vec<u32>) {
    for (c, chunk) in distances.chunks(64).enumerate() {
        let mut mask = 0u64;
        for (j, &d) in chunk.iter().enumerate() {
            mask |= u64::from(d <= cut) << j;
        }
        while mask != 0 {
            out.push((c * 64) as u32 + mask.trailing_zeros());
            mask &= mask - 1;
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vpopcntdq,popcnt")]
unsafe fn scan_avx512(codes: &[u64], q: &[u64], out: &mut [u16]) {
    scan(codes, q, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "popcnt")]
unsafe fn scan_popcnt(codes: &[u64], q: &[u64], out: &mut [u16]) {
    scan(codes, q, out)
}

/// The loop itself; the 4-word sketch (256 bits, a 192-float embedding)
/// gets a fixed-length body the compiler can vectorise.
#[inline(always)]
fn scan(codes: &[u64], q: &[u64], out: &mut [u16]) {
    if let Ok(q4) = <[u64; 4]>::try_from(q) {
        for (c, o) in codes.chunks_exact(4).zip(out.iter_mut()) {
            *o = ((c[0] ^ q4[0]).count_ones()
                + (c[1] ^ q4[1]).count_ones()
                + (c[2] ^ q4[2]).count_ones()
                + (c[3] ^ q4[3]).count_ones()) as u16;
        }
        return;
    }
    for (c, o) in codes.chunks_exact(q.len()).zip(out.iter_mut()) {
        *o = c
            .iter()
            .zip(q)
            .map(|(a, b)| (a ^ b).count_ones())
            .sum::<u32>() as u16;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_differing_bits_for_any_sketch_length() {
        for words in [1usize, 4, 8] {
            let q: Vec<u64> = (0..words as u64).map(|i| i.wrapping_mul(0x9E37)).collect();
            let mut codes = Vec::new();
            let mut want = Vec::new();
            for n in 0..37u64 {
                let c: Vec<u64> = q.iter().map(|&w| w ^ ((1u64 << (n % 64)) - 1)).collect();
                want.push(
                    c.iter()
                        .zip(&q)
                        .map(|(a, b)| (a ^ b).count_ones())
                        .sum::<u32>() as u16,
                );
                codes.extend(c);
            }
            let mut out = Vec::new();
            distances(&codes, &q, &mut out);
            assert_eq!(out, want, "{words} words");
        }
    }

    #[test]
    fn within_lists_the_indices_at_or_under_the_cut_in_order() {
        let d: Vec<u16> = (0..200u16).map(|i| (i * 37) % 101).collect();
        let mut out = Vec::new();
        within(&d, 10, &mut out);
        let want: Vec<u32> = (0..200u32).filter(|&i| d[i as usize] <= 10).collect();
        assert_eq!(out, want);
    }

    #[test]
    fn nearest_keeps_at_least_the_wanted_number_and_all_at_the_cut() {
        let d: Vec<u16> = (0..5000u32).map(|i| ((i * 7919) % 257) as u16).collect();
        for wanted in [1, 10, 100, 1000, 5000, 6000] {
            let mut out = Vec::new();
            nearest(&d, 256, wanted, &mut out);
            assert!(out.len() >= wanted.min(d.len()), "{wanted}: {}", out.len());
            let cut = out.iter().map(|&i| d[i as usize]).max().unwrap();
            let all: Vec<u32> = (0..5000u32).filter(|&i| d[i as usize] <= cut).collect();
            assert_eq!(out, all, "{wanted}");
        }
    }

    #[test]
    fn the_cut_off_keeps_at_least_the_wanted_number() {
        let d: Vec<u16> = vec![5, 3, 3, 9, 7, 3, 1];
        assert_eq!(cut_off(&d, 16, 1), 1);
        assert_eq!(cut_off(&d, 16, 2), 3);
        assert_eq!(cut_off(&d, 16, 4), 3);
        assert_eq!(cut_off(&d, 16, 5), 5);
        assert_eq!(cut_off(&d, 16, 7), 9);
        assert_eq!(cut_off(&d, 16, 8), 16);
    }
}
