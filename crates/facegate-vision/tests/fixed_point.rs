//! The fixed-point networks against their ONNX originals on the labelled
//! photos. The detector (AVX-512 VNNI or AVX2): the same faces, nearly the
//! same boxes and landmarks, and embeddings of the aligned faces that
//! barely move. The embedder (AVX-512 VNNI or AVX2): the same face gives
//! the same template.

mod common;

use std::sync::LazyLock;

use common::*;
use facegate_vision::{cosine_similarity, EngineConfig, FaceEngine};

/// Both networks with ONNX Runtime.
static ONNX_ENGINE: LazyLock<FaceEngine> = LazyLock::new(|| {
    let mut config = EngineConfig {
        models_dir: repo_root().join("models"),
        fixed_point_embedding: false,
        ..EngineConfig::default()
    };
    config.detector.fixed_point = false;
    FaceEngine::load(config).expect("loading the engine")
});

#[test]
fn fixed_point_and_onnx_embeddings_agree() {
    if ENGINE.embedder_backend() == ONNX_ENGINE.embedder_backend() {
        eprintln!("skipped: this CPU lacks AVX2, so both embedders are the ONNX one");
        return;
    }
    assert_eq!(
        ENGINE.model_id(),
        ONNX_ENGINE.model_id(),
        "templates stay comparable"
    );
    let (mut worst, mut faces) = (1f32, 0);
    for l in labels() {
        let img = ENGINE.decode(&photo(&l.file)).unwrap();
        for (face, _) in ENGINE.faces_in_view(&img).unwrap() {
            let aligned = ENGINE.align(&img, &face);
            let fixed = ENGINE.embed_aligned(&aligned).unwrap();
            let float = ONNX_ENGINE.embed_aligned(&aligned).unwrap();
            let n = fixed.vector.iter().map(|x| x * x).sum::<f32>();
            assert!((n - 1.0).abs() < 1e-4, "{}: not unit length", l.file);
            worst = worst.min(cosine_similarity(&fixed.vector, &float.vector));
            faces += 1;
        }
    }
    eprintln!("{faces} faces: worst cosine between fixed-point and ONNX embeddings {worst:.5}");
    assert!(faces >= 30, "only {faces} faces");
    assert!(worst >= 0.999, "an embedding moved: cosine {worst}");
}

#[test]
fn fixed_point_and_onnx_detectors_find_the_same_faces() {
    if !ENGINE.fixed_point() {
        eprintln!("skipped: this CPU lacks AVX2, so both detectors are the ONNX one");
        return;
    }
    assert!(ENGINE.fixed_point() && !ONNX_ENGINE.fixed_point());
    let (mut worst_iou, mut worst_mark, mut worst_cos) = (1f32, 0f32, 1f32);
    for l in labels() {
        let img = ENGINE.decode(&photo(&l.file)).unwrap();
        let fixed = ENGINE.faces_in_view(&img).unwrap();
        let onnx = ONNX_ENGINE.faces_in_view(&img).unwrap();
        assert_eq!(fixed.len(), onnx.len(), "{}: face counts differ", l.file);
        for (f, _) in &fixed {
            let (o, _) = onnx
                .iter()
                .max_by(|a, b| f.bbox.iou(&a.0.bbox).total_cmp(&f.bbox.iou(&b.0.bbox)))
                .unwrap();
            worst_iou = worst_iou.min(f.bbox.iou(&o.bbox));
            let side = o.bbox.width().max(o.bbox.height());
            for (a, b) in f.landmarks.iter().zip(o.landmarks) {
                worst_mark = worst_mark.max((a[0] - b[0]).hypot(a[1] - b[1]) / side);
            }
            if l.faces == 1 {
                let (ef, eo) = (
                    ENGINE.embed(&img, f).unwrap(),
                    ENGINE.embed(&img, o).unwrap(),
                );
                worst_cos = worst_cos.min(cosine_similarity(&ef.vector, &eo.vector));
            }
        }
    }
    eprintln!("worst box IoU {worst_iou:.3}, landmark shift {worst_mark:.4} of the box, embedding cosine {worst_cos:.4}");
    assert!(worst_iou >= 0.85, "a box moved: IoU {worst_iou}");
    assert!(
        worst_mark <= 0.025,
        "a landmark moved by {worst_mark} of its box"
    );
    assert!(worst_cos >= 0.97, "an embedding moved: cosine {worst_cos}");
}
