//! One probe's search of a large gallery, in two passes:
//! 1. every template's code scored under the probe's table (a fast scan,
//!    [`super::fastscan`]; on all cores, a piece at a time), those at or
//!    above a cut kept (the cut estimated beforehand from a pilot sample
//!    to keep about twice as many as wanted; counted over all of them
//!    when that kept too few);
//! 2. the best `kept` of those scored exactly (cosine similarity).
//!
//! Pass 1 reads every code (16 bytes a template) once, in order; pass 2
//! reads scattered vectors, twelve cache lines each, fetched ahead.

use facegate_vision::CosineProbe;
use rayon::prelude::*;

use super::fastscan::{self, Codes, Table, BLOCK, SUBSPACES};

/// The owner of a slot whose template was removed.
pub const FREE: i64 = i64::MIN;

/// Slots per piece: a gallery larger than this is searched on all cores,
/// a piece at a time (a probe's search mostly waits on memory, and each
/// core brings its own share of the bandwidth). A piece's scores stay in
/// the core's cache until its candidates are taken from them.
const PIECE: usize = 1 << 15;

/// Slots whose scores estimate the first pass's cut before the scan (the
/// first ones stored: which templates they are does not matter to the
/// scores of strangers, which are nearly all of them).
const PILOT: usize = 1 << 12;

/// The rank in the pilot the cut is taken at, at least: the cut then keeps
/// about `PILOT_RANK / PILOT` of all slots, a few thousand of a million,
/// and a rank this deep varies little from probe to probe.
const PILOT_RANK: usize = 16;

/// The highest score a code can get.
const TOP: usize = 255 * SUBSPACES;

/// How many candidates ahead their memory is fetched into the cache.
const PREFETCH_AHEAD: usize = 8;

/// What an index stores, slot by slot.
pub struct Stored<'a> {
    pub dim: usize,
    pub vectors: &'a [f32],
    pub codes: &'a Codes,
    /// The user of each slot, or [`FREE`].
    pub users: &'a [i64],
}

/// A probe: its vector, and its table for the codes.
pub struct Probe<'a> {
    /// Its vector, ready to score others against.
    pub cosine: CosineProbe<'a>,
    pub table: &'a Table,
}

/// The `kept` candidates of `probe` with the best code scores, each with
/// its owner and exact similarity.
pub fn candidates(stored: &Stored, probe: &Probe, kept: usize) -> Vec<(i64, f32)> {
    let n = stored.users.len();
    let wanted = kept.min(n);
    let (mut found, mut ranked) = nearest(stored, probe.table, pilot_cut(stored, probe, kept));
    if found < wanted {
        // The pilot misled (rare): count every score, then take them.
        let all = pieces(stored, |first, blocks| {
            with_scores(stored, first, blocks, probe.table, histogram)
        })
        .into_iter()
        .reduce(merge)
        .unwrap_or_default();
        (found, ranked) = nearest(stored, probe.table, cut_off(&all, wanted));
    }
    debug_assert!(found >= wanted);
    if kept < ranked.len() {
        ranked.select_nth_unstable_by(kept, |a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        ranked.truncate(kept);
    }
    score(stored, probe, &ranked)
}

/// A cut that keeps about twice `kept` slots or more, estimated from the
/// first [`PILOT`] (exact when they are all of them).
fn pilot_cut(stored: &Stored, probe: &Probe, kept: usize) -> u16 {
    let n = stored.users.len();
    let pilot = n.min(PILOT);
    let counts = with_scores(stored, 0, pilot.div_ceil(BLOCK), probe.table, histogram);
    if pilot == n {
        return cut_off(&counts, kept);
    }
    let aim = (2 * kept) as f64 * pilot as f64 / n as f64;
    cut_off(&counts, (aim.ceil() as usize).max(PILOT_RANK))
}

/// Runs `f` on each piece of the blocks (its first block, its number of
/// blocks), on all cores when there is more than one piece.
fn pieces<T: Send>(stored: &Stored, f: impl Fn(usize, usize) -> T + Sync + Send) -> Vec<T> {
    let (blocks, per) = (stored.codes.blocks(), PIECE / BLOCK);
    if blocks <= per {
        return vec![f(0, blocks)];
    }
    (0..blocks.div_ceil(per))
        .into_par_iter()
        .map(|i| f(i * per, per.min(blocks - i * per)))
        .collect()
}

thread_local! {
    /// A piece's scores, reused by every search on this thread.
    static SCORES: std::cell::RefCell<Vec<u16>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// `f` of the scores of the slots in use among `blocks` blocks from
/// `first` (the slots past the last one left out).
fn with_scores<T>(
    stored: &Stored,
    first: usize,
    blocks: usize,
    table: &Table,
    f: impl FnOnce(&[u16]) -> T,
) -> T {
    SCORES.with(|cell| {
        let mut s = cell.borrow_mut();
        s.resize(blocks * BLOCK, 0);
        stored.codes.scan(first, table, &mut s);
        let used = stored
            .users
            .len()
            .saturating_sub(first * BLOCK)
            .min(s.len());
        f(&s[..used])
    })
}

/// Counts of each score of `scores`.
fn histogram(scores: &[u16]) -> Vec<u32> {
    let mut counts = vec![0u32; TOP + 1];
    for &s in scores {
        counts[usize::from(s).min(TOP)] += 1;
    }
    counts
}

/// Adds the counts of `b` to `a`.
fn merge(mut a: Vec<u32>, b: Vec<u32>) -> Vec<u32> {
    for (x, y) in a.iter_mut().zip(b) {
        *x += y;
    }
    a
}

/// The highest score `cut` such that at least `wanted` of the counted
/// scores are ≥ `cut` (0 when there are fewer).
fn cut_off(counts: &[u32], wanted: usize) -> u16 {
    let mut kept = 0u64;
    for (cut, &n) in counts.iter().enumerate().rev() {
        kept += u64::from(n);
        if kept >= wanted as u64 {
            return cut as u16;
        }
    }
    0
}

/// Pass 1: how many slots score at least `cut`, and those in use with
/// their score.
fn nearest(stored: &Stored, table: &Table, cut: u16) -> (usize, Vec<(u32, u16)>) {
    let parts = pieces(stored, |first, blocks| {
        with_scores(stored, first, blocks, table, |scores| {
            let mut slots = Vec::new();
            fastscan::at_least(scores, cut, &mut slots);
            let ranked: Vec<(u32, u16)> = slots
                .iter()
                .map(|&i| (first * BLOCK + i as usize, scores[i as usize]))
                .filter(|&(slot, _)| stored.users[slot] != FREE)
                .map(|(slot, s)| (slot as u32, s))
                .collect();
            (slots.len(), ranked)
        })
    });
    let found = parts.iter().map(|p| p.0).sum();
    (found, parts.into_iter().flat_map(|p| p.1).collect())
}

/// Pass 2: the exact similarity of each ranked slot, with its owner.
fn score(stored: &Stored, probe: &Probe, ranked: &[(u32, u16)]) -> Vec<(i64, f32)> {
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

    /// Two pieces of slots: the pilot's codes score 0-31 under the
    /// probe's table, all the others 0, so the pilot's cut keeps too few
    /// and every score is counted; some slots are free.
    #[test]
    fn keeps_the_best_scores_even_when_the_pilot_misleads() {
        let n = 2 * PIECE;
        let mut codes = Codes::default();
        for i in 0..n {
            let k = if i < PILOT { i % 32 } else { 0 };
            // Sub-space m holds 1 when m < k: the score is k (table below).
            codes.push(&std::array::from_fn(|m| u8::from(m < k)));
        }
        let users: Vec<i64> = (0..n as i64)
            .map(|i| if i % 100 == 7 { FREE } else { i })
            .collect();
        let stored = Stored {
            dim: 1,
            vectors: &vec![1.0; n],
            codes: &codes,
            users: &users,
        };
        let mut table = [[0u8; 16]; SUBSPACES];
        table.iter_mut().for_each(|t| t[1] = 1);
        let probe = Probe {
            cosine: CosineProbe::new(&[1.0]),
            table: &table,
        };
        // The pilot's cut (29) keeps 384 slots, fewer than 3000: the best
        // 3000 are the scores 8 to 31 (128 slots each, some free).
        let found = candidates(&stored, &probe, 3000);
        assert_eq!(found.len(), 3000);
        assert!(found.iter().all(|c| c.0 < PILOT as i64 && c.0 % 32 >= 8));
        assert!(found.iter().all(|c| c.0 % 100 != 7 && c.1 == 1.0));
        let best = candidates(&stored, &probe, 100);
        assert!(best.iter().all(|c| c.0 % 32 == 31));
        let all = candidates(&stored, &probe, 4 * n);
        assert_eq!(all.len(), users.iter().filter(|&&u| u != FREE).count());
    }

    #[test]
    fn the_cut_keeps_at_least_the_wanted_number() {
        let h = histogram(&[5, 3, 3, 9, 7, 3, 1, 20]);
        assert_eq!(h.iter().sum::<u32>(), 8);
        assert_eq!(cut_off(&h, 1), 20);
        assert_eq!(cut_off(&h, 2), 9);
        assert_eq!(cut_off(&h, 4), 5);
        assert_eq!(cut_off(&h, 5), 3);
        assert_eq!(cut_off(&h, 7), 3);
        assert_eq!(cut_off(&h, 8), 1);
        assert_eq!(cut_off(&h, 9), 0);
        assert_eq!(
            merge(histogram(&[5, 3, 3]), histogram(&[9, 7, 3, 1, 20])),
            h
        );
    }
}
