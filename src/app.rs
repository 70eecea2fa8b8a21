//! `hawkeye run`: wires source → detect → track → rules → evidence → outbox → MQTT for every
//! camera in the config, and shuts everything down cleanly when `shutdown` fires.
//!
//! Threads and tasks: one GStreamer pipeline per camera (its own streaming threads) feeding
//! [`FrameSlots`]; one detector thread (ONNX inference is blocking CPU work) taking frames
//! round-robin; one tokio task per camera for tracking, rules and evidence; one MQTT link task.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::config::{Camera, Config};
use crate::detect::{self, Detection, Detector, DetectorOptions};
use crate::evidence::{EvidenceStore, Snapshot};
use crate::frame::Frame;
use crate::outbox::Outbox;
use crate::publish::{rfc3339, Alert, AlertObject, EvidenceRef, LinkStats, MqttLink, ModelRef, Publisher, SCHEMA_VERSION};
use crate::rules::{CameraRules, EventState, Transition};
use crate::schedule::FrameSlots;
use crate::source::{self, CameraHealth, HealthState, SourceCtx};
use crate::telemetry::{self, AlertStats, DetectorStats, Telemetry};
use crate::track::{Track, Tracker, TrackerParams};

/// How long the outbox may take to drain at shutdown before the rest waits on disk.
pub const FLUSH_DEADLINE: Duration = Duration::from_secs(3);

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
}

/// Runs the daemon until `shutdown` is cancelled (or, with `exit_when_sources_end`, until every
/// source has ended).
pub async fn run(cfg: Config, opts: RunOptions, shutdown: CancellationToken) -> anyhow::Result<()> {
    source::init_gstreamer().context("GStreamer")?;
    detect::init_runtime().context("ONNX Runtime")?;
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

    let n = cfg.cameras.len();
    let slots = Arc::new(FrameSlots::new(n));
    let health: Vec<Arc<CameraHealth>> = cfg.cameras.iter().map(|c| Arc::new(CameraHealth::new(&c.id))).collect();
    let det_stats = Arc::new(DetectorStats::new(n));
    let alert_stats = Arc::new(AlertStats::default());
    let telemetry = Arc::new(Telemetry {
        device_id: cfg.device.id.clone(),
        started: Instant::now(),
        health: health.clone(),
        slots: slots.clone(),
        detector: det_stats.clone(),
        alerts: alert_stats.clone(),
        link: Default::default(),
    });

    let heartbeat = {
        let t = telemetry.clone();
        Box::new(move |_: &LinkStats| t.heartbeat_json())
    };
    let (link, publisher, link_stats) =
        MqttLink::new(&cfg.mqtt, &cfg.device.id, outbox, heartbeat, |p| cfg.resolve(p)).map_err(anyhow::Error::msg)?;
    *telemetry.link.lock().unwrap() = Some(link_stats);
    let telemetry_stop = CancellationToken::new();
    if let Some(addr) = cfg.telemetry.listen.as_deref().filter(|a| !a.is_empty()) {
        match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => {
                tracing::info!(addr = %l.local_addr().map(|a| a.to_string()).unwrap_or_default(), "telemetry: /metrics and /healthz");
                tokio::spawn(telemetry::serve(l, telemetry.clone(), telemetry_stop.clone()));
            }
            // telemetry is not worth stopping the cameras for
            Err(e) => tracing::error!("telemetry: cannot listen on {addr}: {e}; /metrics and /healthz are off"),
        }
    }
    let link_stop = CancellationToken::new();
    let link_task = tokio::spawn(link.run(link_stop.clone(), FLUSH_DEADLINE));

    // detector thread → per-camera rules tasks
    let mut to_rules = Vec::with_capacity(n);
    let mut rules_tasks = Vec::with_capacity(n);
    for (i, cam) in cfg.cameras.iter().enumerate() {
        let (tx, rx) = mpsc::channel::<DetectedFrame>(4);
        to_rules.push(tx);
        let ctx = EventCtx {
            cfg: cfg.clone(),
            camera: cam.clone(),
            publisher: publisher.clone(),
            evidence: evidence.clone(),
            model: model.clone(),
            alerts: alert_stats.clone(),
        };
        rules_tasks.push(tokio::spawn(camera_rules(ctx, i, rx)));
    }
    let det_thread = {
        let slots = slots.clone();
        let det_stats = det_stats.clone();
        std::thread::Builder::new()
            .name("detector".into())
            .spawn(move || detector_loop(detector, &slots, &det_stats, to_rules))
            .context("detector thread")?
    };

    // sources
    let source_stop = shutdown.child_token();
    let mut sources = tokio::task::JoinSet::new();
    for (i, cam) in cfg.cameras.iter().enumerate() {
        let ctx = SourceCtx {
            index: i,
            camera: cam.clone(),
            base_dir: cfg.base_dir.clone(),
            slots: slots.clone(),
            health: health[i].clone(),
            lossless: opts.lossless,
        };
        sources.spawn(source::run_camera(ctx, source_stop.clone()));
    }
    tracing::info!(cameras = n, device = %cfg.device.id, "hawkeye running");

    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            r = sources.join_next() => match r {
                None => {
                    if opts.exit_when_sources_end {
                        tracing::info!("all sources ended");
                        break;
                    }
                    shutdown.cancelled().await;
                    break;
                }
                Some(Err(e)) => tracing::error!("camera task failed: {e}"),
                Some(Ok(())) => {}
            }
        }
    }

    // Shutdown order: sources (pipelines to Null) → detector → rules (last events) → MQTT flush.
    source_stop.cancel();
    while sources.join_next().await.is_some() {}
    slots.close();
    let _ = tokio::task::spawn_blocking(move || det_thread.join()).await;
    for t in rules_tasks {
        let _ = t.await;
    }
    link_stop.cancel();
    let _ = link_task.await;
    telemetry_stop.cancel();
    tracing::info!("hawkeye stopped");
    Ok(())
}

fn detector_loop(mut det: Detector, slots: &FrameSlots, stats: &DetectorStats, to_rules: Vec<mpsc::Sender<DetectedFrame>>) {
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
                let cam = frame.camera;
                // rules are fast; waiting here only happens if a camera's events back up
                let _ = to_rules[cam].blocking_send(DetectedFrame { frame, detections });
            }
            Err(e) => {
                let k = stats.errors.fetch_add(1, Ordering::Relaxed);
                if k < 5 || k % 1000 == 0 {
                    tracing::error!(camera = frame.camera, "inference failed ({} so far): {e}", k + 1);
                }
            }
        }
    }
}

/// What a camera's rules task needs to turn transitions into published alerts.
struct EventCtx {
    alerts: Arc<AlertStats>,
    cfg: Config,
    camera: Camera,
    publisher: Publisher,
    evidence: EvidenceStore,
    model: ModelRef,
}

async fn camera_rules(ctx: EventCtx, index: usize, mut rx: mpsc::Receiver<DetectedFrame>) {
    let prefix = format!("{}-{}", ctx.cfg.device.id, ctx.camera.id);
    let mut rules = CameraRules::new(&prefix, &ctx.camera.zones);
    let mut tracker = Tracker::new(TrackerParams::default());
    while let Some(df) = rx.recv().await {
        let f = &df.frame;
        let tracks = tracker.update(&df.detections, f.ts);
        for t in rules.evaluate(&tracks, f.width, f.height, f.ts, f.wall) {
            match emit(&ctx, &rules, &t, f, &tracks) {
                Ok(()) => {
                    ctx.alerts.raised.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => {
                    ctx.alerts.persist_errors.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(camera = index, event = %t.event_id, "cannot persist alert: {e:#}");
                }
            }
        }
    }
}

/// Stores evidence and queues the evidence messages and the alert in the outbox.
fn emit(ctx: &EventCtx, rules: &CameraRules, t: &Transition, f: &Frame, tracks: &[Track]) -> anyhow::Result<()> {
    let topics = ctx.publisher.topics();
    let mut evidence = Vec::new();
    if t.state == EventState::New {
        let clean = ctx.evidence.save_jpeg(&t.event_id, "clean", &f.rgb, f.width, f.height)?;
        let annotated_rgb = annotate(f, rules, t, tracks);
        let annotated = ctx.evidence.save_jpeg(&t.event_id, "annotated", &annotated_rgb, f.width, f.height)?;
        for s in [clean, annotated] {
            let topic = topics.evidence(&t.event_id, &s.name);
            ctx.publisher.enqueue(&topic, s.jpeg.clone(), false)?;
            evidence.push(evidence_ref(&s, topic));
        }
    }
    let alert = Alert {
        schema_version: SCHEMA_VERSION,
        event_id: t.event_id.clone(),
        state: t.state.as_str(),
        kind: t.kind.as_str(),
        violation: t.kind.violation(),
        severity: if t.state == EventState::End { "info" } else { "warning" },
        device_id: ctx.cfg.device.id.clone(),
        camera_id: ctx.camera.id.clone(),
        zone_id: t.zone_id.clone(),
        location: ctx.cfg.device.location.clone(),
        started_at: rfc3339(t.started_at),
        updated_at: rfc3339(f.wall),
        dwell_s: (t.dwell_s * 10.0).round() / 10.0,
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
        prev_hash: None,
        signature: None,
    };
    let payload = serde_json::to_vec(&alert)?;
    ctx.publisher.enqueue(&topics.alerts(), payload, false)?;
    tracing::info!(
        event = %t.event_id, state = t.state.as_str(), kind = t.kind.as_str(), zone = %t.zone_id,
        dwell_s = alert.dwell_s, objects = alert.objects.len(), "alert"
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
fn annotate(f: &Frame, rules: &CameraRules, t: &Transition, tracks: &[Track]) -> Vec<u8> {
    let mut img = image::RgbImage::from_raw(f.width, f.height, f.rgb.to_vec()).expect("frame size");
    if let Some(poly) = rules.polygons().nth(t.zone) {
        detect::draw_polygon(&mut img, &poly.to_pixels(f.width, f.height), image::Rgb([255, 200, 0]));
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

/// Where a config's state (outbox, evidence) lives.
pub fn state_dir(cfg: &Config) -> PathBuf {
    cfg.resolve(&cfg.device.state_dir)
}

/// True when a camera health counts as delivering video.
pub fn is_streaming(h: &CameraHealth) -> bool {
    h.snapshot().state == HealthState::Streaming
}
