//! `facegate bench-index`: the 1:N search at several gallery sizes, the
//! sketch index beside today's exhaustive search in one run: build time,
//! memory per template, query latency p50/p99 on one thread, and how
//! often the index gives the same best user (recall@1) and the same
//! decision (threshold, margin, lockout band) as exact search.
//!
//! The gallery is synthetic (one random unit template per user, as the
//! seed_users example stores), with the embeddings of real photos
//! (`--photos`) enrolled among them. Probes: the real photos, fresh
//! captures of enrolled users (their template moved to a similarity of
//! 0.45–0.85, so they land on both sides of the threshold) and strangers
//! (random, enrolled nowhere).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;
use facegate_app::domain::MatchTemplate;
use facegate_app::service::{decide, rank, Decision, SketchIndex};
use facegate_app::{Config, GalleryConfig};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use crate::engine_cli::EngineOpts;

#[derive(Args)]
pub struct BenchIndexArgs {
    /// Gallery sizes (templates), comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1000,100000,1000000")]
    pub faces: Vec<usize>,
    /// Probes timed per size.
    #[arg(long, default_value_t = 2000)]
    pub probes: usize,
    /// Probes timed through today's exhaustive ranking (slow at 1M).
    #[arg(long, default_value_t = 50)]
    pub exhaustive_probes: usize,
    /// Photos whose faces are enrolled among the synthetic templates.
    #[arg(long, num_args = 1..)]
    pub photos: Vec<PathBuf>,
    #[command(flatten)]
    pub engine: EngineOpts,
    /// Templates re-scored per probe [default: the server's].
    #[arg(long)]
    pub candidates: Option<usize>,
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Idle milliseconds before each timed probe, as a server's face
    /// pipeline leaves between two searches (its other cores asleep).
    #[arg(long, default_value_t = 0)]
    pub pause_ms: u64,
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize, Clone, Copy)]
pub struct Percentiles {
    pub p50_ms: f64,
    pub p99_ms: f64,
}

fn percentiles(mut ms: Vec<f64>) -> Percentiles {
    if ms.is_empty() {
        return Percentiles {
            p50_ms: 0.0,
            p99_ms: 0.0,
        };
    }
    ms.sort_by(f64::total_cmp);
    let pick = |q: f64| ms[((ms.len() - 1) as f64 * q).round() as usize];
    Percentiles {
        p50_ms: pick(0.5),
        p99_ms: pick(0.99),
    }
}

#[derive(Serialize)]
pub struct SizeReport {
    pub templates: usize,
    pub build_seconds: f64,
    pub index_bytes_per_template: f64,
    pub rss_growth_bytes_per_template: f64,
    pub ann: Percentiles,
    pub exhaustive: Percentiles,
    pub probes: usize,
    pub recall_at_1: f64,
    /// Recall@1 over the probes whose exact best reaches the lockout band.
    pub recall_near: f64,
    pub near_probes: usize,
    pub same_decision: f64,
    pub accepted_by_exact: usize,
}

fn rss_bytes() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .map_or(0.0, |kb| kb * 1024.0)
}

fn unit(mut v: Vec<f32>) -> Vec<f32> {
    facegate_vision::l2_normalise(&mut v);
    v
}

fn random_unit(dim: usize, rng: &mut StdRng) -> Vec<f32> {
    unit(
        (0..dim)
            .map(|_| (0..6).map(|_| rng.gen::<f32>() - 0.5).sum())
            .collect(),
    )
}

/// `v` moved at random to a similarity of about `cos`.
fn near(v: &[f32], cos: f32, rng: &mut StdRng) -> Vec<f32> {
    let noise = random_unit(v.len(), rng);
    let s = (1.0 / (cos * cos) - 1.0).sqrt();
    unit(v.iter().zip(&noise).map(|(a, n)| a + s * n).collect())
}

/// Embeddings of the faces in `photos` (one face each; others skipped).
fn real_faces(args: &BenchIndexArgs) -> Result<Vec<Vec<f32>>> {
    if args.photos.is_empty() {
        return Ok(Vec::new());
    }
    let engine = args.engine.load(1)?;
    let mut out = Vec::new();
    for p in &args.photos {
        let bytes = std::fs::read(p).with_context(|| format!("reading {}", p.display()))?;
        if let Ok(single) = engine.analyze_single(&bytes, false) {
            out.push(single.analysis.embedding.vector);
        }
    }
    eprintln!("{} of {} photos embedded", out.len(), args.photos.len());
    Ok(out)
}

pub fn run(args: BenchIndexArgs) -> Result<()> {
    let real = real_faces(&args)?;
    let dim = real.first().map_or(192, |v| v.len());
    let config = Config::default();
    let manifest = facegate_vision::locate_models_dir(&args.engine.models).join("embedding.toml");
    let manifest = facegate_vision::EmbeddingManifest::read(&manifest)?;
    let dim = if real.is_empty() {
        manifest.output_dim
    } else {
        dim
    };
    let threshold = args.engine.threshold.unwrap_or(manifest.default_threshold);
    let mut reports = Vec::new();
    for &n in &args.faces {
        let report = one_size(&args, &real, dim, n, threshold, &config)?;
        if !args.json {
            print_report(&report);
        }
        reports.push(report);
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&reports)?);
    }
    Ok(())
}

fn gallery_of(real: &[Vec<f32>], dim: usize, n: usize, rng: &mut StdRng) -> Vec<MatchTemplate> {
    let mut gallery = Vec::with_capacity(n);
    for (i, v) in real.iter().enumerate().take(n) {
        gallery.push(MatchTemplate {
            user_id: i as i64 + 1,
            embedding: v.clone(),
        });
    }
    while gallery.len() < n {
        gallery.push(MatchTemplate {
            user_id: gallery.len() as i64 + 1,
            embedding: random_unit(dim, rng),
        });
    }
    gallery
}

fn probes_for(
    gallery: &[MatchTemplate],
    real: &[Vec<f32>],
    count: usize,
    rng: &mut StdRng,
) -> Vec<Vec<f32>> {
    let dim = gallery[0].embedding.len();
    let mut probes: Vec<Vec<f32>> = real.iter().map(|v| near(v, 0.8, rng)).collect();
    while probes.len() < count {
        if rng.gen_bool(0.6) {
            let t = &gallery[rng.gen_range(0..gallery.len())];
            probes.push(near(&t.embedding, rng.gen_range(0.45..0.85), rng));
        } else {
            probes.push(random_unit(dim, rng));
        }
    }
    probes
}

fn one_size(
    args: &BenchIndexArgs,
    real: &[Vec<f32>],
    dim: usize,
    n: usize,
    threshold: f32,
    config: &Config,
) -> Result<SizeReport> {
    let mut rng = StdRng::seed_from_u64(args.seed ^ n as u64);
    eprintln!("{n} templates: generating");
    let gallery = gallery_of(real, dim, n, &mut rng);
    let probes = probes_for(&gallery, real, args.probes, &mut rng);
    let rss_before = rss_bytes();
    let started = Instant::now();
    let candidates = args
        .candidates
        .unwrap_or(GalleryConfig::default().candidates);
    let tenth = (n / 10).max(1);
    let shown = std::sync::atomic::AtomicUsize::new(0);
    let progress = |done: usize| {
        let step = done / tenth;
        if shown.fetch_max(step, std::sync::atomic::Ordering::Relaxed) < step {
            eprintln!("{n} templates: indexed {done}");
        }
    };
    let index = SketchIndex::build(&gallery, dim, candidates, &progress);
    let build_seconds = started.elapsed().as_secs_f64();
    let rss_growth = (rss_bytes() - rss_before).max(0.0);
    eprintln!(
        "{n} templates: indexed in {build_seconds:.1} s; timing {} probes",
        probes.len()
    );
    let mut ann_ms = Vec::with_capacity(probes.len());
    let mut ann_ranked = Vec::with_capacity(probes.len());
    let pause = std::time::Duration::from_millis(args.pause_ms);
    for p in &probes {
        if !pause.is_zero() {
            std::thread::sleep(pause);
        }
        let t = Instant::now();
        let r = index.rank(p);
        ann_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        ann_ranked.push(r);
    }
    let mut exhaustive_ms = Vec::new();
    for p in probes.iter().take(args.exhaustive_probes) {
        let t = Instant::now();
        std::hint::black_box(rank(&gallery, p));
        exhaustive_ms.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    eprintln!("{n} templates: exact answers for {} probes", probes.len());
    let exact = exact_answers(&gallery, &probes);
    let (margin, band) = (config.match_margin, config.lockout_score_band);
    let (mut same_best, mut same_decision, mut accepted) = (0, 0, 0);
    let (mut near, mut near_found) = (0, 0);
    for (a, e) in ann_ranked.iter().zip(&exact) {
        // Probes whose best user counts for the decision (accepted, or
        // charged a failure in the lockout band).
        if e.first().is_some_and(|x| x.1 >= threshold - band) {
            near += 1;
            near_found += usize::from(a.first() == e.first());
        }
        let same = a.first().map(|x| x.0) == e.first().map(|x| x.0);
        same_best += usize::from(same);
        let de = decide(e, threshold, margin, band);
        accepted += usize::from(matches!(de, Decision::Match { .. }));
        same_decision += usize::from(outcome(&decide(a, threshold, margin, band)) == outcome(&de));
    }
    let count = probes.len() as f64;
    Ok(SizeReport {
        templates: n,
        build_seconds,
        index_bytes_per_template: index.memory_bytes() as f64 / n as f64,
        rss_growth_bytes_per_template: rss_growth / n as f64,
        ann: percentiles(ann_ms),
        exhaustive: percentiles(exhaustive_ms),
        probes: probes.len(),
        recall_at_1: same_best as f64 / count,
        recall_near: near_found as f64 / near.max(1) as f64,
        near_probes: near,
        same_decision: same_decision as f64 / count,
        accepted_by_exact: accepted,
    })
}

/// What a decision does: whom it logs in, refuses as ambiguous, or
/// charges a failure (the best score it logs is left out).
fn outcome(d: &Decision) -> (u8, Option<i64>) {
    match d {
        Decision::Match { user_id, .. } => (0, Some(*user_id)),
        Decision::Ambiguous { user_id, .. } => (1, Some(*user_id)),
        Decision::NoMatch { closest, .. } => (2, closest.map(|c| c.0)),
    }
}

/// Exact answers for every probe, on all cores (not timed).
fn exact_answers(gallery: &[MatchTemplate], probes: &[Vec<f32>]) -> Vec<Vec<(i64, f32)>> {
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = probes.len().div_ceil(workers).max(1);
    std::thread::scope(|s| {
        let handles: Vec<_> = probes
            .chunks(chunk)
            .map(|part| s.spawn(move || part.iter().map(|p| rank(gallery, p)).collect::<Vec<_>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("exact search worker"))
            .collect()
    })
}

fn print_report(r: &SizeReport) {
    println!(
        "{:>9} templates | build {:>6.1} s | index {:>5.0} B/template (RSS +{:>5.0}) | index p50 {:>6.3} ms p99 {:>6.3} ms | exhaustive p50 {:>8.2} ms p99 {:>8.2} ms | recall@1 {:.4}, {:.4} of {} in the band | same decision {:.4} ({} probes, {} accepted)",
        r.templates,
        r.build_seconds,
        r.index_bytes_per_template,
        r.rss_growth_bytes_per_template,
        r.ann.p50_ms,
        r.ann.p99_ms,
        r.exhaustive.p50_ms,
        r.exhaustive.p99_ms,
        r.recall_at_1,
        r.recall_near,
        r.near_probes,
        r.same_decision,
        r.probes,
        r.accepted_by_exact,
    );
}
