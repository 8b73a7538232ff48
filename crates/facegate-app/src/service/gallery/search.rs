//! One probe's search of a sketch index, in three passes:
//! 1. the Hamming distance from the probe's sketch to every stored sketch
//!    (on all cores, a piece at a time), those under a cut-off kept (the
//!    cut-off estimated beforehand from a pilot sample to keep a little
//!    more than `kept`; counted over all of them when that kept too few);
//! 2. those re-ranked by how well their sketch's bits agree with the
//!    probe's projections before the signs were taken (each bit weighed by
//!    how far the probe's projection is from zero: an asymmetric distance,
//!    much closer to the cosine than the count of differing bits, read from
//!    a table made once per probe);
//! 3. the best `scored` of those scored exactly (cosine similarity).
//!
//! Pass 1 reads every sketch (32 bytes a template), and pass 2 its kept
//! ones while they are still in the cache; pass 3 reads scattered memory,
//! twelve cache lines a vector, so the second pass keeps it small.

use facegate_vision::CosineProbe;
use rayon::prelude::*;

use super::hamming;

/// The owner of a slot whose template was removed.
pub const FREE: i64 = i64::MIN;

/// Slots per piece: a gallery larger than this is searched on all cores,
/// a piece at a time (a probe's search mostly waits on memory, and each
/// core brings its own share of the bandwidth). A piece's distances stay
/// in the core's cache until its candidates are taken from them.
const PIECE: usize = 1 << 15;

/// Sketches whose distances estimate the first pass's cut-off before the
/// scan (the first ones stored: which templates they are does not matter
/// to the distances of strangers, which are nearly all of them).
const PILOT: usize = 1 << 15;

/// How many candidates ahead their memory is fetched into the cache.
const PREFETCH_AHEAD: usize = 8;

/// What an index stores, slot by slot.
pub struct Stored<'a> {
    pub dim: usize,
    /// Words (u64) per sketch.
    pub words: usize,
    pub vectors: &'a [f32],
    pub codes: &'a [u64],
    /// The user of each slot, or [`FREE`].
    pub users: &'a [i64],
}

/// A probe: its vector, its sketch, and the projections whose signs are
/// the sketch (one per bit).
pub struct Probe<'a> {
    /// Its vector, ready to score others against.
    pub cosine: CosineProbe<'a>,
    pub code: &'a [u64],
    pub projections: &'a [f32],
}

/// How many candidates each pass keeps.
#[derive(Clone, Copy)]
pub struct Budget {
    /// Nearest sketches kept by the first pass (at least; all at the
    /// cut-off distance).
    pub kept: usize,
    /// Candidates of the second pass scored exactly.
    pub scored: usize,
}

/// The candidates of `probe`, each with its owner and exact similarity.
pub fn candidates(stored: &Stored, probe: &Probe, budget: Budget) -> Vec<(i64, f32)> {
    let n = stored.users.len();
    let bits = stored.words * 64;
    let table = agreement_table(probe.projections);
    let wanted = budget.kept.min(n);
    let (mut kept, mut ranked) = nearest(
        stored,
        probe.code,
        &table,
        pilot_cut(stored, probe.code, budget.kept),
    );
    if kept < wanted {
        // The pilot misled (rare): count every distance, then take them.
        let all = pieces(stored, |_, codes| {
            with_distances(codes, probe.code, |d| hamming::histogram(d, bits))
        })
        .into_iter()
        .reduce(hamming::merge)
        .unwrap_or_default();
        (kept, ranked) = nearest(stored, probe.code, &table, hamming::cut_off(&all, wanted));
    }
    debug_assert!(kept >= wanted);
    let best = budget.scored.min(ranked.len());
    if best < ranked.len() {
        ranked.select_nth_unstable_by(best, |a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        ranked.truncate(best);
    }
    score(stored, probe, &ranked)
}

/// A cut-off that keeps a little more than `kept` sketches, estimated from
/// the first [`PILOT`] (exact when they are all of them).
fn pilot_cut(stored: &Stored, code: &[u64], kept: usize) -> u16 {
    let n = stored.users.len();
    let pilot = n.min(PILOT);
    let bits = stored.words * 64;
    let codes = &stored.codes[..pilot * stored.words];
    let histogram = with_distances(codes, code, |d| hamming::histogram(d, bits));
    if pilot == n {
        return hamming::cut_off(&histogram, kept);
    }
    let aim = (kept + kept / 4) as f64 * pilot as f64 / n as f64;
    hamming::cut_off(&histogram, aim.ceil() as usize)
}

/// Runs `f` on each piece of the sketches (its first slot, its codes), on
/// all cores when there is more than one piece.
fn pieces<T: Send>(stored: &Stored, f: impl Fn(usize, &[u64]) -> T + Sync + Send) -> Vec<T> {
    let per = PIECE * stored.words;
    if stored.codes.len() <= per {
        return vec![f(0, stored.codes)];
    }
    stored
        .codes
        .par_chunks(per)
        .enumerate()
        .map(|(i, codes)| f(i * PIECE, codes))
        .collect()
}

thread_local! {
    /// A piece's distances, reused by every search on this thread.
    static DISTANCES: std::cell::RefCell<Vec<u16>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// `f` of the distances from `code` to each sketch of `codes`.
fn with_distances<T>(codes: &[u64], code: &[u64], f: impl FnOnce(&[u16]) -> T) -> T {
    DISTANCES.with(|cell| {
        let mut d = cell.borrow_mut();
        d.resize(codes.len() / code.len().max(1), 0);
        hamming::distances(codes, code, &mut d);
        f(&d)
    })
}

/// Passes 1 and 2: how many slots are at most `cut` away, and those in use
/// with their agreement with the probe (higher is nearer).
fn nearest(stored: &Stored, code: &[u64], table: &[f32], cut: u16) -> (usize, Vec<(u32, f32)>) {
    let parts = pieces(stored, |first, codes| {
        let mut slots = Vec::new();
        with_distances(codes, code, |d| hamming::within(d, cut, &mut slots));
        let mut ranked = Vec::with_capacity(slots.len());
        for (i, &slot) in slots.iter().enumerate() {
            if let Some(&ahead) = slots.get(i + PREFETCH_AHEAD) {
                let a = first + ahead as usize;
                prefetch(&stored.users[a..a + 1]);
            }
            let s = first + slot as usize;
            if stored.users[s] != FREE {
                let code = &stored.codes[s * stored.words..(s + 1) * stored.words];
                ranked.push((s as u32, agreement(table, code)));
            }
        }
        (slots.len(), ranked)
    });
    let kept = parts.iter().map(|p| p.0).sum();
    (kept, parts.into_iter().flat_map(|p| p.1).collect())
}

/// For each byte of a sketch and each of its 256 values, the sum of the
/// probe's projections for that byte's bits, counted positive where the
/// bit is set (the projection there was positive) and negative where not.
fn agreement_table(projections: &[f32]) -> Vec<f32> {
    let mut table = vec![0.0f32; projections.len() / 8 * 256];
    for (byte, t) in projections.chunks_exact(8).zip(table.chunks_exact_mut(256)) {
        t[0] = -byte.iter().sum::<f32>();
        for value in 1..256usize {
            let lowest = value.trailing_zeros() as usize;
            t[value] = t[value & (value - 1)] + 2.0 * byte[lowest];
        }
    }
    table
}

/// How well `code` agrees with the probe whose [`agreement_table`] this is.
fn agreement(table: &[f32], code: &[u64]) -> f32 {
    let mut sum = 0.0;
    for (w, &word) in code.iter().enumerate() {
        for (b, byte) in word.to_le_bytes().into_iter().enumerate() {
            sum += table[(w * 8 + b) * 256 + byte as usize];
        }
    }
    sum
}

/// Pass 3: the exact similarity of each ranked slot, with its owner.
fn score(stored: &Stored, probe: &Probe, ranked: &[(u32, f32)]) -> Vec<(i64, f32)> {
    let dim = stored.dim;
    let mut scored = Vec::with_capacity(ranked.len());
    for (i, &(slot, _)) in ranked.iter().enumerate() {
        if let Some(&(ahead, _)) = ranked.get(i + PREFETCH_AHEAD) {
            let a = ahead as usize;
            prefetch(&stored.vectors[a * dim..(a + 1) * dim]);
        }
        let s = slot as usize;
        let v = &stored.vectors[s * dim..(s + 1) * dim];
        scored.push((stored.users[s], probe.cosine.similarity(v)));
    }
    scored
}

/// Starts loading the cache lines of `data` (at most its first 12).
fn prefetch<T>(data: &[T]) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let bytes = std::mem::size_of_val(data).clamp(1, 12 * 64);
        let start = data.as_ptr().cast::<i8>();
        for offset in (0..bytes).step_by(64) {
            // SAFETY: a prefetch is only a hint; the address is inside `data`.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(start.add(offset)) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = data;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two pieces of sketches, one word each: the first (the pilot) at
    /// distances 0-63 from the probe, the second all 64 away; some slots
    /// free. The pilot's cut keeps too few, so every distance is counted.
    #[test]
    fn keeps_at_least_the_wanted_number_when_the_pilot_misleads() {
        let n = 2 * PILOT;
        let q = [0u64];
        let codes: Vec<u64> = (0..n)
            .map(|i| {
                if i < PILOT {
                    (1u64 << (i % 64)) - 1
                } else {
                    u64::MAX
                }
            })
            .collect();
        let users: Vec<i64> = (0..n as i64)
            .map(|i| if i % 100 == 7 { FREE } else { i })
            .collect();
        let stored = Stored {
            dim: 1,
            words: 1,
            vectors: &vec![1.0; n],
            codes: &codes,
            users: &users,
        };
        let projections = vec![-1.0; 64];
        let probe = Probe {
            cosine: CosineProbe::new(&[1.0]),
            code: &q,
            projections: &projections,
        };
        let budget = Budget {
            kept: 2000,
            scored: usize::MAX,
        };
        let found = candidates(&stored, &probe, budget);
        // Distances 0-3 (512 slots each) are the 2048 nearest.
        let want: Vec<i64> = (0..PILOT as i64)
            .filter(|i| i % 64 <= 3 && i % 100 != 7)
            .collect();
        let mut got: Vec<i64> = found.iter().map(|c| c.0).collect();
        got.sort();
        assert_eq!(got, want);
        assert!(found.iter().all(|c| c.1 == 1.0));
        let fewer = candidates(
            &stored,
            &probe,
            Budget {
                kept: 2000,
                scored: 10,
            },
        );
        assert_eq!(fewer.len(), 10);
        assert!(
            fewer.iter().all(|c| c.0 % 64 == 0),
            "the nearest by agreement first"
        );
    }

    #[test]
    fn agreement_sums_the_projections_signed_by_the_bits() {
        let projections: Vec<f32> = (0..64).map(|i| (i as f32 - 20.0) * 0.25).collect();
        let table = agreement_table(&projections);
        for code in [0u64, u64::MAX, 0x0123_4567_89ab_cdef, 1 << 63] {
            let want: f32 = (0..64)
                .map(|i| projections[i] * if code >> i & 1 == 1 { 1.0 } else { -1.0 })
                .sum();
            assert!((agreement(&table, &[code]) - want).abs() < 1e-3, "{code:x}");
        }
    }
}
