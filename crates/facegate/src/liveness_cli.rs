//! `facegate liveness eval` and `facegate liveness bench`: the liveness
//! checks measured on challenge answers built from the test photos
//! (see `facegate_vision::eval::scenarios`). `eval` prints, per attack family,
//! attacks tried and accepted (APCER) and genuine answers refused (BPCER);
//! `bench` times the server's work on a 15-frame answer on one core.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};

use crate::{liveness_photos, liveness_video};
use clap::{Args, Subcommand};
use facegate_vision::eval::scenarios::{all_challenges, build, Family, Library};
use facegate_vision::{
    ChallengeConfig, ChallengeSpec, EngineConfig, FaceEngine, PassiveConfig, SequenceReport, Step,
    Verdict,
};

#[derive(Args)]
pub struct LivenessArgs {
    #[command(subcommand)]
    pub command: LivenessCommand,
}

#[derive(Subcommand)]
pub enum LivenessCommand {
    /// APCER/BPCER per attack family over every 2- and 3-step challenge;
    /// with --bona-fide or --attack, the passive cues on those photos.
    Eval(EvalArgs),
    /// Server cost of judging a 15-frame challenge answer on one core.
    Bench(BenchArgs),
}

#[derive(Args, Clone)]
pub struct CommonArgs {
    /// The shared test photos.
    #[arg(long, default_value = "../shared/testdata/faces")]
    pub faces: PathBuf,
    /// Directory with the ONNX models.
    #[arg(long, default_value = "models")]
    pub models: PathBuf,
    /// Sequences per challenge and family (different jitter and photos).
    #[arg(long, default_value_t = 1)]
    pub seeds: u64,
    /// Print the scores of every refused genuine answer and accepted attack.
    #[arg(long)]
    pub show: bool,
}

#[derive(Args)]
pub struct EvalArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// A directory of photos of live people: prints each passive cue's
    /// scores on them and how many the default policy refuses (BPCER).
    /// May be repeated.
    #[arg(long, value_name = "DIR")]
    pub bona_fide: Vec<PathBuf>,
    /// A directory of photos of presentation attacks (prints, screens),
    /// measured the same way. May be repeated.
    #[arg(long, value_name = "DIR")]
    pub attack: Vec<PathBuf>,
    /// A directory of the frames of a real video of a live person, in
    /// name order: windows of it, as filmed and mirrored, judged against
    /// every challenge.
    #[arg(long, value_name = "DIR")]
    pub bona_fide_video: Option<PathBuf>,
    /// Frames a second of --bona-fide-video.
    #[arg(long, default_value_t = 5.0)]
    pub video_fps: f64,
    /// Frames in each window of --bona-fide-video.
    #[arg(long, default_value_t = 12)]
    pub video_window: usize,
}

#[derive(Args)]
pub struct BenchArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Measured runs (after one warm-up run).
    #[arg(long, default_value_t = 10)]
    pub runs: usize,
}

/// The engine as the server runs it on one core.
fn load_engine(common: &CommonArgs) -> Result<FaceEngine> {
    let config = EngineConfig {
        models_dir: common.models.clone(),
        intra_threads: 1,
        sessions: 1,
        ..EngineConfig::default()
    };
    FaceEngine::load(config).context("loading the face engine")
}

/// The engine and the test photos the answers are built from.
fn load(common: &CommonArgs) -> Result<(FaceEngine, Library)> {
    let engine = load_engine(common)?;
    let lib = Library::load(&engine, &common.faces).context("loading the test photos")?;
    Ok((engine, lib))
}

fn check(
    engine: &FaceEngine,
    frames: &[image::RgbImage],
    times: &[f64],
    steps: &[Step],
    identity_seed: u64,
) -> Result<SequenceReport> {
    let spec = ChallengeSpec {
        steps,
        life_ms: 15_000.0,
        elapsed_ms: times.last().copied().unwrap_or(0.0) + 500.0,
        identity_seed,
    };
    Ok(engine.check_sequence(
        frames,
        times,
        &spec,
        &ChallengeConfig::default(),
        Some(&PassiveConfig::default()),
    )?)
}

/// Why a sequence was refused, as one word.
fn reason(r: &SequenceReport) -> String {
    if r.needs_step_up() {
        return format!("step_up:{}", r.doubt().unwrap_or("?"));
    }
    match r.active.verdict {
        Verdict::Live => match r.passive_failure {
            Some(cue) => format!("passive:{cue}"),
            None => "accepted".into(),
        },
        Verdict::Spoof(c) => format!("spoof:{}", c.as_str()),
        Verdict::IdentityMismatch => "identity".into(),
        Verdict::Expired => "expired".into(),
        Verdict::NoFace => "no_face".into(),
        Verdict::MultipleFaces => "multiple_faces".into(),
    }
}

pub fn run(args: LivenessArgs) -> Result<()> {
    match args.command {
        LivenessCommand::Eval(e) if e.bona_fide_video.is_some() => video(&e),
        LivenessCommand::Eval(e) if !e.bona_fide.is_empty() || !e.attack.is_empty() => photos(&e),
        LivenessCommand::Eval(e) => eval(&e.common),
        LivenessCommand::Bench(b) => bench(&b),
    }
}

fn eval(common: &CommonArgs) -> Result<()> {
    let (engine, lib) = load(common)?;
    let challenges = all_challenges();
    println!(
        "{} challenges x {} seed(s) per family; defaults of ChallengeConfig and PassiveConfig.\n",
        challenges.len(),
        common.seeds
    );
    println!(
        "| Family | Presentations | Accepted | Asked for a second step | \
         Accepted on the second, four-step challenge | Rate | Refused by |"
    );
    println!("|---|---|---|---|---|---|---|");
    let mut spreads = Vec::new();
    for family in Family::ALL {
        let mut t = Tally::default();
        for (i, steps) in challenges.iter().enumerate() {
            for seed in 0..common.seeds {
                let seed = seed * 100 + i as u64;
                let (frames, times) = build(&lib, family, steps, 3, seed);
                let r = check(&engine, &frames, &times, steps, seed)?;
                let odd = r.is_live() != (family == Family::Genuine);
                if common.show && (odd || r.needs_step_up()) {
                    println!("{family:?} {steps:?}: {}", serde_json::to_string(&r)?);
                }
                let again = r.needs_step_up() && second_chance(&engine, &lib, family, steps, seed)?;
                t.add(&r, again);
            }
        }
        t.print_row(family);
        spreads.push((family.name(), t.spreads));
    }
    println!(
        "\n| Family | Largest pose jump between frames (degrees) | \
         Lowest identity similarity | Colour cast shift | Surroundings changed |\n|---|---|---|---|---|"
    );
    for (name, columns) in spreads {
        let columns: Vec<String> = columns.into_iter().map(liveness_video::spread).collect();
        println!("| {name} | {} |", columns.join(" | "));
    }
    println!("(min / median / max over the answers that got that far)");
    Ok(())
}

/// Whether an answer asked for a second step gets in on the second chance:
/// a four-step challenge (the first one's steps and one more) answered the
/// same way, judged as the server judges a second chance.
fn second_chance(
    engine: &FaceEngine,
    lib: &Library,
    family: Family,
    steps: &[Step],
    seed: u64,
) -> Result<bool> {
    let mut longer = steps.to_vec();
    let last = *steps.last().unwrap_or(&Step::Center);
    longer.push(if last == Step::Center {
        Step::Left
    } else {
        Step::Center
    });
    let seed = seed + 10_000;
    let (frames, times) = build(lib, family, &longer, 3, seed);
    let r = check(engine, &frames, &times, &longer, seed)?;
    Ok(r.is_live_on_second_chance())
}

/// One family's answers, counted.
#[derive(Default)]
struct Tally {
    tried: usize,
    accepted: usize,
    step_up: usize,
    second: usize,
    why: BTreeMap<String, usize>,
    /// Pose jumps, lowest identity similarities, colour cast shifts and
    /// shares of the surroundings changed.
    spreads: [Vec<f32>; 4],
}

impl Tally {
    fn add(&mut self, r: &SequenceReport, second_accepted: bool) {
        self.tried += 1;
        let s = &r.active.scores;
        for (v, x) in self.spreads.iter_mut().zip([
            s.pose_jump_deg,
            s.identity_min,
            s.tint_shift,
            s.surround_change,
        ]) {
            v.extend(x);
        }
        if r.is_live() {
            self.accepted += 1;
        } else {
            self.step_up += usize::from(r.needs_step_up());
            self.second += usize::from(second_accepted);
            *self.why.entry(reason(r)).or_default() += 1;
        }
    }

    /// A second step is not a refusal of a genuine answer; an attack that
    /// gets in on the second chance succeeded.
    fn print_row(&self, family: Family) {
        let (label, rate) = if family == Family::Genuine {
            ("BPCER", self.tried - self.accepted - self.step_up)
        } else {
            ("APCER", self.accepted + self.second)
        };
        let why: Vec<String> = self.why.iter().map(|(k, v)| format!("{k} {v}")).collect();
        println!(
            "| {} | {} | {} | {} | {} | {label} {:.1} % | {} |",
            family.name(),
            self.tried,
            self.accepted,
            self.step_up,
            self.second,
            100.0 * rate as f64 / self.tried as f64,
            if why.is_empty() {
                "-".into()
            } else {
                why.join(", ")
            }
        );
    }
}

/// Challenge answers cut from a real video (`--bona-fide-video`).
fn video(args: &EvalArgs) -> Result<()> {
    let dir = args.bona_fide_video.as_deref().expect("checked by run");
    anyhow::ensure!(
        args.video_fps > 0.0 && args.video_window >= 2,
        "--video-fps must be positive and --video-window at least 2"
    );
    let engine = load_engine(&args.common)?;
    let frames = liveness_video::frames(dir)?;
    let mut seed = 0;
    let outcome = liveness_video::measure(
        &frames,
        args.video_fps,
        args.video_window,
        &all_challenges(),
        |window, times, steps| {
            seed += 1;
            let r = check(&engine, window, times, steps, seed)?;
            let why = reason(&r);
            if args.common.show && liveness_video::refuses_a_live_person(&why) {
                println!("{steps:?}: {}", serde_json::to_string(&r)?);
            }
            Ok((why, r.active.scores.clone()))
        },
    )?;
    liveness_video::report(dir, args.video_fps, args.video_window, &outcome);
    Ok(())
}

/// The passive cues on real photos (`--bona-fide`, `--attack`).
fn photos(args: &EvalArgs) -> Result<()> {
    let config = EngineConfig {
        models_dir: args.common.models.clone(),
        ..EngineConfig::default()
    };
    let engine = FaceEngine::load(config).context("loading the face engine")?;
    let cfg = PassiveConfig::default();
    println!("Passive cues, one frame per photo; defaults of PassiveConfig.");
    let sets = args.bona_fide.iter().map(|d| (d, true));
    for (dir, bona_fide) in sets.chain(args.attack.iter().map(|d| (d, false))) {
        let (m, skipped) = liveness_photos::measure_dir(&engine, dir, &cfg)?;
        let kind = if bona_fide { "bona fide" } else { "attacks" };
        liveness_photos::report(
            &format!("{} ({kind})", dir.display()),
            bona_fide,
            &m,
            &skipped,
            &cfg,
        );
        if args.common.show {
            liveness_photos::show(&m);
        }
    }
    Ok(())
}

fn bench(args: &BenchArgs) -> Result<()> {
    let (engine, lib) = load(&args.common)?;
    let steps = [Step::Left, Step::Right, Step::Up];
    let (frames, times) = build(&lib, Family::Genuine, &steps, 4, 7);
    let jpegs: Vec<Vec<u8>> = frames
        .iter()
        .map(facegate_vision::eval::attacks::jpeg)
        .collect();
    println!(
        "{} frames of {}x{} px, challenge {:?}, one ONNX Runtime thread, one frame at a time",
        frames.len(),
        frames[0].width(),
        frames[0].height(),
        steps
    );
    let mut rows: Vec<[f64; 4]> = Vec::new();
    for run in 0..=args.runs {
        let t0 = Instant::now();
        let decoded: Vec<image::RgbImage> = jpegs
            .iter()
            .map(|b| engine.decode(b))
            .collect::<Result<_, _>>()?;
        let decode_ms = t0.elapsed().as_secs_f64() * 1000.0;
        let t1 = Instant::now();
        let r = check(&engine, &decoded, &times, &steps, run as u64)?;
        let total = t1.elapsed().as_secs_f64() * 1000.0;
        anyhow::ensure!(
            r.is_live(),
            "the bench sequence was refused: {}",
            serde_json::to_string(&r)?
        );
        if run > 0 {
            rows.push([decode_ms, r.observe_ms, r.passive_ms, decode_ms + total]);
        }
    }
    let median = |k: usize| {
        let mut v: Vec<f64> = rows.iter().map(|r| r[k]).collect();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    println!("median of {} runs:", rows.len());
    println!(
        "  JPEG decoding                          {:7.1} ms",
        median(0)
    );
    println!(
        "  detection, landmarks, identity, geometry {:5.1} ms",
        median(1)
    );
    println!(
        "  passive cues (network on {} frame(s))   {:7.1} ms",
        PassiveConfig::default().frames,
        median(2)
    );
    println!(
        "  total                                  {:7.1} ms",
        median(3)
    );
    Ok(())
}
