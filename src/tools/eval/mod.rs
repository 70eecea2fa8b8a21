//! `hawkeye eval`: the real pipeline on rendered scenarios, scored against their ground truth.
//!
//! The camera's video is decoded by hawkeye's own source (the `file` template, lossless, frames
//! rate-limited to `detect_fps` on stream timestamps), every frame goes through the detector,
//! the tracker and the zone rules exactly as in `hawkeye run`, only without MQTT: the rules'
//! transitions are collected instead of published. So a 60 s scenario takes as long as its
//! frames take to decode and detect, and the result does not depend on machine load.
//! [`metrics`] scores detections, track ids, events and flood levels; [`water`] runs the water
//! model as the daemon does and scores its masks against the true ones; [`plot`] draws the
//! truth-vs-alerts timeline.

pub mod metrics;
pub mod plot;
pub mod teacher;
pub mod water;

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;
use tokio_util::sync::CancellationToken;

use crate::config::{Camera, Compiled};
use crate::detect::{Detector, DetectorOptions, Segmenter};
use crate::camera::{CameraStep, FrameInput};
use crate::frame_slots::FrameSlots;
use crate::source::{self, CameraHealth, SourceCtx};
use crate::tools::synth::truth::Truth;
use metrics::{AlertRec, Det, DetFrame};


/// `hawkeye eval` arguments.
#[derive(Args, Debug, Clone)]
pub struct EvalArgs {
    /// A directory of scenario files (`*.toml`, rendered into --out first) or of rendered
    /// scenarios (folders with config.toml, video.mp4 and truth.json).
    #[arg(long, conflicts_with_all = ["config", "video"])]
    pub scenarios: Option<PathBuf>,
    /// Camera config: its first camera's zones, detect_fps and the model are used.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Video to play instead of the camera's url.
    #[arg(long)]
    pub video: Option<PathBuf>,
    /// Ground truth (`truth.json` from `hawkeye synth`); without it eval reports alerts and
    /// track statistics only.
    #[arg(long)]
    pub truth: Option<PathBuf>,
    /// Where rendered scenarios, the timeline plots and report.json go.
    #[arg(long, default_value = "eval-out")]
    pub out: PathBuf,
    /// Model to use instead of the config's.
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Water segmentation model: rendered scenario configs get it as `[water]` (default:
    /// models/hawkeye_water.onnx when it exists), and it is scored on the true water masks
    /// (instead of the config's `[water]` model).
    #[arg(long)]
    pub water: Option<PathBuf>,
    /// Operating score for detection precision/recall (AP uses every score down to 0.05).
    #[arg(long, default_value_t = 0.3)]
    pub score: f32,
    /// An alert counts for a truth event when it starts before the event's end plus this.
    #[arg(long, default_value_t = 5.0)]
    pub tolerance_s: f64,
    /// Inference threads.
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    /// Turn the cameras' motion gate off (every frame inferred), to compare with the default.
    #[arg(long)]
    pub no_motion_gate: bool,
    /// Turn the zones' zoomed looks off (`zoom = true` ignored), to compare with the default.
    #[arg(long)]
    pub no_zoom: bool,
    /// Teacher check: run the shipped model (--model, default models/hawkeye_urban.onnx) and
    /// this COCO model on real footage (--clip) and report how many of the teacher's persons and
    /// vehicles the shipped model finds, and its urban detections per frame.
    #[arg(long, conflicts_with_all = ["scenarios", "config"])]
    pub teacher: Option<PathBuf>,
    /// Teacher check footage, repeatable: FILE or FILE:FIRST-LAST (frames, inclusive; `vtest`
    /// and `tree` name Debian's samples). Default: vtest 0-399, vtest 400-794, tree 0-33, tree 34-67.
    #[arg(long = "clip", requires = "teacher")]
    pub clips: Vec<String>,
    /// Teacher check: use every N-th frame of each clip.
    #[arg(long, default_value_t = 10, requires = "teacher")]
    pub every: usize,
}

/// Lowest detector score kept for the AP computation.
const AP_FLOOR: f32 = 0.05;

/// What one pipeline run over a video produced.
pub struct PipelineRun {
    pub frames: Vec<DetFrame>,
    pub alerts: Vec<AlertRec>,
    /// Every confirmed track: its class, frames, and first and last sighting.
    pub tracks: std::collections::BTreeMap<u64, TrackSpan>,
    pub decoded: u64,
    /// Frames the motion gate passed on without inference.
    pub gated: u64,
    /// Zoomed crops the detector looked at (zones with `zoom = true`).
    pub zoomed: u64,
    pub elapsed_s: f64,
    pub duration_s: f64,
    /// Water masks run and their scores against the true masks (empty without a water model).
    pub water: water::WaterScore,
}

/// Runs `hawkeye eval`; exit 0 when every scenario could be evaluated.
pub fn run(args: &EvalArgs) -> anyhow::Result<ExitCode> {
    source::init_gstreamer()?;
    crate::detect::init_runtime()?;
    std::fs::create_dir_all(&args.out).with_context(|| format!("create {}", args.out.display()))?;
    if let Some(t) = &args.teacher {
        return teacher_check(args, t);
    }
    let mut cases: Vec<(String, PathBuf, Option<PathBuf>, Option<PathBuf>)> = Vec::new();
    if let Some(dir) = &args.scenarios {
        for (name, config, video, truth) in scenario_cases(dir, &args.out, args.model.as_deref(), args.water.as_deref())? {
            cases.push((name, config, Some(video), Some(truth)));
        }
    } else {
        let config = args.config.clone().context("give --scenarios DIR, or --config C (with --video V and --truth T)")?;
        let name = args
            .truth
            .as_ref()
            .and_then(|t| t.parent().and_then(|p| p.file_name()))
            .or_else(|| config.file_stem())
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "eval".into());
        cases.push((name, config, args.video.clone(), args.truth.clone()));
    }
    let params = metrics::EvalParams { iou: 0.5, score_thr: args.score, onset_tolerance_s: args.tolerance_s };
    let mut reports = Vec::new();
    // frames, and frames the motion gate passed on without inference
    let mut gate_totals = (0u64, 0u64);
    let mut untruthed = Vec::new();
    let mut detector: Option<(PathBuf, Detector)> = None;
    let mut segmenter: Option<(PathBuf, Segmenter)> = None;
    let mut water_scores = Vec::new();
    for (name, config, video, truth) in cases {
        let cfg = crate::config::load(&config).map_err(|e| anyhow::anyhow!("{}: {e}", config.display()))?;
        let model = args.model.clone().unwrap_or_else(|| cfg.resolve(&cfg.model.path));
        if detector.as_ref().is_none_or(|(p, _)| *p != model) {
            let opts = DetectorOptions { score_threshold: AP_FLOOR.min(cfg.model.score_threshold), nms_iou: cfg.model.nms_iou, threads: args.threads };
            let manifest = cfg.model.manifest.as_ref().map(|m| cfg.resolve(m));
            detector = Some((model.clone(), Detector::load(&model, manifest.as_deref(), opts)?));
        }
        let det = &mut detector.as_mut().expect("loaded above").1;
        let mut cam = cfg.cameras.first().cloned().with_context(|| format!("{}: no camera", config.display()))?;
        if let Some(v) = &video {
            cam.url = v.display().to_string();
        }
        let truth_dir = truth.as_ref().and_then(|t| t.parent().map(Path::to_path_buf)).unwrap_or_default();
        let truth = truth.map(|t| Truth::load(&t)).transpose()?;
        let hint = truth.as_ref().map(|t| t.duration_s);
        // the water model runs where the rules take masks, or where there are masks to score
        let water_model = args.water.clone().or_else(|| cfg.water.as_ref().map(|w| cfg.resolve(&w.model)));
        if args.no_motion_gate {
            cam.motion_gate = false;
        }
        if args.no_zoom {
            for z in &mut cam.zones {
                z.zoom = false;
            }
        }
        let rules_fps = cfg.water_rate(&cam);
        let wants_water = rules_fps > 0.0 || truth.as_ref().is_some_and(|t| !t.water_masks.is_empty());
        let water_run = match water_model.filter(|_| wants_water) {
            Some(wm) => {
                if segmenter.as_ref().is_none_or(|(p, _)| *p != wm) {
                    let manifest = cfg.water.as_ref().filter(|w| args.water.is_none() && w.manifest.is_some()).and_then(|w| w.manifest.as_ref().map(|m| cfg.resolve(m)));
                    segmenter = Some((wm.clone(), Segmenter::load(&wm, manifest.as_deref(), args.threads).with_context(|| format!("water model {}", wm.display()))?));
                }
                let seg = &mut segmenter.as_mut().expect("loaded above").1;
                Some(water::WaterRun::new(seg, rules_fps, truth.as_ref().map(|t| (t, truth_dir.as_path()))))
            }
            None => None,
        };
        let mut run = run_pipeline_with(&cfg, cam, det, water_run, cfg.model.score_threshold, &name, hint)?;
        run.water.scenario = name.clone();
        gate_totals.0 += run.decoded;
        gate_totals.1 += run.gated;
        println!(
            "\n== {name}: {} frames ({} inferred, {} passed on by the motion gate, {} zoomed crops) in {:.1} s ({:.0} frames/s, {:.0}× real time), {} alert transitions",
            run.decoded,
            run.decoded - run.gated,
            run.gated,
            run.zoomed,
            run.elapsed_s,
            run.decoded as f64 / run.elapsed_s.max(1e-9),
            run.duration_s / run.elapsed_s.max(1e-9),
            run.alerts.len()
        );
        match truth {
            Some(truth) => {
                let mut report = metrics::Report::compute(&truth, &run.frames, &run.alerts, &params);
                report.scenario = name.clone();
                print!("{}", report.print_table());
                if run.water.truth_masks > 0 {
                    print!("{}", run.water.print_line());
                    water_scores.push(run.water.clone());
                }
                let png = args.out.join(format!("{name}.timeline.png"));
                plot::timeline_png(&png, &name, truth.duration_s, &truth, &run.alerts)?;
                println!("timeline: {}", png.display());
                reports.push(report);
            }
            None => {
                print!("{}", untruthed_summary(&run));
                untruthed.push(serde_json::json!({ "name": name, "frames": run.decoded, "tracks": track_stats(&run.tracks), "alerts": run.alerts }));
            }
        }
    }
    if gate_totals.1 > 0 {
        let inferred = gate_totals.0 - gate_totals.1;
        println!("\nmotion gate: {inferred} of {} frames inferred ({:.2}× fewer inferences)", gate_totals.0, gate_totals.0 as f64 / inferred.max(1) as f64);
    }
    {
        let total = (!reports.is_empty()).then(|| metrics::Report::merge(&reports));
        let water_total = (!water_scores.is_empty()).then(|| water::WaterScore::merge(&water_scores));
        if let Some(total) = total.as_ref().filter(|_| reports.len() > 1) {
            println!();
            print!("{}", total.print_table());
            if let Some(w) = &water_total {
                print!("{}", w.print_line());
            }
        }
        let json = args.out.join("report.json");
        let water_doc = serde_json::json!({ "total": water_total, "scenarios": water_scores });
        let doc = serde_json::json!({ "score": args.score, "tolerance_s": args.tolerance_s, "total": total, "scenarios": reports, "water": water_doc, "untruthed": untruthed });
        std::fs::write(&json, serde_json::to_vec_pretty(&doc)?)?;
        println!("report: {}", json.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// `hawkeye eval --teacher`: prints the teacher check and writes it to report.json.
fn teacher_check(args: &EvalArgs, teacher_model: &Path) -> anyhow::Result<ExitCode> {
    let clips = if args.clips.is_empty() { teacher::Clip::defaults()? } else { args.clips.iter().map(|c| teacher::Clip::parse(c)).collect::<anyhow::Result<Vec<_>>>()? };
    let model = args.model.clone().unwrap_or_else(crate::tools::synth::default_model);
    let report = teacher::run_check(&model, teacher_model, &clips, args.every, args.score, args.threads)?;
    print!("{}", report.print_table());
    let json = args.out.join("report.json");
    std::fs::write(&json, serde_json::to_vec_pretty(&serde_json::json!({ "teacher": report }))?)?;
    println!("report: {}", json.display());
    Ok(ExitCode::SUCCESS)
}

/// Scenario cases under `dir`: `*.toml` files are rendered into `out/<name>/` first (two at a
/// time: rendering keeps about one core busy); folders that already hold a rendered scenario
/// are used as they are.
fn scenario_cases(dir: &Path, out: &Path, model: Option<&Path>, water: Option<&Path>) -> anyhow::Result<Vec<(String, PathBuf, PathBuf, PathBuf)>> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir).with_context(|| format!("read {}", dir.display()))?.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    let model = model.map(Path::to_path_buf).unwrap_or_else(crate::tools::synth::default_model);
    let water = water.map(Path::to_path_buf).or_else(crate::tools::synth::default_water);
    let name_of = |p: &Path| p.file_stem().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let to_render: Vec<&PathBuf> = entries.iter().filter(|p| p.extension().is_some_and(|e| e == "toml")).collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let rendered: std::sync::Mutex<Vec<Option<anyhow::Result<crate::tools::synth::Rendered>>>> = std::sync::Mutex::new((0..to_render.len()).map(|_| None).collect());
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, 2);
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(p) = to_render.get(i) else { break };
                let name = name_of(p);
                let t0 = Instant::now();
                let r = crate::tools::synth::render_scenario_with(p, &out.join(&name), &model, water.as_deref());
                if let Ok(r) = &r {
                    eprintln!("rendered {name}: {} frames in {:.1} s", r.truth.frames.len(), t0.elapsed().as_secs_f64());
                }
                rendered.lock().unwrap()[i] = Some(r);
            });
        }
    });
    let mut rendered = rendered.into_inner().unwrap().into_iter();
    let mut cases = Vec::new();
    for p in &entries {
        let name = name_of(p);
        if p.extension().is_some_and(|e| e == "toml") {
            let r = rendered.next().flatten().expect("every scenario file was rendered")?;
            cases.push((name, r.config, r.video, r.truth_path));
        } else if p.join("truth.json").exists() && p.join("config.toml").exists() {
            cases.push((name, p.join("config.toml"), p.join("video.mp4"), p.join("truth.json")));
        }
    }
    if cases.is_empty() {
        bail!("{}: no scenario files (*.toml) or rendered scenarios", dir.display());
    }
    Ok(cases)
}

/// A progress bar on stderr when it is a terminal (nothing otherwise, so logs stay clean).
struct Progress {
    tty: bool,
    label: String,
    last: Instant,
}

impl Progress {
    fn new(label: &str) -> Self {
        Progress { tty: std::io::stderr().is_terminal(), label: label.to_string(), last: Instant::now() }
    }
    fn show(&mut self, ts: f64, total: Option<f64>, frames: u64, started: Instant) {
        if !self.tty || self.last.elapsed() < Duration::from_millis(100) {
            return;
        }
        self.last = Instant::now();
        let fps = frames as f64 / started.elapsed().as_secs_f64().max(1e-9);
        let bar = match total {
            Some(d) if d > 0.0 => {
                let f = (ts / d).clamp(0.0, 1.0);
                let n = (f * 30.0).round() as usize;
                format!("[{}{}] {:>3.0}%", "#".repeat(n), "-".repeat(30 - n), f * 100.0)
            }
            _ => String::new(),
        };
        let mut e = std::io::stderr();
        let _ = write!(e, "\r{} {bar} {ts:>6.1} s  {fps:>5.0} frames/s ", self.label);
        let _ = e.flush();
    }
    fn done(&self) {
        if self.tty {
            let _ = writeln!(std::io::stderr());
        }
    }
}

/// Decodes the camera's video (lossless, stream time), detects, tracks and evaluates the
/// zone rules frame by frame; collects detections (for scoring) and rule transitions.
pub fn run_pipeline(cfg: &Compiled, cam: Camera, det: &mut Detector, rule_score: f32, label: &str, duration_hint: Option<f64>) -> anyhow::Result<PipelineRun> {
    run_pipeline_with(cfg, cam, det, None, rule_score, label, duration_hint)
}

/// [`run_pipeline`] with the water model: masks for the rules at their rate and scored against
/// the true masks (see [`water`]).
pub fn run_pipeline_with(cfg: &Compiled, mut cam: Camera, det: &mut Detector, mut water: Option<water::WaterRun<'_>>, rule_score: f32, label: &str, duration_hint: Option<f64>) -> anyhow::Result<PipelineRun> {
    cam.looping = false;
    cam.realtime = false;
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
    let slots = Arc::new(FrameSlots::new(1));
    let stop = CancellationToken::new();
    let health = Arc::new(CameraHealth::new(cam.id.clone()));
    let ctx = SourceCtx { index: 0, camera: cam.clone(), base_dir: cfg.base_dir.clone(), slots: slots.clone(), health: health.clone(), lossless: true, ring: None, klv: None };
    let task = rt.spawn(source::run_camera(ctx, stop.clone()));
    // the daemon's own per-frame step; only detections at the operating score are tracked
    let mut step = CameraStep::new(&format!("{}-{}", cfg.device.id, cam.id), &cam, cfg.zones(&cam.id), rule_score);
    let mut run = PipelineRun { frames: Vec::new(), alerts: Vec::new(), tracks: Default::default(), decoded: 0, gated: 0, zoomed: 0, elapsed_s: 0.0, duration_s: 0.0, water: Default::default() };
    let mut progress = Progress::new(label);
    // the daemon's motion gate, with the camera's settings
    let mut gate = crate::detect::GatedDetector::new(cam.gate_params());
    // and its zoomed looks at far zones
    let mut zoom = crate::detect::Zoomer::new(crate::config::Config::zoom_polygons(&cam), cam.zoom_fps);
    let t0 = Instant::now();
    let mut idle = Instant::now();
    loop {
        let Some(f) = slots.take(Duration::from_millis(100)) else {
            if task.is_finished() && slots.take(Duration::from_millis(1)).is_none() {
                break;
            }
            if idle.elapsed() > Duration::from_secs(60) {
                stop.cancel();
                slots.close();
                bail!("{label}: no frame for 60 s ({})", health.last_error().unwrap_or_else(|| format!("{:?}", health.state())));
            }
            continue;
        };
        idle = Instant::now();
        let (mut detections, skipped) = gate.detect(&f, || det.detect(&f.rgb, f.width, f.height))?;
        run.gated += skipped as u64;
        run.zoomed += zoom.look(det, &f.rgb, f.width, f.height, f.ts, &mut detections)? as u64;
        if let Some(mask) = water.as_mut().map(|w| w.on_frame(&f)).transpose()?.flatten() {
            step.observe_water(&mask);
        }
        let out = step.step(FrameInput { ts: f.ts, wall: f.wall, width: f.width, height: f.height, rgb: &f.rgb, fix: None }, &detections);
        let tracks = out.tracks;
        for t in tracks.iter().filter(|t| t.missed == 0) {
            let span = run.tracks.entry(t.id).or_insert_with(|| TrackSpan { class: t.class.clone(), frames: 0, first: (f.ts, t.bbox), last: (f.ts, t.bbox) });
            span.frames += 1;
            span.last = (f.ts, t.bbox);
        }
        let dets = detections
            .iter()
            .map(|d| {
                let track_id = (d.score >= rule_score)
                    .then(|| tracks.iter().filter(|t| t.class_id == d.class_id).map(|t| (t.bbox.iou(&d.bbox), t.id)).filter(|(iou, _)| *iou >= 0.5).max_by(|a, b| a.0.total_cmp(&b.0)).map(|(_, id)| id))
                    .flatten();
                Det { class: d.class.clone(), score: d.score, bbox: [d.bbox.x1, d.bbox.y1, d.bbox.x2, d.bbox.y2], track_id }
            })
            .collect();
        run.frames.push(DetFrame { t: f.ts, dets });
        for tr in out.transitions {
            run.alerts.push(AlertRec {
                kind: tr.kind.as_str().to_string(),
                zone: tr.zone_id.clone(),
                event_id: tr.event_id.clone(),
                state: tr.state.as_str().to_string(),
                t: tr.ts,
                started_t: tr.started_ts,
                level: tr.flood.map(|(l, _)| l.as_str().to_string()),
            });
        }
        run.decoded += 1;
        run.duration_s = f.ts;
        progress.show(f.ts, duration_hint, run.decoded, t0);
    }
    progress.done();
    if let Some(w) = water {
        run.water = w.score;
    }
    run.elapsed_s = t0.elapsed().as_secs_f64();
    stop.cancel();
    slots.close();
    let _ = rt.block_on(task);
    if run.decoded == 0 {
        bail!("{label}: the video gave no frames ({})", health.last_error().unwrap_or_else(|| "no error reported".into()));
    }
    Ok(run)
}

/// One confirmed track over a run.
#[derive(Clone, Debug)]
pub struct TrackSpan {
    pub class: String,
    pub frames: u32,
    /// Stream time and box of the first and the latest matched sighting.
    pub first: (f64, crate::detect::BBox),
    pub last: (f64, crate::detect::BBox),
}

/// Track statistics of a run on footage without ground truth.
#[derive(Clone, Debug, serde::Serialize)]
pub struct TrackStats {
    pub tracks: usize,
    pub mean_frames: f64,
    pub longest_frames: u32,
    /// Likely ID switches: a track that ends where, within `SWITCH_GAP_S`, a new track of the
    /// same class begins (its first box overlaps the old last box, or its centre is within
    /// half a box height). Without ground truth this is an estimate, not a count.
    pub likely_id_switches: usize,
}

/// Longest gap between a track's end and a successor's start that still looks like one object.
const SWITCH_GAP_S: f64 = 1.5;

/// Estimates ID stability from track spans alone.
pub fn track_stats(tracks: &std::collections::BTreeMap<u64, TrackSpan>) -> TrackStats {
    let spans: Vec<&TrackSpan> = tracks.values().collect();
    let lens: Vec<u32> = spans.iter().map(|s| s.frames).collect();
    let mut switches = 0;
    let mut taken = vec![false; spans.len()];
    for a in &spans {
        let (end, last) = a.last;
        let near = |b: &crate::detect::BBox| {
            let ((ax, ay), (bx, by)) = (last.center(), b.center());
            last.iou(b) > 0.1 || ((ax - bx).powi(2) + (ay - by).powi(2)).sqrt() < 0.5 * last.height()
        };
        let successor = spans
            .iter()
            .enumerate()
            .filter(|(j, b)| !taken[*j] && b.class == a.class && b.first.0 > end && b.first.0 - end <= SWITCH_GAP_S && near(&b.first.1))
            .min_by(|x, y| x.1.first.0.total_cmp(&y.1.first.0))
            .map(|(j, _)| j);
        if let Some(j) = successor {
            taken[j] = true;
            switches += 1;
        }
    }
    TrackStats {
        tracks: spans.len(),
        mean_frames: lens.iter().map(|l| *l as f64).sum::<f64>() / lens.len().max(1) as f64,
        longest_frames: lens.iter().max().copied().unwrap_or(0),
        likely_id_switches: switches,
    }
}

/// Alerts and track statistics of a run without ground truth (real footage).
fn untruthed_summary(run: &PipelineRun) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let st = track_stats(&run.tracks);
    let _ = writeln!(
        s,
        "tracks: {} ids, mean length {:.1} frames, longest {}; likely ID switches (no ground truth: a track ending where a new one of its class starts within {SWITCH_GAP_S} s): {}",
        st.tracks, st.mean_frames, st.longest_frames, st.likely_id_switches
    );
    for a in &run.alerts {
        let _ = writeln!(s, "  {:>7.1} s  {:<8} {:<12} {:<14} {}", a.t, a.state, a.kind, a.zone, a.event_id);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::BBox;

    fn span(class: &str, first: f64, last: f64, b0: BBox, b1: BBox) -> TrackSpan {
        TrackSpan { class: class.into(), frames: ((last - first) * 5.0) as u32 + 1, first: (first, b0), last: (last, b1) }
    }

    #[test]
    fn likely_id_switches_are_successors_at_the_same_place() {
        let a = BBox::new(100.0, 100.0, 130.0, 190.0);
        let moved = BBox::new(104.0, 100.0, 134.0, 190.0);
        let far = BBox::new(400.0, 100.0, 430.0, 190.0);
        let mut m = std::collections::BTreeMap::new();
        m.insert(1, span("person", 0.0, 5.0, a, a));
        m.insert(2, span("person", 5.4, 9.0, moved, far)); // takes over from 1: a switch
        m.insert(3, span("person", 9.2, 12.0, far, far)); // takes over from 2: a switch
        m.insert(4, span("bicycle", 5.2, 8.0, a, a)); // other class: not a switch
        m.insert(5, span("person", 20.0, 25.0, a, a)); // long after: a new person
        m.insert(6, span("person", 12.5, 14.0, a, a)); // near 3's end in time but far away
        let st = track_stats(&m);
        assert_eq!(st.tracks, 6);
        assert_eq!(st.likely_id_switches, 2);
        assert_eq!(st.longest_frames, 26);
    }
}
