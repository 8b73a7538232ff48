//! Fixtures for measuring the engine, not for deciding anything: synthetic
//! presentation attacks and camera frames ([`attacks`]), challenge answers
//! built from the shared test photos ([`scenarios`]), and a check that an
//! ONNX file reproduces its source model ([`run_onnx`]). Compiled only
//! with the `eval` feature, which the `facegate` binary (`liveness eval`,
//! `bench`) and the tests turn on.

pub mod attacks;
pub mod scenarios;

use std::path::Path;

use crate::error::VisionError;
use crate::models::ModelDir;
use crate::runtime::{SessionOptions, SessionPool};

/// One output tensor of [`run_onnx`].
pub struct Tensor {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

/// Runs the ONNX file `file` of the model directory `dir` (its sha256
/// checked against `models.toml`) with ONNX Runtime, one thread, on one
/// input; returns the named outputs.
pub fn run_onnx(
    dir: &Path,
    file: &str,
    input: (&str, &[usize], &[f32]),
    outputs: &[&str],
) -> Result<Vec<Tensor>, VisionError> {
    let bytes = ModelDir::open(dir)?.read_verified(file, None)?;
    let opts = SessionOptions {
        intra_threads: 1,
        sessions: 1,
    };
    let pool = SessionPool::load(file, &bytes, &opts)?;
    let (name, shape, data) = input;
    Ok(pool
        .run(name, shape, data, outputs)?
        .into_iter()
        .map(|o| Tensor {
            shape: o.shape,
            data: o.data,
        })
        .collect())
}
