//! The passive liveness layer on real photographs of live people (the
//! shared test photos and `../shared/testdata/liveness/bonafide`): the
//! default policy may refuse no more of them than docs/LIVENESS.md says
//! ("Passive cues on real photos"), and still catches the one real screen
//! attack. `facegate liveness eval --bona-fide DIR` prints the same figures.

mod common;

use std::path::Path;

use common::*;
use facegate_vision::{PassiveConfig, PassiveDecision};

/// The share (%) of the 40 single-face photos of the two folders the
/// default policy refuses, as documented (the network, which alone took 12
/// of them, now asks for a second step instead; the goal is at most 5 %).
const DOCUMENTED_REFUSED_PERCENT: f64 = 0.0;
/// ... and the share it asks for a second step (12 of 40).
const DOCUMENTED_STEP_UP_PERCENT: f64 = 30.0;

/// The decision of the default policy on every photo of `dir` with exactly
/// one face in view.
fn decisions(dir: &Path) -> Vec<(String, PassiveDecision)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let ext = p.extension().and_then(|e| e.to_str()).unwrap_or("");
            matches!(ext, "jpg" | "jpeg" | "png")
        })
        .collect();
    files.sort();
    let cfg = PassiveConfig::default();
    let mut out = Vec::new();
    for path in files {
        let img = ENGINE.decode(&std::fs::read(&path).unwrap()).unwrap();
        let faces = ENGINE.faces_in_view(&img).unwrap();
        if faces.len() != 1 {
            continue;
        }
        let scores = ENGINE.passive_scores(&img, &faces[0].0).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        out.push((name, scores.decide(&cfg)));
    }
    out
}

#[test]
fn the_default_policy_refuses_no_more_real_people_than_documented() {
    let liveness = repo_root().join("../shared/testdata/liveness");
    let mut all = decisions(&faces_dir());
    all.extend(decisions(&liveness.join("bonafide")));
    let refused: Vec<&str> = all
        .iter()
        .filter(|(_, d)| matches!(d, PassiveDecision::Refuse(_)))
        .map(|(f, _)| f.as_str())
        .collect();
    let step_up = all
        .iter()
        .filter(|(_, d)| matches!(d, PassiveDecision::StepUp(_)))
        .count();
    eprintln!(
        "{} of {} bona fide photos refused: {refused:?}; {step_up} asked for a second step",
        refused.len(),
        all.len()
    );
    let percent = |n: usize| 100.0 * n as f64 / all.len() as f64;
    assert!(
        percent(step_up) <= DOCUMENTED_STEP_UP_PERCENT,
        "{step_up} asked for a second step, docs/LIVENESS.md says at most {DOCUMENTED_STEP_UP_PERCENT} %"
    );
    assert_eq!(all.len(), 40, "single-face photos measured");
    assert!(
        percent(refused.len()) <= DOCUMENTED_REFUSED_PERCENT,
        "{} refused, docs/LIVENESS.md says at most {DOCUMENTED_REFUSED_PERCENT} %",
        refused.len()
    );
}

#[test]
fn the_real_screen_attack_is_not_let_through() {
    let dir = repo_root().join("../shared/testdata/liveness/attack");
    let all = decisions(&dir);
    assert_eq!(all.len(), 1);
    assert_ne!(all[0].1, PassiveDecision::Pass, "{all:?}");
}
