//! Replays the decode_and_detect fuzz target's inputs — the ones that once
//! failed it (fuzz/regressions/decode_and_detect/) and the committed seed
//! corpus (fuzz/corpus/decode_and_detect/) — with the target's checks:
//! decoding fails only with `InvalidImage` or `TooLarge`, and a decoded
//! image goes through the whole pipeline without a model error and with
//! finite numbers.

mod common;

use common::*;
use facegate_vision::VisionError;

fn inputs(kind: &str) -> Vec<(String, Vec<u8>)> {
    facegate_testkit::corpus::inputs(kind, "decode_and_detect")
}

fn finite(xs: &[f32]) -> bool {
    xs.iter().all(|x| x.is_finite())
}

#[test]
fn decode_and_detect_inputs_pass_the_target_checks() {
    let mut all = inputs("regressions");
    all.extend(inputs("corpus"));
    assert!(!all.is_empty(), "no decode_and_detect inputs");
    let mut decoded = 0;
    for (name, data) in all {
        let img = match ENGINE.decode(&data) {
            Ok(img) => img,
            Err(VisionError::InvalidImage(_) | VisionError::TooLarge(_)) => continue,
            Err(e) => panic!("{name}: decoding failed with {e:?}"),
        };
        decoded += 1;
        let faces = ENGINE
            .analyze_all(&img)
            .unwrap_or_else(|e| panic!("{name}: {e:?}"));
        for f in &faces {
            let b = &f.face.bbox;
            assert!(finite(&[b.x1, b.y1, b.x2, b.y2, f.face.score]), "{name}");
            assert!(finite(f.face.landmarks.as_flattened()), "{name}");
            assert!(finite(&f.embedding.vector), "{name}");
        }
        if let Some(first) = faces.first() {
            let s = ENGINE
                .passive_scores(&img, &first.face)
                .unwrap_or_else(|e| panic!("{name}: {e:?}"));
            assert!(
                s.net.is_some_and(f32::is_finite) && finite(&[s.hf_energy, s.glare, s.sharpness]),
                "{name}"
            );
        }
    }
    assert!(decoded > 0, "no input decoded: the seeds are missing");
}
