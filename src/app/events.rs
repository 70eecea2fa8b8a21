//! A camera's rules task and what it publishes: tracking, zone rules or the drone rule, evidence
//! (privacy masking, sealing, clips), alert JSON into the outbox, loudspeaker triggers, and the
//! camera's commands (snapshot, ack, recheck).

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use tokio::sync::mpsc;

use super::{CameraCmd, DetectedFrame};
use crate::config::{Camera, Compiled, TelemetrySource, ZoneKind};
use crate::detect;
use crate::drone::{DroneRules, GeoTrack};
use crate::evidence::{record_clip, ClipInfo, EncodedRing, EvidenceStore, ManifestInput, Masker, Sealer, Snapshot};
use crate::frame::Frame;
use crate::publish::{rfc3339, Alert, AlertAck, AlertDumper, AlertDumping, AlertObject, EvidenceRef, ManifestRef, ModelRef, Publisher, SCHEMA_VERSION};
use crate::rules::{CameraRules, EventState, Transition};
use crate::speaker::{Origin, Reminders, SpeakRequest, Speakers};
use crate::telemetry::AlertStats;
use crate::track::{Track, Tracker, TrackerParams};

/// What a camera's rules task needs to turn transitions into published alerts.
pub(super) struct EventCtx {
    pub(super) alerts: Arc<AlertStats>,
    /// Current flood levels, shared with the heartbeat.
    pub(super) flood: Arc<Mutex<std::collections::BTreeMap<String, (crate::rules::FloodLevel, f64)>>>,
    pub(super) cfg: Compiled,
    pub(super) camera: Camera,
    pub(super) publisher: Publisher,
    pub(super) evidence: EvidenceStore,
    pub(super) sealer: Arc<Mutex<Sealer>>,
    pub(super) model: ModelRef,
    pub(super) speakers: Speakers,
    /// Drones: the camera's positions (KLV or OSD).
    pub(super) geo: Option<Arc<GeoTrack>>,
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

/// Recent frames of a camera with dumping zones, one every [`HISTORY_EVERY_S`]: dumping evidence
/// shows the place just before the object appeared and the person who brought it, both seconds
/// to minutes before the event is confirmed.
struct FrameHistory {
    keep_s: f64,
    frames: std::collections::VecDeque<Frame>,
}

/// Spacing of the frames a [`FrameHistory`] keeps.
const HISTORY_EVERY_S: f64 = 1.0;

impl FrameHistory {
    /// A history long enough for the camera's dumping zones (None without such zones).
    fn for_camera(cam: &Camera) -> Option<Self> {
        let dwell = cam.zones.iter().filter(|z| z.kind == ZoneKind::Dumping).map(|z| z.dwell_s).reduce(f64::max)?;
        // the dumper's contact is looked for up to DumpingParams::history_s (15 s) before
        Some(FrameHistory { keep_s: dwell + 20.0, frames: Default::default() })
    }

    fn push(&mut self, f: &Frame) {
        if self.frames.back().is_none_or(|b| f.ts >= b.ts + HISTORY_EVERY_S) {
            self.frames.push_back(f.clone());
        }
        while self.frames.front().is_some_and(|a| a.ts < f.ts - self.keep_s) {
            self.frames.pop_front();
        }
    }

    /// The latest kept frame from before `ts`.
    fn before(&self, ts: f64) -> Option<&Frame> {
        self.frames.iter().rev().find(|f| f.ts < ts - 0.2)
    }

    /// The kept frame nearest to `ts`.
    fn nearest(&self, ts: f64) -> Option<&Frame> {
        self.frames.iter().min_by(|a, b| (a.ts - ts).abs().total_cmp(&(b.ts - ts).abs()))
    }
}

pub(super) async fn camera_rules(
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
    let mut rules = CameraRules::new(&prefix, ctx.cfg.zones(&ctx.camera.id));
    let mut history = FrameHistory::for_camera(&ctx.camera);
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
                rules.observe_frame(&f.rgb, f.width, f.height, f.ts);
                if let Some(h) = history.as_mut() {
                    h.push(f);
                }
                for t in rules.evaluate(&tracks, f.width, f.height, f.ts, f.wall) {
                    persist(&ctx, index, &rules, &t, f, &tracks, history.as_ref(), Privacy { on: privacy_on, masker: masker.as_mut() });
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
                            geo: Some(s.fix), dumped: None,
                        };
                        persist(&ctx, index, &rules, &t, f, &tracks, None, Privacy { on: privacy_on, masker: masker.as_mut() });
                    }
                }
                for (zone, level, coverage) in rules.flood_levels() {
                    ctx.flood.lock().unwrap().insert(format!("{}/{zone}", ctx.camera.id), (level, coverage));
                }
                for id in rules.due_rechecks(f.ts) {
                    if let Ok(t) = rules.recheck(&id, &tracks, f.width, f.height, f.ts, f.wall) {
                        persist(&ctx, index, &rules, &t, f, &tracks, None, Privacy { on: privacy_on, masker: masker.as_mut() });
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
                            persist(&ctx, index, &rules, &t, f, tracks, None, Privacy { on: privacy_on, masker: masker.as_mut() });
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
#[allow(clippy::too_many_arguments)]
fn persist(ctx: &EventCtx, index: usize, rules: &CameraRules, t: &Transition, f: &Frame, tracks: &[Track], history: Option<&FrameHistory>, privacy: Privacy) {
    // evidence transitions run face/plate detection (a few hundred ms): keep the runtime free
    let result = if matches!(t.state, EventState::Update | EventState::End) {
        emit(ctx, rules, t, f, tracks, history, privacy)
    } else {
        tokio::task::block_in_place(|| emit(ctx, rules, t, f, tracks, history, privacy))
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
fn emit(ctx: &EventCtx, rules: &CameraRules, t: &Transition, f: &Frame, tracks: &[Track], history: Option<&FrameHistory>, mut privacy: Privacy) -> anyhow::Result<()> {
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
        // dumping: the place just before the object appeared, and the person who brought it
        if let (EventState::New, Some(d), Some(h)) = (t.state, &t.dumped, history) {
            // (evidence name, frame, a box to mark with its label)
            type Extra<'a> = (&'static str, &'a Frame, Option<(crate::detect::BBox, String)>);
            let mut extra: Vec<Extra> = Vec::new();
            if let Some(bf) = h.before(d.appeared_ts) {
                extra.push(("before", bf, None));
            }
            if let Some((dm, df)) = d.dumper.as_ref().and_then(|dm| h.nearest(dm.seen_ts).map(|df| (dm, df))) {
                extra.push(("dumper", df, Some((dm.bbox, format!("dumper person #{}", dm.track_id)))));
            }
            for (name, frame, mark) in extra {
                if privacy.on {
                    let original = ctx.evidence.save_jpeg(&t.event_id, &format!("{name}-original"), &frame.rgb, frame.width, frame.height)?;
                    files.push((original.name.clone(), original.path.clone()));
                }
                let Some(mut rgb) = privacy.publishable(frame) else { continue };
                if let Some((b, label)) = mark {
                    let mut img = image::RgbImage::from_raw(frame.width, frame.height, rgb).expect("frame size");
                    detect::draw_box(&mut img, &b, image::Rgb([255, 40, 40]), 2);
                    detect::draw_label(&mut img, b.x1 as i64, b.y1 as i64, &label, image::Rgb([255, 40, 40]), 1);
                    rgb = img.into_raw();
                }
                let s = ctx.evidence.save_jpeg(&t.event_id, name, &rgb, frame.width, frame.height)?;
                let topic = topics.evidence(&t.event_id, &s.name);
                ctx.publisher.enqueue(&topic, s.jpeg.clone(), false)?;
                evidence.push(evidence_ref(&s, topic));
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
        dumping: t.dumped.as_ref().map(|d| {
            let at = |ts: f64| rfc3339(t.started_at + chrono::Duration::milliseconds(((ts - t.started_ts) * 1000.0) as i64));
            let px = |b: &crate::detect::BBox| [b.x1.round(), b.y1.round(), b.x2.round(), b.y2.round()];
            AlertDumping {
                class: d.class.clone(),
                bbox: px(&d.bbox),
                track_id: d.track_id,
                appeared_at: at(d.appeared_ts),
                dumper: d.dumper.as_ref().map(|p| AlertDumper { track_id: p.track_id, bbox: px(&p.bbox), seen_at: at(p.seen_ts) }),
            }
        }),
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

