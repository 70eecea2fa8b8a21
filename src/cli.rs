//! Subcommands: `run`, `check`, `detect`, `demo`, `bench`, `eval`, `synth`, `verify`, `schema`,
//! `console`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use crate::config::Config;

#[derive(Parser, Debug)]
#[command(name = "hawkeye", version, about = "Edge daemon for smart urban-management cameras")]
pub struct Cli {
    /// More logging (-v debug, -vv trace); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the daemon with a config file (SIGTERM / Ctrl-C stop it cleanly).
    Run {
        config: PathBuf,
        /// Exit when every source has ended (files without `loop`).
        #[arg(long)]
        exit_at_end: bool,
    },
    /// Check a config file (every error with its TOML path, type errors included) and prove
    /// the model runs (one inference on a blank frame); print a summary.
    Check { config: PathBuf },
    /// Detect objects (and with --water, water) in an image; prints JSON, optionally writes an
    /// annotated image.
    Detect {
        /// Detector model (a segmentation model here is taken as --water).
        #[arg(long, required_unless_present = "water")]
        model: Option<PathBuf>,
        /// Water segmentation model: its mask is drawn translucent blue on --out, and the
        /// water share of the picture is printed.
        #[arg(long)]
        water: Option<PathBuf>,
        /// Model manifest (default: next to the model, or built in by the model's sha256).
        #[arg(long)]
        manifest: Option<PathBuf>,
        image: PathBuf,
        /// Write the image with boxes drawn (JPEG).
        #[arg(long)]
        out: Option<PathBuf>,
        #[arg(long, default_value_t = 0.3)]
        score: f32,
        #[arg(long, default_value_t = 2)]
        threads: usize,
    },
    /// Everything on one machine: a local mosquitto, a sample street video, a zone, and a
    /// subscriber that prints the alerts it receives.
    Demo(crate::tools::demo::DemoArgs),
    /// Measure decode-only, inference-only and full-pipeline throughput on a clip.
    Bench(crate::tools::bench::BenchArgs),
    /// Run the real pipeline (decode, detect, track, rules) on rendered scenarios or a video with
    /// ground truth, as fast as it goes on stream time; print detection and event figures, write
    /// a JSON report and a timeline plot.
    Eval(crate::tools::eval::EvalArgs),
    /// Render a synthetic street scenario (video, ground truth, camera config), or with
    /// `--dataset N` a YOLO-format training set.
    Synth(crate::tools::synth::SynthArgs),
    /// Print the JSON Schema of the alert message.
    Schema,
    /// Sign a box's fleet config: its cameras and zones (a TOML file of `[[camera]]` tables, as
    /// in a config file) as the message to publish, retained, on `{prefix}/{device}/config`.
    /// The command centre's key lives in --key-dir (created on first use); its public key, for
    /// the boxes' `[fleet] public_key`, is printed on stderr.
    FleetSign {
        /// Where the command centre's signing key is (device.key / device.pub).
        #[arg(long)]
        key_dir: PathBuf,
        /// The box's device id.
        #[arg(long)]
        device: String,
        /// Higher than every version sent to this box before.
        #[arg(long)]
        version: u64,
        cameras: PathBuf,
        /// Write the message here instead of stdout.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// The command centre's web console: reads every device on the broker into a database
    /// (SQLite or PostgreSQL), shows live alerts with their evidence, acknowledges, warns,
    /// re-checks, edits zones on the live picture and reports response times.
    Console(crate::console::ConsoleArgs),
    /// Verify an evidence directory (state_dir/evidence): file hashes, manifest signatures, the
    /// hash chain and its segments, missing oldest/newest manifests; lists every finding.
    /// Exit 0: all holds against a pinned key; 1: findings; 2: bad arguments; 3: consistent,
    /// but checked only against the key stored beside the evidence.
    Verify {
        dir: PathBuf,
        /// The device's public key, pinned: 64 hex digits or a file holding them, kept outside
        /// the state_dir (recorded at installation, or from the retained `…/pubkey` topic).
        /// Without it only DIR/../keys/device.pub is used: "consistent, NOT authenticated".
        #[arg(long, value_name = "HEX|FILE")]
        pubkey: Option<String>,
        /// The chain head a consumer saw (an alert's `manifest` seq and sha256): the chain must
        /// reach it, so removed newest events and truncation show.
        #[arg(long, value_name = "SEQ:SHA256", conflicts_with = "head_from")]
        head: Option<String>,
        /// Take the head from saved alerts (one JSON per line; the highest manifest seq).
        #[arg(long, value_name = "FILE")]
        head_from: Option<PathBuf>,
    },
}

/// Sets up logging to stderr.
pub fn init_tracing(verbose: u8) {
    let default = match verbose {
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("{default},rumqttc=warn")));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}

/// Runs a parsed command line.
pub fn execute(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Check { config } => Ok(check(&config)),
        Command::Run { config, exit_at_end } => {
            let cfg = match crate::config::load(&config) {
                Ok(c) => c,
                Err(e) => {
                    eprint!("{}: {e}", config.display());
                    return Ok(ExitCode::from(2));
                }
            };
            let opts = crate::app::RunOptions { exit_when_sources_end: exit_at_end, lossless: false, config_path: Some(config.clone()) };
            let rt = runtime()?;
            let result = rt.block_on(async move {
                let shutdown = CancellationToken::new();
                spawn_signal_handler(shutdown.clone());
                crate::app::run(cfg, opts, shutdown).await
            });
            // a task still stuck after the shutdown deadline must not hold the process
            rt.shutdown_timeout(std::time::Duration::from_secs(2));
            result?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Detect { model, water, manifest, image, out, score, threads } => {
            crate::detect::init_runtime()?;
            let opts = crate::detect::DetectorOptions { score_threshold: score, nms_iou: 0.45, threads };
            let v = crate::detect::cli_detect::detect_and_segment(model.as_deref(), manifest.as_deref(), water.as_deref(), &image, out.as_deref(), opts)?;
            println!("{}", serde_json::to_string_pretty(&v)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Demo(args) => {
            runtime()?.block_on(async move {
                let shutdown = CancellationToken::new();
                spawn_signal_handler(shutdown.clone());
                crate::tools::demo::run(args, shutdown).await
            })?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench(args) => {
            crate::tools::bench::run(&args)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Eval(args) => crate::tools::eval::run(&args),
        Command::Synth(args) => {
            crate::tools::synth::run(&args)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Verify { dir, pubkey, head, head_from } => Ok(crate::evidence::verify_command(&dir, pubkey.as_deref(), head.as_deref(), head_from.as_deref())),
        Command::Console(args) => {
            let rt = runtime()?;
            rt.block_on(async move {
                let shutdown = CancellationToken::new();
                spawn_signal_handler(shutdown.clone());
                crate::console::run(args, shutdown).await
            })?;
            rt.shutdown_timeout(std::time::Duration::from_secs(2));
            Ok(ExitCode::SUCCESS)
        }
        Command::Schema => {
            println!("{}", crate::publish::ALERT_SCHEMA);
            Ok(ExitCode::SUCCESS)
        }
        Command::FleetSign { key_dir, device, version, cameras, out } => {
            use anyhow::Context as _;
            let config = std::fs::read_to_string(&cameras).with_context(|| format!("cannot read {}", cameras.display()))?;
            let desired = crate::config::fleet::Desired { device_id: device, version, issued_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true), config };
            // the box checks the whole config; here only that it is a fleet config at all
            if let Err(e) = crate::config::fleet::overlay("", &desired) {
                eprintln!("{}: {}", cameras.display(), e.join("; "));
                return Ok(ExitCode::from(2));
            }
            let key = crate::evidence::keys::DeviceKey::load_or_create(&key_dir).map_err(|e| anyhow::anyhow!("{e}"))?;
            let message = crate::config::fleet::sign(&desired, &key);
            eprintln!("public key ([fleet] public_key): {}", key.public_key_hex());
            match out {
                Some(p) => std::fs::write(&p, &message).with_context(|| format!("cannot write {}", p.display()))?,
                None => println!("{}", String::from_utf8_lossy(&message)),
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().context("tokio runtime")
}

/// Cancels `token` on SIGTERM or SIGINT; a second signal exits at once (what the outbox and
/// the journal hold is sent after the next start).
pub fn spawn_signal_handler(token: CancellationToken) {
    tokio::spawn(async move {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!("cannot listen for SIGTERM: {e}");
                return;
            }
        };
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM: shutting down (a second signal exits at once)"),
            _ = tokio::signal::ctrl_c() => tracing::info!("interrupt: shutting down (a second signal exits at once)"),
        }
        token.cancel();
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        tracing::warn!("second signal: exiting now; undelivered messages stay on disk for the next start");
        std::process::exit(130);
    });
}

/// `hawkeye check`: exit 0 with a summary, or 2 with every error. The configured model is
/// loaded with ONNX Runtime and run once on a blank frame, so a model that cannot run is an
/// error here rather than at start-up.
pub fn check(path: &Path) -> ExitCode {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("{}: cannot read: {e}", path.display());
            return ExitCode::from(2);
        }
    };
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    // with the zones drop-in a zone editor wrote (`<stem>.zones.toml`), as `run` reads it
    let dropin = crate::config::zones_file::path_for(path);
    if dropin.is_file() {
        println!("zones of the cameras it names come from {}", dropin.display());
    }
    if let Some(d) = crate::config::fleet::last_good(&text, &base) {
        println!("cameras come from the last good fleet config, version {} (issued {})", d.version, d.issued_at);
    }
    let (compiled, mut errs) = match crate::config::load(path) {
        Ok(c) => (Some(c), Vec::new()),
        Err(e) => (None, e.0),
    };
    // the model is probed whenever the config says which one it is, so its error comes with
    // the others; a model already reported (missing file, bad manifest) is not probed again
    let raw = compiled.as_ref().map(|c| c.raw.clone()).or_else(|| Config::parse(&text, &base).ok().map(|(c, _)| c));
    if let Some(cfg) = raw.filter(|_| !errs.iter().any(|e| e.starts_with("model.path") || e.starts_with("model.manifest"))) {
        if let Err(e) = probe_model(&cfg) {
            errs.push(e);
        }
    }
    // the water model likewise, unless its file or manifest is already reported
    if let Some(cfg) = compiled.as_ref().map(|c| c.raw.clone()).or_else(|| Config::parse(&text, &base).ok().map(|(c, _)| c)) {
        if cfg.water.is_some() && !errs.iter().any(|e| e.starts_with("water.model") || e.starts_with("water.manifest")) {
            if let Err(e) = probe_water(&cfg) {
                errs.push(e);
            }
        }
    }
    match compiled {
        Some(cfg) if errs.is_empty() => {
            print!("{}", summary(&cfg));
            // dual-stream cameras whose streams are files: what does not fit between them is
            // worth knowing, but does not make the config invalid
            for (i, cam) in cfg.raw.cameras.iter().enumerate() {
                match crate::source::probe::probe_dual(cam, &cfg.raw.base_dir) {
                    Ok(Some(mismatches)) => mismatches.iter().for_each(|m| eprintln!("warning: camera[{i}] ({}): {m}", cam.id)),
                    Ok(None) => {}
                    Err(e) => eprintln!("warning: camera[{i}] ({}): cannot probe its streams: {e}", cam.id),
                }
            }
            ExitCode::SUCCESS
        }
        _ => {
            eprint!("{}: {}", path.display(), crate::config::ConfigErrors(errs));
            ExitCode::from(2)
        }
    }
}

/// Loads the configured model with ONNX Runtime and runs one inference on a blank frame of its
/// input size; `Err` is one line starting with the config path it concerns.
pub fn probe_model(cfg: &Config) -> Result<(), String> {
    let model = cfg.resolve(&cfg.model.path);
    crate::detect::init_runtime().map_err(|e| format!("model.path: ONNX Runtime cannot start, so {} cannot be run: {e}", model.display()))?;
    let manifest = cfg.model.manifest.as_ref().map(|m| cfg.resolve(m));
    let opts = crate::detect::DetectorOptions { score_threshold: cfg.model.score_threshold, nms_iou: cfg.model.nms_iou, threads: cfg.model.threads.max(1) };
    let mut det = crate::detect::Detector::load(&model, manifest.as_deref(), opts).map_err(|e| format!("model.path: ONNX Runtime cannot load {}: {e}", model.display()))?;
    let (w, h) = (det.manifest().input_width, det.manifest().input_height);
    let blank = vec![0u8; w as usize * h as usize * 3];
    det.detect(&blank, w, h).map_err(|e| format!("model.path: {} loads but an inference on a blank {w}x{h} frame fails: {e}", model.display()))?;
    Ok(())
}

/// Loads the `[water]` model with ONNX Runtime and computes one mask of a blank frame of its
/// input size; `Err` is one line starting with `water.model`.
pub fn probe_water(cfg: &Config) -> Result<(), String> {
    let Some(w) = &cfg.water else { return Ok(()) };
    let model = cfg.resolve(&w.model);
    crate::detect::init_runtime().map_err(|e| format!("water.model: ONNX Runtime cannot start, so {} cannot be run: {e}", model.display()))?;
    let manifest = w.manifest.as_ref().map(|m| cfg.resolve(m));
    let mut seg = crate::detect::Segmenter::load(&model, manifest.as_deref(), 1).map_err(|e| format!("water.model: ONNX Runtime cannot load {}: {e}", model.display()))?;
    let (iw, ih) = (seg.manifest().input_width, seg.manifest().input_height);
    let blank = vec![0u8; iw as usize * ih as usize * 3];
    seg.segment(&blank, iw, ih).map_err(|e| format!("water.model: {} loads but a mask of a blank {iw}x{ih} frame fails: {e}", model.display()))?;
    Ok(())
}

/// One screen describing a valid config.
pub fn summary(cfg: &Config) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(s, "config OK");
    let loc = &cfg.device.location;
    let _ = writeln!(
        s,
        "device   {}  {}{}",
        cfg.device.id,
        loc.address,
        match (loc.lat, loc.lon) {
            (Some(a), Some(b)) => format!(" ({a:.5}, {b:.5})"),
            _ => String::new(),
        }
    );
    let _ = writeln!(s, "state    {}", cfg.resolve(&cfg.device.state_dir).display());
    let _ = writeln!(s, "mqtt     {}  topics {}/{{status,alerts,evidence/…,heartbeat}}", cfg.mqtt.url, cfg.topic_root());
    let model = cfg.resolve(&cfg.model.path);
    let man = crate::detect::Manifest::find(&model, cfg.model.manifest.as_ref().map(|m| cfg.resolve(m)).as_deref());
    match man {
        Ok(m) => {
            let _ = writeln!(
                s,
                "model    {} ({:?}, {}x{}, {} classes, score ≥ {})",
                model.display(),
                m.layout,
                m.input_width,
                m.input_height,
                m.classes.len(),
                cfg.model.score_threshold
            );
        }
        Err(e) => {
            let _ = writeln!(s, "model    {} ({e})", model.display());
        }
    }
    if let Some(w) = &cfg.water {
        let flooding: Vec<&str> = cfg.cameras.iter().filter(|c| cfg.water_rate(c) > 0.0).map(|c| c.id.as_str()).collect();
        let _ = writeln!(s, "water    {} ({} masks/s for cameras with flooding zones: {})", cfg.resolve(&w.model).display(), w.fps, if flooding.is_empty() { "none".to_string() } else { flooding.join(", ") });
    }
    let _ = writeln!(s, "cameras  {}", cfg.cameras.len());
    for c in &cfg.cameras {
        let _ = writeln!(
            s,
            "  {:<16} {:<10} {:>4} fps  width {:<5} {}",
            c.id, c.pipeline, c.detect_fps, c.frame_width, c.url
        );
        if let Some(d) = &c.drone {
            let watch: Vec<String> = d.watches.iter().map(|w| format!("{}→{}", w.class, w.kind.as_str())).collect();
            let _ = writeln!(
                s,
                "    drone telemetry {}, watch [{}], confirm {} frames, same event within {} m / {} s, {} geo zone(s)",
                d.telemetry.as_str(),
                watch.join(", "),
                d.confirm_frames,
                d.dedup_m,
                d.dedup_s,
                d.geo_zones.len()
            );
        }
        for z in &c.zones {
            let _ = writeln!(
                s,
                "    zone {:<14} {:<12} classes [{}]{}  dwell {}s  clear {}s  cooldown {}s  ({} points)",
                z.id,
                z.kind.as_str(),
                if z.classes.is_empty() && z.kind == crate::config::ZoneKind::Parking { format!("{} of the model's", crate::config::PARKING_CLASSES.join("/")) } else { z.classes.join(", ") },
                if z.min_count > 1 { format!("  at least {}", z.min_count) } else { String::new() },
                z.dwell_s,
                z.clear_s,
                z.cooldown_s,
                z.polygon.len()
            );
            if z.zoom {
                let _ = writeln!(s, "      zoom: also looked at through a crop around the zone, {} times a second (zoom_fps)", c.zoom_fps);
            }
            if z.kind == crate::config::ZoneKind::Parking {
                let plates = if z.unmask_plates { "readable (unmask_plates)" } else { "masked as the camera's privacy says" };
                let _ = writeln!(s, "      parking: still within {} of the box, vehicle crop plates {plates}", z.still_frac);
            }
            if let Some(sp) = &z.speak {
                let again = sp.again_after_s.map(|a| format!(", again every {a}s")).unwrap_or_default();
                let _ = writeln!(s, "      speak {} on {} → {}{again}", sp.message, sp.on.join("/"), sp.speaker);
            }
        }
    }
    if !cfg.speakers.is_empty() {
        let _ = writeln!(s, "speakers {}  messages {}", cfg.speakers.len(), cfg.messages.len());
        for sp in &cfg.speakers {
            let quiet = if sp.quiet_hours.is_empty() { String::new() } else { format!("  quiet {}", sp.quiet_hours.join(", ")) };
            let _ = writeln!(s, "  {:<16} {:<17} {}  min interval {}s{quiet}", sp.id, sp.kind.as_str(), sp.url, sp.min_interval_s);
        }
    }
    s
}
