//! Hamming distances from one sketch to every stored sketch: the inner
//! loop of the large-gallery search. The loop is compiled three times and
//! picked at run time: with AVX-512's vector popcount (eight sketches'
//! words at once), with the scalar `popcnt` instruction, and portable
//! (x86-64's baseline has no popcount instruction at all).

/// Writes into `out` the Hamming distance from `q` to each `q.len()`-word
/// sketch of `codes` (one entry of `out` per sketch).
pub fn distances(codes: &[u64], q: &[u64], out: &mut [u16]) {
    if q.is_empty() {
        return;
    }
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

/// Counts of each distance in `distances` (the last bin holds `bits` and
/// over). Counted in four interleaved
/// histograms: distances cluster around half the bits, and one table
/// would make every count wait for the previous one.
pub fn histogram(distances: &[u16], bits: usize) -> Vec<u32> {
    let mut lanes = vec![[0u32; 4]; bits + 1];
    for (i, &d) in distances.iter().enumerate() {
        lanes[(d as usize).min(bits)][i % 4] += 1;
    }
    lanes.iter().map(|l| l.iter().sum()).collect()
}

/// Adds the counts of `b` to `a` (histograms of the same bits).
pub fn merge(mut a: Vec<u32>, b: Vec<u32>) -> Vec<u32> {
    for (x, y) in a.iter_mut().zip(b) {
        *x += y;
    }
    a
}

/// The smallest distance `cut` such that at least `wanted` of the counted
/// distances are ≤ `cut` (the last bin when there are fewer).
pub fn cut_off(histogram: &[u32], wanted: usize) -> u16 {
    let mut kept = 0u64;
    for (cut, &n) in histogram.iter().enumerate() {
        kept += u64::from(n);
        if kept >= wanted as u64 {
            return cut as u16;
        }
    }
    histogram.len().saturating_sub(1) as u16
}

/// Appends to `out` the index of every distance ≤ `cut`, in order: a
/// mask per 64 distances (vector compares), indices only where it is set.
pub fn within(distances: &[u16], cut: u16, out: &mut Vec<u32>) {
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
            let mut out = vec![0; want.len()];
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
    fn the_cut_off_keeps_at_least_the_wanted_number() {
        let d: Vec<u16> = vec![5, 3, 3, 9, 7, 3, 1, 20];
        let h = histogram(&d, 16);
        assert_eq!(h.iter().sum::<u32>(), 8);
        assert_eq!(cut_off(&h, 1), 1);
        assert_eq!(cut_off(&h, 2), 3);
        assert_eq!(cut_off(&h, 4), 3);
        assert_eq!(cut_off(&h, 5), 5);
        assert_eq!(cut_off(&h, 7), 9);
        assert_eq!(cut_off(&h, 8), 16);
        assert_eq!(cut_off(&h, 9), 16);
        assert_eq!(merge(histogram(&d[..3], 16), histogram(&d[3..], 16)), h);
    }
}
