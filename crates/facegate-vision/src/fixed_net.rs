//! MTCNN's three networks in fixed point: int16 weights and activations
//! summed into int32 by AVX-512 VNNI (`vpdpwssd`) or, on CPUs without it,
//! AVX2 (`vpmaddwd`); both kernels give the same values. Under ONNX
//! Runtime's float kernels the networks were most of detection's cost;
//! this runs them several times faster.
//!
//! A network is a list of operations, convolutions (valid padding, stride
//! 1, then PReLU and requantisation, or float outputs for the last) and
//! 2×2 / 3×3 max pools, read from `models/mtcnn_{pnet,rnet,onet}_fixed.json`.
//! `tools/quantize_mtcnn.py` derives those from the ONNX models; its
//! `fixed_forward` is the arithmetic here, step for step (float32 multiply
//! then add, round half to even, clamp), so both give identical outputs, and
//! the scalar version in the tests proves the vector kernel against it.
//! Machines with neither instruction set use the ONNX models instead.

use serde::Deserialize;

use crate::error::VisionError;
use crate::models::ModelDir;

const FORMAT: &str = "facegate-fixed-net/1";
/// Largest activation magnitude (the script's `A16`).
const A16: f32 = 2047.0;
const LANES: usize = 16;
/// Output vectors computed together by one pass of the kernel.
const CHUNK: usize = 4;
/// Widest layer supported.
const MAX_CHANNELS: usize = 256;

#[derive(Deserialize)]
struct Params {
    format: String,
    ops: Vec<OpParams>,
}

#[derive(Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
enum OpParams {
    Conv(LayerParams),
    Pool { kernel: usize },
}

#[derive(Deserialize)]
struct LayerParams {
    kernel: usize,
    cin: usize,
    cout: usize,
    /// `[oc][ky][kx][ci]`
    weights: Vec<i32>,
    scale: Vec<f32>,
    shift: Vec<f32>,
    alpha: Option<Vec<f32>>,
    out_inv_scale: Option<Vec<f32>>,
}

/// One convolution with its requantisation.
struct Layer {
    k: usize,
    /// Channels per pixel of the input buffer (the real ones, made even).
    cin: usize,
    cout: usize,
    /// Channels per pixel of the output buffer: `cout` made even.
    cout_p: usize,
    /// 16-lane vectors of outputs.
    nv: usize,
    /// `[oc][tap][cin]`, zero in padding channels.
    #[cfg_attr(not(test), allow(dead_code))]
    weights: Vec<i16>,
    /// Two int16 weights per int32, `[chunk][tap][pair][vector][lane]`,
    /// chunks of [`CHUNK`] vectors (the last may be shorter).
    packed: Vec<i32>,
    /// Per output lane (`nv × 16`, zero past `cout`).
    scale: Vec<f32>,
    shift: Vec<f32>,
    alpha: Vec<f32>,
    inv: Vec<f32>,
    /// PReLU and requantisation to int16 (all but the last layer).
    requant: bool,
    /// Requantisation keeps the order of values (positive factors), so a
    /// max pool may take the largest activation before it and get the
    /// same result.
    monotone: bool,
}

impl Layer {
    fn new(
        p: LayerParams,
        cin_buffer: usize,
        input_bound: i64,
        last: bool,
    ) -> Result<Layer, String> {
        let taps = p.kernel * p.kernel;
        if p.kernel == 0 || p.cout == 0 || p.cout > MAX_CHANNELS || p.cin > cin_buffer {
            return Err(format!(
                "unsupported layer {}x{}, {} -> {}",
                p.kernel, p.kernel, p.cin, p.cout
            ));
        }
        if p.weights.len() != p.cout * taps * p.cin {
            return Err("weight count does not match the layer shape".into());
        }
        // No int32 sum may overflow, whatever the input.
        for w in p.weights.chunks(taps * p.cin) {
            let bound: i64 = w.iter().map(|&x| i64::from(x).abs() * input_bound).sum();
            if w.iter().any(|x| x.abs() > i32::from(i16::MAX)) || bound > i64::from(i32::MAX) {
                return Err("weights too large: an int32 sum could overflow".into());
            }
        }
        let requant = !last;
        let (alpha, inv) = match (p.alpha, p.out_inv_scale) {
            (Some(a), Some(i)) if requant => (a, i),
            (None, None) if !requant => (vec![0.0; p.cout], vec![0.0; p.cout]),
            _ => return Err("PReLU and requantisation must be on every layer but the last".into()),
        };
        for v in [&p.scale, &p.shift, &alpha, &inv] {
            if v.len() != p.cout || v.iter().any(|x| !x.is_finite()) {
                return Err("per-channel constants must be finite, one per output".into());
            }
        }
        let cin = cin_buffer;
        let nv = p.cout.div_ceil(LANES);
        let mut weights = vec![0i16; p.cout * taps * cin];
        for (oc, t, c) in iproduct(p.cout, taps, p.cin) {
            weights[(oc * taps + t) * cin + c] = p.weights[(oc * taps + t) * p.cin + c] as i16;
        }
        let pairs = cin / 2;
        let mut packed = vec![0i32; taps * pairs * nv * LANES];
        for (oc, t, g) in iproduct(p.cout, taps, pairs) {
            let (chunk, v, lane) = (oc / (CHUNK * LANES), oc / LANES % CHUNK, oc % LANES);
            let nvc = (nv - chunk * CHUNK).min(CHUNK);
            let lo = weights[(oc * taps + t) * cin + 2 * g] as u16 as u32;
            let hi = weights[(oc * taps + t) * cin + 2 * g + 1] as u16 as u32;
            let at =
                chunk * CHUNK * LANES * taps * pairs + ((t * pairs + g) * nvc + v) * LANES + lane;
            packed[at] = (lo | hi << 16) as i32;
        }
        let monotone = inv.iter().all(|&x| x > 0.0);
        let lanes = |v: Vec<f32>| {
            let mut out = vec![0f32; nv * LANES];
            out[..v.len()].copy_from_slice(&v);
            out
        };
        Ok(Layer {
            k: p.kernel,
            cin,
            cout: p.cout,
            cout_p: p.cout.next_multiple_of(2),
            nv,
            weights,
            packed,
            scale: lanes(p.scale),
            shift: lanes(p.shift),
            alpha: lanes(alpha),
            inv: lanes(inv),
            requant,
            monotone,
        })
    }
}

impl Layer {
    /// Offsets, in an input `w` pixels wide, of the kernel's taps from a
    /// pixel's first channel. The furthest read, the last channel pair of
    /// the last tap of the last output pixel, is the input's last pixel.
    fn tap_offsets(&self, w: usize) -> Vec<usize> {
        (0..self.k * self.k)
            .map(|t| ((t / self.k) * w + t % self.k) * self.cin)
            .collect()
    }
}

fn iproduct(a: usize, b: usize, c: usize) -> impl Iterator<Item = (usize, usize, usize)> {
    (0..a).flat_map(move |i| (0..b).flat_map(move |j| (0..c).map(move |k| (i, j, k))))
}

enum Op {
    Conv(Layer),
    Pool(usize),
}

/// A network's output over an input: `outputs` floats per position, row by row.
pub struct NetMap {
    pub w: usize,
    pub h: usize,
    pub data: Vec<f32>,
}

/// One MTCNN network in fixed point.
pub struct FixedNet {
    ops: Vec<Op>,
    outputs: usize,
}

impl FixedNet {
    /// Whether this CPU runs a vector kernel.
    pub fn supported() -> bool {
        Isa::best().is_some()
    }

    /// Loads and checks a parameter file (sha256 from `models.toml`).
    pub fn load(dir: &ModelDir, file: &str) -> Result<FixedNet, VisionError> {
        let bytes = dir.read_verified(file, None)?;
        Self::from_json(&bytes).map_err(|e| VisionError::Model(format!("{file}: {e}")))
    }

    fn from_json(bytes: &[u8]) -> Result<FixedNet, String> {
        let params: Params = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        if params.format != FORMAT {
            return Err(format!("format {:?}, expected {FORMAT:?}", params.format));
        }
        let n = params.ops.len();
        let mut channels = 3; // RGB, in a buffer of 4
        let mut ops = Vec::with_capacity(n);
        for (i, op) in params.ops.into_iter().enumerate() {
            match op {
                OpParams::Pool { kernel } if (2..=3).contains(&kernel) && i + 1 < n && i > 0 => {
                    ops.push(Op::Pool(kernel))
                }
                OpParams::Pool { .. } => {
                    return Err("pools are 2x2 or 3x3, between convolutions".into())
                }
                OpParams::Conv(p) => {
                    if p.cin != channels {
                        return Err(format!(
                            "operation {i} takes {} channels, gets {channels}",
                            p.cin
                        ));
                    }
                    let (buffer, bound) = if i == 0 {
                        (4, 255)
                    } else {
                        (channels.next_multiple_of(2), A16 as i64)
                    };
                    let layer = Layer::new(p, buffer, bound, i + 1 == n)?;
                    channels = layer.cout;
                    ops.push(Op::Conv(layer));
                }
            }
        }
        match ops.last() {
            Some(Op::Conv(l)) if !l.requant => Ok(FixedNet {
                outputs: l.cout,
                ops,
            }),
            _ => Err("the last operation must be the output convolution".into()),
        }
    }

    /// Floats per output position.
    pub fn outputs(&self) -> usize {
        self.outputs
    }

    /// The output size for a `w × h` input, if the input is large enough.
    pub fn output_size(&self, mut w: usize, mut h: usize) -> Option<(usize, usize)> {
        for op in &self.ops {
            let k = match op {
                Op::Conv(l) => l.k,
                Op::Pool(k) => *k,
            };
            if w < k || h < k {
                return None;
            }
            (w, h) = match op {
                Op::Conv(_) => (w + 1 - k, h + 1 - k),
                Op::Pool(_) => ((w - k).div_ceil(2) + 1, (h - k).div_ceil(2) + 1),
            };
        }
        Some((w, h))
    }

    /// Runs the network over a `w × h` input given as 4 int16 per pixel
    /// (R, G, B as 0..255, then 0), with the best kernel of this CPU. Needs
    /// [`Self::supported`] and an input large enough for
    /// [`Self::output_size`].
    pub fn run(&self, rgbx: &[i16], w: usize, h: usize) -> NetMap {
        let isa = Isa::best().expect("FixedNet::run needs AVX2 or AVX-512 VNNI");
        self.run_with(isa, rgbx, w, h)
    }

    /// [`Self::run`] with the kernel for `isa`, which this CPU must have.
    fn run_with(&self, isa: Isa, rgbx: &[i16], w: usize, h: usize) -> NetMap {
        assert!(isa.available(), "this CPU lacks {}", isa.name());
        assert!(self.output_size(w, h).is_some() && rgbx.len() == w * h * 4);
        // SAFETY: the CPU has the instructions of `isa`'s kernels (checked above).
        unsafe { self.forward(rgbx, w, h, &isa.kernels()) }
    }

    /// The network with `kernels`.
    ///
    /// # Safety
    /// The kernels must be safe to call on this CPU.
    unsafe fn forward(&self, rgbx: &[i16], w: usize, h: usize, kernels: &Kernels) -> NetMap {
        SCRATCH.with(|scratch| {
            let mut fresh = [Vec::new(), Vec::new()];
            // A network never runs inside another, so the borrow succeeds;
            // fresh buffers would be as correct, only slower.
            let mut held = scratch.try_borrow_mut();
            let bufs = match held.as_deref_mut() {
                Ok(bufs) => bufs,
                Err(_) => &mut fresh,
            };
            // SAFETY: the caller vouches for the kernels.
            let out = unsafe { self.forward_in(rgbx, w, h, kernels, bufs) };
            for b in bufs.iter_mut().filter(|b| b.capacity() > SCRATCH_KEPT) {
                *b = Vec::new();
            }
            out
        })
    }

    /// [`Self::forward`] with activations in `bufs`, each operation reading
    /// one buffer and writing the other.
    unsafe fn forward_in(
        &self,
        rgbx: &[i16],
        w: usize,
        h: usize,
        kernels: &Kernels,
        bufs: &mut [Vec<i16>; 2],
    ) -> NetMap {
        // Where the current activations are: the input, or a buffer and its length.
        let mut at: Option<(usize, usize)> = None;
        let (mut w, mut h, mut c) = (w, h, 4);
        let mut ops = self.ops.iter().peekable();
        while let Some(op) = ops.next() {
            let (cur, next, dst) = operands(rgbx, bufs, at);
            match op {
                Op::Pool(k) => {
                    let (ow, oh) = ((w - k).div_ceil(2) + 1, (h - k).div_ceil(2) + 1);
                    let len = ow * oh * c;
                    // SAFETY: the caller vouches for the kernel; it checks its buffers.
                    unsafe { (kernels.pool)(cur, w, h, c, *k, sized(next, len)) };
                    (at, w, h) = (Some((dst, len)), ow, oh);
                }
                Op::Conv(l) => {
                    let (ow, oh) = (w + 1 - l.k, h + 1 - l.k);
                    if !l.requant {
                        let mut data = vec![0f32; ow * oh * l.cout];
                        // SAFETY: as above.
                        unsafe { (kernels.conv)(l, cur, w, h, Out::Float(&mut data)) };
                        return NetMap { w: ow, h: oh, data };
                    }
                    if let (Some(fused), Some(Op::Pool(2))) = (kernels.conv_pool2, ops.peek()) {
                        if l.nv == 1 && l.monotone {
                            ops.next();
                            let (pw, ph) = (ow.div_ceil(2), oh.div_ceil(2));
                            let len = pw * ph * l.cout_p;
                            // SAFETY: as above.
                            unsafe { fused(l, cur, w, h, sized(next, len)) };
                            (at, w, h, c) = (Some((dst, len)), pw, ph, l.cout_p);
                            continue;
                        }
                    }
                    let len = ow * oh * l.cout_p;
                    // SAFETY: as above.
                    unsafe { (kernels.conv)(l, cur, w, h, Out::Fixed(sized(next, len))) };
                    (at, w, h, c) = (Some((dst, len)), ow, oh, l.cout_p);
                }
            }
        }
        unreachable!("checked at load: the last operation is the output convolution")
    }
}

thread_local! {
    /// Two activation buffers per thread, reused from run to run: a
    /// detection runs the networks dozens of times, and fresh buffers cost
    /// their zeroing and page faults each time.
    static SCRATCH: std::cell::RefCell<[Vec<i16>; 2]> =
        const { std::cell::RefCell::new([Vec::new(), Vec::new()]) };
}

/// Buffers larger than this (in values: 4 MB) are given back after the run
/// that needed them (large photos), so an idle thread holds little.
const SCRATCH_KEPT: usize = 2 << 20;

/// The current activations (`at`: the input, or a buffer and its length),
/// the other buffer for the next operation's output, and that buffer's index.
fn operands<'a>(
    input: &'a [i16],
    bufs: &'a mut [Vec<i16>; 2],
    at: Option<(usize, usize)>,
) -> (&'a [i16], &'a mut Vec<i16>, usize) {
    let [a, b] = bufs;
    match at {
        None => (input, a, 0),
        Some((0, len)) => (&a[..len], b, 1),
        Some((_, len)) => (&b[..len], a, 0),
    }
}

/// The first `len` values of `buf`, grown if needed (old values stay:
/// every kernel writes its whole output).
fn sized(buf: &mut Vec<i16>, len: usize) -> &mut [i16] {
    if buf.len() < len {
        buf.resize(len, 0);
    }
    &mut buf[..len]
}

/// The instruction sets the vector kernels are written for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Isa {
    /// AVX-512 F, BW, VL and VNNI (`kernel.rs`).
    Avx512Vnni,
    /// AVX2 (`kernel_avx2.rs`).
    Avx2,
}

impl Isa {
    /// Every instruction set, fastest first.
    pub const ALL: [Isa; 2] = [Isa::Avx512Vnni, Isa::Avx2];

    /// The fastest instruction set this CPU has, if any.
    pub fn best() -> Option<Isa> {
        Self::ALL.into_iter().find(|i| i.available())
    }

    /// Whether this CPU has the instruction set.
    pub fn available(self) -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            match self {
                Isa::Avx512Vnni => {
                    has!("avx512f") && has!("avx512bw") && has!("avx512vl") && has!("avx512vnni")
                }
                Isa::Avx2 => has!("avx2"),
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Isa::Avx512Vnni => "AVX-512 VNNI",
            Isa::Avx2 => "AVX2",
        }
    }

    fn kernels(self) -> Kernels {
        #[cfg(target_arch = "x86_64")]
        match self {
            Isa::Avx512Vnni => Kernels {
                conv: kernel::conv,
                pool: kernel::pool,
                conv_pool2: Some(kernel::conv_pool2),
            },
            Isa::Avx2 => Kernels {
                conv: kernel_avx2::conv,
                pool: kernel_avx2::pool,
                conv_pool2: Some(kernel_avx2::conv_pool2),
            },
        }
        #[cfg(not(target_arch = "x86_64"))]
        unreachable!("no vector kernel on this architecture: {self:?}")
    }
}

/// The kernels a network runs with: the vector ones, or the scalar ones of
/// the tests. `conv_pool2`, when given, does a layer and the 2×2 pool after
/// it in one pass.
struct Kernels {
    conv: ConvFn,
    pool: PoolFn,
    conv_pool2: Option<ConvPoolFn>,
}

/// Where a layer writes: int16 activations, or the final floats.
enum Out<'a> {
    Fixed(&'a mut [i16]),
    Float(&'a mut [f32]),
}

type ConvFn = unsafe fn(&Layer, &[i16], usize, usize, Out<'_>);
type PoolFn = unsafe fn(&[i16], usize, usize, usize, usize, &mut [i16]);
type ConvPoolFn = unsafe fn(&Layer, &[i16], usize, usize, &mut [i16]);

/// The sizes a layer's call must satisfy; returns the output size.
fn check_shapes(l: &Layer, inp: &[i16], w: usize, h: usize, out: &Out<'_>) -> (usize, usize) {
    assert!(w >= l.k && h >= l.k && inp.len() == w * h * l.cin);
    let (ow, oh) = (w + 1 - l.k, h + 1 - l.k);
    match out {
        Out::Fixed(o) => assert!(l.requant && o.len() == ow * oh * l.cout_p),
        Out::Float(o) => assert!(!l.requant && o.len() == ow * oh * l.cout),
    }
    (ow, oh)
}

/// The sizes a pool's call must satisfy; returns the output size.
fn check_pool(inp: &[i16], w: usize, h: usize, c: usize, k: usize, out: &[i16]) -> (usize, usize) {
    assert!(w >= k && h >= k && c <= MAX_CHANNELS && inp.len() == w * h * c);
    let (ow, oh) = ((w - k).div_ceil(2) + 1, (h - k).div_ceil(2) + 1);
    assert_eq!(out.len(), ow * oh * c);
    (ow, oh)
}

#[cfg(target_arch = "x86_64")]
mod kernel;
#[cfg(target_arch = "x86_64")]
mod kernel_avx2;

#[cfg(test)]
mod tests;
