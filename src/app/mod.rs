//! `hawkeye run`: wires source → detect → track → rules → evidence → outbox → MQTT for every
//! camera in the config, answers commands, reloads the config on request, and shuts everything
//! down cleanly when `shutdown` fires.
//!
//! Threads and tasks: one GStreamer pipeline per camera (its own streaming threads) feeding
//! [`FrameSlots`]; one detector thread (ONNX inference is blocking CPU work) taking frames
//! round-robin; one tokio task per camera for tracking, rules, evidence and the camera's
//! commands; one MQTT link task; this task, which supervises and handles commands.
//!
//! Cameras live in frame slots (`Frame::camera` is the slot). A reload stops the cameras whose
//! config changed or that were removed and starts new ones in free slots; cameras whose config
//! did not change keep streaming and keep their tracker and event state.

mod events;

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::json;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::{Camera, Config, TelemetrySource};
use crate::detect::{self, Detection, Detector, DetectorOptions};
use crate::drone::GeoTrack;
use crate::evidence::{DeviceKey, EncodedRing, EvidenceStore, Sealer};
use crate::frame::Frame;
use crate::outbox::Outbox;
use crate::publish::commands::{self, Command};
use crate::publish::{MqttLink, ModelRef, Publisher};
use crate::rules::Ack;
use crate::frame_slots::FrameSlots;
use crate::source::{self, CameraHealth, SourceCtx};
use crate::speaker::{Origin, ResultSink, SpeakRequest, SpeakerStats, Speakers, WallClock};
use crate::telemetry::{self, AlertStats, DetectorStats, Telemetry};
use events::{camera_rules, EventCtx};

/// How long the outbox may take to drain at shutdown before the rest waits on disk.
pub const FLUSH_DEADLINE: Duration = Duration::from_secs(3);
/// Byte cap of a camera's encoded clip ring (40 s of a 4 Mbit/s main stream is ~20 MB).
const CLIP_RING_BYTES: usize = 64 << 20;
/// Most cameras one daemon runs (frame slots are allocated once).
pub const MAX_CAMERAS: usize = 64;

/// A frame with its detections, on its way to the camera's rules task.
struct DetectedFrame {
    frame: Frame,
    detections: Vec<Detection>,
}

/// Options of a run beyond the config.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Return once every camera's source has ended (files without `loop`).
    pub exit_when_sources_end: bool,
    /// Hand every decoded frame to the detector (files decoded as fast as possible).
    pub lossless: bool,
    /// The config file, re-read by `cmd/reload` (no reload without it).
    pub config_path: Option<PathBuf>,
}

/// A command for one camera's rules task; the answer comes back on `reply`.
enum CameraCmd {
    Snapshot { reply: oneshot::Sender<Result<serde_json::Value, String>> },
    Ack { event_id: String, ack: Ack, reply: oneshot::Sender<Option<Result<serde_json::Value, String>>> },
    Recheck { event_id: String, reply: oneshot::Sender<Option<Result<serde_json::Value, String>>> },
}

/// One running camera.
struct CameraRuntime {
    cfg: Camera,
    slot: usize,
    stop: CancellationToken,
    source: JoinHandle<()>,
    rules: JoinHandle<()>,
    ctl: mpsc::Sender<CameraCmd>,
}

/// What every camera shares.
struct Shared {
    cfg: Config,
    opts: RunOptions,
    slots: Arc<FrameSlots>,
    routes: Arc<Mutex<Vec<Option<mpsc::Sender<DetectedFrame>>>>>,
    publisher: Publisher,
    evidence: EvidenceStore,
    sealer: Arc<Mutex<Sealer>>,
    model: ModelRef,
    alerts: Arc<AlertStats>,
    telemetry: Arc<Telemetry>,
    speakers: Speakers,
    /// Drone positions from DJI OSD, by aircraft serial number (filled by `start_camera`).
    osd: Arc<Mutex<std::collections::HashMap<String, Arc<GeoTrack>>>>,
    shutdown: CancellationToken,
}

/// Runs the daemon until `shutdown` is cancelled (or, with `exit_when_sources_end`, until every
/// source has ended).
pub async fn run(cfg: Config, opts: RunOptions, shutdown: CancellationToken) -> anyhow::Result<()> {
    let _state_lock = crate::state_lock::StateLock::acquire(&cfg.resolve(&cfg.device.state_dir)).map_err(anyhow::Error::msg)?;
    source::init_gstreamer().context("GStreamer")?;
    detect::init_runtime().context("ONNX Runtime")?;
    if cfg.cameras.len() > MAX_CAMERAS {
        anyhow::bail!("{} cameras configured; one daemon runs at most {MAX_CAMERAS}", cfg.cameras.len());
    }
    let model_path = cfg.resolve(&cfg.model.path);
    let manifest = cfg.model.manifest.as_ref().map(|m| cfg.resolve(m));
    let detector = Detector::load(
        &model_path,
        manifest.as_deref(),
        DetectorOptions { score_threshold: cfg.model.score_threshold, nms_iou: cfg.model.nms_iou, threads: cfg.model.threads },
    )
    .with_context(|| format!("model {}", model_path.display()))?;
    let model = ModelRef { name: detector.model_name().to_string(), sha256: detector.model_sha256().to_string() };
    tracing::info!(model = %model.name, classes = detector.class_names().len(), "detector ready");

    let state_dir = cfg.resolve(&cfg.device.state_dir);
    let outbox_dir = state_dir.join("outbox");
    let outbox = Outbox::open_with(&outbox_dir, cfg.outbox.max_mb << 20, cfg.outbox.memory_mb << 20).with_context(|| format!("outbox {}", outbox_dir.display()))?;
    let evidence = EvidenceStore::new(&state_dir.join("evidence"));
    let key = DeviceKey::load_or_create(&state_dir.join("keys")).context("evidence signing key")?;
    let public_key = key.public_key_hex();
    let sealer = Arc::new(Mutex::new(Sealer::open(evidence.dir(), key).context("evidence chain")?));

    let slots = Arc::new(FrameSlots::new(MAX_CAMERAS));
    let det_stats = Arc::new(DetectorStats::new(MAX_CAMERAS));
    let alert_stats = Arc::new(AlertStats::default());
    let speaker_stats = Arc::new(SpeakerStats::default());
    let telemetry = Arc::new(Telemetry {
        device_id: cfg.device.id.clone(),
        started: Instant::now(),
        cameras: Default::default(),
        slots: slots.clone(),
        detector: det_stats.clone(),
        alerts: alert_stats.clone(),
        link: Default::default(),
        flood: Default::default(),
        speakers: speaker_stats.clone(),
        retention: Default::default(),
    });

    let heartbeat = {
        let t = telemetry.clone();
        Box::new(move || t.heartbeat_json())
    };
    let (mut link, publisher, link_stats) =
        MqttLink::new(&cfg.mqtt, &cfg.device.id, outbox, heartbeat, |p| cfg.resolve(p)).map_err(anyhow::Error::msg)?;
    let mut command_rx = link.take_commands();
    link.remember_commands_in(&state_dir).context("state_dir/commands_done")?;
    if cfg.cameras.iter().any(|c| c.drone.as_ref().is_some_and(|d| d.telemetry == TelemetrySource::Osd)) {
        link.subscribe_also(crate::drone::osd::OSD_FILTER);
    }
    link.retain_on_connect(publisher.topics().pubkey(), public_key.into_bytes());
    *telemetry.link.lock().unwrap() = Some(link_stats);
    let speakers = {
        let p = publisher.clone();
        let topic = publisher.topics().speaker_result();
        let sink: ResultSink = Arc::new(move |r| {
            if let Err(e) = p.enqueue(&topic, r.to_json(), false) {
                tracing::error!("cannot queue a speaker result: {e}");
            }
        });
        Speakers::start(&cfg.speakers, &cfg.messages, cfg.base_dir.clone(), state_dir.join("speaker"), WallClock::system(), speaker_stats, sink)
    };
    let retention_stop = CancellationToken::new();
    tokio::spawn(retention_loop(cfg.evidence.clone(), sealer.clone(), publisher.clone(), telemetry.retention.clone(), retention_stop.clone()));
    let link_stop = CancellationToken::new();
    let link_task = tokio::spawn(link.run(link_stop.clone(), FLUSH_DEADLINE));
    let telemetry_stop = CancellationToken::new();
    if let Some(addr) = cfg.telemetry.listen.as_deref().filter(|a| !a.is_empty()) {
        match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => {
                let bound = l.local_addr().map(|a| a.to_string()).unwrap_or_default();
                tracing::info!(addr = %bound, "telemetry: /metrics and /healthz");
                // with port 0 the system picks the port; tools find it here
                if let Err(e) = std::fs::write(state_dir.join("telemetry.addr"), &bound) {
                    tracing::warn!("cannot write {}: {e}", state_dir.join("telemetry.addr").display());
                }
                tokio::spawn(telemetry::serve(l, telemetry.clone(), telemetry_stop.clone()));
            }
            // telemetry is not worth stopping the cameras for
            Err(e) => tracing::error!("telemetry: cannot listen on {addr}: {e}; /metrics and /healthz are off"),
        }
    }

    let routes: Arc<Mutex<Vec<Option<mpsc::Sender<DetectedFrame>>>>> = Arc::new(Mutex::new(vec![None; MAX_CAMERAS]));
    let det_thread = {
        let slots = slots.clone();
        let det_stats = det_stats.clone();
        let routes = routes.clone();
        std::thread::Builder::new()
            .name("detector".into())
            .spawn(move || detector_loop(detector, &slots, &det_stats, &routes))
            .context("detector thread")?
    };

    let mut shared = Shared {
        cfg: cfg.clone(),
        opts: opts.clone(),
        slots: slots.clone(),
        routes,
        publisher: publisher.clone(),
        evidence,
        sealer,
        model,
        alerts: alert_stats.clone(),
        telemetry: telemetry.clone(),
        speakers,
        osd: Default::default(),
        shutdown: shutdown.clone(),
    };
    let mut cameras: Vec<CameraRuntime> = Vec::new();
    for cam in &cfg.cameras {
        let slot = free_slot(&cameras);
        cameras.push(start_camera(&shared, cam.clone(), slot));
    }
    publish_camera_list(&shared, &cameras);
    tracing::info!(cameras = cameras.len(), device = %cfg.device.id, "hawkeye running");
    crate::notify::notify("READY=1");

    let mut check_ended = tokio::time::interval(Duration::from_millis(500));
    // pinged from this loop, so a stuck main task stops the pings and systemd restarts us
    let watchdog_every = crate::notify::watchdog_interval();
    let mut watchdog = tokio::time::interval(watchdog_every.unwrap_or(Duration::from_secs(3600)));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = watchdog.tick(), if watchdog_every.is_some() => crate::notify::notify("WATCHDOG=1"),
            Some((topic, payload)) = command_rx.recv() => {
                match crate::drone::osd::topic_sn(&topic) {
                    Some(sn) => drone_osd(&shared, sn, &payload),
                    None => handle_command(&mut shared, &mut cameras, &topic, &payload).await,
                }
            }
            _ = check_ended.tick() => {
                if opts.exit_when_sources_end && !cameras.is_empty() && cameras.iter().all(|c| c.source.is_finished()) {
                    tracing::info!("all sources ended");
                    break;
                }
            }
        }
    }

    crate::notify::notify("STOPPING=1");
    // Shutdown order: sources (pipelines to Null) → detector → rules (last events) → MQTT flush.
    for c in &cameras {
        c.stop.cancel();
    }
    for c in cameras.iter_mut() {
        let _ = (&mut c.source).await;
    }
    slots.close();
    let _ = tokio::task::spawn_blocking(move || det_thread.join()).await;
    shared.routes.lock().unwrap().iter_mut().for_each(|r| *r = None);
    for c in cameras {
        drop(c.ctl);
        let _ = c.rules.await;
    }
    retention_stop.cancel();
    link_stop.cancel();
    let _ = link_task.await;
    telemetry_stop.cancel();
    tracing::info!("hawkeye stopped");
    Ok(())
}

/// Sweeps the evidence store every `sweep_s` (first after 10 s): old and over-cap evidence is
/// retired, evidence still waiting in the outbox never.
async fn retention_loop(cfg: crate::config::EvidenceCfg, sealer: Arc<Mutex<Sealer>>, publisher: Publisher, stats: Arc<crate::evidence::retention::RetentionStats>, stop: CancellationToken) {
    let retain = Duration::from_secs_f64(cfg.retain_days * 86400.0);
    let max_bytes = cfg.max_mb << 20;
    let mut next = tokio::time::Instant::now() + Duration::from_secs(10).min(Duration::from_secs_f64(cfg.sweep_s));
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep_until(next) => {}
        }
        next = tokio::time::Instant::now() + Duration::from_secs_f64(cfg.sweep_s);
        let pending = publisher.pending_events();
        let (sealer, stats) = (sealer.clone(), stats.clone());
        let _ = tokio::task::spawn_blocking(move || crate::evidence::retention::sweep(&sealer, &pending, retain, max_bytes, &stats)).await;
    }
}

fn free_slot(cameras: &[CameraRuntime]) -> usize {
    (0..MAX_CAMERAS).find(|s| cameras.iter().all(|c| c.slot != *s)).expect("camera count checked against MAX_CAMERAS")
}

/// Puts telemetry's camera list (filled by `start_camera`) in the order of `cameras`.
fn publish_camera_list(shared: &Shared, cameras: &[CameraRuntime]) {
    let pos = |slot: usize| cameras.iter().position(|c| c.slot == slot);
    shared.telemetry.cameras.lock().unwrap().sort_by_key(|(slot, _)| pos(*slot));
}

/// A DJI OSD message: the aircraft's position for the drone camera with that serial number.
fn drone_osd(shared: &Shared, sn: &str, payload: &[u8]) {
    let Some(track) = shared.osd.lock().unwrap().get(sn).cloned() else { return };
    match crate::drone::osd::parse(payload) {
        Ok((at, fix)) => track.push(at, fix),
        Err(e) => {
            let n = shared.alerts.telemetry_errors.fetch_add(1, Ordering::Relaxed) + 1;
            if n <= 5 || n.is_multiple_of(1000) {
                tracing::warn!(sn, "bad OSD message ({n} so far): {e}");
            }
        }
    }
}

/// Starts a camera's source and rules tasks in frame slot `slot`.
fn start_camera(shared: &Shared, cam: Camera, slot: usize) -> CameraRuntime {
    let health = Arc::new(CameraHealth::new(&cam.id));
    shared.telemetry.cameras.lock().unwrap().push((slot, health.clone()));
    let (tx, rx) = mpsc::channel::<DetectedFrame>(4);
    shared.routes.lock().unwrap()[slot] = Some(tx);
    let (ctl_tx, ctl_rx) = mpsc::channel(8);
    let geo = cam.drone.as_ref().map(|d| {
        let track = Arc::new(GeoTrack::default());
        if let (TelemetrySource::Osd, Some(sn)) = (d.telemetry, &d.osd_sn) {
            shared.osd.lock().unwrap().insert(sn.clone(), track.clone());
        }
        track
    });
    let klv = geo.clone().filter(|_| cam.drone.as_ref().is_some_and(|d| d.telemetry == TelemetrySource::Klv));
    let ctx = EventCtx {
        geo,
        alerts: shared.alerts.clone(),
        flood: shared.telemetry.flood.clone(),
        cfg: shared.cfg.clone(),
        camera: cam.clone(),
        publisher: shared.publisher.clone(),
        evidence: shared.evidence.clone(),
        sealer: shared.sealer.clone(),
        model: shared.model.clone(),
        speakers: shared.speakers.clone(),
    };
    // templates with an `encoded` branch (RTSP H.264/H.265) feed a ring for event clips
    let has_encoded = source::launch_string(&cam, &shared.cfg.base_dir).is_ok_and(|l| l.contains(&format!("name={}", source::camera::ENCODED_NAME)));
    let ring = has_encoded.then(|| Arc::new(EncodedRing::new(cam.clip_ring_s, CLIP_RING_BYTES)));
    let rules = tokio::spawn(camera_rules(ctx, slot, rx, ctl_rx, ring.clone()));
    let stop = shared.shutdown.child_token();
    let source = tokio::spawn(source::run_camera(
        SourceCtx {
            index: slot,
            camera: cam.clone(),
            base_dir: shared.cfg.base_dir.clone(),
            slots: shared.slots.clone(),
            health,
            lossless: shared.opts.lossless,
            ring: ring.clone(),
            klv,
        },
        stop.clone(),
    ));
    CameraRuntime { cfg: cam, slot, stop, source, rules, ctl: ctl_tx }
}

/// Stops a camera: pipeline to Null, then its rules task once its last frames are handled.
async fn stop_camera(shared: &Shared, mut c: CameraRuntime) {
    c.stop.cancel();
    let _ = (&mut c.source).await;
    shared.routes.lock().unwrap()[c.slot] = None;
    drop(c.ctl);
    let _ = c.rules.await;
    shared.telemetry.cameras.lock().unwrap().retain(|(s, _)| *s != c.slot);
}

fn detector_loop(mut det: Detector, slots: &FrameSlots, stats: &DetectorStats, routes: &Mutex<Vec<Option<mpsc::Sender<DetectedFrame>>>>) {
    loop {
        let Some(frame) = slots.take(Duration::from_millis(200)) else {
            if slots.is_closed() {
                return;
            }
            continue;
        };
        let t0 = Instant::now();
        let result = det.detect(&frame.rgb, frame.width, frame.height);
        match result {
            Ok(detections) => {
                stats.record(frame.camera, t0.elapsed().as_micros() as u64);
                let route = routes.lock().unwrap().get(frame.camera).cloned().flatten();
                // rules are fast; waiting here only happens if a camera's events back up.
                // No route: the camera was removed by a reload while this frame was in flight.
                if let Some(tx) = route {
                    let _ = tx.blocking_send(DetectedFrame { frame, detections });
                }
            }
            Err(e) => {
                let k = stats.errors.fetch_add(1, Ordering::Relaxed);
                if k < 5 || k.is_multiple_of(1000) {
                    tracing::error!(camera = frame.camera, "inference failed ({} so far): {e}", k + 1);
                }
            }
        }
    }
}

/// Parses and carries out one command, and publishes the reply on `cmd_result`.
async fn handle_command(shared: &mut Shared, cameras: &mut Vec<CameraRuntime>, topic: &str, payload: &[u8]) {
    let topics = shared.publisher.topics().clone();
    let Some(name) = commands::command_name(topics.root(), topic) else { return };
    let (name, request_id, result) = match commands::parse(name, payload) {
        Err(e) => (e.name.clone(), commands::salvage_request_id(payload), Err(e.message)),
        Ok(req) => {
            let name = req.command.name().to_string();
            let result = match req.command {
                Command::Snapshot { camera_id } => match cameras.iter().find(|c| c.cfg.id == camera_id) {
                    None => Err(format!("unknown camera {camera_id:?}")),
                    Some(c) => {
                        let (tx, rx) = oneshot::channel();
                        let _ = c.ctl.send(CameraCmd::Snapshot { reply: tx }).await;
                        rx.await.unwrap_or_else(|_| Err("camera stopped".into()))
                    }
                },
                Command::Ack { event_id, operator, note } => {
                    let ack = Ack { operator, note, at: chrono::Utc::now() };
                    ask_cameras(cameras, &event_id, |reply| CameraCmd::Ack { event_id: event_id.clone(), ack: ack.clone(), reply }).await
                }
                Command::Recheck { event_id } => {
                    ask_cameras(cameras, &event_id, |reply| CameraCmd::Recheck { event_id: event_id.clone(), reply }).await
                }
                Command::Reload => reload(shared, cameras).await,
                Command::Speak { speaker, message, operator } => {
                    let origin = Origin::Operator { request_id: req.request_id.clone(), operator };
                    let reply = json!({ "queued": true, "speaker": speaker, "message": message, "result_topic": topics.speaker_result() });
                    shared.speakers.request(SpeakRequest { speaker, message, origin }).map(|()| reply)
                }
            };
            (name, req.request_id, result)
        }
    };
    let counter = if result.is_ok() { &shared.alerts.commands_ok } else { &shared.alerts.commands_failed };
    counter.fetch_add(1, Ordering::Relaxed);
    match &result {
        Ok(_) => tracing::info!(cmd = %name, "command done"),
        Err(e) => tracing::warn!(cmd = %name, "command refused: {e}"),
    }
    let body = commands::reply(&name, request_id.as_deref(), result);
    if let Err(e) = shared.publisher.enqueue(&topics.command_result(), body, false) {
        tracing::error!("cannot queue command reply: {e}");
    }
}

/// Asks each camera in turn about an event until one knows it.
async fn ask_cameras(
    cameras: &[CameraRuntime],
    event_id: &str,
    make: impl Fn(oneshot::Sender<Option<Result<serde_json::Value, String>>>) -> CameraCmd,
) -> Result<serde_json::Value, String> {
    for c in cameras {
        let (tx, rx) = oneshot::channel();
        if c.ctl.send(make(tx)).await.is_err() {
            continue;
        }
        if let Ok(Some(r)) = rx.await {
            return r;
        }
    }
    Err(format!("unknown event {event_id:?}"))
}

/// `cmd/reload`: re-reads the config file; a bad one is refused with all its errors and the
/// running config stays. Camera and zone changes are applied; changes elsewhere need a restart.
async fn reload(shared: &mut Shared, cameras: &mut Vec<CameraRuntime>) -> Result<serde_json::Value, String> {
    let path = shared.opts.config_path.clone().ok_or("this daemon was started without a config file")?;
    let new = Config::load(&path).map_err(|e| format!("{} error(s) in {}: {}", e.0.len(), path.display(), e.0.join("; ")))?;
    let fixed = |c: &Config| {
        json!({ "device": c.device, "mqtt": c.mqtt, "model": c.model, "outbox": c.outbox, "telemetry": c.telemetry, "evidence": c.evidence, "speaker": c.speakers, "message": c.messages })
    };
    let (old_fixed, new_fixed) = (fixed(&shared.cfg), fixed(&new));
    let needs_restart: Vec<&str> = ["device", "mqtt", "model", "outbox", "telemetry", "evidence", "speaker", "message"]
        .into_iter()
        .filter(|k| old_fixed[*k] != new_fixed[*k])
        .collect();
    if !needs_restart.is_empty() {
        return Err(format!("changes to [{}] need a restart; nothing was applied", needs_restart.join("], [")));
    }
    if new.cameras.len() > MAX_CAMERAS {
        return Err(format!("{} cameras configured; at most {MAX_CAMERAS}", new.cameras.len()));
    }
    let mut kept = Vec::new();
    let mut stopped = Vec::new();
    let mut i = 0;
    while i < cameras.len() {
        if new.cameras.contains(&cameras[i].cfg) {
            kept.push(cameras[i].cfg.id.clone());
            i += 1;
        } else {
            let c = cameras.remove(i);
            stopped.push(c.cfg.id.clone());
            stop_camera(shared, c).await;
        }
    }
    shared.cfg = new.clone();
    let mut started = Vec::new();
    for cam in &new.cameras {
        if !cameras.iter().any(|c| c.cfg == *cam) {
            let slot = free_slot(cameras);
            started.push(cam.id.clone());
            cameras.push(start_camera(shared, cam.clone(), slot));
        }
    }
    // keep the config's order for heartbeats and metrics
    cameras.sort_by_key(|c| new.cameras.iter().position(|n| n.id == c.cfg.id));
    publish_camera_list(shared, cameras);
    tracing::info!(?kept, ?stopped, ?started, "config reloaded");
    Ok(json!({ "kept": kept, "restarted_or_removed": stopped, "started": started }))
}
