//! `facegate liveness eval --bona-fide-video DIR`: challenge answers cut
//! from a real video of a live person. The frames (in name order, taken
//! `fps` times a second, e.g. by `ffmpeg -vf fps=5`) are slid through in
//! windows of `len` frames, as they are and mirrored, and each window is
//! judged against every challenge. A window whose poses do not follow the
//! challenge is refused by the steps check, which says only that the video
//! does not answer that challenge there; every other refusal of a window
//! is a live person refused.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::{Context, Result};
use facegate_vision::{ActiveScores, Step};
use image::RgbImage;

/// What the windows of one video came to.
#[derive(Default)]
pub struct Outcome {
    pub windows: usize,
    /// Refusals by reason, `accepted` included.
    pub reasons: BTreeMap<String, usize>,
    /// Challenges that at least one window answered and was accepted for.
    pub answered: Vec<(Vec<Step>, bool)>,
    /// The largest pose jump between two frames of each accepted window.
    pub jumps: Vec<f32>,
    /// The colour cast shift of each accepted window.
    pub tints: Vec<f32>,
    /// The share of the surroundings changed, of each accepted window.
    pub around: Vec<f32>,
    /// The same for every window measured, by its first frame (as filmed).
    pub around_by_start: BTreeMap<usize, f32>,
    /// The first frame (from 0) of every window accepted for a challenge.
    pub accepted_from: BTreeSet<usize>,
    /// Every window that refused a live person.
    pub refused: Vec<Refusal>,
}

/// A window that refused a live person.
pub struct Refusal {
    pub steps: Vec<Step>,
    pub mirrored: bool,
    /// Its first frame (from 0).
    pub start: usize,
    /// The reason word of `liveness eval`.
    pub why: String,
    pub planar_residual: Option<f32>,
}

/// Reasons that say the window is not an answer to the challenge, rather
/// than a refusal of a live person.
const NOT_AN_ANSWER: [&str; 3] = ["spoof:steps", "no_face", "spoof:too_few_frames"];

/// Whether a window's reason word is a live person refused (not accepted,
/// not asked for a second step, and not a window that does not answer the
/// challenge).
pub fn refuses_a_live_person(why: &str) -> bool {
    why != "accepted" && !asks_again(why) && !NOT_AN_ANSWER.contains(&why)
}

/// Whether a window's reason word asks the person for a second step.
pub fn asks_again(why: &str) -> bool {
    why.starts_with("step_up:")
}

/// Reads the frames of `dir` in name order (JPEG or PNG).
pub fn frames(dir: &Path) -> Result<Vec<RgbImage>> {
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let ext = p.extension().and_then(|e| e.to_str()).unwrap_or_default();
            matches!(ext.to_ascii_lowercase().as_str(), "jpg" | "jpeg" | "png")
        })
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|p| {
            image::open(p)
                .map(|i| i.to_rgb8())
                .with_context(|| format!("reading {}", p.display()))
        })
        .collect()
}

/// Judges every window of `len` frames of `video` (and of its mirror
/// image) against every challenge with `judge`, which returns the reason
/// word of `liveness eval` ("accepted" or why it was refused) and the
/// window's largest pose jump between frames, when measured.
pub fn measure(
    video: &[RgbImage],
    fps: f64,
    len: usize,
    challenges: &[Vec<Step>],
    mut judge: impl FnMut(&[RgbImage], &[f64], &[Step]) -> Result<(String, ActiveScores)>,
) -> Result<Outcome> {
    let mirrored: Vec<RgbImage> = video.iter().map(image::imageops::flip_horizontal).collect();
    let times: Vec<f64> = (0..len).map(|i| i as f64 * 1000.0 / fps).collect();
    let mut out = Outcome::default();
    for steps in challenges {
        for (flipped, frames) in [(false, video), (true, &mirrored[..])] {
            let mut accepted = false;
            for (start, window) in frames.windows(len).enumerate() {
                let (why, scores) = judge(window, &times, steps)?;
                if refuses_a_live_person(&why) {
                    out.refused.push(Refusal {
                        steps: steps.clone(),
                        mirrored: flipped,
                        start,
                        why: why.clone(),
                        planar_residual: scores.planar_residual,
                    });
                }
                if let (false, Some(a)) = (flipped, scores.surround_change) {
                    out.around_by_start.insert(start, a);
                }
                if why == "accepted" {
                    accepted = true;
                    out.accepted_from.insert(start);
                    out.jumps.extend(scores.pose_jump_deg);
                    out.tints.extend(scores.tint_shift);
                    out.around.extend(scores.surround_change);
                }
                out.windows += 1;
                *out.reasons.entry(why).or_default() += 1;
            }
            if accepted {
                out.answered.push((steps.clone(), flipped));
            }
        }
    }
    Ok(out)
}

/// Prints the outcome.
pub fn report(dir: &Path, fps: f64, len: usize, o: &Outcome) {
    let count = |kind: fn(&str) -> bool| -> usize {
        o.reasons
            .iter()
            .filter(|(k, _)| kind(k))
            .map(|(_, v)| v)
            .sum()
    };
    let (refused_live, again) = (count(refuses_a_live_person), count(asks_again));
    let accepted = o.reasons.get("accepted").copied().unwrap_or(0);
    println!(
        "{}: windows of {len} frames at {fps} frames a second, as filmed and mirrored, \
         against every challenge; defaults of ChallengeConfig and PassiveConfig.",
        dir.display()
    );
    println!("  windows judged: {}", o.windows);
    for (why, n) in &o.reasons {
        println!("    {why}: {n}");
    }
    println!(
        "  answers whose poses follow the challenge: {}; accepted {accepted}, \
         asked for a second step {again}, refused {refused_live}",
        accepted + again + refused_live
    );
    println!(
        "  largest pose jump between frames of the accepted windows (degrees): \
         min / median / max {}",
        spread(o.jumps.clone())
    );
    println!(
        "  colour cast shift of the accepted windows: min / median / max {}",
        spread(o.tints.clone())
    );
    println!(
        "  surroundings changed, accepted windows: min / median / max {}; \
         every window: {}",
        spread(o.around.clone()),
        spread(o.around_by_start.values().copied().collect())
    );
    println!(
        "  challenges answered and accepted at least once: {}",
        o.answered.len()
    );
    for (steps, flipped) in &o.answered {
        println!("    {steps:?}{}", if *flipped { " (mirrored)" } else { "" });
    }
    let starts: Vec<String> = o.accepted_from.iter().map(usize::to_string).collect();
    println!(
        "  first frames (from 0) of the accepted windows: {}",
        if starts.is_empty() {
            "-".into()
        } else {
            starts.join(" ")
        }
    );
    if !o.refused.is_empty() {
        println!("  live person refused (challenge, first frame, reason, planar residual):");
    }
    const LISTED: usize = 20;
    for r in o.refused.iter().take(LISTED) {
        let residual = r.planar_residual.map_or("-".into(), |r| format!("{r:.3}"));
        let mirrored = if r.mirrored { " (mirrored)" } else { "" };
        println!(
            "    {:?}{mirrored} from frame {}: {}, residual {residual}",
            r.steps, r.start, r.why
        );
    }
    if o.refused.len() > LISTED {
        println!("    … and {} more", o.refused.len() - LISTED);
    }
}

/// "min / median / max" of `v` (one decimal), or "-".
pub fn spread(mut v: Vec<f32>) -> String {
    if v.is_empty() {
        return "-".into();
    }
    v.sort_by(f32::total_cmp);
    let digits = if v[v.len() - 1] <= 1.0 { 2 } else { 1 };
    format!(
        "{:.digits$} / {:.digits$} / {:.digits$}",
        v[0],
        v[v.len() / 2],
        v[v.len() - 1]
    )
}
