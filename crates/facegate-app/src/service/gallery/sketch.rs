//! The search of a large gallery: quantised exhaustive search. Every
//! template also gets a short binary sketch (sign random projections:
//! random sign flips and two Walsh-Hadamard rotations, then one bit per
//! output, 256 bits for a 192-dimension embedding). A probe's sketch is
//! compared with all of them by Hamming distance (XOR and popcount, 32
//! bytes per template instead of 768; [`super::hamming`]), at least the
//! `candidates` nearest are kept, the best eighth of those by how well
//! their bits agree with the probe's projections are scored
//! ([`super::search`]), and the best users among them are re-scored
//! exactly with the same cosine similarity as the plain exhaustive search,
//! over all their templates. Scores are therefore never approximate: only
//! a user whose sketch is not among the candidates can be missed
//! (measured by `facegate bench-index`, docs/BENCHMARKS.md).
//!
//! An HNSW graph (usearch) was tried first: on a gallery of random
//! templates, the hard case for graph search, it found the exact best
//! user for fewer than 60 % of probes at 20 k templates.

use std::collections::HashMap;

use facegate_vision::CosineProbe;

use super::search::{self, Budget, Probe, Stored, FREE};
use crate::domain::MatchTemplate;
use crate::service::matching::{nearer_first, RANKED_USERS};

/// Users whose every template is scored per probe: as many as the
/// exhaustive ranking keeps (the decision needs the best two; the others
/// are a margin for users with several).
const RESCORED_USERS: usize = RANKED_USERS;

/// The share of the nearest sketches whose vectors are scored: one in 8.
const SCORED_SHARE: usize = 8;

/// The in-memory search structure of one model's templates.
pub struct SketchIndex {
    dim: usize,
    /// Padded length of the rotation (a power of two ≥ `dim`).
    width: usize,
    words: usize,
    signs: [Vec<f32>; 2],
    candidates: usize,
    /// `dim` floats per slot.
    vectors: Vec<f32>,
    /// `words` u64 per slot.
    codes: Vec<u64>,
    /// The user of each slot, or [`FREE`].
    users: Vec<i64>,
    by_user: HashMap<i64, Vec<u32>>,
    free: Vec<u32>,
}

/// Asks the kernel to back a large array with 2 MiB pages where it does so
/// on request (transparent huge pages in `madvise` mode): every probe scans
/// all the sketches and reads candidates' vectors scattered over hundreds of
/// megabytes, and with 4 KiB pages most of those reads also miss the TLB.
fn advise_huge_pages<T>(v: &Vec<T>) {
    #[cfg(target_os = "linux")]
    {
        const HUGE: usize = 2 << 20;
        let start = v.as_ptr() as usize;
        let end = start + v.capacity() * std::mem::size_of::<T>();
        let (first, last) = (start.next_multiple_of(HUGE), end / HUGE * HUGE);
        if last > first {
            // SAFETY: the range lies inside the vector's allocation, and
            // MADV_HUGEPAGE only changes how the kernel backs those pages.
            unsafe {
                libc::madvise(
                    first as *mut libc::c_void,
                    last - first,
                    libc::MADV_HUGEPAGE,
                );
            }
        }
    }
}

/// A fixed pseudo-random ±1 sequence (splitmix64), the same in every
/// process, so that sketches made anywhere compare.
fn signs(seed: u64, n: usize) -> Vec<f32> {
    let mut state = seed;
    (0..n)
        .map(|_| {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            if (z ^ (z >> 31)) & 1 == 0 {
                1.0
            } else {
                -1.0
            }
        })
        .collect()
}

/// In-place fast Walsh-Hadamard transform (length a power of two).
fn hadamard(v: &mut [f32]) {
    let mut h = 1;
    while h < v.len() {
        for block in v.chunks_exact_mut(2 * h) {
            let (a, b) = block.split_at_mut(h);
            for (x, y) in a.iter_mut().zip(b.iter_mut()) {
                let (s, d) = (*x + *y, *x - *y);
                *x = s;
                *y = d;
            }
        }
        h *= 2;
    }
}

impl SketchIndex {
    /// An empty index for vectors of `dim` floats that re-scores the
    /// `candidates` nearest sketches of each probe.
    pub fn new(dim: usize, candidates: usize) -> Self {
        let width = dim.max(64).next_power_of_two();
        SketchIndex {
            dim,
            width,
            words: width / 64,
            signs: [signs(0x5eed_0001, width), signs(0x5eed_0002, width)],
            candidates: candidates.max(2),
            vectors: Vec::new(),
            codes: Vec::new(),
            users: Vec::new(),
            by_user: HashMap::new(),
            free: Vec::new(),
        }
    }

    /// Builds the index of `templates` (a template of another length is
    /// left out), telling `progress` the count done now and then.
    pub fn build(
        templates: &[MatchTemplate],
        dim: usize,
        candidates: usize,
        progress: &(dyn Fn(usize) + Sync),
    ) -> Self {
        Self::build_from(templates.iter(), dim, candidates, progress, &|| {})
    }

    /// Like [`SketchIndex::build`], taking the templates: each is dropped
    /// once copied, and `release` is called now and then meanwhile (to hand
    /// their memory back, so that the templates and the index are not both
    /// resident in full).
    pub fn build_owned(
        templates: Vec<MatchTemplate>,
        dim: usize,
        candidates: usize,
        progress: &(dyn Fn(usize) + Sync),
        release: &dyn Fn(),
    ) -> Self {
        Self::build_from(templates.into_iter(), dim, candidates, progress, release)
    }

    fn build_from<T: std::borrow::Borrow<MatchTemplate>>(
        templates: impl ExactSizeIterator<Item = T>,
        dim: usize,
        candidates: usize,
        progress: &(dyn Fn(usize) + Sync),
        release: &dyn Fn(),
    ) -> Self {
        let mut index = SketchIndex::new(dim, candidates);
        // Some room to grow without moving everything at the next enrolment.
        let room = templates.len() + templates.len() / 16;
        index.vectors.reserve_exact(room * dim);
        advise_huge_pages(&index.vectors);
        index.users.reserve_exact(room);
        for (i, item) in templates.enumerate() {
            let t: &MatchTemplate = item.borrow();
            if t.embedding.len() == dim {
                index.vectors.extend_from_slice(&t.embedding);
                index.users.push(t.user_id);
            }
            drop(item);
            if i % 65536 == 65535 {
                release();
            }
        }
        let n = index.users.len();
        index.codes = vec![0; n * index.words];
        index
            .codes
            .reserve_exact(room.saturating_sub(n) * index.words);
        advise_huge_pages(&index.codes);
        index.sketch_all(progress);
        for (slot, &user) in index.users.iter().enumerate() {
            index.by_user.entry(user).or_default().push(slot as u32);
        }
        progress(n);
        index
    }

    /// Sketches every slot, on all cores.
    fn sketch_all(&mut self, progress: &(dyn Fn(usize) + Sync)) {
        let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
        let per = self.users.len().div_ceil(workers).max(1);
        let done = std::sync::atomic::AtomicUsize::new(0);
        let mut codes = std::mem::take(&mut self.codes);
        let (this, words, dim) = (&*self, self.words, self.dim);
        std::thread::scope(|s| {
            for (part, out) in codes.chunks_mut(per * words).enumerate() {
                let done = &done;
                s.spawn(move || {
                    let mut scratch = vec![0.0; this.width];
                    for (i, code) in out.chunks_exact_mut(words).enumerate() {
                        let slot = part * per + i;
                        let v = &this.vectors[slot * dim..(slot + 1) * dim];
                        this.sketch_into(v, &mut scratch, code);
                        if i % 65536 == 65535 {
                            progress(
                                done.fetch_add(65536, std::sync::atomic::Ordering::Relaxed) + 65536,
                            );
                        }
                    }
                });
            }
        });
        self.codes = codes;
    }

    /// The sketch of `v` into `code` (`words` u64).
    fn sketch_into(&self, v: &[f32], scratch: &mut [f32], code: &mut [u64]) {
        scratch.fill(0.0);
        for ((x, &y), s) in scratch.iter_mut().zip(v).zip(&self.signs[0]) {
            *x = y * s;
        }
        hadamard(scratch);
        for (x, s) in scratch.iter_mut().zip(&self.signs[1]) {
            *x *= s;
        }
        hadamard(scratch);
        code.fill(0);
        for (i, x) in scratch.iter().enumerate() {
            if *x > 0.0 {
                code[i / 64] |= 1 << (i % 64);
            }
        }
    }

    fn sketch(&self, v: &[f32]) -> Vec<u64> {
        let mut code = vec![0; self.words];
        self.sketch_into(v, &mut vec![0.0; self.width], &mut code);
        code
    }

    /// Templates held.
    pub fn len(&self) -> usize {
        self.users.len() - self.free.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes held: vectors, sketches, slot owners (capacity counted) and
    /// the per-user slot lists (estimated).
    pub fn memory_bytes(&self) -> usize {
        let lists: usize = self.by_user.values().map(|l| 16 + 4 * l.capacity()).sum();
        self.vectors.capacity() * 4
            + self.codes.capacity() * 8
            + self.users.capacity() * 8
            + self.free.capacity() * 4
            + self.by_user.capacity() * (8 + 24 + 1)
            + lists
    }

    /// The candidates of `probe` with their exact similarity
    /// ([`search::candidates`]).
    fn candidates(&self, probe: CosineProbe) -> Vec<(i64, f32)> {
        let mut projections = vec![0.0; self.width];
        let mut code = vec![0; self.words];
        self.sketch_into(probe.vector(), &mut projections, &mut code);
        let stored = Stored {
            dim: self.dim,
            words: self.words,
            vectors: &self.vectors,
            codes: &self.codes,
            users: &self.users,
        };
        let probe = Probe {
            cosine: probe,
            code: &code,
            projections: &projections,
        };
        let budget = Budget {
            kept: self.candidates,
            scored: (self.candidates / SCORED_SHARE).max(2),
        };
        search::candidates(&stored, &probe, budget)
    }

    /// The candidate users of `probe`, each with their exact best score
    /// over all their templates, best first, ties by user id: the order
    /// [`super::super::matching::rank`] gives them. The candidates are
    /// scored exactly first; the best [`RESCORED_USERS`] of them then get
    /// their other templates scored too.
    pub fn rank(&self, probe: &[f32]) -> Vec<(i64, f32)> {
        if probe.len() != self.dim || self.is_empty() {
            return Vec::new();
        }
        let probe = CosineProbe::new(probe);
        let scored = self.candidates(probe);
        let mut ranked: Vec<(i64, f32)> = best_users(scored, RESCORED_USERS)
            .into_iter()
            .filter_map(|u| self.best_of(u, &probe).map(|s| (u, s)))
            .collect();
        ranked.sort_by(nearer_first);
        ranked
    }

    /// The exact best score of `user_id`'s templates against `probe`.
    pub fn user_best(&self, user_id: i64, probe: &[f32]) -> Option<f32> {
        if probe.len() != self.dim {
            return None;
        }
        self.best_of(user_id, &CosineProbe::new(probe))
    }

    /// [`SketchIndex::user_best`] of a probe of the index's width.
    fn best_of(&self, user_id: i64, probe: &CosineProbe) -> Option<f32> {
        self.by_user
            .get(&user_id)?
            .iter()
            .map(|&slot| {
                let s = slot as usize * self.dim;
                probe.similarity(&self.vectors[s..s + self.dim])
            })
            .reduce(f32::max)
    }

    /// Makes `embeddings` the templates of `user_id` (none: removes them).
    pub fn replace_user(&mut self, user_id: i64, embeddings: &[&[f32]]) {
        for slot in self.by_user.remove(&user_id).unwrap_or_default() {
            self.users[slot as usize] = FREE;
            self.free.push(slot);
        }
        let mut slots = Vec::new();
        for e in embeddings.iter().filter(|e| e.len() == self.dim) {
            let code = self.sketch(e);
            let slot = match self.free.pop() {
                Some(slot) => {
                    let s = slot as usize;
                    self.vectors[s * self.dim..(s + 1) * self.dim].copy_from_slice(e);
                    self.codes[s * self.words..(s + 1) * self.words].copy_from_slice(&code);
                    self.users[s] = user_id;
                    slot
                }
                None => {
                    self.vectors.extend_from_slice(e);
                    self.codes.extend_from_slice(&code);
                    self.users.push(user_id);
                    (self.users.len() - 1) as u32
                }
            };
            slots.push(slot);
        }
        if !slots.is_empty() {
            self.by_user.insert(user_id, slots);
        }
    }
}

/// The first `n` distinct users of `scored` (user, score) by score, best
/// first, ties by user id. Only the head is sorted, unless users with
/// many templates fill it.
fn best_users(mut scored: Vec<(i64, f32)>, n: usize) -> Vec<i64> {
    let order = nearer_first;
    let mut head = (n * 32).min(scored.len());
    loop {
        if head < scored.len() {
            scored.select_nth_unstable_by(head, order);
        }
        scored[..head].sort_by(order);
        let mut users: Vec<i64> = Vec::with_capacity(n);
        for &(u, _) in &scored[..head] {
            if !users.contains(&u) {
                users.push(u);
                if users.len() == n {
                    return users;
                }
            }
        }
        if head == scored.len() {
            return users;
        }
        head = scored.len();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(user_id: i64, v: &[f32]) -> MatchTemplate {
        let mut e = vec![0.0; 8];
        e[..v.len()].copy_from_slice(v);
        MatchTemplate {
            user_id,
            embedding: e,
        }
    }

    #[test]
    fn ranks_exactly_and_follows_changes() {
        let ts = [t(1, &[1.0, 0.0]), t(1, &[0.0, 1.0]), t(2, &[0.6, 0.8])];
        let mut index = SketchIndex::build(&ts, 8, 16, &|_| {});
        let probe = t(0, &[0.0, 1.0]).embedding;
        assert_eq!(
            index.rank(&probe),
            super::super::super::matching::rank(&ts, &probe)
        );
        index.replace_user(1, &[]);
        assert_eq!(index.len(), 1);
        assert_eq!(index.rank(&probe)[0].0, 2);
        index.replace_user(3, &[&probe]);
        assert_eq!(index.rank(&probe)[0], (3, 1.0));
        assert_eq!(index.user_best(1, &probe), None);
    }
}
