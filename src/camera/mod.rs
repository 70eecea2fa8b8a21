//! A camera's task: drives its [`CameraStep`] with detected frames and hands everything that
//! takes time to its evidence worker. The task itself does no disk I/O and nothing CPU-heavy
//! beyond tracking and the rules (and one JPEG a second of history for dumping zones), so it
//! keeps up with the detector; the detector in turn never waits for it (frames it cannot take
//! are dropped and counted by the sender).
//!
//! Per frame: step → for each transition: the alert body ([`Alert::from_transition`]), the
//! pictures it needs (the frame for `new` / `resolved` / `recurred`; for dumping the `before`
//! and `dumper` frames from the history), the clip recording on `new`, the loudspeaker
//! warning; flood levels to telemetry; reminders. Commands (snapshot, ack, re-check) are
//! answered between frames.

pub mod history;
pub mod step;

use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use tokio::sync::{mpsc, oneshot};

use crate::config::{Camera, CompiledZone, TelemetrySource};
use crate::detect::Detection;
use crate::drone::GeoTrack;
use crate::evidence::crop::CropRequest;
use crate::evidence::job::{AlertJob, Annotation, ExtraPicture, Job, MarkedBox, Picture};
use crate::evidence::worker::WorkerHandle;
use crate::evidence::{record_clip, ClipInfo, EncodedRing};
use crate::frame::Frame;
use crate::publish::{Alert, AlertAck, AlertContext};
use crate::rules::{Ack, EventState, FloodLevel, Transition};
use crate::speaker::{Origin, Reminders, SpeakRequest, Speakers};
use crate::track::Track;
pub use history::{FrameHistory, HistoryFrame};
pub use step::{CameraStep, FrameInput, StepOutput};

/// A frame with its detections, on its way from the detector to the camera's task.
#[derive(Debug)]
pub struct DetectedFrame {
    pub frame: Frame,
    pub detections: Vec<Detection>,
    /// The water mask of this frame, when one was due (cameras with flooding zones and a
    /// `[water]` model, at its low rate).
    pub water: Option<crate::detect::WaterMask>,
}

/// Frames that may wait for a camera's task; more are dropped (and counted) by the detector.
pub const FRAME_QUEUE: usize = 4;

/// A command for one camera; the answer comes back on `reply` (`None`: not this camera's event).
#[derive(Debug)]
pub enum CameraCmd {
    Snapshot { reply: oneshot::Sender<Result<serde_json::Value, String>> },
    Ack { event_id: String, ack: Ack, reply: oneshot::Sender<Option<Result<serde_json::Value, String>>> },
    Recheck { event_id: String, reply: oneshot::Sender<Option<Result<serde_json::Value, String>>> },
}

/// Per-camera counters of the hand-off from the detector.
#[derive(Debug, Default)]
pub struct CameraCounters {
    /// Frames the detector handed over.
    pub handed: AtomicU64,
    /// Frames dropped because the camera's task was behind.
    pub dropped_behind: AtomicU64,
    /// Frames the motion gate let through without inference (handed on with the last
    /// inference's detections).
    pub gated: AtomicU64,
    /// Water masks computed for this camera.
    pub water_masks: AtomicU64,
    /// Water masks that failed (logged; the frame still goes on with its detections).
    pub water_mask_failures: AtomicU64,
    /// Zoomed crops of far zones the detector looked at, and the time they took.
    pub zoomed: AtomicU64,
    pub zoom_us: AtomicU64,
}

/// Every camera's hand-off counters, by camera id (shared by the wiring and telemetry).
pub type HandOff = Arc<Mutex<Vec<(String, Arc<CameraCounters>)>>>;

/// What a camera's task needs.
pub struct CameraCtx {
    pub camera: Camera,
    /// The camera's zones as the config compiler made them.
    pub zones: Vec<CompiledZone>,
    pub device_id: String,
    pub alert_ctx: AlertContext,
    pub evidence: WorkerHandle,
    /// Where clips are written (`<evidence dir>`).
    pub evidence_dir: std::path::PathBuf,
    pub speakers: Speakers,
    /// Current flood levels, shared with the heartbeat (`camera/zone` → level, coverage).
    pub flood: Arc<Mutex<BTreeMap<String, (FloodLevel, f64)>>>,
    /// Drones: the camera's positions (KLV or OSD).
    pub geo: Option<Arc<GeoTrack>>,
    /// Encoded main stream for event clips.
    pub ring: Option<Arc<EncodedRing>>,
    /// Events of earlier runs (the evidence worker's registry), so that `ack` and `recheck`
    /// still find them after a restart.
    pub earlier: Vec<crate::evidence::registry::EventEntry>,
}

impl CameraCtx {
    /// A drone frame's position: KLV fixes are keyed by stream time, OSD fixes by Unix time.
    fn fix_for(&self, f: &Frame) -> Option<crate::drone::GeoFix> {
        let (d, track) = (self.camera.drone.as_ref()?, self.geo.as_ref()?);
        let at = match d.telemetry {
            TelemetrySource::Klv => f.ts,
            TelemetrySource::Osd => f.wall.timestamp_micros() as f64 / 1e6,
        };
        track.at(at, d.max_fix_age_s)
    }

    /// The zone's loudspeaker warning for a transition, if its `speak.on` names the state.
    /// Never waits on the speaker.
    fn warn(&self, reminders: &mut Reminders, t: &Transition) {
        let Some(speak) = self.camera.zones.get(t.zone).and_then(|z| z.speak.as_ref()) else { return };
        if reminders.on_transition(speak, t.zone, &t.event_id, t.state.as_str(), t.ts) {
            self.request_warning(t.zone, &t.event_id, t.state.as_str());
        }
    }

    fn request_warning(&self, zone: usize, event_id: &str, state: &str) {
        let Some(z) = self.camera.zones.get(zone) else { return };
        let Some(speak) = &z.speak else { return };
        let origin = Origin::Alert { event_id: event_id.into(), camera_id: self.camera.id.clone(), zone_id: z.id.clone(), kind: z.kind.as_str().into(), state: state.into() };
        if let Err(e) = self.speakers.request(SpeakRequest { speaker: speak.speaker.clone(), message: speak.message.clone(), origin }) {
            tracing::error!(camera = %self.camera.id, event = %event_id, "loudspeaker warning not requested: {e}");
        }
    }
}

/// Evidence names of a transition's snapshots: `clean`/`annotated` for `new`, stamped ones for
/// a re-check's result; none for `update` and `end`.
fn snapshot_names(t: &Transition, wall: chrono::DateTime<chrono::Utc>) -> Option<(String, String)> {
    match t.state {
        EventState::New => Some(("clean".into(), "annotated".into())),
        EventState::Resolved | EventState::Recurred => {
            let stamp = wall.format("%Y%m%dT%H%M%S%.3fZ");
            Some((format!("recheck-{stamp}-clean"), format!("recheck-{stamp}-annotated")))
        }
        EventState::Update | EventState::End => None,
    }
}

/// What the annotated snapshot of transition `t` shows.
fn annotation(step: &CameraStep, t: &Transition, tracks: &[Track], w: u32, h: u32) -> Annotation {
    let polygon = step.rules().polygons().nth(t.zone).map(|p| p.to_pixels(w, h)).unwrap_or_default();
    let boxes = tracks
        .iter()
        .map(|tr| MarkedBox {
            bbox: [tr.bbox.x1, tr.bbox.y1, tr.bbox.x2, tr.bbox.y2],
            label: format!("{} #{}", tr.class, tr.id),
            involved: t.objects.iter().any(|o| o.id == tr.id),
        })
        .collect();
    Annotation { polygon, boxes }
}

/// The alert job of transition `t` on frame `f`.
/// `detections`: everything the detector found in `f` (where the privacy masker looks for faces
/// and plates); `None` when they are not known (the picture is searched whole).
fn alert_job(ctx: &CameraCtx, step: &CameraStep, t: &Transition, f: &Frame, tracks: &[Track], history: Option<&FrameHistory>, detections: Option<&[Detection]>) -> AlertJob {
    let alert = Alert::from_transition(t, t.state, &ctx.alert_ctx, f.wall);
    let names = snapshot_names(t, f.wall);
    let frame = names.as_ref().map(|_| Picture::Rgb { width: f.width, height: f.height, rgb: f.rgb.clone() });
    let mut extra = Vec::new();
    // dumping: the place just before the object appeared, and the person who brought it
    if let (EventState::New, Some(d), Some(h)) = (t.state, &t.dumped, history) {
        let pic = |hf: &HistoryFrame| Picture::Jpeg { width: hf.width, height: hf.height, jpeg: hf.jpeg.clone() };
        if let Some(bf) = h.before(d.appeared_ts) {
            extra.push(ExtraPicture { name: "before".into(), picture: pic(bf), mark: None, keep_plates: false });
        }
        if let Some((dm, df)) = d.dumper.as_ref().and_then(|dm| h.nearest(dm.seen_ts).map(|df| (dm, df))) {
            let b = dm.bbox;
            let mark = MarkedBox { bbox: [b.x1, b.y1, b.x2, b.y2], label: format!("dumper person #{}", dm.track_id), involved: true };
            extra.push(ExtraPicture { name: "dumper".into(), picture: pic(df), mark: Some(mark), keep_plates: false });
        }
    }
    let annotation = if names.is_some() { annotation(step, t, tracks, f.width, f.height) } else { Annotation::default() };
    let frame_ts = frame.as_ref().map(|_| f.ts);
    let crops = vehicle_crops(t, ctx.camera.zones.get(t.zone).is_some_and(|z| z.unmask_plates));
    let search = frame.as_ref().and(detections).map(crate::evidence::privacy::SearchRegions::of);
    AlertJob { alert, names, frame, frame_ts, annotation, extra, crops, search }
}

/// Parking `new`: a crop of each parked vehicle, `vehicle` for the one parked longest (the
/// alert's first object), `vehicle-<track id>` for others; plates readable when the zone says
/// `unmask_plates`.
fn vehicle_crops(t: &Transition, keep_plates: bool) -> Vec<CropRequest> {
    if t.kind != crate::config::ZoneKind::Parking || t.state != EventState::New {
        return Vec::new();
    }
    t.objects
        .iter()
        .enumerate()
        .map(|(i, o)| CropRequest { name: if i == 0 { "vehicle".into() } else { format!("vehicle-{}", o.id) }, track_id: o.id, keep_plates })
        .collect()
}

/// Runs a camera's task until its frame channel closes; then stops its evidence worker (which
/// ends the camera's open events with reason `shutdown`).
pub async fn run(ctx: CameraCtx, mut frames: mpsc::Receiver<DetectedFrame>, mut ctl: mpsc::Receiver<CameraCmd>) {
    let cam_id = ctx.camera.id.clone();
    let mut step = CameraStep::new(&format!("{}-{}", ctx.device_id, cam_id), &ctx.camera, &ctx.zones, 0.0);
    let mut history = FrameHistory::for_camera(&ctx.camera);
    let mut reminders = Reminders::default();
    // clips being recorded (the post-event seconds are still to come): (alert body, result)
    let mut clips: tokio::task::JoinSet<(Alert, Result<ClipInfo, crate::evidence::ClipError>)> = tokio::task::JoinSet::new();
    let now = chrono::Utc::now();
    for e in &ctx.earlier {
        let a = &e.last;
        let Ok(started) = chrono::DateTime::parse_from_rfc3339(&a.started_at) else { continue };
        let ack = a.ack.as_ref().and_then(|k| {
            let at = chrono::DateTime::parse_from_rfc3339(&k.at).ok()?.with_timezone(&chrono::Utc);
            Some(Ack { operator: k.operator.clone(), note: k.note.clone(), at })
        });
        step.restore(&a.event_id, &a.zone_id, started.with_timezone(&chrono::Utc), ack, now);
    }
    let mut last: Option<Frame> = None;
    let mut ctl_open = true;
    loop {
        tokio::select! {
            df = frames.recv() => {
                let Some(df) = df else { break };
                let f = &df.frame;
                let fix = ctx.fix_for(f);
                if let Some(mask) = &df.water {
                    step.observe_water(mask);
                }
                let out = step.step(FrameInput { ts: f.ts, wall: f.wall, width: f.width, height: f.height, rgb: &f.rgb, fix: fix.as_ref() }, &df.detections);
                if let Some(h) = history.as_mut().filter(|h| h.wants(f.ts)) {
                    match crate::evidence::encode_jpeg(&f.rgb, f.width, f.height) {
                        Ok(jpeg) => h.push(HistoryFrame { ts: f.ts, width: f.width, height: f.height, jpeg: Arc::new(jpeg) }),
                        Err(e) => tracing::warn!(camera = %cam_id, "history frame not kept: {e}"),
                    }
                }
                for t in &out.transitions {
                    let job = alert_job(&ctx, &step, t, f, &out.tracks, history.as_ref(), Some(&df.detections));
                    if let (EventState::New, Some(ring)) = (t.state, &ctx.ring) {
                        let (start, end) = (t.ts - ctx.camera.clip_pre_s, t.ts + ctx.camera.clip_post_s);
                        let out_path = ctx.evidence_dir.join(&t.event_id).join("clip.mp4");
                        let deadline = Duration::from_secs_f64(ctx.camera.clip_post_s + 30.0);
                        let ring = ring.clone();
                        let mut body = job.alert.clone();
                        body.state = "update".into();
                        clips.spawn(async move { (body, record_clip(ring, start, end, out_path, deadline).await) });
                    }
                    ctx.evidence.send(Job::Alert(Box::new(job)));
                    ctx.warn(&mut reminders, t);
                }
                for (zone, level, coverage) in step.rules().flood_levels() {
                    ctx.flood.lock().unwrap().insert(format!("{cam_id}/{zone}"), (level, coverage));
                }
                for (event_id, zone) in reminders.due(f.ts, |z| ctx.camera.zones.get(z).and_then(|z| z.speak.as_ref())) {
                    ctx.request_warning(zone, &event_id, "active");
                }
                last = Some(df.frame);
            }
            Some(done) = clips.join_next(), if !clips.is_empty() => match done {
                Ok((mut body, Ok(clip))) => {
                    body.updated_at = crate::publish::rfc3339(chrono::Utc::now());
                    body.seq = 0;
                    body.objects.clear();
                    ctx.evidence.send(Job::Clip { alert: Box::new(body), clip });
                }
                Ok((body, Err(e))) => tracing::warn!(camera = %cam_id, event = %body.event_id, "no clip: {e}"),
                Err(e) => tracing::error!(camera = %cam_id, "clip task failed: {e}"),
            },
            cmd = ctl.recv(), if ctl_open => match cmd {
                None => ctl_open = false,
                Some(CameraCmd::Snapshot { reply }) => match &last {
                    None => { let _ = reply.send(Err("no frame from this camera yet".into())); }
                    Some(f) => {
                        let picture = Picture::Rgb { width: f.width, height: f.height, rgb: f.rgb.clone() };
                        ctx.evidence.send(Job::Snapshot { picture, captured_at: f.wall, reply });
                    }
                },
                Some(CameraCmd::Ack { event_id, ack, reply }) => {
                    let r = step.ack(&event_id, ack.clone()).map(|r| r.map(|()| {
                        let at = crate::publish::rfc3339(ack.at);
                        ctx.evidence.send(Job::Ack { event_id: event_id.clone(), ack: AlertAck { operator: ack.operator.clone(), note: ack.note.clone(), at } });
                        json!({ "event_id": event_id, "camera_id": cam_id })
                    }));
                    let _ = reply.send(r);
                }
                Some(CameraCmd::Recheck { event_id, reply }) => {
                    let r = step.recheck_now(&event_id).map(|r| r.and_then(|t| {
                        let f = last.as_ref().ok_or("no frame from this camera yet")?;
                        let job = alert_job(&ctx, &step, &t, f, step.latest_tracks(), None, None);
                        ctx.evidence.send(Job::Alert(Box::new(job)));
                        ctx.warn(&mut reminders, &t);
                        Ok(json!({ "event_id": event_id, "state": t.state.as_str(), "objects": t.objects.len() }))
                    }));
                    let _ = reply.send(r);
                }
            },
        }
    }
    // clips still recording are given up at a stop: their events end now
    clips.abort_all();
    ctx.evidence.send(Job::Stop { reason: "shutdown" });
}
