//! The product quantiser of a large gallery: a template's vector is cut
//! into [`SUBSPACES`] equal pieces (the last zero-padded), and each piece
//! is replaced by the nearest of 16 centroids learnt from the gallery's own
//! templates (k-means), so that a template's code is 16 bytes
//! ([`super::fastscan`]). A probe's table holds its dot product with every
//! centroid of every piece, as bytes: adding one entry per piece estimates
//! the probe's similarity with a template from its code alone.

use std::borrow::Cow;

use rayon::prelude::*;

use super::fastscan::{Table, SUBSPACES};

/// Centroids per piece (a 4-bit code).
const CENTROIDS: usize = 16;
/// k-means rounds.
const ROUNDS: usize = 12;
/// Templates the centroids are learnt from, at most (spread over all).
pub const SAMPLE: usize = 16_384;

/// The centroids of every piece.
pub struct Codebook {
    /// Floats per piece.
    piece: usize,
    /// `CENTROIDS * piece` floats per piece, piece after piece.
    centroids: Vec<f32>,
    /// Templates it was learnt from (the sample was taken from).
    learnt_from: usize,
}

impl Codebook {
    /// Learns the centroids from the `n` vectors of `vectors` (`dim`
    /// floats each): from at most [`SAMPLE`] of them, evenly spread, and
    /// always the same ones for the same vectors.
    pub fn learn(dim: usize, vectors: &[f32]) -> Self {
        let piece = dim.div_ceil(SUBSPACES).max(1);
        let n = vectors.len().checked_div(dim).unwrap_or(0);
        let step = n.div_ceil(SAMPLE).max(1);
        let sample: Vec<Cow<[f32]>> = (0..n)
            .step_by(step)
            .map(|i| padded(&vectors[i * dim..][..dim], piece))
            .collect();
        // The pieces are independent: learnt on all cores.
        let centroids = (0..SUBSPACES)
            .into_par_iter()
            .map(|m| {
                let points: Vec<&[f32]> = sample.iter().map(|v| &v[m * piece..][..piece]).collect();
                k_means(&points, piece)
            })
            .collect::<Vec<_>>()
            .concat();
        Codebook {
            piece,
            centroids,
            learnt_from: n,
        }
    }

    /// How many templates it was learnt from (its sample taken among).
    pub fn learnt_from(&self) -> usize {
        self.learnt_from
    }

    /// The code of `v`: the nearest centroid of each piece.
    pub fn encode(&self, v: &[f32]) -> [u8; SUBSPACES] {
        let v = padded(v, self.piece);
        std::array::from_fn(|m| nearest(self.of(m), self.part(&v, m)) as u8)
    }

    /// The table of probe `q` (its length the codebook's): each piece's
    /// dot products with its centroids, shifted so that the least is 0 and
    /// scaled alike for every piece so that the widest spans 0-255.
    pub fn table(&self, q: &[f32]) -> Table {
        let q = padded(q, self.piece);
        let dots: Vec<[f32; CENTROIDS]> = (0..SUBSPACES)
            .map(|m| {
                let (part, c) = (self.part(&q, m), self.of(m));
                std::array::from_fn(|k| dot(&c[k * self.piece..][..self.piece], part))
            })
            .collect();
        let low = |d: &[f32; CENTROIDS]| d.iter().copied().fold(f32::INFINITY, f32::min);
        let span = dots
            .iter()
            .map(|d| d.iter().copied().fold(f32::NEG_INFINITY, f32::max) - low(d))
            .fold(0.0f32, f32::max);
        let scale = if span > 0.0 { 255.0 / span } else { 0.0 };
        std::array::from_fn(|m| {
            let min = low(&dots[m]);
            std::array::from_fn(|k| ((dots[m][k] - min) * scale).round().clamp(0.0, 255.0) as u8)
        })
    }

    /// Bytes held.
    pub fn memory_bytes(&self) -> usize {
        self.centroids.capacity() * 4
    }

    /// The centroids of piece `m`.
    fn of(&self, m: usize) -> &[f32] {
        &self.centroids[m * CENTROIDS * self.piece..][..CENTROIDS * self.piece]
    }

    /// Piece `m` of a [`padded`] vector.
    fn part<'a>(&self, v: &'a [f32], m: usize) -> &'a [f32] {
        &v[m * self.piece..][..self.piece]
    }
}

/// `v` as [`SUBSPACES`] pieces of `piece` floats: itself when it has that
/// length, else copied with zeros after it (or cut short).
fn padded(v: &[f32], piece: usize) -> Cow<'_, [f32]> {
    let width = SUBSPACES * piece;
    if v.len() == width {
        return Cow::Borrowed(v);
    }
    let mut out = vec![0.0; width];
    let n = v.len().min(width);
    out[..n].copy_from_slice(&v[..n]);
    Cow::Owned(out)
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// The index of the centroid of `centroids` nearest to `p`.
fn nearest(centroids: &[f32], p: &[f32]) -> usize {
    let mut best = (0, f32::INFINITY);
    for (k, c) in centroids.chunks_exact(p.len()).enumerate() {
        let d: f32 = c.iter().zip(p).map(|(x, y)| (x - y) * (x - y)).sum();
        if d < best.1 {
            best = (k, d);
        }
    }
    best.0
}

/// [`CENTROIDS`] centroids of `points` (`piece` floats each), started from
/// points spread over the list; a centroid left without points keeps its
/// place. No points: all zero.
fn k_means(points: &[&[f32]], piece: usize) -> Vec<f32> {
    let mut centroids = vec![0.0; CENTROIDS * piece];
    if points.is_empty() {
        return centroids;
    }
    for k in 0..CENTROIDS {
        let p = &points[k * points.len() / CENTROIDS];
        centroids[k * piece..][..piece].copy_from_slice(p);
    }
    for _ in 0..ROUNDS {
        let mut sums = vec![0.0f64; CENTROIDS * piece];
        let mut counts = [0usize; CENTROIDS];
        for p in points {
            let k = nearest(&centroids, p);
            counts[k] += 1;
            for (s, x) in sums[k * piece..][..piece].iter_mut().zip(p.iter()) {
                *s += f64::from(*x);
            }
        }
        for k in (0..CENTROIDS).filter(|&k| counts[k] > 0) {
            for (c, s) in centroids[k * piece..][..piece]
                .iter_mut()
                .zip(&sums[k * piece..])
            {
                *c = (*s / counts[k] as f64) as f32;
            }
        }
    }
    centroids
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vectors(n: usize, dim: usize) -> Vec<f32> {
        let mut state = 0x1234_5678u64;
        (0..n * dim)
            .map(|_| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
            })
            .collect()
    }

    /// The table ranks templates as their similarity with the probe does,
    /// closely: the template a probe was made from scores highest.
    #[test]
    fn a_template_scores_highest_against_itself() {
        let (n, dim) = (2000, 40);
        let v = vectors(n, dim);
        let book = Codebook::learn(dim, &v);
        assert_eq!(book.learnt_from(), n);
        let codes: Vec<_> = v.chunks_exact(dim).map(|x| book.encode(x)).collect();
        let score = |t: &Table, c: &[u8; SUBSPACES]| -> u32 {
            c.iter()
                .enumerate()
                .map(|(m, &k)| u32::from(t[m][k as usize]))
                .sum()
        };
        let mut top = 0;
        for (i, q) in v.chunks_exact(dim).take(50).enumerate() {
            let t = book.table(q);
            assert!(
                t.iter().any(|e| e.contains(&255)),
                "the widest piece spans 0-255"
            );
            assert!(t.iter().all(|e| e.contains(&0)));
            let mine = score(&t, &codes[i]);
            top += usize::from(codes.iter().all(|c| score(&t, c) <= mine));
        }
        assert!(
            top >= 48,
            "{top} of 50 probes found their own template first"
        );
    }

    #[test]
    fn learns_from_few_or_no_templates() {
        let v = vectors(3, 8);
        let book = Codebook::learn(8, &v);
        let code = book.encode(&v[8..16]);
        assert!(code.iter().all(|&k| k < 16));
        let empty = Codebook::learn(8, &[]);
        assert_eq!(empty.learnt_from(), 0);
        assert_eq!(empty.table(&v[..8]), [[0; 16]; SUBSPACES]);
    }
}
