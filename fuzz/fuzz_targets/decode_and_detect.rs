//! Fuzz target: arbitrary bytes through `FaceEngine::decode` and, when they
//! decode, the whole face pipeline with the real models — detection,
//! quality, alignment and embedding (`analyze_all`), then the passive
//! liveness cues of a login on the first face.
//!
//! Asserts: no panic; decoding fails only with `InvalidImage` or
//! `TooLarge` and what it returns honours the limits; a decoded image never
//! makes the pipeline fail with a model error (that would mean the engine
//! fed a network a shape it cannot take), and every number it reports is
//! finite.
#![no_main]

use facegate_fuzz::{engine, MAX_IMAGE_PIXELS};
use facegate_vision::decode::MIN_SIDE;
use facegate_vision::VisionError;
use libfuzzer_sys::fuzz_target;

fn finite(xs: &[f32]) -> bool {
    xs.iter().all(|x| x.is_finite())
}

fuzz_target!(|data: &[u8]| {
    let engine = engine();
    let img = match engine.decode(data) {
        Ok(img) => img,
        Err(VisionError::InvalidImage(_) | VisionError::TooLarge(_)) => return,
        Err(e) => panic!("decoding failed with {e:?}"),
    };
    let (w, h) = img.dimensions();
    assert!(
        u64::from(w) * u64::from(h) <= MAX_IMAGE_PIXELS && w >= MIN_SIDE && h >= MIN_SIDE,
        "decoded {w}x{h} past the limits"
    );

    let faces = engine
        .analyze_all(&img)
        .unwrap_or_else(|e| panic!("analyze_all on a decoded {w}x{h} image: {e:?}"));
    for f in &faces {
        let b = &f.face.bbox;
        assert!(
            finite(&[b.x1, b.y1, b.x2, b.y2, f.face.score]),
            "box {:?}",
            f.face
        );
        assert!(
            finite(f.face.landmarks.as_flattened()),
            "landmarks {:?}",
            f.face
        );
        assert!(finite(&f.embedding.vector), "embedding of {:?}", f.face);
        let q = &f.quality;
        assert!(
            finite(&[q.face_px, q.sharpness, q.brightness]),
            "quality {q:?}"
        );
    }

    if let Some(first) = faces.first() {
        let s = engine
            .passive_scores(&img, &first.face)
            .unwrap_or_else(|e| panic!("passive_scores of {:?}: {e:?}", first.face));
        assert!(
            finite(&[s.hf_energy, s.glare, s.sharpness]) && s.net.is_none_or(f32::is_finite),
            "passive scores {s:?}"
        );
    }
});
