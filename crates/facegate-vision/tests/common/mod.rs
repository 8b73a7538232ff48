//! Shared fixtures: one engine per test binary, the labelled test photos.

#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::LazyLock;

use facegate_vision::{EngineConfig, FaceEngine};

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn faces_dir() -> PathBuf {
    repo_root().join("../shared/testdata/faces")
}

pub fn photo(name: &str) -> Vec<u8> {
    std::fs::read(faces_dir().join(name)).unwrap_or_else(|e| panic!("reading {name}: {e}"))
}

pub static ENGINE: LazyLock<FaceEngine> = LazyLock::new(|| {
    facegate_vision::runtime::init_located().expect("ONNX Runtime (run `facegate setup`)");
    FaceEngine::load(EngineConfig {
        models_dir: repo_root().join("models"),
        ..EngineConfig::default()
    })
    .expect("loading the engine")
});

/// One row of LABELS.csv.
pub struct Label {
    pub file: String,
    pub identity: String,
    pub faces: usize,
}

pub fn labels() -> Vec<Label> {
    let mut r = csv::Reader::from_path(faces_dir().join("LABELS.csv")).expect("LABELS.csv");
    r.records()
        .map(|rec| {
            let rec = rec.expect("csv row");
            Label {
                file: rec[0].to_string(),
                identity: rec[1].to_string(),
                faces: rec[2].parse().expect("faces"),
            }
        })
        .collect()
}
