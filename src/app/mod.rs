//! `hawkeye run`: wires source → detect → camera task → evidence worker → outbox → MQTT for
//! every camera in the config, answers commands ([`commands`]), reloads the config on request,
//! and shuts everything down in two phases when `shutdown` fires.
//!
//! Threads and tasks: one GStreamer pipeline per camera (its own streaming threads) feeding
//! [`FrameSlots`]; one detector thread (ONNX inference is blocking CPU work) taking frames
//! round-robin and handing them to the camera tasks with `try_send` (a camera that is behind
//! loses frames, counted; the detector never waits for it); one tokio task per camera
//! ([`crate::camera`]: tracking, rules, its commands); one evidence worker thread per camera
//! ([`crate::evidence::worker`]: pictures, masking, sealing, the alert JSON into the outbox); one
//! MQTT link task; this task, which supervises and handles commands.
//!
//! Shutdown, two phases: first the graceful order — sources (pipelines to Null) → detector →
//! camera tasks (their last frames) → evidence workers (open events get `end`, reason
//! `shutdown`) → MQTT flush — while a reporter logs every [`REPORT_EVERY`] what is still
//! running; at [`SHUTDOWN_DEADLINE`] whatever is left is abandoned (the outbox and the journal
//! keep it for the next start). A second SIGTERM/SIGINT exits at once.

mod commands;

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::camera::{CameraCmd, CameraCounters, CameraCtx, DetectedFrame, FRAME_QUEUE};
use crate::config::{Camera, Compiled, TelemetrySource};
use crate::detect::{self, Detector, DetectorOptions, GatedDetector, Segmenter, WaterSchedule};
use crate::drone::GeoTrack;
use crate::evidence::registry::DeviceSeq;
use crate::evidence::worker::{self, EvidenceStats, WorkerCtx};
use crate::evidence::{DeviceKey, EncodedRing, EvidenceStore, Sealer};
use crate::frame_slots::FrameSlots;
use crate::outbox::Outbox;
use crate::publish::{AlertContext, ModelRef, MqttLink, Publisher};
use crate::source::{self, CameraHealth, SourceCtx};
use crate::speaker::{ResultSink, SpeakerStats, Speakers, WallClock};
use crate::telemetry::{self, AlertStats, DetectorStats, Telemetry};

/// How long the outbox may take to drain at shutdown before the rest waits on disk.
pub const FLUSH_DEADLINE: Duration = Duration::from_secs(3);
/// How long the graceful phase of a shutdown may take in all.
pub const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(15);
/// How often a shutdown in progress says what it still waits for.
pub const REPORT_EVERY: Duration = Duration::from_secs(2);
/// Byte cap of a camera's encoded clip ring (40 s of a 4 Mbit/s main stream is ~20 MB).
const CLIP_RING_BYTES: usize = 64 << 20;
/// Most cameras one daemon runs (frame slots are allocated once).
pub const MAX_CAMERAS: usize = 64;

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

/// One running camera.
struct CameraRuntime {
    cfg: Camera,
    slot: usize,
    stop: CancellationToken,
    source: JoinHandle<()>,
    task: JoinHandle<()>,
    worker: Option<std::thread::JoinHandle<()>>,
    ctl: mpsc::Sender<CameraCmd>,
}

/// Where the detector hands a camera's frames.
#[derive(Clone)]
struct Route {
    camera_id: String,
    tx: mpsc::Sender<DetectedFrame>,
    counters: Arc<CameraCounters>,
    /// Water masks per second for this camera (0: none, it has no flooding zone or there is
    /// no water model).
    water_fps: f64,
    /// The camera's motion gate settings.
    gate: crate::detect::GateParams,
    /// The polygons of its zoomed zones and their looks per second.
    zoom: (Arc<Vec<Vec<[f64; 2]>>>, f64),
}

type Routes = Arc<Mutex<Vec<Option<Route>>>>;

/// What every camera shares.
struct Shared {
    cfg: Compiled,
    opts: RunOptions,
    state_dir: PathBuf,
    slots: Arc<FrameSlots>,
    routes: Routes,
    publisher: Publisher,
    evidence: EvidenceStore,
    sealer: Arc<Mutex<Sealer>>,
    model: ModelRef,
    device_seq: Arc<DeviceSeq>,
    evidence_stats: Arc<EvidenceStats>,
    alerts: Arc<AlertStats>,
    telemetry: Arc<Telemetry>,
    speakers: Speakers,
    /// Drone positions from DJI OSD, by aircraft serial number (filled by `start_camera`).
    osd: Arc<Mutex<std::collections::HashMap<String, Arc<GeoTrack>>>>,
    /// Per-camera hand-off counters (by camera id), for telemetry.
    hand_off: crate::camera::HandOff,
    shutdown: CancellationToken,
    tasks: TaskTracker,
}

/// Runs the daemon until `shutdown` is cancelled (or, with `exit_when_sources_end`, until every
/// source has ended).
pub async fn run(cfg: Compiled, opts: RunOptions, shutdown: CancellationToken) -> anyhow::Result<()> {
    let _state_lock = crate::state_lock::StateLock::acquire(&cfg.resolve(&cfg.device.state_dir)).map_err(anyhow::Error::msg)?;
    source::init_gstreamer().context("GStreamer")?;
    detect::init_runtime().context("ONNX Runtime")?;
    if cfg.cameras.len() > MAX_CAMERAS {
        anyhow::bail!("{} cameras configured; one daemon runs at most {MAX_CAMERAS}", cfg.cameras.len());
    }
    let state_dir = cfg.resolve(&cfg.device.state_dir);
    std::fs::create_dir_all(&state_dir).with_context(|| format!("state_dir {}", state_dir.display()))?;
    let model_path = cfg.resolve(&cfg.model.path);
    let manifest = cfg.model.manifest.as_ref().map(|m| cfg.resolve(m));
    let detector = Detector::load(
        &model_path,
        manifest.as_deref(),
        DetectorOptions { score_threshold: cfg.model.score_threshold, nms_iou: cfg.model.nms_iou, threads: cfg.model.threads },
    )
    .with_context(|| format!("model {}", model_path.display()))?;
    // `[model] workers` > 1: more sessions of the same model, each in its own detector thread
    let more_detectors = (1..cfg.model.workers.max(1))
        .map(|_| Detector::load(&model_path, manifest.as_deref(), detector.options()).with_context(|| format!("model {}", model_path.display())))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let model = ModelRef { name: detector.model_name().to_string(), sha256: detector.model_sha256().to_string() };
    tracing::info!(model = %model.name, classes = detector.class_names().len(), "detector ready");
    // loaded whenever configured (a reload may add flooding zones); it runs only for cameras
    // that have some
    let segmenter = match &cfg.water {
        Some(w) => {
            let path = cfg.resolve(&w.model);
            let manifest = w.manifest.as_ref().map(|m| cfg.resolve(m));
            Some(Segmenter::load(&path, manifest.as_deref(), cfg.model.threads).with_context(|| format!("water model {}", path.display()))?)
        }
        None => None,
    };

    let outbox_dir = state_dir.join("outbox");
    let outbox = Outbox::open_with(&outbox_dir, cfg.outbox.max_mb << 20, cfg.outbox.memory_mb << 20).with_context(|| format!("outbox {}", outbox_dir.display()))?;
    let evidence = EvidenceStore::new(&state_dir.join("evidence"));
    let key = DeviceKey::load_or_create(&state_dir.join("keys")).context("evidence signing key")?;
    let public_key = key.public_key_hex();
    let sealer = Sealer::open(evidence.dir(), key).context("evidence chain")?;
    let chain_head = sealer.head();
    let sealer = Arc::new(Mutex::new(sealer));

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
        hand_off: Default::default(),
        evidence_workers: Arc::new(EvidenceStats { chain_head: Mutex::new(chain_head), ..Default::default() }),
        load: Default::default(),
        webhooks: Default::default(),
    });

    let heartbeat = {
        let t = telemetry.clone();
        Box::new(move || t.heartbeat_json())
    };
    let (mut link, publisher, link_stats) =
        MqttLink::new(&cfg.mqtt, &cfg.device.id, outbox, heartbeat, |p| cfg.resolve(p)).map_err(anyhow::Error::msg)?;
    // `[[webhook]]` platforms see every message the broker's outbox takes (they keep alerts and,
    // when asked, evidence); their queues live beside the outbox
    let webhooks = crate::webhook::open_all(&cfg.webhooks, &state_dir, &cfg.device.id, publisher.topics(), |p| cfg.resolve(p))?;
    let publisher = publisher.with_webhooks(webhooks.clone());
    *telemetry.webhooks.lock().unwrap() = webhooks.iter().map(|w| w.stats.clone()).collect();
    let mut command_rx = link.take_commands();
    if cfg.fleet.is_some() {
        link.subscribe_also_qos1(&publisher.topics().config());
    }
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
        Speakers::start(&cfg.compiled_speakers, &cfg.messages, cfg.base_dir.clone(), state_dir.join("speaker"), WallClock::system(), speaker_stats, sink)
    };
    let tasks = TaskTracker::new();
    let retention_stop = CancellationToken::new();
    tasks.spawn(retention_loop(cfg.evidence.clone(), sealer.clone(), publisher.clone(), telemetry.retention.clone(), retention_stop.clone()));
    let link_stop = CancellationToken::new();
    let link_task = tasks.spawn(link.run(link_stop.clone(), FLUSH_DEADLINE));
    // what a webhook has not delivered at shutdown stays in its queue for the next run
    let webhook_stop = CancellationToken::new();
    for w in webhooks {
        tasks.spawn(w.run(webhook_stop.clone()));
    }
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
                tasks.spawn(telemetry::serve(l, telemetry.clone(), telemetry_stop.clone()));
            }
            // telemetry is not worth stopping the cameras for
            Err(e) => tracing::error!("telemetry: cannot listen on {addr}: {e}; /metrics and /healthz are off"),
        }
    }

    let routes: Routes = Arc::new(Mutex::new(vec![None; MAX_CAMERAS]));
    let det_threads = {
        let shared = Arc::new(DetectShared {
            slots: slots.clone(),
            stats: det_stats.clone(),
            routes: routes.clone(),
            seg: Mutex::new(segmenter),
            state: Mutex::new((0..MAX_CAMERAS).map(|_| SlotState::default()).collect()),
        });
        let mut threads = Vec::new();
        det_stats.workers.store(1 + more_detectors.len() as u64, Ordering::Relaxed);
        for (i, det) in std::iter::once(detector).chain(more_detectors).enumerate() {
            let shared = shared.clone();
            threads.push(std::thread::Builder::new().name(format!("detector-{i}")).spawn(move || detector_loop(det, &shared)).context("detector thread")?);
        }
        threads
    };

    let mut shared = Shared {
        cfg: cfg.clone(),
        opts: opts.clone(),
        device_seq: Arc::new(DeviceSeq::open(&state_dir.join("alert.seq"))),
        evidence_stats: telemetry.evidence_workers.clone(),
        state_dir: state_dir.clone(),
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
        hand_off: telemetry.hand_off.clone(),
        shutdown: shutdown.clone(),
        tasks: tasks.clone(),
    };
    recover_removed_cameras(&shared);
    let mut cameras: Vec<CameraRuntime> = Vec::new();
    for cam in &cfg.cameras {
        let slot = free_slot(&cameras);
        cameras.push(start_camera(&shared, cam.clone(), slot).with_context(|| format!("camera {}", cam.id))?);
    }
    publish_camera_list(&shared, &cameras);
    if cfg.fleet.is_some() {
        commands::publish_config_status(&shared, commands::started_status(&shared));
    }
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
                    None if topic == shared.publisher.topics().config() => commands::fleet_config(&mut shared, &mut cameras, &payload).await,
                    None => commands::handle_command(&mut shared, &mut cameras, &topic, &payload).await,
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
    tasks.close();
    let stage = Arc::new(Mutex::new(String::from("stopping sources")));
    let graceful = {
        let stage = stage.clone();
        let shared = &shared;
        async move {
            let set = |s: String| *stage.lock().unwrap() = s;
            for c in &cameras {
                c.stop.cancel();
            }
            for c in cameras.iter_mut() {
                let _ = (&mut c.source).await;
            }
            set("stopping the detector".into());
            slots.close();
            let _ = tokio::task::spawn_blocking(move || det_threads.into_iter().for_each(|t| drop(t.join()))).await;
            shared.routes.lock().unwrap().iter_mut().for_each(|r| *r = None);
            set(format!("camera tasks: {}", cameras.iter().map(|c| c.cfg.id.as_str()).collect::<Vec<_>>().join(", ")));
            let mut workers = Vec::new();
            for c in cameras {
                drop(c.ctl);
                let _ = c.task.await;
                workers.extend(c.worker);
            }
            set(format!("evidence workers ({} cameras): ending open events", workers.len()));
            let _ = tokio::task::spawn_blocking(move || workers.into_iter().for_each(|w| drop(w.join()))).await;
            set("mqtt: flushing the outbox".into());
            retention_stop.cancel();
            link_stop.cancel();
            webhook_stop.cancel();
            let _ = link_task.await;
            telemetry_stop.cancel();
            tasks.wait().await;
        }
    };
    let reporter = async {
        let t0 = Instant::now();
        loop {
            tokio::time::sleep(REPORT_EVERY).await;
            tracing::info!(elapsed_s = t0.elapsed().as_secs(), tasks = shared.tasks.len(), "shutdown: waiting for {}", stage.lock().unwrap());
        }
    };
    tokio::select! {
        _ = graceful => tracing::info!("hawkeye stopped"),
        _ = reporter => {}
        _ = tokio::time::sleep(SHUTDOWN_DEADLINE) => {
            tracing::error!(
                "shutdown: deadline of {} s passed while waiting for {}; exiting (undelivered alerts stay in the outbox and journal for the next start)",
                SHUTDOWN_DEADLINE.as_secs(), stage.lock().unwrap()
            );
        }
    }
    Ok(())
}

/// Sweeps the evidence store every `sweep_s` (first after 10 s): old and over-cap evidence is
/// retired, evidence still waiting in the outbox never; age on a clock no wall-clock step moves.
async fn retention_loop(cfg: crate::config::EvidenceCfg, sealer: Arc<Mutex<Sealer>>, publisher: Publisher, stats: Arc<crate::evidence::retention::RetentionStats>, stop: CancellationToken) {
    crate::evidence::retention::run(cfg, sealer, move || publisher.pending_events(), stats, stop).await
}

fn free_slot(cameras: &[CameraRuntime]) -> usize {
    (0..MAX_CAMERAS).find(|s| cameras.iter().all(|c| c.slot != *s)).expect("camera count checked against MAX_CAMERAS")
}

/// Puts telemetry's camera list (filled by `start_camera`) in the order of `cameras`.
fn publish_camera_list(shared: &Shared, cameras: &[CameraRuntime]) {
    let pos = |slot: usize| cameras.iter().position(|c| c.slot == slot);
    shared.telemetry.cameras.lock().unwrap().sort_by_key(|(slot, _)| pos(*slot));
    let body = config_json(&shared.cfg);
    if let Err(e) = shared.publisher.enqueue(&shared.publisher.topics().applied_config(), body.to_string().into_bytes(), true) {
        tracing::error!("cannot queue the retained config: {e}");
    }
}

/// The retained `…/applied_config`: cameras with their zones (as `cmd/zones` takes them, unset keys
/// left out), speakers and messages. No URLs, passwords or paths.
fn config_json(cfg: &crate::config::Config) -> serde_json::Value {
    fn no_nulls(v: serde_json::Value) -> serde_json::Value {
        match v {
            serde_json::Value::Object(m) => m.into_iter().filter(|(_, x)| !x.is_null()).map(|(k, x)| (k, no_nulls(x))).collect(),
            serde_json::Value::Array(a) => a.into_iter().map(no_nulls).collect(),
            x => x,
        }
    }
    serde_json::json!({
        "device_id": cfg.device.id,
        "ts": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "cameras": cfg.cameras.iter().map(|c| serde_json::json!({ "camera_id": c.id, "zones": no_nulls(serde_json::to_value(&c.zones).unwrap_or_default()) })).collect::<Vec<_>>(),
        "speakers": cfg.speakers.iter().map(|s| serde_json::json!({ "id": s.id })).collect::<Vec<_>>(),
        "messages": cfg.messages.iter().map(|m| serde_json::json!({ "id": m.id, "text": m.text })).collect::<Vec<_>>(),
    })
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

fn worker_ctx(shared: &Shared, camera_id: &str, privacy: crate::config::PrivacyCfg) -> WorkerCtx {
    WorkerCtx {
        camera_id: camera_id.to_string(),
        privacy,
        store: shared.evidence.clone(),
        sealer: shared.sealer.clone(),
        publisher: shared.publisher.clone(),
        device_seq: shared.device_seq.clone(),
        state_dir: shared.state_dir.clone(),
        stats: shared.evidence_stats.clone(),
        main_ring: None,
    }
}

/// Cameras gone from the config may have left unfinished alerts (journal) or open events: a
/// worker for each does its recovery and stops, so those alerts and `end`s still go out.
/// Pictures are masked with the default privacy settings.
fn recover_removed_cameras(shared: &Shared) {
    let mut ids = std::collections::BTreeSet::new();
    for d in std::fs::read_dir(shared.state_dir.join("events")).into_iter().flatten().flatten() {
        if let Some(id) = d.path().file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_suffix(".json")) {
            ids.insert(id.to_string());
        }
    }
    for d in std::fs::read_dir(shared.state_dir.join("journal")).into_iter().flatten().flatten() {
        if d.path().read_dir().is_ok_and(|mut r| r.next().is_some()) {
            ids.insert(d.file_name().to_string_lossy().into_owned());
        }
    }
    for id in ids.into_iter().filter(|id| !shared.cfg.cameras.iter().any(|c| worker::journal_dir(&shared.state_dir, &c.id) == worker::journal_dir(&shared.state_dir, id))) {
        tracing::info!(camera = %id, "camera no longer configured: finishing what it left");
        match worker::start(worker_ctx(shared, &id, crate::config::PrivacyCfg::default())) {
            Ok((h, _thread)) => h.send(crate::evidence::job::Job::Stop { reason: "shutdown" }),
            Err(e) => tracing::error!(camera = %id, "cannot start its evidence worker: {e}"),
        }
    }
}

/// Starts a camera's evidence worker, task and source in frame slot `slot`.
fn start_camera(shared: &Shared, cam: Camera, slot: usize) -> anyhow::Result<CameraRuntime> {
    // read before the worker starts (it ends the events a crash left open, which stay known)
    let earlier: Vec<_> = crate::evidence::registry::Registry::load(&worker::registry_path(&shared.state_dir, &cam.id)).entries();
    // templates with an `encoded` branch (RTSP H.264/H.265) feed a ring for event clips; a
    // dual-stream camera's main stream always does (and its snapshots are decoded from it)
    let has_encoded = cam.detect_url.is_some() || source::launch_string(&cam, &shared.cfg.base_dir).is_ok_and(|l| l.contains(&format!("name={}", source::camera::ENCODED_NAME)));
    let ring = has_encoded.then(|| Arc::new(EncodedRing::new(cam.clip_ring(), CLIP_RING_BYTES)));
    let wctx = WorkerCtx { main_ring: ring.clone().filter(|_| cam.detect_url.is_some()), ..worker_ctx(shared, &cam.id, cam.privacy.clone()) };
    let (evidence, worker_thread) = worker::start(wctx).context("evidence worker thread")?;
    let health = Arc::new(CameraHealth::new(&cam.id));
    if let Some(r) = &ring {
        health.attach_ring(r.clone());
    }
    shared.telemetry.cameras.lock().unwrap().push((slot, health.clone()));
    let (tx, rx) = mpsc::channel::<DetectedFrame>(FRAME_QUEUE);
    let counters = Arc::new(CameraCounters::default());
    {
        let mut h = shared.hand_off.lock().unwrap();
        h.retain(|(id, _)| *id != cam.id);
        h.push((cam.id.clone(), counters.clone()));
    }
    let water_fps = shared.cfg.water_rate(&cam);
    shared.routes.lock().unwrap()[slot] = Some(Route { camera_id: cam.id.clone(), tx, counters, water_fps, gate: cam.gate_params(), zoom: (Arc::new(crate::config::Config::zoom_polygons(&cam)), cam.zoom_fps) });
    let (ctl_tx, ctl_rx) = mpsc::channel(8);
    let geo = cam.drone.as_ref().map(|d| {
        let track = Arc::new(GeoTrack::default());
        if let (TelemetrySource::Osd, Some(sn)) = (d.telemetry, &d.osd_sn) {
            shared.osd.lock().unwrap().insert(sn.clone(), track.clone());
        }
        track
    });
    let klv = geo.clone().filter(|_| cam.drone.as_ref().is_some_and(|d| d.telemetry == TelemetrySource::Klv));
    let ctx = CameraCtx {
        camera: cam.clone(),
        zones: shared.cfg.zones(&cam.id).to_vec(),
        device_id: shared.cfg.device.id.clone(),
        alert_ctx: AlertContext { device_id: shared.cfg.device.id.clone(), camera_id: cam.id.clone(), location: shared.cfg.device.location.clone(), model: shared.model.clone() },
        evidence,
        evidence_dir: shared.evidence.dir().to_path_buf(),
        speakers: shared.speakers.clone(),
        flood: shared.telemetry.flood.clone(),
        geo,
        ring: ring.clone(),
        earlier,
    };
    let task = shared.tasks.spawn(crate::camera::run(ctx, rx, ctl_rx));
    let stop = shared.shutdown.child_token();
    let source = shared.tasks.spawn(source::run_camera(
        SourceCtx {
            index: slot,
            camera: cam.clone(),
            base_dir: shared.cfg.base_dir.clone(),
            slots: shared.slots.clone(),
            health,
            lossless: shared.opts.lossless,
            ring,
            klv,
        },
        stop.clone(),
    ));
    Ok(CameraRuntime { cfg: cam, slot, stop, source, task, worker: Some(worker_thread), ctl: ctl_tx })
}

/// Stops a camera: pipeline to Null, then its task once its last frames are handled, then its
/// evidence worker once it has ended the camera's open events.
async fn stop_camera(shared: &Shared, mut c: CameraRuntime) {
    c.stop.cancel();
    let _ = (&mut c.source).await;
    shared.routes.lock().unwrap()[c.slot] = None;
    drop(c.ctl);
    let _ = c.task.await;
    if let Some(w) = c.worker.take() {
        let _ = tokio::task::spawn_blocking(move || w.join()).await;
    }
    shared.telemetry.cameras.lock().unwrap().retain(|(s, _)| *s != c.slot);
}

/// Per-camera state of detection, kept by slot and handed to whichever worker holds the
/// camera's frame (a camera's frames are claimed one at a time).
#[derive(Default)]
struct SlotState {
    /// The motion gate and last detections, for the camera and settings it was made for.
    gate: Option<(String, GatedDetector)>,
    /// The water-mask schedule: camera, rate, schedule.
    water: Option<(String, f64, WaterSchedule)>,
    /// The zoomed looks at far zones, for the camera they were made for.
    zoom: Option<(String, crate::detect::Zoomer)>,
}

/// What the detector workers share.
struct DetectShared {
    slots: Arc<FrameSlots>,
    stats: Arc<DetectorStats>,
    routes: Routes,
    /// The water model (one for all workers: ~1 mask a second per flooding camera).
    seg: Mutex<Option<Segmenter>>,
    state: Mutex<Vec<SlotState>>,
}

/// A detector worker: frames round-robin from the slots (each camera's one at a time), the
/// motion gate, detections, and for cameras with mask-driven flooding zones a water mask when
/// one is due. The mask runs here rather than in a thread of its own: both models are
/// blocking CPU work on the same cores, so a separate thread would only make them compete; at
/// ~1 mask a second per camera it costs a small share, and a frame's mask and detections reach
/// the camera together. With `[model] workers` > 1 several of these run, each with its own
/// session.
fn detector_loop(mut det: Detector, shared: &DetectShared) {
    loop {
        let Some(frame) = shared.slots.claim(Duration::from_millis(200)) else {
            if shared.slots.is_closed() {
                return;
            }
            continue;
        };
        let cam = frame.camera;
        let mut st = std::mem::take(&mut shared.state.lock().unwrap()[cam]);
        detect_frame(&mut det, shared, &mut st, frame);
        shared.state.lock().unwrap()[cam] = st;
        shared.slots.release(cam);
    }
}

/// One claimed frame through the gate, the detector and the water model, handed to its camera.
fn detect_frame(det: &mut Detector, shared: &DetectShared, st: &mut SlotState, frame: crate::frame::Frame) {
    // No route: the camera was removed by a reload while this frame was in flight.
    let Some(route) = shared.routes.lock().unwrap().get(frame.camera).cloned().flatten() else { return };
    if st.gate.as_ref().is_none_or(|(id, g)| *id != route.camera_id || g.params() != route.gate) {
        st.gate = Some((route.camera_id.clone(), GatedDetector::new(route.gate)));
    }
    let (_, gated) = st.gate.as_mut().expect("set above");
    let result = gated.detect(&frame, || {
        let t0 = Instant::now();
        let d = det.detect(&frame.rgb, frame.width, frame.height);
        if d.is_ok() {
            shared.stats.record(frame.camera, t0.elapsed().as_micros() as u64);
        }
        d
    });
    let mut detections = match result {
        Ok((detections, skipped)) => {
            if skipped {
                route.counters.gated.fetch_add(1, Ordering::Relaxed);
            }
            detections
        }
        Err(e) => {
            let k = shared.stats.errors.fetch_add(1, Ordering::Relaxed);
            if k < 5 || k.is_multiple_of(1000) {
                tracing::error!(camera = %route.camera_id, "inference failed ({} so far): {e}", k + 1);
            }
            return;
        }
    };
    if !route.zoom.0.is_empty() {
        zoom_look(det, shared, st, &route, &frame, &mut detections);
    }
    let water = if route.water_fps > 0.0 {
        match shared.seg.lock().unwrap().as_mut() {
            Some(seg) => water_mask(seg, &mut st.water, &route, &frame),
            None => None,
        }
    } else {
        None
    };
    route.counters.handed.fetch_add(1, Ordering::Relaxed);
    // never wait for a camera: one that is behind loses this frame, the others don't
    if let Err(mpsc::error::TrySendError::Full(_)) = route.tx.try_send(DetectedFrame { frame, detections, water }) {
        let n = route.counters.dropped_behind.fetch_add(1, Ordering::Relaxed) + 1;
        if n <= 3 || n.is_multiple_of(1000) {
            tracing::warn!(camera = %route.camera_id, "camera task behind: detected frame dropped ({n} so far)");
        }
    }
}

/// The zoomed looks at the camera's far zones when one is due, merged into the frame's
/// detections; a failure is logged and counted, and the frame keeps its whole-frame detections.
fn zoom_look(det: &mut Detector, shared: &DetectShared, st: &mut SlotState, route: &Route, frame: &crate::frame::Frame, detections: &mut Vec<crate::detect::Detection>) {
    let (polygons, fps) = (&route.zoom.0, route.zoom.1);
    if st.zoom.as_ref().is_none_or(|(id, z)| *id != route.camera_id || !z.is_for(polygons, fps)) {
        st.zoom = Some((route.camera_id.clone(), crate::detect::Zoomer::new(polygons.to_vec(), fps)));
    }
    let (_, zoom) = st.zoom.as_mut().expect("set above");
    let t0 = Instant::now();
    match zoom.look(det, &frame.rgb, frame.width, frame.height, frame.ts, detections) {
        Ok(0) => {}
        Ok(n) => {
            route.counters.zoomed.fetch_add(n as u64, Ordering::Relaxed);
            route.counters.zoom_us.fetch_add(t0.elapsed().as_micros() as u64, Ordering::Relaxed);
        }
        Err(e) => {
            let k = shared.stats.errors.fetch_add(1, Ordering::Relaxed);
            if k < 5 || k.is_multiple_of(1000) {
                tracing::error!(camera = %route.camera_id, "zoomed look failed ({} so far): {e}", k + 1);
            }
        }
    }
}

/// The frame's water mask when the camera's schedule says one is due; a failure is logged and
/// counted, and the frame goes on without one (the zones keep their last coverage).
fn water_mask(seg: &mut Segmenter, schedule: &mut Option<(String, f64, WaterSchedule)>, route: &Route, frame: &crate::frame::Frame) -> Option<crate::detect::WaterMask> {
    if schedule.as_ref().is_none_or(|(id, fps, _)| *id != route.camera_id || *fps != route.water_fps) {
        *schedule = Some((route.camera_id.clone(), route.water_fps, WaterSchedule::new(route.water_fps)));
    }
    let (_, _, sched) = schedule.as_mut()?;
    if !sched.due(frame.ts) {
        return None;
    }
    let result = if crate::failpoint::value("fail_water_mask") == Some(route.camera_id.as_str()) {
        Err(crate::detect::DetectError::Inference("failpoint fail_water_mask".into()))
    } else {
        seg.segment(&frame.rgb, frame.width, frame.height)
    };
    match result {
        Ok(mask) => {
            route.counters.water_masks.fetch_add(1, Ordering::Relaxed);
            Some(mask)
        }
        Err(e) => {
            let n = route.counters.water_mask_failures.fetch_add(1, Ordering::Relaxed) + 1;
            if n <= 5 || n.is_multiple_of(1000) {
                tracing::warn!(camera = %route.camera_id, "water mask failed ({n} so far): {e}");
            }
            None
        }
    }
}
