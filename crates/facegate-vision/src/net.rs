//! A network that runs here: in fixed point ([`crate::fixed_net`], where
//! the CPU has the instructions) or with ONNX Runtime ([`crate::runtime`]).
//! The engine loads one kind per network at start; the code that uses a
//! network (the detector's three, the embedder) holds it as a
//! `Box<dyn Net<..>>` and never asks which kind it is.

use crate::error::VisionError;

/// A loaded network taking `In` to `Out`.
pub(crate) trait Net<In: ?Sized, Out>: Send + Sync {
    /// How it runs here, for logs and reports: `fixed-point (AVX-512
    /// VNNI)`, `fixed-point (AVX2)` or [`ONNX_RUNTIME`].
    fn backend(&self) -> &'static str;

    /// Runs the network on `input`.
    fn run(&self, input: &In) -> Result<Out, VisionError>;
}

/// [`Net::backend`] of a network that runs with ONNX Runtime.
pub(crate) const ONNX_RUNTIME: &str = "ONNX Runtime";
