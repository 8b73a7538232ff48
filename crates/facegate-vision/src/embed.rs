//! Face embeddings: an aligned face in, an L2-normalised vector out. The
//! model is described by an [`EmbeddingManifest`], so another ONNX
//! embedding model can be dropped in without code changes; where the
//! manifest names a fixed-point version and the CPU runs it, that runs
//! instead of ONNX Runtime.

use image::RgbImage;
use serde::{Deserialize, Serialize};

use crate::error::VisionError;
use crate::fixed_net::{FixedNet, Isa};
use crate::models::{ChannelOrder, EmbeddingManifest, Layout, ModelDir};
use crate::net::{Net, ONNX_RUNTIME};
use crate::runtime::{SessionOptions, SessionPool};

/// A face template: the embedding and the model that made it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Embedding {
    pub model_id: String,
    pub vector: Vec<f32>,
}

/// Cosine similarity of two vectors (1 = same direction), over the length
/// of the shorter one.
///
/// Each sum runs in [`LANES`] interleaved partial sums, added up at the
/// end: one running sum makes every addition wait for the previous one,
/// which made an exhaustive 1:N search of 10 000 templates take about 2 ms
/// of one core. The same lanes in the same order on every CPU (compiled
/// for AVX2 where it has it), so a score does not depend on the machine.
pub fn cosine_similarity(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    cosine_of(dot(a, b), dot(a, a), dot(b, b))
}

/// A vector to compare with many others: [`cosine_similarity`] with this
/// vector's own sum of squares taken once. `probe.similarity(v)` is
/// `cosine_similarity(v, vector)`, bit for bit.
#[derive(Debug, Clone, Copy)]
pub struct CosineProbe<'a> {
    vector: &'a [f32],
    norm_sq: f32,
}

impl<'a> CosineProbe<'a> {
    pub fn new(vector: &'a [f32]) -> Self {
        CosineProbe {
            vector,
            norm_sq: dot(vector, vector),
        }
    }

    /// The vector itself.
    pub fn vector(&self) -> &'a [f32] {
        self.vector
    }

    /// The cosine similarity of `other` to this vector.
    pub fn similarity(&self, other: &[f32]) -> f32 {
        if other.len() != self.vector.len() {
            return cosine_similarity(other, self.vector);
        }
        cosine_of(dot(other, self.vector), dot(other, other), self.norm_sq)
    }
}

/// The cosine from a dot product and the two sums of squares.
fn cosine_of(dot: f32, na: f32, nb: f32) -> f32 {
    if na == 0.0 || nb == 0.0 {
        return 0.0;
    }
    dot / (na.sqrt() * nb.sqrt())
}

/// Partial sums of [`cosine_similarity`].
const LANES: usize = 8;

/// [`dot_lanes`], compiled for AVX2 where the CPU has it.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has the feature the function is compiled for.
        return unsafe { dot_avx2(a, b) };
    }
    dot_lanes(a, b)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn dot_avx2(a: &[f32], b: &[f32]) -> f32 {
    dot_lanes(a, b)
}

/// The dot product of two slices of one length, in [`LANES`] partial sums
/// (three separate passes over vectors this small stay in the cache, and
/// compile to plainer vector code than one pass with three sums; a
/// [`CosineProbe`] needs only two).
#[inline(always)]
fn dot_lanes(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0.0f32; LANES];
    let (xs, ys) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let (x_rest, y_rest) = (xs.remainder(), ys.remainder());
    for (x, y) in xs.zip(ys) {
        for i in 0..LANES {
            lanes[i] += x[i] * y[i];
        }
    }
    for (i, (x, y)) in x_rest.iter().zip(y_rest).enumerate() {
        lanes[i] += x * y;
    }
    lanes.iter().sum()
}

/// Scales a vector to unit length (a zero vector stays zero).
pub fn l2_normalise(v: &mut [f32]) {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if n > 0.0 {
        v.iter_mut().for_each(|x| *x /= n);
    }
}

/// Runs the embedding model.
pub(crate) struct Embedder {
    manifest: EmbeddingManifest,
    /// Aligned faces (of the manifest's size) to raw output vectors.
    net: Box<dyn Net<[RgbImage], Vec<Vec<f32>>>>,
}

impl Embedder {
    /// Loads the model the manifest describes; its fixed-point version when
    /// `fixed_point` allows, the manifest names one and this CPU runs it.
    pub fn load(
        dir: &ModelDir,
        manifest_path: &std::path::Path,
        opts: &SessionOptions,
        fixed_point: bool,
    ) -> Result<Self, VisionError> {
        let manifest = EmbeddingManifest::read(manifest_path)?;
        let fixed = manifest
            .fixed_point
            .as_deref()
            .zip(Isa::best())
            .filter(|_| fixed_point);
        let net: Box<dyn Net<[RgbImage], Vec<Vec<f32>>>> = match fixed {
            Some((file, isa)) => Box::new(FixedEmbedder::load(dir, file, isa, &manifest)?),
            None => {
                let bytes = dir.read_verified(&manifest.file, manifest.sha256.as_deref())?;
                Box::new(OnnxEmbedder {
                    pool: SessionPool::load(&manifest.id, &bytes, opts)?,
                    manifest: manifest.clone(),
                })
            }
        };
        Ok(Embedder { manifest, net })
    }

    pub fn manifest(&self) -> &EmbeddingManifest {
        &self.manifest
    }

    /// How the model runs here, for logs and reports.
    pub fn backend(&self) -> &'static str {
        self.net.backend()
    }

    /// Embeds one aligned face.
    pub fn embed(&self, face: &RgbImage) -> Result<Embedding, VisionError> {
        Ok(self.embed_batch(std::slice::from_ref(face))?.remove(0))
    }

    /// Embeds aligned faces (in one ONNX Runtime call, or one by one in
    /// fixed point).
    pub fn embed_batch(&self, faces: &[RgbImage]) -> Result<Vec<Embedding>, VisionError> {
        if faces.is_empty() {
            return Ok(Vec::new());
        }
        let s = self.manifest.input_size as usize;
        if let Some(face) = faces
            .iter()
            .find(|f| f.width() as usize != s || f.height() as usize != s)
        {
            return Err(VisionError::Model(format!(
                "aligned face must be {s}x{s}, not {}x{}",
                face.width(),
                face.height()
            )));
        }
        Ok(self
            .net
            .run(faces)?
            .into_iter()
            .map(|mut vector| {
                l2_normalise(&mut vector);
                Embedding {
                    model_id: self.manifest.id.clone(),
                    vector,
                }
            })
            .collect())
    }
}

/// The model in fixed point, one face at a time.
struct FixedEmbedder {
    net: FixedNet,
    size: usize,
}

impl FixedEmbedder {
    /// Loads `file` and checks that it takes the manifest's input to its
    /// output.
    fn load(
        dir: &ModelDir,
        file: &str,
        isa: Isa,
        m: &EmbeddingManifest,
    ) -> Result<Self, VisionError> {
        let net = FixedNet::load(dir, file, isa)?;
        let s = m.input_size as usize;
        if net.output_size(s, s) != Some((1, 1))
            || net.outputs() != m.output_dim
            || m.channel_order != ChannelOrder::Rgb
        {
            return Err(VisionError::Model(format!(
                "{file} does not take an RGB {s}x{s} face to {} values",
                m.output_dim
            )));
        }
        Ok(FixedEmbedder { net, size: s })
    }
}

impl Net<[RgbImage], Vec<Vec<f32>>> for FixedEmbedder {
    fn backend(&self) -> &'static str {
        self.net.backend()
    }

    fn run(&self, faces: &[RgbImage]) -> Result<Vec<Vec<f32>>, VisionError> {
        let s = self.size;
        Ok(faces
            .iter()
            .map(|f| self.net.run(&self.net.encode(f.as_raw()), s, s).data)
            .collect())
    }
}

/// The model with ONNX Runtime, every face in one batch.
struct OnnxEmbedder {
    pool: SessionPool,
    manifest: EmbeddingManifest,
}

impl Net<[RgbImage], Vec<Vec<f32>>> for OnnxEmbedder {
    fn backend(&self) -> &'static str {
        ONNX_RUNTIME
    }

    fn run(&self, faces: &[RgbImage]) -> Result<Vec<Vec<f32>>, VisionError> {
        let m = &self.manifest;
        let s = m.input_size as usize;
        let per = 3 * s * s;
        let mut data = vec![0f32; faces.len() * per];
        for (face, out) in faces.iter().zip(data.chunks_mut(per)) {
            fill_tensor(face, m, out);
        }
        let shape = match m.layout {
            Layout::Nhwc => [faces.len(), s, s, 3],
            Layout::Nchw => [faces.len(), 3, s, s],
        };
        let input = m.input_name.as_deref().unwrap_or("input");
        let outputs: Vec<&str> = m.output_name.as_deref().into_iter().collect();
        let out = self.pool.run(input, &shape, &data, &outputs)?.remove(0);
        let dim = m.output_dim;
        if out.data.len() != faces.len() * dim {
            return Err(VisionError::Model(format!(
                "embedding model returned {} values, expected {}",
                out.data.len(),
                faces.len() * dim
            )));
        }
        Ok(out.data.chunks(dim).map(<[f32]>::to_vec).collect())
    }
}

fn fill_tensor(face: &RgbImage, m: &EmbeddingManifest, out: &mut [f32]) {
    let s = m.input_size as usize;
    let plane = s * s;
    for (i, p) in face.pixels().enumerate() {
        let rgb = match m.channel_order {
            ChannelOrder::Rgb => [p[0], p[1], p[2]],
            ChannelOrder::Bgr => [p[2], p[1], p[0]],
        };
        for (c, v) in rgb.iter().enumerate() {
            let x = (*v as f32 - m.mean) / m.std;
            match m.layout {
                Layout::Nhwc => out[i * 3 + c] = x,
                Layout::Nchw => out[c * plane + i] = x,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosine_of_parallel_and_orthogonal_vectors() {
        assert!((cosine_similarity(&[1.0, 2.0], &[2.0, 4.0]) - 1.0).abs() < 1e-6);
        assert!(cosine_similarity(&[1.0, 0.0], &[0.0, 3.0]).abs() < 1e-6);
        assert_eq!(cosine_similarity(&[0.0, 0.0], &[1.0, 1.0]), 0.0);
    }

    /// The lanes (and the tail that does not fill them) give the cosine a
    /// plain double-precision sum gives, for every length, and the
    /// shorter vector's length when the two differ.
    #[test]
    fn cosine_in_lanes_matches_a_plain_sum_at_every_length() {
        let wave =
            |n: usize, k: f32| -> Vec<f32> { (0..n).map(|i| (i as f32 * k).sin()).collect() };
        for n in (0..40).chain([191, 192, 512]) {
            let (a, b) = (wave(n, 0.7), wave(n + 3, 1.3));
            let (mut dot, mut na, mut nb) = (0.0f64, 0.0f64, 0.0f64);
            for (x, y) in a.iter().zip(&b) {
                let (x, y) = (f64::from(*x), f64::from(*y));
                (dot, na, nb) = (dot + x * y, na + x * x, nb + y * y);
            }
            let want = if na == 0.0 || nb == 0.0 {
                0.0
            } else {
                dot / (na.sqrt() * nb.sqrt())
            };
            let got = f64::from(cosine_similarity(&a, &b));
            assert!(
                (got - want).abs() < 1e-5,
                "length {n}: {got} against {want}"
            );
            assert_eq!(
                cosine_similarity(&a, &b),
                cosine_similarity(&b, &a),
                "length {n}"
            );
            let (same, longer) = (&b[..n], CosineProbe::new(&b));
            let probe = CosineProbe::new(same).similarity(&a);
            assert_eq!(
                probe.to_bits(),
                cosine_similarity(&a, same).to_bits(),
                "length {n}"
            );
            assert_eq!(
                longer.similarity(&a),
                cosine_similarity(&a, &b),
                "length {n}"
            );
        }
    }

    #[test]
    fn normalised_vector_has_unit_length() {
        let mut v = vec![3.0, 4.0];
        l2_normalise(&mut v);
        assert!((v[0] - 0.6).abs() < 1e-6 && (v[1] - 0.8).abs() < 1e-6);
    }
}
