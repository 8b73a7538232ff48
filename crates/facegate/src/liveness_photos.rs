//! `facegate liveness eval --bona-fide DIR [--attack DIR]`: the passive
//! liveness cues measured on real photographs, one frame each, the way the
//! server sees a single frame. For every cue it prints the distribution of
//! its scores and how many photos its threshold refuses, then what the
//! default policy does with them: refuse, ask for a second step
//! (`step_up`), or let through. Photos without exactly one face in view are
//! counted and skipped.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use facegate_vision::{FaceEngine, PassiveConfig, PassiveDecision, PassiveScores};

/// One measured photo.
pub struct Measured {
    pub file: String,
    pub scores: PassiveScores,
    pub decision: PassiveDecision,
}

/// Every photo of `dir` (JPEG, PNG or WebP, sorted by name) with exactly one
/// face in view, measured; and the names of the others with why.
pub fn measure_dir(
    engine: &FaceEngine,
    dir: &Path,
    cfg: &PassiveConfig,
) -> Result<(Vec<Measured>, Vec<String>)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let ext = p.extension().and_then(|e| e.to_str()).unwrap_or("");
            matches!(
                ext.to_ascii_lowercase().as_str(),
                "jpg" | "jpeg" | "png" | "webp"
            )
        })
        .collect();
    files.sort();
    let (mut measured, mut skipped) = (Vec::new(), Vec::new());
    for path in files {
        let file = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        let img = match engine.decode(&bytes) {
            Ok(img) => img,
            Err(e) => {
                skipped.push(format!("{file} ({e})"));
                continue;
            }
        };
        let faces = engine.faces_in_view(&img)?;
        if faces.len() != 1 {
            skipped.push(format!("{file} ({} faces in view)", faces.len()));
            continue;
        }
        let scores = engine.passive_scores(&img, &faces[0].0)?;
        let decision = scores.decide(cfg);
        measured.push(Measured {
            file,
            scores,
            decision,
        });
    }
    Ok((measured, skipped))
}

/// A cue: its name, how a photo's score is read, its threshold and whether
/// a score above (true) or below it crosses.
struct Cue {
    name: &'static str,
    score: fn(&PassiveScores) -> f32,
    threshold: f32,
    above: bool,
}

fn cues(cfg: &PassiveConfig) -> [Cue; 4] {
    [
        Cue {
            name: "network score",
            // A single photo's scores always include the network's.
            score: |s| s.net.unwrap_or(f32::NAN),
            threshold: cfg.max_net_score,
            above: true,
        },
        Cue {
            name: "high-frequency energy (moire)",
            score: |s| s.hf_energy,
            threshold: cfg.max_hf_energy,
            above: true,
        },
        Cue {
            name: "glare",
            score: |s| s.glare,
            threshold: cfg.max_glare,
            above: true,
        },
        Cue {
            name: "sharpness",
            score: |s| s.sharpness,
            threshold: cfg.min_sharpness,
            above: false,
        },
    ]
}

fn quantile(sorted: &[f32], q: f64) -> f32 {
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[i]
}

/// Prints the per-cue table and the policy's outcome for one set of photos
/// (`bona_fide`: genuine people, else attacks).
pub fn report(
    label: &str,
    bona_fide: bool,
    m: &[Measured],
    skipped: &[String],
    cfg: &PassiveConfig,
) {
    println!(
        "\n{label}: {} photos measured, {} skipped{}",
        m.len(),
        skipped.len(),
        if skipped.is_empty() {
            String::new()
        } else {
            format!(" ({})", skipped.join(", "))
        }
    );
    if m.is_empty() {
        return;
    }
    let word = if bona_fide { "refused" } else { "caught" };
    println!("\n| cue | threshold | min | p25 | median | p75 | max | past the threshold |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for cue in cues(cfg) {
        let mut v: Vec<f32> = m.iter().map(|x| (cue.score)(&x.scores)).collect();
        v.sort_by(f32::total_cmp);
        let crossed = v
            .iter()
            .filter(|&&s| {
                if cue.above {
                    s > cue.threshold
                } else {
                    s < cue.threshold
                }
            })
            .count();
        println!(
            "| {} | {}{} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {crossed} ({:.1} %) |",
            cue.name,
            if cue.above { "> " } else { "< " },
            cue.threshold,
            v[0],
            quantile(&v, 0.25),
            quantile(&v, 0.5),
            quantile(&v, 0.75),
            v[v.len() - 1],
            100.0 * crossed as f64 / v.len() as f64
        );
    }
    let count = |d: fn(&PassiveDecision) -> bool| m.iter().filter(|x| d(&x.decision)).count();
    let refused = count(|d| matches!(d, PassiveDecision::Refuse(_)));
    let step_up = count(|d| matches!(d, PassiveDecision::StepUp(_)));
    let pct = |n: usize| 100.0 * n as f64 / m.len() as f64;
    println!(
        "\ndefault policy: {refused} refused ({:.1} %), {step_up} asked for a second step ({:.1} %), {} let through; {word}: {}",
        pct(refused),
        pct(step_up),
        m.len() - refused - step_up,
        if bona_fide { format!("BPCER {:.1} %", pct(refused)) } else { format!("{} of {}", refused + step_up, m.len()) }
    );
}

/// Prints one line per photo.
pub fn show(m: &[Measured]) {
    for x in m {
        let s = &x.scores;
        println!(
            "  {:<50} net {:.3}  hf {:.3}  glare {:.3}  sharp {:7.1}  -> {}",
            x.file,
            s.net.unwrap_or(f32::NAN),
            s.hf_energy,
            s.glare,
            s.sharpness,
            x.decision.as_str()
        );
    }
}
