//! Each committed ONNX file reproduces its source model (PyTorch or
//! TensorFlow Lite) on the real inputs recorded by tools/convert_models.py.

mod common;

use std::collections::BTreeMap;

use facegate_vision::eval::run_onnx;
use serde::Deserialize;

#[derive(Deserialize)]
struct TensorFile {
    shape: Vec<usize>,
    file: String,
}

#[derive(Deserialize)]
struct Reference {
    model: String,
    inputs: BTreeMap<String, TensorFile>,
    outputs: BTreeMap<String, TensorFile>,
    tolerance: f32,
}

fn read_f32(name: &str) -> Vec<f32> {
    let bytes =
        std::fs::read(common::repo_root().join("models/reference").join(name)).expect("fixture");
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

fn check(model: &str) -> f32 {
    facegate_vision::runtime::init_located().expect("ONNX Runtime");
    let path = common::repo_root().join(format!("models/reference/{model}.json"));
    let reference: Reference =
        serde_json::from_str(&std::fs::read_to_string(path).expect("reference")).expect("json");
    let (name, input) = reference.inputs.iter().next().expect("one input");
    let names: Vec<&str> = reference.outputs.keys().map(String::as_str).collect();
    let outputs = run_onnx(
        &common::repo_root().join("models"),
        &reference.model,
        (name, &input.shape, &read_f32(&input.file)),
        &names,
    )
    .expect("inference");
    let mut worst = 0f32;
    for (out, (oname, expected)) in outputs.iter().zip(&reference.outputs) {
        assert_eq!(out.shape, expected.shape, "{model}.{oname} shape");
        let want = read_f32(&expected.file);
        let diff = out
            .data
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        println!(
            "{model}.{oname}: max abs difference {diff:.3e} (bound {:.0e})",
            reference.tolerance
        );
        worst = worst.max(diff);
    }
    assert!(
        worst <= reference.tolerance,
        "{model}: {worst} exceeds {}",
        reference.tolerance
    );
    worst
}

#[test]
fn pnet_matches_pytorch() {
    check("mtcnn_pnet");
}

#[test]
fn rnet_matches_pytorch() {
    check("mtcnn_rnet");
}

#[test]
fn onet_matches_pytorch() {
    check("mtcnn_onet");
}

#[test]
fn mobilefacenet_matches_tflite() {
    check("mobilefacenet");
}

#[test]
fn anti_spoofing_matches_tflite() {
    check("anti_spoofing");
}

/// The network with its tree routing as `If` nodes (the one the engine
/// runs, tools/route_antispoof.py) routes the reference face to the leaf
/// TensorFlow Lite routes it to and gives its score; the leaves not taken
/// are not computed and read 0.
#[test]
fn routed_anti_spoofing_scores_like_tflite() {
    facegate_vision::runtime::init_located().expect("ONNX Runtime");
    let out = run_onnx(
        &common::repo_root().join("models"),
        "anti_spoofing_routed.onnx",
        (
            "input",
            &[1, 256, 256, 3],
            &read_f32("anti_spoofing.input.f32"),
        ),
        &["cls_pred", "leaf_mask"],
    )
    .expect("inference");
    let (cls, mask) = (
        read_f32("anti_spoofing.cls_pred.f32"),
        read_f32("anti_spoofing.leaf_mask.f32"),
    );
    assert_eq!(out[1].data, mask, "the same leaf");
    let score = |c: &[f32], m: &[f32]| -> f32 { c.iter().zip(m).map(|(c, m)| c.abs() * m).sum() };
    let (got, want) = (score(&out[0].data, &out[1].data), score(&cls, &mask));
    assert!((got - want).abs() <= 1e-3, "score {got}, TFLite {want}");
    let mut untaken = out[0].data.iter().zip(&mask).filter(|(_, &m)| m == 0.0);
    assert!(untaken.clone().count() == 7 && untaken.all(|(c, _)| *c == 0.0));
}

#[test]
fn a_tampered_model_is_refused() {
    let tmp = std::env::temp_dir().join(format!("facegate-tamper-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    std::fs::copy(
        common::repo_root().join("models/models.toml"),
        tmp.join("models.toml"),
    )
    .unwrap();
    let mut bytes = std::fs::read(common::repo_root().join("models/mtcnn_rnet.onnx")).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x55;
    std::fs::write(tmp.join("mtcnn_rnet.onnx"), bytes).unwrap();
    let Err(err) = run_onnx(
        &tmp,
        "mtcnn_rnet.onnx",
        ("input", &[1, 3, 24, 24], &[0.0; 1728]),
        &[],
    ) else {
        panic!("a tampered model ran");
    };
    assert!(err.to_string().contains("integrity check"), "{err}");
    std::fs::remove_dir_all(&tmp).ok();
}
