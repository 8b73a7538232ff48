//! What a kernel is: the functions a network's layers and pools run
//! with, where a layer writes, and the shapes every call must satisfy
//! (checked by each kernel before it touches a buffer).

use super::layer::Layer;

/// The kernels a network runs with: the vector ones, or the scalar ones of
/// the tests. `conv_pool2`, when given, does a layer and the 2×2 pool after
/// it in one pass; `depthwise`, when given, runs depthwise layers (and
/// `conv` then also strided ones).
pub(super) struct Kernels {
    pub conv: ConvFn,
    pub pool: PoolFn,
    pub conv_pool2: Option<ConvPoolFn>,
    pub depthwise: Option<ConvFn>,
}

/// Where a layer writes: int16 activations, the final floats, or the saved
/// tensor, which it adds to its output and then holds that output.
pub(super) enum Out<'a> {
    Fixed(&'a mut [i16]),
    Float(&'a mut [f32]),
    Residual(&'a mut [i16]),
}

pub(super) type ConvFn = unsafe fn(&Layer, &[i16], usize, usize, Out<'_>);
pub(super) type PoolFn = unsafe fn(&[i16], usize, usize, usize, usize, &mut [i16]);
pub(super) type ConvPoolFn = unsafe fn(&Layer, &[i16], usize, usize, &mut [i16]);

/// The sizes a layer's call must satisfy (over an input already padded);
/// returns the output size.
pub(super) fn check_shapes(
    l: &Layer,
    inp: &[i16],
    w: usize,
    h: usize,
    out: &Out<'_>,
) -> (usize, usize) {
    assert!(w >= l.k && h >= l.k && inp.len() == w * h * l.cin);
    let (ow, oh) = ((w - l.k) / l.stride + 1, (h - l.k) / l.stride + 1);
    match out {
        Out::Fixed(o) => assert!(l.requant && !l.residual && o.len() == ow * oh * l.cout_p),
        Out::Residual(o) => assert!(l.requant && l.residual && o.len() == ow * oh * l.cout_p),
        Out::Float(o) => assert!(!l.requant && o.len() == ow * oh * l.cout),
    }
    (ow, oh)
}

/// The sizes a pool's call must satisfy; returns the output size.
pub(super) fn check_pool(
    inp: &[i16],
    w: usize,
    h: usize,
    c: usize,
    k: usize,
    out: &[i16],
) -> (usize, usize) {
    assert!(w >= k && h >= k && inp.len() == w * h * c);
    let (ow, oh) = ((w - k).div_ceil(2) + 1, (h - k).div_ceil(2) + 1);
    assert_eq!(out.len(), ow * oh * c);
    (ow, oh)
}
