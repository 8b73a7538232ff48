//! The search of a large gallery: quantised exhaustive search. Every
//! template also gets a short code (product quantisation: its vector cut
//! into 32 pieces, each replaced by the nearest of 16 centroids learnt
//! from the gallery, [`super::codebook`]; 16 bytes per template instead of
//! 768). A probe scores all the codes with one table lookup per piece (a
//! fast scan, [`super::fastscan`]), the `candidates` best are scored
//! exactly ([`super::search`]), and the best users among them are
//! re-scored exactly with the same cosine similarity as the plain
//! exhaustive search, over all their templates. Scores are therefore never
//! approximate: only a user whose code is not among the candidates can be
//! missed (measured by `facegate bench-index`, docs/BENCHMARKS.md).
//!
//! Tried before: an HNSW graph (usearch), which on a gallery of random
//! templates, the hard case for graph search, found the exact best user
//! for fewer than 60 % of probes at 20 k templates; and 256-bit binary
//! sketches compared by Hamming distance, which read twice the bytes per
//! search for a worse first ranking (docs/BENCHMARKS.md).

use std::collections::HashMap;

use facegate_vision::CosineProbe;
use rayon::prelude::*;

use super::codebook::{self, Codebook};
use super::fastscan::{Codes, SUBSPACES};
use super::search::{self, Probe, Stored, FREE};
use crate::domain::MatchTemplate;
use crate::service::matching::{nearer_first, RANKED_USERS};

/// Users whose every template is scored per probe: as many as the
/// exhaustive ranking keeps (the decision needs the best two; the others
/// are a margin for users with several).
const RESCORED_USERS: usize = RANKED_USERS;

/// Templates coded at a time when building (between progress reports).
const STEP: usize = 1 << 16;

/// The in-memory search structure of one model's templates.
pub struct SketchIndex {
    dim: usize,
    candidates: usize,
    codebook: Codebook,
    /// `dim` floats per slot.
    vectors: Vec<f32>,
    codes: Codes,
    /// The user of each slot, or [`FREE`].
    users: Vec<i64>,
    by_user: HashMap<i64, Vec<u32>>,
    free: Vec<u32>,
}

/// Asks the kernel to back a large array with 2 MiB pages where it does so
/// on request (transparent huge pages in `madvise` mode): every probe scans
/// all the codes and reads candidates' vectors scattered over hundreds of
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

impl SketchIndex {
    /// An empty index for vectors of `dim` floats that scores the
    /// `candidates` best codes of each probe exactly.
    pub fn new(dim: usize, candidates: usize) -> Self {
        SketchIndex {
            dim,
            candidates: candidates.max(2),
            codebook: Codebook::learn(dim, &[]),
            vectors: Vec::new(),
            codes: Codes::default(),
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
        index.code_all(room, progress);
        for (slot, &user) in index.users.iter().enumerate() {
            index.by_user.entry(user).or_default().push(slot as u32);
        }
        progress(index.users.len());
        index
    }

    /// Learns the codebook from the slots' vectors and codes every slot
    /// again (on all cores), with room for `room` slots.
    fn code_all(&mut self, room: usize, progress: &(dyn Fn(usize) + Sync)) {
        self.codebook = Codebook::learn(self.dim, &self.vectors);
        let mut codes = Codes::with_capacity(room.max(self.users.len()));
        advise_huge_pages(codes.bytes());
        let per = STEP * self.dim.max(1);
        for (i, step) in self.vectors.chunks(per).enumerate() {
            let coded: Vec<[u8; SUBSPACES]> = step
                .par_chunks(self.dim.max(1))
                .map(|v| self.codebook.encode(v))
                .collect();
            coded.iter().for_each(|c| codes.push(c));
            progress(i * STEP + coded.len());
        }
        self.codes = codes;
    }

    /// Learns the codebook again while the gallery is still small and has
    /// doubled since it was learnt (an index built empty, or from a few
    /// templates, learns from those enrolled later).
    fn relearn_while_small(&mut self) {
        let learnt = self.codebook.learnt_from();
        if learnt < codebook::SAMPLE && self.users.len() >= 2 * learnt.max(8) {
            self.code_all(self.users.len() * 2, &|_| {});
        }
    }

    /// Templates held.
    pub fn len(&self) -> usize {
        self.users.len() - self.free.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes held: vectors, codes, codebook, slot owners (capacity
    /// counted) and the per-user slot lists (estimated).
    pub fn memory_bytes(&self) -> usize {
        let lists: usize = self.by_user.values().map(|l| 16 + 4 * l.capacity()).sum();
        self.vectors.capacity() * 4
            + self.codes.memory_bytes()
            + self.codebook.memory_bytes()
            + self.users.capacity() * 8
            + self.free.capacity() * 4
            + self.by_user.capacity() * (8 + 24 + 1)
            + lists
    }

    /// The candidates of `probe` with their exact similarity
    /// ([`search::candidates`]).
    fn candidates(&self, probe: CosineProbe) -> Vec<(i64, f32)> {
        let table = self.codebook.table(probe.vector());
        let stored = Stored {
            dim: self.dim,
            vectors: &self.vectors,
            codes: &self.codes,
            users: &self.users,
        };
        let probe = Probe {
            cosine: probe,
            table: &table,
        };
        search::candidates(&stored, &probe, self.candidates)
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
            let code = self.codebook.encode(e);
            let slot = match self.free.pop() {
                Some(slot) => {
                    let s = slot as usize;
                    self.vectors[s * self.dim..(s + 1) * self.dim].copy_from_slice(e);
                    self.codes.set(s, &code);
                    self.users[s] = user_id;
                    slot
                }
                None => {
                    self.vectors.extend_from_slice(e);
                    self.codes.push(&code);
                    self.users.push(user_id);
                    (self.users.len() - 1) as u32
                }
            };
            slots.push(slot);
        }
        if !slots.is_empty() {
            self.by_user.insert(user_id, slots);
        }
        self.relearn_while_small();
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

    /// An index built empty learns its codebook from the templates
    /// enrolled later, each time their number doubles (not at every
    /// enrolment), and finds every user by their own template even when
    /// only 4 candidates are scored.
    #[test]
    fn an_index_built_empty_learns_from_later_enrolments() {
        let mut state = 0x9e37_79b9u64;
        let mut random = |dim: usize| -> Vec<f32> {
            (0..dim)
                .map(|_| {
                    state = state.wrapping_mul(6364136223846793005).wrapping_add(1);
                    (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
                })
                .collect()
        };
        let mut index = SketchIndex::new(16, 4);
        let vectors: Vec<Vec<f32>> = (0..300).map(|_| random(16)).collect();
        for (user, v) in vectors.iter().enumerate() {
            index.replace_user(user as i64, &[v]);
        }
        assert_eq!(index.codebook.learnt_from(), 256);
        for (user, v) in vectors.iter().enumerate().step_by(6) {
            let best = index.rank(v)[0];
            assert_eq!(best.0, user as i64);
            assert!((best.1 - 1.0).abs() < 1e-5);
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
