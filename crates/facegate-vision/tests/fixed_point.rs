//! The fixed-point detector (AVX-512 VNNI or AVX2) against the ONNX one on the
//! labelled photos: the same faces, nearly the same boxes and landmarks,
//! and embeddings of the aligned faces that barely move.

mod common;

use std::sync::LazyLock;

use common::*;
use facegate_vision::fixed_net::FixedNet;
use facegate_vision::{cosine_similarity, EngineConfig, FaceEngine};

static ONNX_ENGINE: LazyLock<FaceEngine> = LazyLock::new(|| {
    let mut config = EngineConfig {
        models_dir: repo_root().join("models"),
        ..EngineConfig::default()
    };
    config.detector.fixed_point = false;
    FaceEngine::load(config).expect("loading the engine")
});

#[test]
fn fixed_point_and_onnx_detectors_find_the_same_faces() {
    if !FixedNet::supported() {
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
