//! `hawkeye bench --capacity`: how many real-time cameras one box holds.
//!
//! Each trial runs the real daemon (`hawkeye run`, a child process) with N file cameras that
//! play a clip at its own rate, loop it, and detect at `detect_fps`, with the demo's loitering
//! zone on each, publishing to a local mosquitto. After a warm-up it reads the daemon's
//! `/metrics` twice, `--seconds` apart, and `/proc` for its CPU time and memory, while a
//! subscriber times every alert message from its frame's capture time to its arrival. A trial
//! passes when every camera's frames were served (inferred, or passed on by the motion gate) at
//! ≥ 95 % of `detect_fps` and no camera task fell behind. N doubles until a trial fails, then
//! a bisection finds the largest passing N.
//!
//! With `--python`, the baseline (`scripts/bench_python.py capacity`: N threads, each an
//! OpenCV capture of the same clip at its own rate, one onnxruntime session) is searched the
//! same way on the same clips in the same command, so the ratio is measured side by side.

pub mod clips;
mod trial;

use std::path::PathBuf;

use anyhow::Context;
use clap::ValueEnum;

pub use trial::{parse_metrics, Trial, TrialSpec};

/// Which streams each camera has.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Streams {
    /// 1920×1080 main stream only, decoded and detected.
    Main,
    /// 640×360 sub-stream only.
    Sub,
    /// Detection on the sub-stream, the main stream parsed into the clip ring (`detect_url`).
    Dual,
}

/// Settings of a capacity search.
#[derive(Clone, Debug)]
pub struct CapacityArgs {
    pub model: PathBuf,
    pub input: PathBuf,
    pub streams: Streams,
    pub quiet: bool,
    pub motion_gate: bool,
    pub detect_fps: f64,
    pub seconds: f64,
    pub start: usize,
    pub max: usize,
    pub python: bool,
    pub python_bin: Option<PathBuf>,
    pub threads: usize,
    pub workers: usize,
    pub cache: PathBuf,
}

/// The outcome of one search.
#[derive(Clone, Debug)]
pub struct SearchResult {
    /// Largest passing N (0: even the first trial failed) and its trial.
    pub best: Option<Trial>,
    /// Every trial in the order run.
    pub trials: Vec<Trial>,
}

/// Runs the search for hawkeye (and the baseline with `--python`) and prints the table.
pub fn run(args: &CapacityArgs) -> anyhow::Result<()> {
    crate::source::init_gstreamer()?;
    let base = if args.quiet { clips::quiet(&args.input, &args.cache)? } else { args.input.clone() };
    // only the streams this search plays are made; absolute, as the trials' configs live in
    // temporary directories
    let make = |size, needed: bool| -> anyhow::Result<PathBuf> {
        Ok(if needed { std::fs::canonicalize(clips::encoded(&base, size, &args.cache)?)? } else { PathBuf::new() })
    };
    let main = make(clips::MAIN, args.streams != Streams::Sub)?;
    let sub = make(clips::SUB, args.streams != Streams::Main)?;
    let spec = TrialSpec {
        exe: std::env::current_exe().context("own executable")?,
        model: std::fs::canonicalize(&args.model).with_context(|| format!("model {}", args.model.display()))?,
        main,
        sub,
        streams: args.streams,
        motion_gate: args.motion_gate,
        detect_fps: args.detect_fps,
        seconds: args.seconds,
        threads: args.threads,
        workers: args.workers,
    };
    let scene = if args.quiet { "quiet scene" } else { "busy scene" };
    println!(
        "capacity: {} streams, {scene} from {}, model {}, {} detections/s per camera, motion gate {}, {} detector worker(s) × {} threads, {} s per trial",
        format!("{:?}", args.streams).to_lowercase(),
        args.input.display(),
        args.model.display(),
        args.detect_fps,
        if args.motion_gate { "on" } else { "off" },
        args.workers,
        args.threads,
        args.seconds
    );
    let broker = crate::tools::demo::Mosquitto::start()?;
    let ours = search(args, |n| trial::run_hawkeye(&spec, n, &broker.url()))?;
    print_table("hawkeye", &ours);
    let theirs = if args.python {
        let py = python_bin(args.python_bin.as_deref())?;
        let clip = if args.streams == Streams::Main { &spec.main } else { &spec.sub };
        let r = search(args, |n| trial::run_python(&spec, &py, clip, n))?;
        print_table("Python OpenCV + onnxruntime loop", &r);
        Some(r)
    } else {
        None
    };
    print_summary(&ours, theirs.as_ref());
    Ok(())
}

/// Doubling from `start`, then bisection between the last pass and the first failure.
fn search(args: &CapacityArgs, mut trial: impl FnMut(usize) -> anyhow::Result<Trial>) -> anyhow::Result<SearchResult> {
    let mut trials = Vec::new();
    let mut best: Option<Trial> = None;
    let mut n = args.start.max(1);
    let mut fail_at = None;
    while n <= args.max {
        let t = trial(n)?;
        let pass = t.passed();
        trials.push(t.clone());
        if pass {
            best = Some(t);
            if n == args.max {
                break;
            }
            // the last step tries `max` itself rather than stopping short of it
            n = (n * 2).min(args.max);
        } else {
            fail_at = Some(n);
            break;
        }
    }
    if let Some(mut hi) = fail_at {
        let mut lo = best.as_ref().map_or(0, |t| t.cameras);
        while hi - lo > 1 {
            let mid = (lo + hi) / 2;
            let t = trial(mid)?;
            let pass = t.passed();
            trials.push(t.clone());
            if pass {
                lo = mid;
                best = Some(t);
            } else {
                hi = mid;
            }
        }
    }
    Ok(SearchResult { best, trials })
}

fn print_table(who: &str, r: &SearchResult) {
    println!("\n{who}");
    println!("  {:>7} {:>6} {:>8} {:>8} {:>9} {:>7} {:>8} {:>8} {:>9} {:>9}  ", "cameras", "pass", "min fps", "mean fps", "infer/s", "cpu %", "cpu/cam", "RSS MB", "RSS/cam", "alert p95");
    for t in &r.trials {
        println!("  {}", t.row());
    }
    match &r.best {
        Some(t) => println!("  → {who} holds {} cameras", t.cameras),
        None => println!("  → {who} holds none at this setting"),
    }
}

fn print_summary(ours: &SearchResult, theirs: Option<&SearchResult>) {
    let n = ours.best.as_ref().map_or(0, |t| t.cameras);
    match theirs {
        Some(t) => {
            let m = t.best.as_ref().map_or(0, |t| t.cameras);
            println!("\ncapacity: hawkeye {n} cameras, Python loop {m} cameras: {:.2}× (same clips, same model, same command)", n as f64 / m.max(1) as f64);
        }
        None => println!("\ncapacity: hawkeye {n} cameras"),
    }
}

/// The interpreter with onnxruntime and OpenCV: `--python`, else the setup script's venv
/// (`.deps/pyvenv`) beside the executable or above it, else `python3`.
pub fn python_bin(given: Option<&std::path::Path>) -> anyhow::Result<PathBuf> {
    if let Some(p) = given {
        return Ok(p.to_path_buf());
    }
    let exe = std::env::current_exe()?;
    Ok(exe.ancestors().map(|a| a.join(".deps/pyvenv/bin/python")).find(|p| p.is_file()).unwrap_or_else(|| PathBuf::from("python3")))
}

/// The baseline script: `scripts/bench_python.py` under the working directory or above the
/// executable.
pub fn python_script() -> anyhow::Result<PathBuf> {
    let rel = "scripts/bench_python.py";
    let cwd = std::env::current_dir()?.join(rel);
    if cwd.is_file() {
        return Ok(cwd);
    }
    let exe = std::env::current_exe()?;
    exe.ancestors().map(|a| a.join(rel)).find(|p| p.is_file()).with_context(|| format!("{rel} not found (run from the repository)"))
}
