//! A fixed-point network's parameter file and its layers: the JSON
//! written by `tools/quantize_mtcnn.py` and `tools/quantize_mobilefacenet.py`,
//! checked (no int32 sum can overflow, shapes agree) and packed for the
//! vector kernels.

use serde::Deserialize;

/// Largest activation magnitude (the scripts' `A16`).
pub(super) const A16: f32 = 2047.0;
/// int16 values in a vector of the widest kernel.
pub(super) const LANES: usize = 16;
/// Output vectors computed together by one pass of the kernel.
pub(super) const CHUNK: usize = 4;

/// Widest layer supported.
const MAX_CHANNELS: usize = 512;

#[derive(Deserialize)]
pub(super) struct Params {
    pub format: String,
    /// How pixels become the first layer's int16 input.
    #[serde(default)]
    pub input: Encoding,
    pub ops: Vec<OpParams>,
}

/// The first layer's input from an RGB pixel value `p` (0..255).
#[derive(Deserialize, Default, Clone, Copy, PartialEq, Eq, Debug)]
#[serde(rename_all = "snake_case")]
pub enum Encoding {
    /// `p` itself (MTCNN; the offset is folded into the first layer).
    #[default]
    Rgb,
    /// `2p − 255`, the model's `(p − 127.5) / 128` times 256, so that zero
    /// padding is the model's zero (MobileFaceNet).
    RgbCentred,
}

#[derive(Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub(super) enum OpParams {
    Conv(Box<LayerParams>),
    Pool { kernel: usize },
}

#[derive(Deserialize)]
pub(super) struct LayerParams {
    kernel: usize,
    pub cin: usize,
    cout: usize,
    /// `[oc][ky][kx][ci]`, or `[c][ky][kx]` for a depthwise layer.
    weights: Vec<i32>,
    scale: Vec<f32>,
    shift: Vec<f32>,
    /// PReLU slopes; none for a linear layer.
    alpha: Option<Vec<f32>>,
    /// Requantisation to int16; none for the last layer (float outputs).
    out_inv_scale: Option<Vec<f32>>,
    #[serde(default = "one")]
    stride: usize,
    /// Zero padding: top, left, bottom, right.
    #[serde(default)]
    pad: [usize; 4],
    /// Each output channel sees only its own input channel.
    #[serde(default)]
    depthwise: bool,
    /// Adds the saved tensor (times `residual_scale`) before
    /// requantisation; the result replaces the saved tensor.
    #[serde(default)]
    residual: bool,
    residual_scale: Option<Vec<f32>>,
    /// The output is kept as the saved tensor a later layer adds.
    #[serde(default)]
    save: bool,
}

fn one() -> usize {
    1
}

impl LayerParams {
    /// Whether the layer needs more than the first format's operations
    /// (valid, stride-1 convolutions with PReLU).
    pub fn extended(&self) -> bool {
        self.stride != 1
            || self.pad != [0; 4]
            || self.depthwise
            || self.residual
            || self.save
            || (self.alpha.is_none() && self.out_inv_scale.is_some())
    }
}

/// One convolution with its requantisation.
pub(super) struct Layer {
    pub k: usize,
    pub stride: usize,
    pub pad: [usize; 4],
    pub depthwise: bool,
    pub residual: bool,
    pub save: bool,
    /// Channels per pixel of the input buffer (the real ones, made even).
    pub cin: usize,
    pub cout: usize,
    /// Channels per pixel of the output buffer: `cout` made even.
    pub cout_p: usize,
    /// 16-lane vectors of outputs.
    pub nv: usize,
    /// `[oc][tap][cin]` (`[c][tap]` if depthwise), zero in padding channels:
    /// for the scalar version of the tests only (MobileFaceNet's are 2 MB).
    #[cfg(test)]
    pub weights: Vec<i16>,
    /// Two int16 weights per int32: `[chunk][tap][pair][vector][lane]`,
    /// chunks of [`CHUNK`] vectors (the last may be shorter); for a
    /// depthwise layer `[vector][tap pair]` blocks of the two taps' weights
    /// of channels 0-3 and 8-11, then 4-7 and 12-15 (the order of
    /// `vpunpck{l,h}wd`).
    pub packed: Vec<i32>,
    /// A depthwise layer's weights for the AVX-512 kernel (empty for other
    /// layers): `[group of 32 channels][tap][even, odd][lane]`, each int32
    /// one channel's weight beside a zero: channel `2·lane` of the group in
    /// the low half of the even vector, `2·lane + 1` in the high half of
    /// the odd one, so that `vpdpwssd` of 32 channels of input gives the
    /// even channels' sums in one vector and the odd ones' in the other.
    pub packed_split: Vec<i32>,
    /// Per output lane (`nv × 16`, zero past `cout`; slopes of 1 for a
    /// linear layer).
    pub scale: Vec<f32>,
    pub shift: Vec<f32>,
    pub alpha: Vec<f32>,
    pub inv: Vec<f32>,
    pub res_scale: Vec<f32>,
    /// PReLU and requantisation to int16 (all but the last layer).
    pub requant: bool,
    /// Requantisation keeps the order of values (positive factors), so a
    /// max pool may take the largest activation before it and get the
    /// same result.
    pub monotone: bool,
}

impl Layer {
    pub fn new(
        p: LayerParams,
        cin_buffer: usize,
        input_bound: i64,
        last: bool,
    ) -> Result<Layer, String> {
        let taps = p.kernel * p.kernel;
        let fan_in = if p.depthwise { 1 } else { p.cin };
        if p.kernel == 0
            || p.cout == 0
            || p.cout > MAX_CHANNELS
            || p.cin > cin_buffer
            || p.stride == 0
            || p.pad.iter().any(|&x| x >= p.kernel)
        {
            return Err(format!(
                "unsupported layer {}x{}, {} -> {}",
                p.kernel, p.kernel, p.cin, p.cout
            ));
        }
        if p.depthwise && (p.cin != p.cout || !p.cout.is_multiple_of(LANES) || p.residual || last) {
            return Err("depthwise layers map 16k channels to themselves, requantised".into());
        }
        if p.weights.len() != p.cout * taps * fan_in {
            return Err("weight count does not match the layer shape".into());
        }
        // No int32 sum may overflow, whatever the input.
        for w in p.weights.chunks(taps * fan_in) {
            let bound: i64 = w.iter().map(|&x| i64::from(x).abs() * input_bound).sum();
            if w.iter().any(|x| x.abs() > i32::from(i16::MAX)) || bound > i64::from(i32::MAX) {
                return Err("weights too large: an int32 sum could overflow".into());
            }
        }
        let requant = !last;
        let (alpha, inv) = match (p.alpha, p.out_inv_scale) {
            (a, Some(i)) if requant => (a.unwrap_or_else(|| vec![1.0; p.cout]), i),
            (None, None) if !requant => (vec![0.0; p.cout], vec![0.0; p.cout]),
            _ => return Err("requantisation must be on every layer but the last".into()),
        };
        let res_scale = match (p.residual, p.residual_scale) {
            (true, Some(s)) if requant => s,
            (false, None) => vec![0.0; p.cout],
            _ => return Err("a residual needs its scale and a requantised output".into()),
        };
        for v in [&p.scale, &p.shift, &alpha, &inv, &res_scale] {
            if v.len() != p.cout || v.iter().any(|x| !x.is_finite()) {
                return Err("per-channel constants must be finite, one per output".into());
            }
        }
        let cin = cin_buffer;
        let nv = p.cout.div_ceil(LANES);
        // The unpacked weights are kept for the tests only.
        #[cfg_attr(not(test), allow(unused_variables))]
        let (weights, packed, packed_split) = if p.depthwise {
            let w: Vec<i16> = p.weights.iter().map(|&x| x as i16).collect();
            let packed = pack_depthwise(&w, p.cout, taps);
            let split = pack_depthwise_split(&w, p.cout, taps);
            (w, packed, split)
        } else {
            let mut w = vec![0i16; p.cout * taps * cin];
            for (oc, t, c) in iproduct(p.cout, taps, p.cin) {
                w[(oc * taps + t) * cin + c] = p.weights[(oc * taps + t) * p.cin + c] as i16;
            }
            let packed = pack(&w, p.cout, taps, cin);
            (w, packed, Vec::new())
        };
        let monotone = inv.iter().all(|&x| x > 0.0);
        let lanes = |v: Vec<f32>| {
            let mut out = zeroed(nv);
            out[..v.len()].copy_from_slice(&v);
            out
        };
        Ok(Layer {
            k: p.kernel,
            stride: p.stride,
            pad: p.pad,
            depthwise: p.depthwise,
            residual: p.residual,
            save: p.save,
            cin,
            cout: p.cout,
            cout_p: p.cout.next_multiple_of(2),
            nv,
            #[cfg(test)]
            weights,
            packed,
            packed_split,
            scale: lanes(p.scale),
            shift: lanes(p.shift),
            alpha: lanes(alpha),
            inv: lanes(inv),
            res_scale: lanes(res_scale),
            requant,
            monotone,
        })
    }

    /// A valid, stride-1, ordinary convolution (the first format's).
    pub fn plain(&self) -> bool {
        self.stride == 1 && self.pad == [0; 4] && !self.depthwise && !self.residual && !self.save
    }

    /// Offsets, in an input `w` pixels wide, of the kernel's taps from a
    /// pixel's first channel. The furthest read, the last channel pair of
    /// the last tap of the last output pixel, is the input's last pixel.
    pub fn tap_offsets(&self, w: usize) -> Vec<usize> {
        (0..self.k * self.k)
            .map(|t| ((t / self.k) * w + t % self.k) * self.cin)
            .collect()
    }

    /// Where the input window of output pixel `pixel` (row-major, `ow`
    /// per row) starts in an input `w` pixels wide: its first channel.
    pub fn window_start(&self, pixel: usize, w: usize, ow: usize) -> usize {
        let (x, y) = (pixel % ow, pixel / ow);
        (y * w + x) * self.stride * self.cin
    }

    /// Offsets, in an input `w` pixels wide, of every channel pair the
    /// kernels read for one output pixel, from that pixel's first channel:
    /// tap by tap, pair by pair, the order of the packed weights. Every read
    /// is in bounds (see [`Self::tap_offsets`]).
    pub fn pair_offsets(&self, w: usize) -> Vec<usize> {
        let pairs = self.cin / 2;
        self.tap_offsets(w)
            .into_iter()
            .flat_map(|t| (0..pairs).map(move |g| t + 2 * g))
            .collect()
    }

    /// The output size over a `w × h` input (padding included), if the
    /// input is large enough.
    pub fn output_size(&self, w: usize, h: usize) -> Option<(usize, usize)> {
        let [t, l, b, r] = self.pad;
        let (w, h) = (w + l + r, h + t + b);
        (w >= self.k && h >= self.k).then(|| {
            (
                (w - self.k) / self.stride + 1,
                (h - self.k) / self.stride + 1,
            )
        })
    }
}

/// The weights of a layer as the kernels read them (see [`Layer::packed`]).
fn pack(weights: &[i16], cout: usize, taps: usize, cin: usize) -> Vec<i32> {
    let nv = cout.div_ceil(LANES);
    let pairs = cin / 2;
    let mut packed = zeroed(taps * pairs * nv);
    for (oc, t, g) in iproduct(cout, taps, pairs) {
        let (chunk, v, lane) = (oc / (CHUNK * LANES), oc / LANES % CHUNK, oc % LANES);
        let nvc = (nv - chunk * CHUNK).min(CHUNK);
        let at = chunk * CHUNK * LANES * taps * pairs + ((t * pairs + g) * nvc + v) * LANES + lane;
        packed[at] = pair(
            weights[(oc * taps + t) * cin + 2 * g],
            weights[(oc * taps + t) * cin + 2 * g + 1],
        );
    }
    packed
}

/// A depthwise layer's weights in tap pairs (the last tap of an odd count
/// pairs with a zero weight), lanes in the order of `vpunpck{l,h}wd`.
fn pack_depthwise(weights: &[i16], c: usize, taps: usize) -> Vec<i32> {
    let pairs = taps.div_ceil(2);
    let mut packed = zeroed(c / LANES * pairs);
    let w = |ch: usize, t: usize| if t < taps { weights[ch * taps + t] } else { 0 };
    for (v, j, lane) in iproduct(c / LANES, pairs, LANES) {
        let ch = v * LANES + DEPTHWISE_LANE_CHANNEL[lane];
        packed[(v * pairs + j) * LANES + lane] = pair(w(ch, 2 * j), w(ch, 2 * j + 1));
    }
    packed
}

/// A depthwise layer's weights as [`Layer::packed_split`] (zero past the
/// last channel when `c` is not a multiple of 32).
fn pack_depthwise_split(weights: &[i16], c: usize, taps: usize) -> Vec<i32> {
    let groups = c.div_ceil(2 * LANES);
    let mut packed = zeroed(groups * taps * 2);
    for (g, t, lane) in iproduct(groups, taps, LANES) {
        let at = ((g * taps + t) * 2) * LANES + lane;
        let ch = g * 2 * LANES + 2 * lane;
        if ch < c {
            packed[at] = pair(weights[ch * taps + t], 0);
            packed[at + LANES] = pair(0, weights[(ch + 1) * taps + t]);
        }
    }
    packed
}

/// The channel (of 16) each int32 lane of a depthwise accumulator holds:
/// `vpunpcklwd` interleaves channels 0-3 and 8-11 of two taps, `vpunpckhwd`
/// 4-7 and 12-15.
pub(super) const DEPTHWISE_LANE_CHANNEL: [usize; LANES] =
    [0, 1, 2, 3, 8, 9, 10, 11, 4, 5, 6, 7, 12, 13, 14, 15];

/// Two int16 as one int32, `lo` first in memory.
fn pair(lo: i16, hi: i16) -> i32 {
    (lo as u16 as u32 | (hi as u16 as u32) << 16) as i32
}

pub(super) fn iproduct(
    a: usize,
    b: usize,
    c: usize,
) -> impl Iterator<Item = (usize, usize, usize)> {
    (0..a).flat_map(move |i| (0..b).flat_map(move |j| (0..c).map(move |k| (i, j, k))))
}

/// `blocks × 16` zeros.
fn zeroed<T: Copy + Default>(blocks: usize) -> Vec<T> {
    vec![T::default(); blocks * LANES]
}
