//! Networks in fixed point: int16 weights and activations summed into
//! int32 by AVX-512 VNNI (`vpdpwssd`) or AVX2 (`vpmaddwd`); the kernels give
//! the same values. MTCNN's three networks and MobileFaceNet run here; under
//! ONNX Runtime's float kernels they were most of a frame's cost.
//!
//! A network is a list of operations read from `models/*_fixed.json`:
//! convolutions (then PReLU and requantisation, or float outputs for the
//! last) and 2×2 / 3×3 max pools. The first format (MTCNN) has valid,
//! stride-1 convolutions; the second (MobileFaceNet) adds strides, zero
//! padding, depthwise layers, linear layers and residual additions. Both
//! kernels run every operation. `tools/quantize_mtcnn.py` and
//! `tools/quantize_mobilefacenet.py` derive the files from the ONNX models;
//! their `fixed_forward` is the arithmetic here, step for step (float32
//! multiply then add, round half to even, clamp), so both give identical
//! outputs, and the scalar version in the tests proves the vector kernels
//! against it. Machines with neither instruction set use the ONNX models.

mod interface;
mod isa;
mod layer;
mod scratch;

use interface::{Kernels, Out};
pub(crate) use isa::Isa;
use layer::{Encoding, Layer, OpParams, Params, A16};
use scratch::{Buffers, Loc};

use crate::error::VisionError;
use crate::models::ModelDir;

const FORMATS: [&str; 2] = ["facegate-fixed-net/1", "facegate-fixed-net/2"];

enum Op {
    Conv(Box<Layer>),
    Pool(usize),
}

/// A network's output over an input: `outputs` floats per position, row by row.
pub(crate) struct NetMap {
    pub w: usize,
    pub h: usize,
    pub data: Vec<f32>,
}

/// One network in fixed point, with the kernels of the instruction set
/// it runs on.
pub(crate) struct FixedNet {
    ops: Vec<Op>,
    outputs: usize,
    input: Encoding,
    isa: Isa,
}

impl FixedNet {
    /// Loads and checks a parameter file (sha256 from `models.toml`), to
    /// run with the kernels of `isa`, which this CPU has (see [`Isa::best`]).
    pub fn load(dir: &ModelDir, file: &str, isa: Isa) -> Result<FixedNet, VisionError> {
        if !isa.available() {
            return Err(VisionError::Model(format!("this CPU lacks {}", isa.name())));
        }
        let bytes = dir.read_verified(file, None)?;
        Self::from_json(&bytes, isa).map_err(|e| VisionError::Model(format!("{file}: {e}")))
    }

    /// How this network runs here, for logs and reports: `fixed-point
    /// (AVX-512 VNNI)` or `fixed-point (AVX2)`.
    pub fn backend(&self) -> &'static str {
        match self.isa {
            Isa::Avx512Vnni => "fixed-point (AVX-512 VNNI)",
            Isa::Avx2 => "fixed-point (AVX2)",
        }
    }

    fn from_json(bytes: &[u8], isa: Isa) -> Result<FixedNet, String> {
        let params: Params = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        let Some(version) = FORMATS.iter().position(|f| *f == params.format) else {
            return Err(format!(
                "format {:?}, expected one of {FORMATS:?}",
                params.format
            ));
        };
        let n = params.ops.len();
        let mut channels = 3; // RGB, in a buffer of 4
        let (mut ops, mut saved) = (Vec::with_capacity(n), false);
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
                    if p.extended() && version == 0 {
                        return Err(format!("operation {i} needs {}", FORMATS[1]));
                    }
                    let (buffer, bound) = if i == 0 {
                        (4, 255)
                    } else {
                        (channels.next_multiple_of(2), A16 as i64)
                    };
                    let layer = Box::new(Layer::new(*p, buffer, bound, i + 1 == n)?);
                    if layer.residual && !saved {
                        return Err(format!("operation {i} adds a tensor no layer saved"));
                    }
                    saved |= layer.save;
                    channels = layer.cout;
                    ops.push(Op::Conv(layer));
                }
            }
        }
        match ops.last() {
            Some(Op::Conv(l)) if !l.requant => Ok(FixedNet {
                outputs: l.cout,
                input: params.input,
                ops,
                isa,
            }),
            _ => Err("the last operation must be the output convolution".into()),
        }
    }

    /// RGB pixels (3 bytes each) as this network's input: four int16 per
    /// pixel, the last 0.
    pub fn encode(&self, rgb: &[u8]) -> Vec<i16> {
        let value = |p: u8| match self.input {
            Encoding::Rgb => i16::from(p),
            Encoding::RgbCentred => 2 * i16::from(p) - 255,
        };
        rgb.chunks_exact(3)
            .flat_map(|p| [value(p[0]), value(p[1]), value(p[2]), 0])
            .collect()
    }

    /// Floats per output position.
    pub fn outputs(&self) -> usize {
        self.outputs
    }

    /// The output size for a `w × h` input, if the input is large enough
    /// (and a layer that adds the saved tensor gets one of its size).
    pub fn output_size(&self, mut w: usize, mut h: usize) -> Option<(usize, usize)> {
        let mut saved = None;
        for op in &self.ops {
            (w, h) = match op {
                Op::Conv(l) => l.output_size(w, h)?,
                Op::Pool(k) if w >= *k && h >= *k => {
                    ((w - k).div_ceil(2) + 1, (h - k).div_ceil(2) + 1)
                }
                Op::Pool(_) => return None,
            };
            if let Op::Conv(l) = op {
                if l.residual && saved != Some((w, h, l.cout)) {
                    return None;
                }
                if l.save {
                    saved = Some((w, h, l.cout));
                }
            }
        }
        Some((w, h))
    }

    /// Runs the network over a `w × h` input given as 4 int16 per pixel
    /// (see the model's parameter script: R, G, B as 0..255 for MTCNN,
    /// 2 × value − 255 for MobileFaceNet; then 0), with the best kernel of
    /// this CPU. Needs an input large enough for [`Self::output_size`].
    pub fn run(&self, rgbx: &[i16], w: usize, h: usize) -> NetMap {
        self.run_with(self.isa, rgbx, w, h)
    }

    /// [`Self::run`] with the kernels for `isa`, which this CPU must have.
    fn run_with(&self, isa: Isa, rgbx: &[i16], w: usize, h: usize) -> NetMap {
        assert!(isa.available(), "this CPU lacks {}", isa.name());
        assert!(self.output_size(w, h).is_some() && rgbx.len() == w * h * 4);
        // SAFETY: the CPU has the instructions of `isa`'s kernels (checked
        // above), and they have every operation.
        unsafe { scratch::with_buffers(|bufs| self.forward(rgbx, w, h, &isa.kernels(), bufs)) }
    }

    /// The network with `kernels`, activations in `bufs`.
    ///
    /// # Safety
    /// The kernels must be safe to call on this CPU and have every
    /// operation the network uses.
    unsafe fn forward(
        &self,
        input: &[i16],
        w: usize,
        h: usize,
        kernels: &Kernels,
        bufs: &mut Buffers,
    ) -> NetMap {
        // Where the current activations are, and how many values they have.
        let mut cur = (Loc::Input, input.len());
        let (mut w, mut h, mut c) = (w, h, 4);
        let mut ops = self.ops.iter().peekable();
        while let Some(op) = ops.next() {
            let l = match op {
                Op::Pool(k) => {
                    let (ow, oh) = ((w - k).div_ceil(2) + 1, (h - k).div_ceil(2) + 1);
                    let (dst, len) = (cur.0.other(), ow * oh * c);
                    let mut out = bufs.take(dst);
                    let src = bufs.view(input, cur);
                    // SAFETY: the caller vouches for the kernel; it checks its buffers.
                    unsafe { (kernels.pool)(src, w, h, c, *k, scratch::sized(&mut out, len)) };
                    bufs.put(dst, out, len);
                    (cur, w, h) = ((dst, len), ow, oh);
                    continue;
                }
                Op::Conv(l) => l,
            };
            let (ow, oh) = l.output_size(w, h).expect("checked by run");
            // The output goes to the saved tensor's buffer for a layer that
            // saves or adds to it, else to the buffer not being read; none
            // of them reads the saved tensor itself.
            let dst = match (l.requant, l.save || l.residual) {
                (false, _) => None,
                (true, true) => Some(Loc::Saved),
                (true, false) => Some(cur.0.other()),
            };
            assert!(dst != Some(cur.0), "a layer would overwrite its own input");
            let mut out = dst.map(|d| bufs.take(d)).unwrap_or_default();
            let mut padded = Vec::new();
            let (src, iw, ih) = if l.pad == [0; 4] {
                (bufs.view(input, cur), w, h)
            } else {
                padded = bufs.take_padded();
                let (pw, ph) = scratch::pad(bufs.view(input, cur), w, h, c, l.pad, &mut padded);
                (&padded[..pw * ph * c], pw, ph)
            };
            let Some(dst) = dst else {
                let mut data = vec![0f32; ow * oh * l.cout];
                // SAFETY: as above.
                unsafe { (kernels.conv)(l, src, iw, ih, Out::Float(&mut data)) };
                return NetMap { w: ow, h: oh, data };
            };
            let mut len = ow * oh * l.cout_p;
            let fused = match (kernels.conv_pool2, ops.peek()) {
                (Some(f), Some(Op::Pool(2))) if l.nv == 1 && l.monotone && l.plain() => Some(f),
                _ => None,
            };
            if let Some(fused) = fused {
                ops.next();
                let (pw, ph) = (ow.div_ceil(2), oh.div_ceil(2));
                len = pw * ph * l.cout_p;
                // SAFETY: as above.
                unsafe { fused(l, src, iw, ih, scratch::sized(&mut out, len)) };
                (w, h) = (pw, ph);
            } else {
                let target = if l.residual {
                    assert_eq!(
                        bufs.saved_len(),
                        len,
                        "the saved tensor has the layer's output size"
                    );
                    Out::Residual(&mut out[..len])
                } else {
                    Out::Fixed(scratch::sized(&mut out, len))
                };
                let call = match (l.depthwise, kernels.depthwise) {
                    (false, _) => kernels.conv,
                    (true, Some(dw)) => dw,
                    (true, None) => unreachable!("checked by run: the kernels run every layer"),
                };
                // SAFETY: as above.
                unsafe { call(l, src, iw, ih, target) };
                (w, h) = (ow, oh);
            }
            bufs.put(dst, out, len);
            bufs.put_padded(padded);
            (cur, c) = ((dst, len), l.cout_p);
        }
        unreachable!("checked at load: the last operation is the output convolution")
    }
}

#[cfg(target_arch = "x86_64")]
mod kernel;
#[cfg(target_arch = "x86_64")]
mod kernel_avx2;
#[cfg(target_arch = "x86_64")]
mod kernel_avx2_depthwise;
#[cfg(target_arch = "x86_64")]
mod kernel_depthwise;

#[cfg(test)]
mod tests;
