//! Telemetry: the counters every stage keeps, rendered three ways — the MQTT heartbeat JSON,
//! Prometheus `/metrics`, and `/healthz` — plus the tiny HTTP server that serves the latter two.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde_json::json;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::publish::{rfc3339, LinkStats};
use crate::frame_slots::FrameSlots;
use crate::source::{CameraHealth, HealthState};

/// Upper bounds (seconds) of the inference latency histogram buckets.
const LATENCY_BUCKETS: [f64; 9] = [0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.2, 0.5, 1.0];

/// Detector counters, written by the detector thread.
#[derive(Debug, Default)]
pub struct DetectorStats {
    /// Detector workers running (busy time is summed over them).
    pub workers: AtomicU64,
    pub inferences: AtomicU64,
    pub errors: AtomicU64,
    pub busy_us: AtomicU64,
    buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    per_camera: Mutex<Vec<u64>>,
}

impl DetectorStats {
    pub fn new(cameras: usize) -> Self {
        DetectorStats { per_camera: Mutex::new(vec![0; cameras]), ..Default::default() }
    }

    /// Records one successful inference for `camera` that took `us` microseconds.
    pub fn record(&self, camera: usize, us: u64) {
        self.inferences.fetch_add(1, Ordering::Relaxed);
        self.busy_us.fetch_add(us, Ordering::Relaxed);
        let secs = us as f64 / 1e6;
        if let Some(i) = LATENCY_BUCKETS.iter().position(|b| secs <= *b) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        if let Some(c) = self.per_camera.lock().unwrap().get_mut(camera) {
            *c += 1;
        }
    }

    /// Frames of `camera` that went through the detector.
    pub fn inferred(&self, camera: usize) -> u64 {
        self.per_camera.lock().unwrap().get(camera).copied().unwrap_or(0)
    }
}

/// Alert counters, written by the rules tasks.
#[derive(Debug, Default)]
pub struct AlertStats {
    /// Alert messages queued in the outbox (every transition).
    pub raised: AtomicU64,
    /// Commands carried out / refused (malformed, unknown, failed).
    pub commands_ok: AtomicU64,
    pub commands_failed: AtomicU64,
    /// Alerts that could not be written to the outbox (disk full, …).
    pub persist_errors: AtomicU64,
    /// Drone telemetry messages that could not be used (bad OSD JSON, no position).
    pub telemetry_errors: AtomicU64,
}

/// Detector busy share at or above which, with frames being dropped, the box is overloaded.
pub const OVERLOAD_BUSY: f64 = 0.9;
/// Shortest window the load is measured over; readings in between return the last one.
const LOAD_WINDOW: std::time::Duration = std::time::Duration::from_secs(5);

/// The detector's load over the last window.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LoadReading {
    /// Share of wall time the detector spent inferring (1.0: never idle).
    pub busy_share: f64,
    /// Frames per second replaced in their slot by a newer one before the detector came round
    /// (all cameras): stale frames dropped.
    pub dropped_per_s: f64,
    /// Busy ≥ [`OVERLOAD_BUSY`] and frames dropped: the cameras ask for more than the box
    /// does; each gets a fair, lower share (round-robin over the slots).
    pub overloaded: bool,
}

/// The previous load sample and the last reading.
#[derive(Debug, Default)]
pub struct LoadWindow {
    prev: Option<(Instant, u64, u64)>,
    last: LoadReading,
}

impl LoadWindow {
    /// Folds in the counters' current values (`busy_us`, total dropped) at `now`.
    pub fn update(&mut self, now: Instant, busy_us: u64, dropped: u64) -> LoadReading {
        match self.prev {
            None => self.prev = Some((now, busy_us, dropped)),
            Some((t, b, d)) if now.duration_since(t) >= LOAD_WINDOW => {
                let secs = now.duration_since(t).as_secs_f64();
                let busy_share = (busy_us.saturating_sub(b) as f64 / 1e6 / secs).min(1.0);
                let dropped_per_s = dropped.saturating_sub(d) as f64 / secs;
                self.last = LoadReading { busy_share, dropped_per_s, overloaded: busy_share >= OVERLOAD_BUSY && dropped_per_s > 0.0 };
                self.prev = Some((now, busy_us, dropped));
            }
            Some(_) => {}
        }
        self.last
    }
}

/// Everything telemetry reads, shared by the tasks that write it.
pub struct Telemetry {
    pub device_id: String,
    pub started: Instant,
    /// Running cameras: (frame slot, health), in config order; changed by `reload`.
    pub cameras: Mutex<Vec<(usize, Arc<CameraHealth>)>>,
    pub slots: Arc<FrameSlots>,
    pub detector: Arc<DetectorStats>,
    pub alerts: Arc<AlertStats>,
    /// Set once the MQTT link exists.
    pub link: Mutex<Option<Arc<LinkStats>>>,
    /// Flood level and smoothed coverage per `camera/zone`.
    pub flood: Arc<Mutex<std::collections::BTreeMap<String, (crate::rules::FloodLevel, f64)>>>,
    /// Loudspeaker attempts by speaker and outcome.
    pub speakers: Arc<crate::speaker::SpeakerStats>,
    /// Evidence retention sweeps.
    pub retention: Arc<crate::evidence::retention::RetentionStats>,
    /// Detector → camera task hand-off, by camera id.
    pub hand_off: crate::camera::HandOff,
    /// The evidence workers (all cameras).
    pub evidence_workers: Arc<crate::evidence::worker::EvidenceStats>,
    /// The detector's load, measured over windows of at least 5 s.
    pub load: Mutex<LoadWindow>,
    /// `[[webhook]]` platforms, in config order.
    pub webhooks: Mutex<Vec<Arc<crate::webhook::WebhookStats>>>,
}

impl Telemetry {
    fn link(&self) -> Arc<LinkStats> {
        self.link.lock().unwrap().clone().unwrap_or_default()
    }

    fn outbox_health(&self) -> crate::outbox::OutboxHealth {
        let link = self.link();
        match link.outbox.get() {
            Some(ob) => ob.health(),
            None => crate::outbox::OutboxHealth { disk_ok: true, disk_errors: 0, disk_error: None, in_memory: 0, in_memory_bytes: 0, lost_in_memory: 0, corrupt: 0 },
        }
    }

    /// The detector's load over the last window (see [`LoadReading`]).
    pub fn load(&self) -> LoadReading {
        let dropped = self.camera_list().iter().map(|(slot, _)| self.slots.dropped(*slot)).sum();
        // busy time per worker: with N workers, N seconds of inference fit in a second
        let workers = self.detector.workers.load(Ordering::Relaxed).max(1);
        self.load.lock().unwrap().update(Instant::now(), self.detector.busy_us.load(Ordering::Relaxed) / workers, dropped)
    }

    fn camera_list(&self) -> Vec<(usize, Arc<CameraHealth>)> {
        self.cameras.lock().unwrap().clone()
    }

    /// The heartbeat published on `…/heartbeat`.
    pub fn heartbeat_json(&self) -> Vec<u8> {
        let link = self.link();
        let ob = self.outbox_health();
        let cameras: Vec<serde_json::Value> = self
            .camera_list()
            .iter()
            .map(|(i, h)| {
                let i = *i;
                let mut v = serde_json::to_value(h.snapshot()).unwrap_or_default();
                if let Some(fps) = v["fps"].as_f64() {
                    v["fps"] = json!((fps * 100.0).round() / 100.0);
                }
                v["inferred"] = json!(self.detector.inferred(i));
                v["dropped"] = json!(self.slots.dropped(i));
                if let Some((_, c)) = self.hand_off.lock().unwrap().iter().find(|(id, _)| Some(id.as_str()) == v["camera_id"].as_str()) {
                    v["handed"] = json!(c.handed.load(Ordering::Relaxed));
                    v["dropped_behind"] = json!(c.dropped_behind.load(Ordering::Relaxed));
                    v["gated"] = json!(c.gated.load(Ordering::Relaxed));
                    v["water_masks"] = json!(c.water_masks.load(Ordering::Relaxed));
                    v["water_mask_failures"] = json!(c.water_mask_failures.load(Ordering::Relaxed));
                    v["zoomed"] = json!(c.zoomed.load(Ordering::Relaxed));
                }
                v
            })
            .collect();
        let inferences = self.detector.inferences.load(Ordering::Relaxed);
        let busy = self.detector.busy_us.load(Ordering::Relaxed);
        let load = self.load();
        let v = json!({
            "device_id": self.device_id,
            "ts": rfc3339(chrono::Utc::now()),
            "uptime_s": self.started.elapsed().as_secs(),
            "cameras": cameras,
            "detector": {
                "inferences": inferences,
                "errors": self.detector.errors.load(Ordering::Relaxed),
                "mean_ms": if inferences > 0 { (busy as f64 / inferences as f64 / 10.0).round() / 100.0 } else { 0.0 },
                "busy_share": (load.busy_share * 1000.0).round() / 1000.0,
                "dropped_per_s": (load.dropped_per_s * 100.0).round() / 100.0,
            },
            "overloaded": load.overloaded,
            "alerts_raised": self.evidence_workers.alerts.load(Ordering::Relaxed),
            "evidence_worker": {
                "queued": self.evidence_workers.queued.load(Ordering::Relaxed),
                "alert_errors": self.evidence_workers.alert_errors.load(Ordering::Relaxed),
                "evidence_errors": self.evidence_workers.evidence_errors.load(Ordering::Relaxed),
                "behind": self.evidence_workers.behind.load(Ordering::Relaxed),
                "replayed": self.evidence_workers.replayed.load(Ordering::Relaxed),
                "main_snapshots": self.evidence_workers.main_snapshots.load(Ordering::Relaxed),
                "main_fallbacks": self.evidence_workers.main_fallbacks.load(Ordering::Relaxed),
                "ended_restart": self.evidence_workers.ended_restart.load(Ordering::Relaxed),
                "ended_shutdown": self.evidence_workers.ended_shutdown.load(Ordering::Relaxed),
                "disk_error": self.evidence_workers.disk_error.lock().unwrap().clone(),
            },
            "drone_telemetry_errors": self.alerts.telemetry_errors.load(Ordering::Relaxed),
            "speakers": self.speakers.to_json(),
            "webhooks": self.webhooks.lock().unwrap().iter().map(|w| (w.id.clone(), w.to_json())).collect::<serde_json::Map<String, serde_json::Value>>(),
            "evidence": {
                "store_mb": (self.retention.store_bytes.load(Ordering::Relaxed) as f64 / 1048576.0 * 10.0).round() / 10.0,
                "deleted_expired": self.retention.expired.load(Ordering::Relaxed),
                "deleted_early": self.retention.early.load(Ordering::Relaxed),
                "kept_undelivered": self.retention.kept_undelivered.load(Ordering::Relaxed),
                "over_cap_mb": (self.retention.over_cap_bytes.load(Ordering::Relaxed) as f64 / 1048576.0 * 10.0).round() / 10.0,
                "clock_jumps": self.retention.clock_jumps.load(Ordering::Relaxed),
                "clock_offset_s": self.retention.clock_offset_s.load(Ordering::Relaxed),
                "chain_head": self.evidence_workers.chain_head.lock().unwrap().as_ref().map(|(seq, sha)| json!({ "seq": seq, "sha256": sha })),
            },
            "flood": self.flood.lock().unwrap().iter().map(|(k, (l, c))| (k.clone(), json!({ "level": l.as_str(), "coverage": (c * 1000.0).round() / 1000.0 }))).collect::<serde_json::Map<String, serde_json::Value>>(),
            "mqtt": {
                "connects": link.connects.load(Ordering::Relaxed),
                "published": link.published.load(Ordering::Relaxed),
                "acked": link.acked.load(Ordering::Relaxed),
            },
            "outbox_depth": link.outbox_depth.load(Ordering::Relaxed),
            "outbox_evicted": {
                "evidence": link.evicted_evidence.load(Ordering::Relaxed),
                "alerts": link.evicted_alerts.load(Ordering::Relaxed),
            },
            "outbox": {
                "disk_ok": ob.disk_ok,
                "disk_error": ob.disk_error,
                "disk_errors": ob.disk_errors,
                "in_memory": ob.in_memory,
                "in_memory_bytes": ob.in_memory_bytes,
                "lost_in_memory": ob.lost_in_memory,
                "corrupt": ob.corrupt,
            },
            "broker": {
                "acl_ok": !link.acl_refused.load(Ordering::Relaxed),
                "probes_failed": link.probes_failed.load(Ordering::Relaxed),
                "commands_refused": link.commands_refused.load(Ordering::Relaxed),
                "retained_skipped": link.retained_skipped.load(Ordering::Relaxed),
            },
        });
        serde_json::to_vec(&v).unwrap_or_default()
    }

    /// Prometheus text exposition format (version 0.0.4).
    pub fn metrics_text(&self) -> String {
        let mut s = String::new();
        let link = self.link();
        let ob = self.outbox_health();
        let list = self.camera_list();
        let cams: Vec<_> = list.iter().map(|(slot, h)| (*slot, h.snapshot())).collect();
        let mut family = |name: &str, kind: &str, help: &str, rows: Vec<(String, f64)>| {
            let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (labels, v) in rows {
                let _ = writeln!(s, "{name}{labels} {v}");
            }
        };
        let per_cam = |f: &dyn Fn(usize, &crate::source::HealthSnapshot) -> f64| -> Vec<(String, f64)> {
            cams.iter().map(|(slot, c)| (format!("{{camera=\"{}\"}}", c.camera_id), f(*slot, c))).collect()
        };
        family("hawkeye_frames_decoded_total", "counter", "Frames decoded and delivered by the camera's pipeline.", per_cam(&|_, c| c.frames as f64));
        family("hawkeye_frames_inferred_total", "counter", "Frames that went through the detector.", per_cam(&|i, _| self.detector.inferred(i) as f64));
        family("hawkeye_frames_dropped_total", "counter", "Frames replaced by a newer one before the detector took them.", per_cam(&|i, _| self.slots.dropped(i) as f64));
        family("hawkeye_camera_reconnects_total", "counter", "Pipeline restarts after an error, end of stream or stall.", per_cam(&|_, c| c.reconnects as f64));
        family("hawkeye_camera_streaming", "gauge", "1 while the camera delivers frames.", per_cam(&|_, c| (c.state == HealthState::Streaming) as u8 as f64));
        family("hawkeye_camera_fps", "gauge", "Frames per second delivered over the last seconds.", per_cam(&|_, c| c.fps));
        let load = self.load();
        family("hawkeye_detector_busy_ratio", "gauge", "Share of wall time the detector spent inferring over the last window (>= 5 s).", vec![(String::new(), load.busy_share)]);
        family("hawkeye_overloaded", "gauge", "1 while the detector is busy >= 90 % and frames are dropped: the cameras ask for more than the box does.", vec![(String::new(), load.overloaded as u8 as f64)]);
        family("hawkeye_inference_errors_total", "counter", "Failed inferences.", vec![(String::new(), self.detector.errors.load(Ordering::Relaxed) as f64)]);
        let mut rows = Vec::new();
        let mut cum = 0u64;
        for (i, b) in LATENCY_BUCKETS.iter().enumerate() {
            cum += self.detector.buckets[i].load(Ordering::Relaxed);
            rows.push((format!("_bucket{{le=\"{b}\"}}"), cum as f64));
        }
        let count = self.detector.inferences.load(Ordering::Relaxed);
        rows.push(("_bucket{le=\"+Inf\"}".into(), count as f64));
        rows.push(("_sum".into(), self.detector.busy_us.load(Ordering::Relaxed) as f64 / 1e6));
        rows.push(("_count".into(), count as f64));
        family("hawkeye_inference_seconds", "histogram", "Detector latency per frame (letterbox, inference, decoding, NMS).", rows);
        let ew = &self.evidence_workers;
        family("hawkeye_alerts_raised_total", "counter", "Alert messages written to the outbox.", vec![(String::new(), ew.alerts.load(Ordering::Relaxed) as f64)]);
        family("hawkeye_alert_persist_errors_total", "counter", "Alerts that could not be written to the outbox.", vec![(String::new(), ew.alert_errors.load(Ordering::Relaxed) as f64)]);
        family("hawkeye_main_snapshots_total", "counter", "Dual-stream alerts whose snapshot was decoded from the main stream's ring.", vec![(String::new(), ew.main_snapshots.load(Ordering::Relaxed) as f64)]);
        family("hawkeye_main_fallbacks_total", "counter", "Dual-stream alerts that fell back to the sub-stream frame (no main-stream picture for the time).", vec![(String::new(), ew.main_fallbacks.load(Ordering::Relaxed) as f64)]);
        family("hawkeye_alert_evidence_errors_total", "counter", "Alerts sent without (some of) their pictures (evidence_error says why).", vec![(String::new(), ew.evidence_errors.load(Ordering::Relaxed) as f64)]);
        family("hawkeye_evidence_queue", "gauge", "Jobs waiting in the evidence workers' queues.", vec![(String::new(), ew.queued.load(Ordering::Relaxed) as f64)]);
        let hand_off = self.hand_off.lock().unwrap().clone();
        family(
            "hawkeye_frames_dropped_behind_total",
            "counter",
            "Detected frames dropped because the camera's task was behind (the detector never waits).",
            hand_off.iter().map(|(id, c)| (format!("{{camera=\"{id}\"}}"), c.dropped_behind.load(Ordering::Relaxed) as f64)).collect(),
        );
        let rings: Vec<_> = self.camera_list().iter().filter_map(|(_, h)| Some((h.camera_id().to_string(), h.clip_ring()?))).collect();
        family(
            "hawkeye_clip_ring_seconds",
            "gauge",
            "Seconds of encoded stream a camera's clip ring holds (oldest unit to newest; about clip_ring_s plus a keyframe interval).",
            rings.iter().map(|(id, r)| (format!("{{camera=\"{id}\"}}"), r.seconds)).collect(),
        );
        family(
            "hawkeye_clip_ring_bytes",
            "gauge",
            "Bytes of encoded stream a camera's clip ring holds.",
            rings.iter().map(|(id, r)| (format!("{{camera=\"{id}\"}}"), r.bytes as f64)).collect(),
        );
        family(
            "hawkeye_frames_gated_total",
            "counter",
            "Frames the motion gate passed on with the last inference's detections (nothing moved since).",
            hand_off.iter().map(|(id, c)| (format!("{{camera=\"{id}\"}}"), c.gated.load(Ordering::Relaxed) as f64)).collect(),
        );
        family(
            "hawkeye_water_masks_total",
            "counter",
            "Water masks computed for a camera's flooding zones (the water model, at [water] fps).",
            hand_off.iter().map(|(id, c)| (format!("{{camera=\"{id}\"}}"), c.water_masks.load(Ordering::Relaxed) as f64)).collect(),
        );
        family(
            "hawkeye_zoomed_crops_total",
            "counter",
            "Crops of far zones (zoom = true) the detector looked at besides the whole frame.",
            hand_off.iter().map(|(id, c)| (format!("{{camera=\"{id}\"}}"), c.zoomed.load(Ordering::Relaxed) as f64)).collect(),
        );
        family(
            "hawkeye_zoom_seconds_total",
            "counter",
            "Time the detector spent on zoomed crops.",
            hand_off.iter().map(|(id, c)| (format!("{{camera=\"{id}\"}}"), c.zoom_us.load(Ordering::Relaxed) as f64 / 1e6)).collect(),
        );
        family(
            "hawkeye_water_mask_failures_total",
            "counter",
            "Water masks that failed (logged; zones keep their last coverage).",
            hand_off.iter().map(|(id, c)| (format!("{{camera=\"{id}\"}}"), c.water_mask_failures.load(Ordering::Relaxed) as f64)).collect(),
        );
        family(
            "hawkeye_commands_total",
            "counter",
            "Commands received on cmd/…, by outcome.",
            vec![
                ("{result=\"ok\"}".into(), self.alerts.commands_ok.load(Ordering::Relaxed) as f64),
                // refused by the link itself (oversized, retained without request_id) or by the app
                ("{result=\"error\"}".into(), (self.alerts.commands_failed.load(Ordering::Relaxed) + link.commands_refused.load(Ordering::Relaxed)) as f64),
            ],
        );
        family(
            "hawkeye_speaker_attempts_total",
            "counter",
            "Loudspeaker requests by speaker and outcome (played, failed, rate_limited, quiet_hours, dropped).",
            self.speakers.rows().into_iter().map(|(s, o, n)| (format!("{{speaker=\"{s}\",outcome=\"{}\"}}", o.as_str()), n as f64)).collect(),
        );
        let r = &self.retention;
        family(
            "hawkeye_evidence_deleted_total",
            "counter",
            "Evidence events deleted by retention: after retain_days (expired) or earlier to stay under max_mb (early).",
            vec![("{reason=\"expired\"}".into(), r.expired.load(Ordering::Relaxed) as f64), ("{reason=\"early\"}".into(), r.early.load(Ordering::Relaxed) as f64)],
        );
        family("hawkeye_evidence_store_bytes", "gauge", "Bytes in the evidence store after the last sweep.", vec![(String::new(), r.store_bytes.load(Ordering::Relaxed) as f64)]);
        family("hawkeye_evidence_over_cap_bytes", "gauge", "Bytes over evidence.max_mb that could not be freed (undelivered evidence).", vec![(String::new(), r.over_cap_bytes.load(Ordering::Relaxed) as f64)]);
        family("hawkeye_clock_jumps_total", "counter", "Wall-clock steps of more than 10 min seen by evidence retention (age-based deletion pauses while one lasts).", vec![(String::new(), r.clock_jumps.load(Ordering::Relaxed) as f64)]);
        family("hawkeye_messages_acked_total", "counter", "Outbox messages acknowledged by the broker (PubAck).", vec![(String::new(), link.acked.load(Ordering::Relaxed) as f64)]);
        family("hawkeye_outbox_depth", "gauge", "Messages waiting in the outbox.", vec![(String::new(), link.outbox_depth.load(Ordering::Relaxed) as f64)]);
        family(
            "hawkeye_outbox_evicted_total",
            "counter",
            "Messages evicted from a full outbox before delivery.",
            vec![
                ("{type=\"evidence\"}".into(), link.evicted_evidence.load(Ordering::Relaxed) as f64),
                ("{type=\"alert\"}".into(), link.evicted_alerts.load(Ordering::Relaxed) as f64),
            ],
        );
        family("hawkeye_outbox_disk_ok", "gauge", "0 while the disk refuses outbox writes (messages held in memory).", vec![(String::new(), ob.disk_ok as u8 as f64)]);
        family("hawkeye_outbox_disk_errors_total", "counter", "Outbox writes the disk refused.", vec![(String::new(), ob.disk_errors as f64)]);
        family("hawkeye_outbox_in_memory", "gauge", "Outbox messages held in memory because the disk refused them.", vec![(String::new(), ob.in_memory as f64)]);
        family("hawkeye_outbox_lost_total", "counter", "Messages lost: the disk refused them and the memory bound was reached.", vec![(String::new(), ob.lost_in_memory as f64)]);
        family("hawkeye_outbox_corrupt_total", "counter", "Outbox records that failed their CRC or length, set aside as .bad.", vec![(String::new(), ob.corrupt as f64)]);
        family("hawkeye_mqtt_acl_refused", "gauge", "1 while the broker does not echo the device's ACL probe (delivery held).", vec![(String::new(), link.acl_refused.load(Ordering::Relaxed) as u8 as f64)]);
        family("hawkeye_mqtt_probes_failed_total", "counter", "ACL probes that got no echo from the broker.", vec![(String::new(), link.probes_failed.load(Ordering::Relaxed) as f64)]);
        family("hawkeye_retained_commands_skipped_total", "counter", "Retained commands not run again (their request_id ran before).", vec![(String::new(), link.retained_skipped.load(Ordering::Relaxed) as f64)]);
        family("hawkeye_mqtt_connected", "gauge", "1 while connected to the broker.", vec![(String::new(), link.connected.load(Ordering::Relaxed) as u8 as f64)]);
        family("hawkeye_mqtt_connects_total", "counter", "Successful connections to the broker.", vec![(String::new(), link.connects.load(Ordering::Relaxed) as f64)]);
        family("hawkeye_mqtt_connection_errors_total", "counter", "Failed or lost connections to the broker.", vec![(String::new(), link.connection_errors.load(Ordering::Relaxed) as f64)]);
        let webhooks = self.webhooks.lock().unwrap().clone();
        let per_webhook = |f: &dyn Fn(&crate::webhook::WebhookStats) -> u64| webhooks.iter().map(|w| (format!("{{webhook=\"{}\"}}", w.id), f(w) as f64)).collect::<Vec<_>>();
        family("hawkeye_webhook_delivered_total", "counter", "Messages a webhook platform accepted (2xx).", per_webhook(&|w| w.delivered.load(Ordering::Relaxed)));
        family("hawkeye_webhook_failures_total", "counter", "Webhook POSTs that failed and will be retried (network, timeout, 408, 429, 5xx).", per_webhook(&|w| w.failures.load(Ordering::Relaxed)));
        family("hawkeye_webhook_rejected_total", "counter", "Messages a webhook platform refused for good (other 4xx), kept in state_dir/webhook/ID/rejected.", per_webhook(&|w| w.rejected.load(Ordering::Relaxed)));
        family("hawkeye_webhook_queue", "gauge", "Messages waiting in a webhook's queue.", per_webhook(&|w| w.queue.load(Ordering::Relaxed)));
        family(
            "hawkeye_webhook_evicted_total",
            "counter",
            "Messages evicted from a full webhook queue before delivery.",
            webhooks
                .iter()
                .flat_map(|w| {
                    let (ev, al) = w.evicted();
                    [(format!("{{webhook=\"{}\",type=\"evidence\"}}", w.id), ev as f64), (format!("{{webhook=\"{}\",type=\"alert\"}}", w.id), al as f64)]
                })
                .collect(),
        );
        family("hawkeye_uptime_seconds", "gauge", "Seconds since start.", vec![(String::new(), self.started.elapsed().as_secs_f64().round())]);
        s
    }

    /// `/healthz`: 200 when every camera streams (or has ended), the broker is connected and
    /// delivers (ACL probe), and the outbox disk takes writes; else 503 naming what is wrong.
    pub fn healthz(&self) -> (u16, String) {
        let mut problems = Vec::new();
        for (_, h) in self.camera_list() {
            let snap = h.snapshot();
            if !matches!(snap.state, HealthState::Streaming | HealthState::Ended) {
                problems.push(format!("camera {} is {}", snap.camera_id, snap.state.as_str()));
            }
            // a dual-stream camera whose main stream is down still detects, but its alerts lose
            // their full-resolution pictures and clips
            if let Some(m) = snap.main_stream.as_ref().filter(|m| !matches!(m.state, HealthState::Streaming | HealthState::Ended)) {
                let why = m.last_error.as_deref().map(|e| format!(" ({e})")).unwrap_or_default();
                problems.push(format!("camera {}: main stream is {}{why}", snap.camera_id, m.state.as_str()));
            }
        }
        let link = self.link();
        if !link.connected.load(Ordering::Relaxed) {
            problems.push("MQTT broker not connected".to_string());
        }
        if link.acl_refused.load(Ordering::Relaxed) {
            problems.push("the MQTT broker does not deliver what this device publishes (ACL?); delivery is held".to_string());
        }
        let ob = self.outbox_health();
        if !ob.disk_ok {
            problems.push(format!(
                "the disk refuses outbox writes ({}); {} message(s) held in memory",
                ob.disk_error.as_deref().unwrap_or("unknown error"),
                ob.in_memory
            ));
        }
        if let Some(e) = self.evidence_workers.disk_error.lock().unwrap().as_ref() {
            problems.push(format!("evidence store refuses writes: {e} (alerts go out without their pictures)"));
        }
        problems.extend(self.webhooks.lock().unwrap().iter().filter_map(|w| w.problem()));
        let body = json!({ "status": if problems.is_empty() { "ok" } else { "degraded" }, "problems": problems });
        (if problems.is_empty() { 200 } else { 503 }, body.to_string())
    }
}

/// Serves `GET /metrics` and `GET /healthz` on `listener` until `shutdown`.
pub async fn serve(listener: TcpListener, telemetry: Arc<Telemetry>, shutdown: CancellationToken) {
    use axum::http::{header, StatusCode};
    use axum::response::IntoResponse;
    let metrics = {
        let t = telemetry.clone();
        move || {
            let t = t.clone();
            async move { ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], t.metrics_text()) }
        }
    };
    let healthz = move || {
        let t = telemetry.clone();
        async move {
            let (code, body) = t.healthz();
            (StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), [(header::CONTENT_TYPE, "application/json")], body).into_response()
        }
    };
    let app = axum::Router::new()
        .route("/metrics", axum::routing::get(metrics))
        .route("/healthz", axum::routing::get(healthz))
        .fallback(|| async { (StatusCode::NOT_FOUND, "not found: try /metrics or /healthz\n") });
    if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(async move { shutdown.cancelled().await }).await {
        tracing::warn!("telemetry: the HTTP server stopped: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn load_is_overloaded_only_when_busy_and_dropping() {
        let mut w = LoadWindow::default();
        let t0 = Instant::now();
        assert_eq!(w.update(t0, 0, 0), LoadReading::default(), "first sample: no window yet");
        // 3 s later: too short a window, the last reading holds
        assert_eq!(w.update(t0 + Duration::from_secs(3), 2_900_000, 10), LoadReading::default());
        // 5 s: busy 4.75 of 5 s and 10 frames dropped
        let r = w.update(t0 + Duration::from_secs(5), 4_750_000, 10);
        assert!((r.busy_share - 0.95).abs() < 1e-9 && (r.dropped_per_s - 2.0).abs() < 1e-9 && r.overloaded, "{r:?}");
        // busy but nothing dropped: keeping up
        let r = w.update(t0 + Duration::from_secs(10), 9_750_000, 10);
        assert!(!r.overloaded && r.busy_share > 0.9, "{r:?}");
        // dropping but mostly idle (a camera delivering faster than its rate): not overload
        let r = w.update(t0 + Duration::from_secs(15), 10_750_000, 40);
        assert!(!r.overloaded && r.dropped_per_s > 0.0, "{r:?}");
    }
}
