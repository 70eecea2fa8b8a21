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

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::json;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::{Camera, Config};
use crate::config::TelemetrySource;
use crate::detect::{self, Detection, Detector, DetectorOptions};
use crate::drone::{DroneRules, GeoTrack};
use crate::evidence::{record_clip, ClipInfo, DeviceKey, EncodedRing, EvidenceStore, ManifestInput, Masker, Sealer, Snapshot};
use crate::frame::Frame;
use crate::outbox::Outbox;
use crate::publish::commands::{self, Command};
use crate::publish::{rfc3339, Alert, AlertAck, AlertObject, EvidenceRef, ManifestRef, MqttLink, ModelRef, Publisher, SCHEMA_VERSION};
use crate::rules::{Ack, CameraRules, EventState, Transition};
use crate::schedule::FrameSlots;
use crate::source::{self, CameraHealth, SourceCtx};
use crate::speaker::{Origin, Reminders, ResultSink, SpeakRequest, SpeakerStats, Speakers, WallClock};
use crate::telemetry::{self, AlertStats, DetectorStats, Telemetry};
use crate::track::{Track, Tracker, TrackerParams};

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
    let outbox = Outbox::open_bounded(&outbox_dir, cfg.outbox.max_mb << 20).with_context(|| format!("outbox {}", outbox_dir.display()))?;
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

/// What a camera's rules task needs to turn transitions into published alerts.
struct EventCtx {
    alerts: Arc<AlertStats>,
    /// Current flood levels, shared with the heartbeat.
    flood: Arc<Mutex<std::collections::BTreeMap<String, (crate::rules::FloodLevel, f64)>>>,
    cfg: Config,
    camera: Camera,
    publisher: Publisher,
    evidence: EvidenceStore,
    sealer: Arc<Mutex<Sealer>>,
    model: ModelRef,
    speakers: Speakers,
    /// Drones: the camera's positions (KLV or OSD).
    geo: Option<Arc<GeoTrack>>,
}

impl EventCtx {
    /// A drone frame's position: KLV fixes are keyed by stream time, OSD fixes by Unix time.
    fn fix_for(&self, f: &Frame) -> Option<crate::drone::GeoFix> {
        let (d, track) = (self.camera.drone.as_ref()?, self.geo.as_ref()?);
        let at = match d.telemetry {
            TelemetrySource::Klv => f.ts,
            TelemetrySource::Osd => f.wall.timestamp_micros() as f64 / 1e6,
        };
        track.at(at, d.max_fix_age_s)
    }

    /// A zone's loudspeaker warning for a transition (if its `speak.on` names the state), and
    /// the reminders due while events stay active. Never waits on the speaker.
    fn warn(&self, reminders: &mut Reminders, t: &Transition) {
        let Some(speak) = self.camera.zones.get(t.zone).and_then(|z| z.speak.as_ref()) else { return };
        if reminders.on_transition(speak, t.zone, &t.event_id, t.state.as_str(), t.ts) {
            self.request_warning(t.zone, &t.event_id, t.state.as_str());
        }
    }

    fn remind(&self, reminders: &mut Reminders, ts: f64) {
        for (event_id, zone) in reminders.due(ts, |z| self.camera.zones.get(z).and_then(|z| z.speak.as_ref())) {
            self.request_warning(zone, &event_id, "active");
        }
    }

    fn request_warning(&self, zone: usize, event_id: &str, state: &str) {
        let z = &self.camera.zones[zone];
        let Some(speak) = &z.speak else { return };
        let origin = Origin::Alert { event_id: event_id.into(), camera_id: self.camera.id.clone(), zone_id: z.id.clone(), kind: z.kind.as_str().into(), state: state.into() };
        if let Err(e) = self.speakers.request(SpeakRequest { speaker: speak.speaker.clone(), message: speak.message.clone(), origin }) {
            tracing::error!(event = %event_id, "loudspeaker warning not requested: {e}");
        }
    }
}

async fn camera_rules(
    ctx: EventCtx,
    index: usize,
    mut rx: mpsc::Receiver<DetectedFrame>,
    mut ctl: mpsc::Receiver<CameraCmd>,
    ring: Option<Arc<EncodedRing>>,
) {
    // clips being recorded (the post-event seconds are still to come)
    let mut clips: tokio::task::JoinSet<(Transition, Result<ClipInfo, crate::evidence::ClipError>)> = tokio::task::JoinSet::new();
    let prefix = format!("{}-{}", ctx.cfg.device.id, ctx.camera.id);
    // privacy: faces and plates are masked in every picture that leaves the device
    let privacy_on = ctx.camera.privacy.faces || ctx.camera.privacy.plates;
    let mut masker = if privacy_on {
        match Masker::new(&ctx.camera.privacy) {
            Ok(m) => Some(m),
            Err(e) => {
                // without a working masker nothing identifiable may leave the device
                tracing::error!(camera = index, "privacy masking unavailable, snapshots stay on the device: {e}");
                None
            }
        }
    } else {
        None
    };
    let mut rules = CameraRules::new(&prefix, &ctx.camera.zones);
    let mut tracker = Tracker::new(TrackerParams::default());
    let mut reminders = Reminders::default();
    let mut drone = ctx.camera.drone.as_ref().map(|d| DroneRules::new(&prefix, d));
    // the latest frame and its tracks, for snapshots and re-checks
    let mut last: Option<(Frame, Vec<Track>)> = None;
    loop {
        tokio::select! {
            df = rx.recv() => {
                let Some(df) = df else { break };
                let f = &df.frame;
                let tracks = tracker.update(&df.detections, f.ts);
                for t in rules.evaluate(&tracks, f.width, f.height, f.ts, f.wall) {
                    persist(&ctx, index, &rules, &t, f, &tracks, Privacy { on: privacy_on, masker: masker.as_mut() });
                    ctx.warn(&mut reminders, &t);
                    if let (EventState::New, Some(ring)) = (t.state, &ring) {
                        let (start, end) = (t.ts - ctx.camera.clip_pre_s, t.ts + ctx.camera.clip_post_s);
                        let out = ctx.evidence.dir().join(&t.event_id).join("clip.mp4");
                        let deadline = Duration::from_secs_f64(ctx.camera.clip_post_s + 30.0);
                        let ring = ring.clone();
                        clips.spawn(async move { (t, record_clip(ring, start, end, out, deadline).await) });
                    }
                }
                if let Some(dr) = drone.as_mut() {
                    let fix = ctx.fix_for(f);
                    for s in dr.evaluate(&tracks, fix.as_ref(), f.ts, f.wall) {
                        let t = Transition {
                            state: EventState::New, event_id: s.event_id, zone: usize::MAX, zone_id: s.zone_id, kind: s.kind,
                            started_ts: s.ts, ts: s.ts, started_at: s.wall, dwell_s: 0.0, objects: vec![s.object], ack: None, flood: None,
                            geo: Some(s.fix),
                        };
                        persist(&ctx, index, &rules, &t, f, &tracks, Privacy { on: privacy_on, masker: masker.as_mut() });
                    }
                }
                for (zone, level, coverage) in rules.flood_levels() {
                    ctx.flood.lock().unwrap().insert(format!("{}/{zone}", ctx.camera.id), (level, coverage));
                }
                for id in rules.due_rechecks(f.ts) {
                    if let Ok(t) = rules.recheck(&id, &tracks, f.width, f.height, f.ts, f.wall) {
                        persist(&ctx, index, &rules, &t, f, &tracks, Privacy { on: privacy_on, masker: masker.as_mut() });
                        ctx.warn(&mut reminders, &t);
                    }
                }
                ctx.remind(&mut reminders, f.ts);
                last = Some((df.frame, tracks));
            }
            Some(done) = clips.join_next(), if !clips.is_empty() => match done {
                Ok((t, Ok(clip))) => {
                    if let Err(e) = emit_clip(&ctx, &t, &clip, privacy_on) {
                        tracing::error!(camera = index, event = %t.event_id, "cannot persist the clip: {e:#}");
                    }
                }
                Ok((t, Err(e))) => tracing::warn!(camera = index, event = %t.event_id, "no clip: {e}"),
                Err(e) => tracing::error!(camera = index, "clip task failed: {e}"),
            },
            Some(cmd) = ctl.recv() => match cmd {
                CameraCmd::Snapshot { reply } => {
                    let p = Privacy { on: privacy_on, masker: masker.as_mut() };
                    let _ = reply.send(tokio::task::block_in_place(|| snapshot(&ctx, last.as_ref().map(|l| &l.0), p)));
                }
                CameraCmd::Ack { event_id, ack, reply } => {
                    let ts = last.as_ref().map_or(0.0, |l| l.0.ts);
                    let r = rules.knows(&event_id).then(|| {
                        rules.ack(&event_id, ack, ts).map(|()| json!({ "event_id": event_id, "camera_id": ctx.camera.id }))
                    });
                    let _ = reply.send(r);
                }
                CameraCmd::Recheck { event_id, reply } => {
                    let r = rules.knows(&event_id).then(|| match &last {
                        None => Err("no frame from this camera yet".to_string()),
                        Some((f, tracks)) => rules.recheck(&event_id, tracks, f.width, f.height, f.ts, f.wall).map(|t| {
                            persist(&ctx, index, &rules, &t, f, tracks, Privacy { on: privacy_on, masker: masker.as_mut() });
                            ctx.warn(&mut reminders, &t);
                            json!({ "event_id": event_id, "state": t.state.as_str(), "objects": t.objects.len() })
                        }),
                    });
                    let _ = reply.send(r);
                }
            },
        }
    }
}

/// The camera's privacy setting and its masker (None when masking is off or unavailable).
struct Privacy<'a> {
    on: bool,
    masker: Option<&'a mut Masker>,
}

impl Privacy<'_> {
    /// A copy of the frame that may leave the device: masked when privacy is on; `None` when
    /// privacy is on but masking is not possible.
    fn publishable(&mut self, f: &Frame) -> Option<Vec<u8>> {
        let mut rgb = f.rgb.to_vec();
        if !self.on {
            return Some(rgb);
        }
        let m = self.masker.as_mut()?;
        match m.mask(&mut rgb, f.width, f.height) {
            Ok(report) => {
                if !report.is_empty() {
                    tracing::debug!(faces = report.faces.len(), plates = report.plates.len(), "privacy: masked");
                }
                Some(rgb)
            }
            Err(e) => {
                tracing::error!("privacy masking failed, the picture stays on the device: {e}");
                None
            }
        }
    }
}

/// Queues a transition's alert (and evidence) and counts the outcome.
fn persist(ctx: &EventCtx, index: usize, rules: &CameraRules, t: &Transition, f: &Frame, tracks: &[Track], privacy: Privacy) {
    // evidence transitions run face/plate detection (a few hundred ms): keep the runtime free
    let result = if matches!(t.state, EventState::Update | EventState::End) {
        emit(ctx, rules, t, f, tracks, privacy)
    } else {
        tokio::task::block_in_place(|| emit(ctx, rules, t, f, tracks, privacy))
    };
    match result {
        Ok(()) => {
            ctx.alerts.raised.fetch_add(1, Ordering::Relaxed);
        }
        Err(e) => {
            ctx.alerts.persist_errors.fetch_add(1, Ordering::Relaxed);
            tracing::error!(camera = index, event = %t.event_id, "cannot persist alert: {e:#}");
        }
    }
}

/// `cmd/snapshot`: the camera's latest frame as JPEG on `…/snapshot/{camera}`.
fn snapshot(ctx: &EventCtx, frame: Option<&Frame>, mut privacy: Privacy) -> Result<serde_json::Value, String> {
    let f = frame.ok_or("no frame from this camera yet")?;
    let rgb = privacy.publishable(f).ok_or("privacy masking is unavailable on this camera; no picture may leave the device")?;
    let jpeg = crate::evidence::encode_jpeg(&rgb, f.width, f.height).map_err(|e| e.to_string())?;
    let sha = crate::evidence::seal::sha256_hex(&jpeg);
    let topic = ctx.publisher.topics().snapshot(&ctx.camera.id);
    let bytes = jpeg.len();
    ctx.publisher.enqueue(&topic, jpeg, false).map_err(|e| format!("cannot queue the snapshot: {e}"))?;
    Ok(json!({
        "camera_id": ctx.camera.id, "topic": topic, "sha256": sha, "bytes": bytes,
        "width": f.width, "height": f.height, "captured_at": rfc3339(f.wall),
    }))
}

/// The seal of one evidence set, as an alert carries it.
#[derive(Default)]
struct SealRefs {
    manifest: Option<ManifestRef>,
    prev_hash: Option<String>,
    signature: Option<String>,
}

/// Seals evidence files of a transition (at wall time `time`) and queues the manifest.
fn seal_files(ctx: &EventCtx, t: &Transition, state: &str, time: chrono::DateTime<chrono::Utc>, files: Vec<(String, PathBuf)>) -> anyhow::Result<SealRefs> {
    let sealed = ctx.sealer.lock().unwrap().seal(ManifestInput {
        event_id: t.event_id.clone(),
        state: state.into(),
        kind: t.kind.as_str().into(),
        violation: t.kind.violation().into(),
        device_id: ctx.cfg.device.id.clone(),
        camera_id: ctx.camera.id.clone(),
        zone_id: t.zone_id.clone(),
        location: location_of(ctx, t),
        time,
        model_name: ctx.model.name.clone(),
        model_sha256: ctx.model.sha256.clone(),
        confidence: t.objects.iter().map(|o| o.score).fold(0.0, f32::max),
        dwell_s: t.dwell_s,
        files,
    })?;
    let topic = ctx.publisher.topics().evidence(&t.event_id, &format!("manifest-{}", sealed.seq));
    ctx.publisher.enqueue(&topic, std::fs::read(&sealed.manifest_path)?, false)?;
    Ok(SealRefs {
        manifest: Some(ManifestRef { seq: sealed.seq, sha256: sealed.manifest_sha256, topic, path: sealed.manifest_path.display().to_string() }),
        prev_hash: sealed.prev_manifest_sha256,
        signature: Some(sealed.signature_hex),
    })
}

/// Stores evidence and queues the evidence messages and the alert in the outbox.
fn emit(ctx: &EventCtx, rules: &CameraRules, t: &Transition, f: &Frame, tracks: &[Track], mut privacy: Privacy) -> anyhow::Result<()> {
    let topics = ctx.publisher.topics();
    let mut evidence = Vec::new();
    let mut seal = SealRefs::default();
    let names = match t.state {
        EventState::New => Some(("clean".to_string(), "annotated".to_string())),
        EventState::Resolved | EventState::Recurred => {
            let stamp = f.wall.format("%Y%m%dT%H%M%S%.3fZ");
            Some((format!("recheck-{stamp}-clean"), format!("recheck-{stamp}-annotated")))
        }
        EventState::Update | EventState::End => None,
    };
    if let Some((clean_name, annotated_name)) = names {
        let mut files = Vec::new();
        if privacy.on {
            // the unmasked original stays on the device, sealed with the rest
            let original = ctx.evidence.save_jpeg(&t.event_id, &format!("{clean_name}-original"), &f.rgb, f.width, f.height)?;
            files.push((original.name.clone(), original.path.clone()));
        }
        if let Some(rgb) = privacy.publishable(f) {
            let clean = ctx.evidence.save_jpeg(&t.event_id, &clean_name, &rgb, f.width, f.height)?;
            let annotated_rgb = annotate(&rgb, f.width, f.height, rules, t, tracks);
            let annotated = ctx.evidence.save_jpeg(&t.event_id, &annotated_name, &annotated_rgb, f.width, f.height)?;
            for s in [&clean, &annotated] {
                let topic = topics.evidence(&t.event_id, &s.name);
                ctx.publisher.enqueue(&topic, s.jpeg.clone(), false)?;
                evidence.push(evidence_ref(s, topic));
                files.push((s.name.clone(), s.path.clone()));
            }
        }
        seal = seal_files(ctx, t, t.state.as_str(), f.wall, files)?;
    }
    queue_alert(ctx, t, t.state, f.wall, evidence, seal)
}

/// The event's clip is written: seal it, queue it, and tell the command centre with an
/// `update` alert that carries it.
/// With privacy on, the clip (which cannot be masked without re-encoding) stays on the device:
/// the alert names its path and hash, and no topic.
fn emit_clip(ctx: &EventCtx, t: &Transition, clip: &ClipInfo, privacy_on: bool) -> anyhow::Result<()> {
    let now = chrono::Utc::now();
    let bytes = std::fs::read(&clip.path)?;
    let topic = if privacy_on { String::new() } else { ctx.publisher.topics().evidence(&t.event_id, "clip") };
    let evidence = vec![EvidenceRef {
        name: "clip".into(),
        content_type: "video/mp4",
        sha256: crate::evidence::seal::sha256_hex(&bytes),
        bytes: bytes.len(),
        width: clip.width,
        height: clip.height,
        topic: topic.clone(),
        path: clip.path.display().to_string(),
    }];
    if !privacy_on {
        ctx.publisher.enqueue(&topic, bytes, false)?;
    }
    let seal = seal_files(ctx, t, "clip", now, vec![("clip".into(), clip.path.clone())])?;
    queue_alert(ctx, t, EventState::Update, now, evidence, seal)
}

/// Where an event happened: a drone's alert is where the frame was taken, not where the edge
/// box is.
fn location_of(ctx: &EventCtx, t: &Transition) -> crate::config::Location {
    match &t.geo {
        Some(g) => crate::config::Location { lat: Some(g.lat), lon: Some(g.lon), address: String::new() },
        None => ctx.cfg.device.location.clone(),
    }
}

/// Builds the alert JSON for a transition and queues it.
fn queue_alert(ctx: &EventCtx, t: &Transition, state: EventState, updated: chrono::DateTime<chrono::Utc>, evidence: Vec<EvidenceRef>, seal: SealRefs) -> anyhow::Result<()> {
    let alert = Alert {
        schema_version: SCHEMA_VERSION,
        event_id: t.event_id.clone(),
        state: state.as_str(),
        kind: t.kind.as_str(),
        violation: t.kind.violation(),
        severity: if matches!(state, EventState::End | EventState::Resolved) { "info" } else { "warning" },
        device_id: ctx.cfg.device.id.clone(),
        camera_id: ctx.camera.id.clone(),
        zone_id: t.zone_id.clone(),
        location: location_of(ctx, t),
        started_at: rfc3339(t.started_at),
        updated_at: rfc3339(updated),
        dwell_s: (t.dwell_s * 10.0).round() / 10.0,
        level: t.flood.map(|(l, _)| l.as_str()),
        coverage: t.flood.map(|(_, c)| (c * 1000.0).round() / 1000.0),
        objects: t
            .objects
            .iter()
            .map(|o| AlertObject {
                class: o.class.clone(),
                score: (o.score * 1000.0).round() / 1000.0,
                bbox: [o.bbox.x1.round(), o.bbox.y1.round(), o.bbox.x2.round(), o.bbox.y2.round()],
                track_id: o.id,
            })
            .collect(),
        model: ctx.model.clone(),
        evidence,
        ack: t.ack.as_ref().map(|a| AlertAck { operator: a.operator.clone(), note: a.note.clone(), at: rfc3339(a.at) }),
        manifest: seal.manifest,
        prev_hash: seal.prev_hash,
        signature: seal.signature,
        geo: t.geo.clone(),
    };
    let payload = serde_json::to_vec(&alert)?;
    ctx.publisher.enqueue(&ctx.publisher.topics().alerts(), payload, false)?;
    tracing::info!(
        event = %t.event_id, state = state.as_str(), kind = t.kind.as_str(), zone = %t.zone_id,
        dwell_s = alert.dwell_s, objects = alert.objects.len(), evidence = alert.evidence.len(), "alert"
    );
    Ok(())
}

fn evidence_ref(s: &Snapshot, topic: String) -> EvidenceRef {
    EvidenceRef {
        name: s.name.clone(),
        content_type: "image/jpeg",
        sha256: s.sha256.clone(),
        bytes: s.jpeg.len(),
        width: s.width,
        height: s.height,
        topic,
        path: s.path.display().to_string(),
    }
}

/// The frame with the event's zone outlined and every tracked object boxed (objects in the
/// zone in the alert colour).
fn annotate(rgb: &[u8], width: u32, height: u32, rules: &CameraRules, t: &Transition, tracks: &[Track]) -> Vec<u8> {
    let mut img = image::RgbImage::from_raw(width, height, rgb.to_vec()).expect("frame size");
    if let Some(poly) = rules.polygons().nth(t.zone) {
        detect::draw_polygon(&mut img, &poly.to_pixels(width, height), image::Rgb([255, 200, 0]));
    }
    for tr in tracks {
        let involved = t.objects.iter().any(|o| o.id == tr.id);
        let colour = image::Rgb(if involved { [255, 40, 40] } else { [80, 200, 80] });
        detect::draw_box(&mut img, &tr.bbox, colour, 2);
        let label = format!("{} #{}", tr.class, tr.id);
        detect::draw_label(&mut img, tr.bbox.x1 as i64, tr.bbox.y1 as i64, &label, colour, 1);
    }
    img.into_raw()
}

