//! Subcommands: `run`, `check`, `detect`, `demo`, `bench`, `eval`, `synth`, `verify`, `schema`.

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
    /// Validate a config file and print a summary, or every error with its TOML path.
    Check { config: PathBuf },
    /// Detect objects in an image; prints JSON, optionally writes an annotated image.
    Detect {
        #[arg(long)]
        model: PathBuf,
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
    /// Verify an evidence directory (state_dir/evidence): file hashes, manifest signatures and
    /// the hash chain; names the first bad file.
    Verify {
        dir: PathBuf,
        /// Device public key (64 hex digits; default: DIR/../keys/device.pub, or take it from
        /// the retained `…/pubkey` topic).
        #[arg(long)]
        pubkey: Option<String>,
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
            let cfg = match Config::load(&config) {
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
        Command::Detect { model, manifest, image, out, score, threads } => {
            crate::detect::init_runtime()?;
            let opts = crate::detect::DetectorOptions { score_threshold: score, nms_iou: 0.45, threads };
            let v = crate::detect::detect_command(&model, manifest.as_deref(), &image, out.as_deref(), opts)?;
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
        Command::Verify { dir, pubkey } => Ok(crate::evidence::verify_command(&dir, pubkey.as_deref())),
        Command::Schema => {
            println!("{}", crate::publish::ALERT_SCHEMA);
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

/// `hawkeye check`: exit 0 with a summary, or 2 with every error.
pub fn check(path: &Path) -> ExitCode {
    match Config::load(path) {
        Ok(cfg) => {
            print!("{}", summary(&cfg));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprint!("{}: {e}", path.display());
            ExitCode::from(2)
        }
    }
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
                "    zone {:<14} {:<12} classes [{}]  dwell {}s  clear {}s  cooldown {}s  ({} points)",
                z.id,
                z.kind.as_str(),
                z.classes.join(", "),
                z.dwell_s,
                z.clear_s,
                z.cooldown_s,
                z.polygon.len()
            );
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
