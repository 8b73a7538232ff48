//! Verification accuracy on every pair of single-person photos at the
//! default threshold: no impostor accepted, at least 95% of genuine pairs.

mod common;

use common::*;

#[test]
fn default_threshold_separates_genuine_and_impostor_pairs() {
    let singles: Vec<_> = labels().into_iter().filter(|l| l.faces == 1).collect();
    let templates: Vec<_> = singles
        .iter()
        .map(|l| {
            ENGINE
                .analyze_single(&photo(&l.file), false)
                .map(|f| f.analysis.embedding)
                .ok()
        })
        .collect();
    let t = ENGINE.threshold();
    let (mut genuine, mut genuine_ok, mut impostor_accepted) = (0, 0, Vec::new());
    let mut skipped = 0;
    for i in 0..singles.len() {
        for j in i + 1..singles.len() {
            let (Some(a), Some(b)) = (&templates[i], &templates[j]) else {
                skipped += 1;
                continue;
            };
            let s = ENGINE.compare(a, b).unwrap();
            if singles[i].identity == singles[j].identity {
                genuine += 1;
                genuine_ok += usize::from(s >= t);
            } else if s >= t {
                impostor_accepted
                    .push(format!("{} ~ {}: {s:.3}", singles[i].file, singles[j].file));
            }
        }
    }
    assert_eq!(skipped, 0, "every single-person photo yields a template");
    assert!(
        impostor_accepted.is_empty(),
        "impostors accepted: {impostor_accepted:?}"
    );
    assert!(
        genuine_ok as f64 >= 0.95 * genuine as f64,
        "{genuine_ok}/{genuine} genuine pairs accepted"
    );
}
