//! `facegate bench`: per-stage and end-to-end latency (p50/p95) on frames
//! scaled to 640 px, throughput with several frames in flight, peak RSS.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;
use serde::Serialize;

use crate::engine_cli::EngineOpts;
use crate::progress::Steps;

#[derive(Args)]
pub struct BenchArgs {
    /// Images to use as frames (each scaled to 640 px on its longer side).
    #[arg(required = true)]
    pub images: Vec<PathBuf>,
    #[command(flatten)]
    pub engine: EngineOpts,
    /// Frames processed at the same time.
    #[arg(long, default_value_t = 1)]
    pub concurrency: usize,
    /// Measured runs per frame (after one warm-up run).
    #[arg(long, default_value_t = 30)]
    pub runs: usize,
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize, Clone, Copy)]
pub struct Latency {
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub mean_ms: f64,
}

fn latency(mut ms: Vec<f64>) -> Latency {
    if ms.is_empty() {
        return Latency {
            p50_ms: 0.0,
            p95_ms: 0.0,
            mean_ms: 0.0,
        };
    }
    ms.sort_by(f64::total_cmp);
    let pick = |q: f64| ms[((ms.len() - 1) as f64 * q).round() as usize];
    Latency {
        p50_ms: pick(0.5),
        p95_ms: pick(0.95),
        mean_ms: ms.iter().sum::<f64>() / ms.len() as f64,
    }
}

#[derive(Serialize)]
pub struct BenchReport {
    pub frames: usize,
    pub runs: usize,
    pub threads: usize,
    pub concurrency: usize,
    pub min_face: f32,
    /// How the detector's networks run: "fixed-point (AVX-512 VNNI)",
    /// "fixed-point (AVX2)" or "ONNX Runtime".
    pub detector: &'static str,
    /// How the embedding model runs, as for the detector.
    pub embedder: &'static str,
    pub decode: Latency,
    pub detect: Latency,
    pub align: Latency,
    pub embed: Latency,
    pub anti_spoof: Latency,
    pub end_to_end: Latency,
    pub throughput_fps: f64,
    pub engine_rss_mb: f64,
    pub peak_rss_mb: f64,
}

/// Resident memory figures from /proc (current, peak), in MiB.
fn rss_mb() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// A frame as a client would send it: scaled to 640 px and JPEG-encoded.
fn frame(path: &PathBuf) -> Result<Vec<u8>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let img = facegate_vision::decode::decode(&bytes, &Default::default())?;
    let img = facegate_vision::decode::fit_within(&img, 640);
    let mut out = std::io::Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(img).write_to(&mut out, image::ImageFormat::Jpeg)?;
    Ok(out.into_inner())
}

#[derive(Default)]
struct Samples {
    decode: Vec<f64>,
    detect: Vec<f64>,
    align: Vec<f64>,
    embed: Vec<f64>,
    anti_spoof: Vec<f64>,
    end_to_end: Vec<f64>,
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}

pub fn run(args: BenchArgs) -> Result<()> {
    let engine = args.engine.load(args.concurrency.max(1))?;
    let engine_rss = rss_mb().0;
    let frames = args.images.iter().map(frame).collect::<Result<Vec<_>>>()?;
    // Warm up every frame once (first runs allocate arenas).
    for f in &frames {
        let img = engine.decode(f)?;
        if let Some(face) = engine.detect(&img)?.first() {
            engine.embed(&img, face)?;
            engine.spoof_score(&img, face)?;
        }
    }
    let total = frames.len() * args.runs;
    let steps = Steps::new("Benchmark", total as u64);
    let samples = Mutex::new(Samples::default());
    let next = std::sync::atomic::AtomicUsize::new(0);
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..args.concurrency.max(1) {
            scope.spawn(|| -> Result<()> {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if i >= total {
                        return Ok(());
                    }
                    let bytes = &frames[i % frames.len()];
                    let t0 = Instant::now();
                    let img = engine.decode(bytes)?;
                    let decode = ms(t0);
                    let t = Instant::now();
                    let faces = engine.detect(&img)?;
                    let detect = ms(t);
                    let (mut align, mut embed) = (0.0, 0.0);
                    let face = faces.first().copied();
                    if let Some(face) = &face {
                        let t = Instant::now();
                        let aligned = engine.align(&img, face);
                        align = ms(t);
                        let t = Instant::now();
                        engine.embed_aligned(&aligned)?;
                        embed = ms(t);
                    }
                    let end_to_end = ms(t0);
                    let anti_spoof = match &face {
                        Some(face) => {
                            let t = Instant::now();
                            engine.spoof_score(&img, face)?;
                            Some(ms(t))
                        }
                        None => None,
                    };
                    let mut s = samples.lock().expect("samples lock");
                    s.decode.push(decode);
                    s.detect.push(detect);
                    if face.is_some() {
                        s.align.push(align);
                        s.embed.push(embed);
                    }
                    s.anti_spoof.extend(anti_spoof);
                    s.end_to_end.push(end_to_end);
                    drop(s);
                    steps.inc(i as u64 + 1);
                }
            });
        }
    });
    let wall = started.elapsed().as_secs_f64();
    steps.finish();
    let s = samples.into_inner().expect("samples lock");
    // Throughput counts the end-to-end work only; anti-spoofing ran too, so
    // it is the wall time minus the anti-spoof time spread over the workers.
    let spoof_total: f64 =
        s.anti_spoof.iter().sum::<f64>() / 1000.0 / args.concurrency.max(1) as f64;
    let report = BenchReport {
        frames: frames.len(),
        runs: args.runs,
        threads: args.engine.threads,
        concurrency: args.concurrency.max(1),
        min_face: args.engine.min_face,
        detector: engine.detector_backend(),
        embedder: engine.embedder_backend(),
        decode: latency(s.decode),
        detect: latency(s.detect),
        align: latency(s.align),
        embed: latency(s.embed),
        anti_spoof: latency(s.anti_spoof),
        end_to_end: latency(s.end_to_end),
        throughput_fps: total as f64 / (wall - spoof_total).max(1e-9),
        engine_rss_mb: engine_rss,
        peak_rss_mb: rss_mb().1,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    println!(
        "{} frame(s) x {} runs, {} thread(s), concurrency {}, min face {} px, detector {}, embedder {}",
        report.frames,
        report.runs,
        report.threads,
        report.concurrency,
        report.min_face,
        report.detector,
        report.embedder
    );
    println!(
        "{:<12} {:>9} {:>9} {:>9}",
        "stage", "p50 ms", "p95 ms", "mean ms"
    );
    for (name, l) in [
        ("decode", report.decode),
        ("detect", report.detect),
        ("align", report.align),
        ("embed", report.embed),
        ("anti-spoof", report.anti_spoof),
        ("end-to-end", report.end_to_end),
    ] {
        println!(
            "{name:<12} {:>9.2} {:>9.2} {:>9.2}",
            l.p50_ms, l.p95_ms, l.mean_ms
        );
    }
    println!(
        "throughput   {:.1} frames/s (end-to-end work)",
        report.throughput_fps
    );
    println!(
        "engine RSS   {:.1} MiB after loading; peak {:.1} MiB",
        report.engine_rss_mb, report.peak_rss_mb
    );
    Ok(())
}
