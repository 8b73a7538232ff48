//! The fuzz targets' committed inputs: the ones that once failed a target
//! (`fuzz/regressions/TARGET/`) and the seed corpus (`fuzz/corpus/TARGET/`).

use crate::paths::workspace;

/// `(name, bytes)` of every file in `fuzz/KIND/TARGET`, sorted by name;
/// the name is `KIND/TARGET/FILE`. Empty when the folder does not exist.
pub fn inputs(kind: &str, target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = workspace().join("fuzz").join(kind).join(target);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut files: Vec<(String, Vec<u8>)> = entries
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.is_file())
        .map(|p| {
            let name = format!(
                "{kind}/{target}/{}",
                p.file_name().unwrap().to_string_lossy()
            );
            (name, std::fs::read(&p).expect("reading a fuzz input"))
        })
        .collect();
    files.sort();
    files
}

/// A target's regressions first, then its seed corpus.
pub fn regressions_then_corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let mut all = inputs("regressions", target);
    all.extend(inputs("corpus", target));
    all
}
