//! `facegate eval`: verification accuracy on labelled pairs — accuracy,
//! TAR and FMR at the configured threshold, the best threshold, TAR at
//! fixed FMRs and score histograms.

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;
use serde::Serialize;

use crate::engine_cli::EngineOpts;
use crate::progress::Steps;

#[derive(Args)]
pub struct EvalArgs {
    /// CSV with columns file_x,file_y,label (label Yes or No).
    #[arg(long)]
    pub pairs: PathBuf,
    /// Directory the file names are relative to.
    #[arg(long)]
    pub images: PathBuf,
    #[command(flatten)]
    pub engine: EngineOpts,
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize)]
pub struct Bin {
    pub from: f32,
    pub to: f32,
    pub count: usize,
}

#[derive(Serialize)]
pub struct Histograms {
    pub genuine: Vec<Bin>,
    pub impostor: Vec<Bin>,
}

#[derive(Serialize)]
pub struct EvalReport {
    pub pairs: usize,
    pub skipped: usize,
    pub threshold: f32,
    pub accuracy: f64,
    pub tar: f64,
    pub fmr: f64,
    pub best_threshold: f32,
    pub best_accuracy: f64,
    pub tar_at_fmr: HashMap<String, f64>,
    pub histograms: Histograms,
}

/// Fraction of `scores` at or above `t`.
fn accepted(scores: &[f32], t: f32) -> f64 {
    if scores.is_empty() {
        return 0.0;
    }
    scores.iter().filter(|&&s| s >= t).count() as f64 / scores.len() as f64
}

fn accuracy(genuine: &[f32], impostor: &[f32], t: f32) -> f64 {
    let right =
        genuine.iter().filter(|&&s| s >= t).count() + impostor.iter().filter(|&&s| s < t).count();
    right as f64 / (genuine.len() + impostor.len()).max(1) as f64
}

/// The threshold (a midpoint between neighbouring scores) with the best accuracy.
fn best_threshold(genuine: &[f32], impostor: &[f32]) -> (f32, f64) {
    let mut all: Vec<f32> = genuine.iter().chain(impostor).copied().collect();
    all.sort_by(f32::total_cmp);
    let mut candidates = vec![all.first().map_or(0.0, |s| s - 1e-3)];
    candidates.extend(all.windows(2).map(|w| (w[0] + w[1]) / 2.0));
    candidates.push(all.last().map_or(1.0, |s| s + 1e-3));
    candidates
        .into_iter()
        .map(|t| (t, accuracy(genuine, impostor, t)))
        .fold((0.0, -1.0), |best, c| if c.1 > best.1 { c } else { best })
}

/// TAR at the lowest threshold whose FMR does not exceed `max_fmr`.
fn tar_at_fmr(genuine: &[f32], impostor: &[f32], max_fmr: f64) -> f64 {
    let mut imp = impostor.to_vec();
    imp.sort_by(|a, b| b.total_cmp(a));
    // Number of impostors we may accept.
    let allowed = (max_fmr * imp.len() as f64).floor() as usize;
    let t = match imp.get(allowed) {
        Some(&s) => s + f32::EPSILON.max(s.abs() * 1e-6),
        None => f32::NEG_INFINITY,
    };
    accepted(genuine, t)
}

fn histogram(scores: &[f32]) -> Vec<Bin> {
    const BINS: usize = 20;
    let mut counts = [0usize; BINS];
    for s in scores {
        let i = (((s + 1.0) / 2.0) * BINS as f32)
            .floor()
            .clamp(0.0, (BINS - 1) as f32) as usize;
        counts[i] += 1;
    }
    counts
        .iter()
        .enumerate()
        .map(|(i, &count)| Bin {
            from: -1.0 + 2.0 * i as f32 / BINS as f32,
            to: -1.0 + 2.0 * (i + 1) as f32 / BINS as f32,
            count,
        })
        .collect()
}

pub fn run(args: EvalArgs) -> Result<()> {
    let engine = args.engine.load(1)?;
    let mut reader = csv::Reader::from_path(&args.pairs)
        .with_context(|| format!("reading {}", args.pairs.display()))?;
    let mut rows = Vec::new();
    for rec in reader.records() {
        let rec = rec?;
        let (x, y, label) = (
            rec.get(0).unwrap_or(""),
            rec.get(1).unwrap_or(""),
            rec.get(2).unwrap_or(""),
        );
        let same = match label.trim() {
            "Yes" | "yes" | "1" | "true" => true,
            "No" | "no" | "0" | "false" => false,
            other => bail!("bad label {other:?} for pair {x},{y}: use Yes or No"),
        };
        rows.push((x.to_string(), y.to_string(), same));
    }
    let mut files: Vec<&String> = rows.iter().flat_map(|(x, y, _)| [x, y]).collect();
    files.sort();
    files.dedup();
    let steps = Steps::new("Embedding", files.len() as u64);
    let mut templates = HashMap::new();
    for (i, f) in files.iter().enumerate() {
        let t = crate::engine_cli::single_face(&engine, &args.images.join(f))
            .ok()
            .map(|a| a.embedding);
        templates.insert((*f).clone(), t);
        steps.inc(i as u64 + 1);
    }
    steps.finish();
    let (mut genuine, mut impostor, mut skipped) = (Vec::new(), Vec::new(), 0);
    for (x, y, same) in &rows {
        match (&templates[x], &templates[y]) {
            (Some(a), Some(b)) => {
                let s = engine
                    .compare(a, b)
                    .context("templates of different models")?;
                if *same {
                    genuine.push(s)
                } else {
                    impostor.push(s)
                }
            }
            _ => skipped += 1,
        }
    }
    let t = engine.threshold();
    let (best_threshold, best_accuracy) = best_threshold(&genuine, &impostor);
    let report = EvalReport {
        pairs: rows.len(),
        skipped,
        threshold: t,
        accuracy: accuracy(&genuine, &impostor, t),
        tar: accepted(&genuine, t),
        fmr: accepted(&impostor, t),
        best_threshold,
        best_accuracy,
        tar_at_fmr: [("1e-2", 1e-2), ("1e-3", 1e-3)]
            .into_iter()
            .map(|(k, f)| (k.to_string(), tar_at_fmr(&genuine, &impostor, f)))
            .collect(),
        histograms: Histograms {
            genuine: histogram(&genuine),
            impostor: histogram(&impostor),
        },
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    println!("pairs           {}", report.pairs);
    println!("skipped         {}", report.skipped);
    println!("threshold       {:.4}", report.threshold);
    println!("accuracy        {:.4}", report.accuracy);
    println!("tar             {:.4}", report.tar);
    println!("fmr             {:.4}", report.fmr);
    println!("best_threshold  {:.4}", report.best_threshold);
    println!("best_accuracy   {:.4}", report.best_accuracy);
    println!("tar@fmr=1e-2    {:.4}", report.tar_at_fmr["1e-2"]);
    println!("tar@fmr=1e-3    {:.4}", report.tar_at_fmr["1e-3"]);
    for (name, bins) in [
        ("genuine", &report.histograms.genuine),
        ("impostor", &report.histograms.impostor),
    ] {
        println!("{name} scores:");
        for b in bins.iter().filter(|b| b.count > 0) {
            println!(
                "  [{:+.1}, {:+.1}) {}",
                b.from,
                b.to,
                "#".repeat(b.count.min(60))
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_on_a_separable_set() {
        let g = [0.7, 0.8, 0.9];
        let i = [0.1, 0.2, 0.65];
        assert_eq!(accepted(&g, 0.75), 2.0 / 3.0);
        let (t, acc) = best_threshold(&g, &i);
        assert!(t > 0.65 && t < 0.7 && acc == 1.0);
        assert_eq!(tar_at_fmr(&g, &i, 1e-3), 1.0);
    }
}
