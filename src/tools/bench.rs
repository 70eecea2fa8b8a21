//! `hawkeye bench`: throughput measured in one run on one clip, printed as figures and ratios:
//! decode-only fps (GStreamer decode → scale → RGB, lossless, no inference), inference-only fps
//! (the same frame through the detector again and again), and full-pipeline fps (every decoded
//! frame through the shared detector), with pipeline / min(decode, inference).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;
use tokio_util::sync::CancellationToken;

use crate::config::Camera;
use crate::tools::capacity::{CapacityArgs, Streams};
use crate::detect::{Detector, DetectorOptions};
use crate::frame::Frame;
use crate::frame_slots::FrameSlots;
use crate::source::{self, CameraHealth, SourceCtx};

#[derive(Args, Debug, Clone)]
pub struct BenchArgs {
    #[arg(long)]
    pub model: PathBuf,
    /// Model manifest (default: beside the model or built in).
    #[arg(long)]
    pub manifest: Option<PathBuf>,
    /// Video file to decode.
    #[arg(long)]
    pub input: PathBuf,
    /// Frames per measurement (the clip is looped when shorter).
    #[arg(long, default_value_t = 300)]
    pub frames: u64,
    /// Width frames are scaled to before inference.
    #[arg(long, default_value_t = 640)]
    pub width: u32,
    /// ONNX Runtime threads per session (the single-clip figures use one session).
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    /// Capacity: the daemon's `[model] workers` (detector threads, one session each, with
    /// `--capacity-threads` each).
    #[arg(long, default_value_t = 4)]
    pub workers: usize,
    /// Capacity: ONNX Runtime threads per worker's session.
    #[arg(long, default_value_t = 1)]
    pub capacity_threads: usize,
    /// Also run the Python baseline (`scripts/bench_python.py`: OpenCV + onnxruntime) on the
    /// same clip and model, and print the ratios.
    #[arg(long)]
    pub python: bool,
    /// Python interpreter with onnxruntime and OpenCV (default: the setup script's
    /// `.deps/pyvenv`, else python3).
    #[arg(long)]
    pub python_bin: Option<PathBuf>,
    /// Capacity search: the most real-time cameras the box holds (see README, Benchmarks).
    #[arg(long)]
    pub capacity: bool,
    /// Capacity: which streams each camera has.
    #[arg(long, value_enum, default_value_t = Streams::Dual)]
    pub streams: Streams,
    /// Capacity: play the clip's street with the people taken out (a quiet camera).
    #[arg(long)]
    pub quiet: bool,
    /// Capacity: motion gate off (every frame inferred).
    #[arg(long)]
    pub no_motion_gate: bool,
    /// Capacity: detections per second per camera.
    #[arg(long, default_value_t = 5.0)]
    pub detect_fps: f64,
    /// Capacity: measured seconds per trial (after an 8 s warm-up).
    #[arg(long, default_value_t = 20.0)]
    pub seconds: f64,
    /// Capacity: cameras of the first trial (doubled while trials pass).
    #[arg(long, default_value_t = 4)]
    pub start: usize,
    /// Capacity: most cameras tried.
    #[arg(long, default_value_t = 64)]
    pub max: usize,
    /// Capacity: where the made clips are kept.
    #[arg(long, default_value = "target/bench-clips")]
    pub cache: PathBuf,
}

impl BenchArgs {
    fn capacity_args(&self) -> CapacityArgs {
        CapacityArgs {
            model: self.model.clone(),
            input: self.input.clone(),
            streams: self.streams,
            quiet: self.quiet,
            motion_gate: !self.no_motion_gate,
            detect_fps: self.detect_fps,
            seconds: self.seconds,
            start: self.start,
            max: self.max.min(crate::app::MAX_CAMERAS),
            python: self.python,
            python_bin: self.python_bin.clone(),
            threads: self.capacity_threads,
            workers: self.workers,
            cache: self.cache.clone(),
        }
    }
}

/// Results of one bench run.
#[derive(Debug, Clone, Copy)]
pub struct BenchResult {
    pub decode_fps: f64,
    pub inference_fps: f64,
    pub pipeline_fps: f64,
}

impl BenchResult {
    /// Pipeline throughput relative to its slower stage (1.0 = no overhead beyond the bound).
    pub fn ratio(&self) -> f64 {
        self.pipeline_fps / self.decode_fps.min(self.inference_fps)
    }
}

fn bench_camera(args: &BenchArgs) -> Camera {
    Camera {
        id: "bench".into(),
        url: args.input.display().to_string(),
        pipeline: "file".into(),
        detect_url: None,
        detect_fps: 1000.0,
        water_fps: None,
        zoom_fps: 2.0,
        motion_gate: false,
        min_detect_fps: 1.0,
        motion_threshold: 10,
        frame_width: args.width,
        transport: None,
        looping: true,
        realtime: false,
        latency_ms: 0,
        stall_timeout_s: 30.0,
        backoff_initial_s: 1.0,
        backoff_max_s: 1.0,
        clip_pre_s: 0.0,
        clip_post_s: 0.0,
        clip_ring_s: None,
        zones: Vec::new(),
        privacy: Default::default(),
        drone: None,
    }
}

/// Decodes `n` frames through hawkeye's source, handing each to `consume`; returns frames/s.
fn decode_run(args: &BenchArgs, n: u64, mut consume: impl FnMut(&Frame)) -> anyhow::Result<(f64, Option<Frame>)> {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
    let slots = Arc::new(FrameSlots::new(1));
    let stop = CancellationToken::new();
    let ctx = SourceCtx {
        index: 0,
        camera: bench_camera(args),
        base_dir: std::env::current_dir()?,
        slots: slots.clone(),
        health: Arc::new(CameraHealth::new("bench")),
        lossless: true,
        ring: None,
        klv: None,
    };
    let task = rt.spawn(source::run_camera(ctx, stop.clone()));
    // the first frame starts the clock, so pipeline start-up is not counted
    let first = slots.take(Duration::from_secs(20)).context("no frame decoded within 20 s")?;
    consume(&first);
    let t0 = Instant::now();
    let mut count = 0;
    while count < n {
        match slots.take(Duration::from_secs(20)) {
            Some(f) => {
                consume(&f);
                count += 1;
            }
            None => bail!("decoding stopped after {count} frames"),
        }
    }
    let fps = count as f64 / t0.elapsed().as_secs_f64();
    stop.cancel();
    slots.close();
    let _ = rt.block_on(task);
    Ok((fps, Some(first)))
}

/// Runs the three measurements (and the baseline's with `--python`) and prints them; with
/// `--capacity`, the capacity search instead.
pub fn run(args: &BenchArgs) -> anyhow::Result<()> {
    if args.capacity {
        return crate::tools::capacity::run(&args.capacity_args());
    }
    let ours = measure(args)?;
    if args.python {
        let (inf, pipe) = python_rows(args)?;
        println!("Python loop (scripts/bench_python.py: OpenCV VideoCapture + onnxruntime, same clip, model and thread count)");
        println!("  inference only  {inf:>8.1} fps   → hawkeye {:.2}×", ours.inference_fps / inf);
        println!("  full pipeline   {pipe:>8.1} fps   → hawkeye {:.2}×", ours.pipeline_fps / pipe);
    }
    Ok(())
}

/// The baseline's inference-only and full-pipeline figures on the same clip.
fn python_rows(args: &BenchArgs) -> anyhow::Result<(f64, f64)> {
    let py = crate::tools::capacity::python_bin(args.python_bin.as_deref())?;
    let script = crate::tools::capacity::python_script()?;
    let run = |mode: &str, frames: u64| -> anyhow::Result<serde_json::Value> {
        let out = std::process::Command::new(&py)
            .arg(&script)
            .args([mode, "--frames", &frames.to_string(), "--width", &args.width.to_string(), "--threads", &args.threads.to_string()])
            .arg("--model")
            .arg(&args.model)
            .arg("--input")
            .arg(&args.input)
            .output()
            .with_context(|| format!("run {} {}", py.display(), script.display()))?;
        let text = String::from_utf8_lossy(&out.stdout);
        serde_json::from_str(text.lines().last().unwrap_or_default()).with_context(|| format!("baseline {mode}: {text}{}", String::from_utf8_lossy(&out.stderr)))
    };
    let inf = run("infer", (args.frames / 3).max(20))?["inference_fps"].as_f64().context("inference_fps")?;
    let pipe = run("pipeline", (args.frames / 2).max(20))?["pipeline_fps"].as_f64().context("pipeline_fps")?;
    Ok((inf, pipe))
}

/// hawkeye's three measurements, printed.
pub fn measure(args: &BenchArgs) -> anyhow::Result<BenchResult> {
    source::init_gstreamer()?;
    crate::detect::init_runtime()?;
    let opts = DetectorOptions { score_threshold: 0.3, nms_iou: 0.45, threads: args.threads };
    let mut det = Detector::load(&args.model, args.manifest.as_deref(), opts)?;

    let (decode_fps, first) = decode_run(args, args.frames, |_| {})?;
    let first = first.context("no frame")?;

    let n_inf = (args.frames / 3).max(20);
    det.detect(&first.rgb, first.width, first.height)?; // warm-up
    let t0 = Instant::now();
    for _ in 0..n_inf {
        det.detect(&first.rgb, first.width, first.height)?;
    }
    let inference_fps = n_inf as f64 / t0.elapsed().as_secs_f64();

    let n_pipe = (args.frames / 2).max(20);
    let mut errors = 0u64;
    let (pipeline_fps, _) = decode_run(args, n_pipe, |f| {
        if det.detect(&f.rgb, f.width, f.height).is_err() {
            errors += 1;
        }
    })?;
    if errors > 0 {
        bail!("{errors} inference errors during the pipeline run");
    }
    let r = BenchResult { decode_fps, inference_fps, pipeline_fps };
    println!("hawkeye bench  input {}  frame {}x{}  model {}", args.input.display(), first.width, first.height, det.model_name());
    println!("  decode only     {:>8.1} fps   ({} frames, GStreamer decode → scale → RGB)", r.decode_fps, args.frames);
    println!("  inference only  {:>8.1} fps   ({} runs, letterbox + ONNX Runtime + decode + NMS, {} threads)", r.inference_fps, n_inf, args.threads);
    println!("  full pipeline   {:>8.1} fps   ({} frames, every frame decoded and detected)", r.pipeline_fps, n_pipe);
    println!("  ratio pipeline / min(decode, inference) = {:.2}", r.ratio());
    Ok(r)
}
