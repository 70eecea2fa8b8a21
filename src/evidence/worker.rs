//! A camera's evidence worker: one thread per camera that turns alert jobs into published
//! alerts with their evidence, so that privacy masking, JPEG encoding, fsync and sealing never
//! run on the camera task or the detector. Jobs of one camera are done in order, so an event's
//! messages leave in the order the rules produced them.
//!
//! For each alert job the worker:
//! 1. numbers it: the event's next `seq` and the device's next `device_seq`; the event registry
//!    (open events, acks) is saved;
//! 2. when it has pictures, journals it (see [`super::journal`]);
//! 3. saves the pictures (the unmasked original kept on the device when privacy is on; clean
//!    and annotated copies masked), seals them into the manifest chain;
//! 4. queues the alert, then its evidence and manifest, in the outbox;
//! 5. removes the journal record.
//!
//! Evidence that cannot be made (privacy masking unavailable, the disk refusing writes) never
//! holds the alert back: it goes out with `evidence_error` saying why.
//!
//! Dual-stream cameras: before step 2 the sub-stream frame of a job is replaced by the
//! main-stream picture nearest to it, decoded from the camera's clip ring (see
//! [`super::main_picture`]), and the boxes (annotation, the alert's `bbox`es, which are "in
//! pixels of the snapshot") are mapped to it. When the ring has no picture for it the sub-stream
//! frame is used (logged, counted in `main_fallbacks`): an alert is never lost for a snapshot.
//!
//! At start the worker first redoes the journal's jobs an earlier run left, then ends the
//! events the registry still has open (reason `restart`). [`Job::Stop`] ends the open events
//! (reason `shutdown`).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use serde_json::json;

use super::job::{AlertJob, Job, MarkedBox, Picture};
use super::main_picture::{self, map_box, scale_between};
use super::EncodedRing;
use super::journal::Journal;
use super::registry::{DeviceSeq, Registry};
use super::{ClipInfo, EvidenceStore, ManifestInput, Sealer, SharedMasker, Snapshot};
use super::privacy::SearchRegions;
use crate::config::{MaskSearch, PrivacyCfg};
use crate::publish::{rfc3339, Alert, EvidenceRef, ManifestRef, Publisher};

/// Counters of the evidence workers (all cameras), for the heartbeat and `/metrics`.
#[derive(Debug, Default)]
pub struct EvidenceStats {
    /// Alerts queued in the outbox.
    pub alerts: AtomicU64,
    /// Alerts that could not be queued (the outbox refused them): lost, logged at ERROR.
    pub alert_errors: AtomicU64,
    /// Alerts sent without (some of) their pictures, with `evidence_error`.
    pub evidence_errors: AtomicU64,
    /// Alert jobs whose pictures were dropped because the worker was too far behind.
    pub behind: AtomicU64,
    /// Journal records redone after a crash.
    pub replayed: AtomicU64,
    /// Dual-stream cameras: snapshots made from the main stream, and those that fell back to
    /// the sub-stream frame (no keyframe in the ring for the alert time, or a decode failure).
    pub main_snapshots: AtomicU64,
    pub main_fallbacks: AtomicU64,
    /// Events ended with reason `restart` / `shutdown`.
    pub ended_restart: AtomicU64,
    pub ended_shutdown: AtomicU64,
    /// Jobs waiting in all workers' queues.
    pub queued: AtomicU64,
    /// The newest manifest of the chain (seq, sha256): `hawkeye verify --head` checks a copy
    /// of the evidence against it (the heartbeat carries it).
    pub chain_head: Mutex<Option<(u64, String)>>,
    /// Why the latest evidence could not be saved or sealed (the evidence disk refusing writes);
    /// cleared by the next evidence saved. `/healthz` reports it.
    pub disk_error: Mutex<Option<String>>,
}

/// What a worker needs; one per camera.
pub struct WorkerCtx {
    pub camera_id: String,
    pub privacy: PrivacyCfg,
    pub store: EvidenceStore,
    pub sealer: Arc<Mutex<Sealer>>,
    pub publisher: Publisher,
    pub device_seq: Arc<DeviceSeq>,
    /// `<state_dir>`: the registry and journal live under it.
    pub state_dir: PathBuf,
    pub stats: Arc<EvidenceStats>,
    /// Dual-stream cameras: the main stream's clip ring, decoded on demand for full-resolution
    /// snapshots. `None`: snapshots are the detected frame itself.
    pub main_ring: Option<Arc<EncodedRing>>,
}

/// The camera side of a worker: sends jobs, never waits.
#[derive(Clone)]
pub struct WorkerHandle {
    tx: mpsc::Sender<Job>,
    /// Bytes of pictures in jobs not yet done.
    queued_bytes: Arc<AtomicUsize>,
    stats: Arc<EvidenceStats>,
}

/// Most bytes of pictures one camera's queue may hold; alert jobs beyond go without pictures.
pub const QUEUE_BUDGET_BYTES: usize = 96 << 20;

impl WorkerHandle {
    /// Queues a job. Alert jobs over the queue's picture budget are sent without pictures (the
    /// alert says why); the alert itself is never dropped.
    pub fn send(&self, job: Job) {
        let job = match job {
            Job::Alert(a) if a.bytes() > 0 && self.queued_bytes.load(Ordering::Relaxed) + a.bytes() > QUEUE_BUDGET_BYTES => {
                self.stats.behind.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(event = %a.alert.event_id, "evidence worker behind: alert sent without its pictures");
                Job::Alert(Box::new(a.without_pictures("the evidence worker was behind; pictures were not kept")))
            }
            j => j,
        };
        if let Job::Alert(a) = &job {
            self.queued_bytes.fetch_add(a.bytes(), Ordering::Relaxed);
        }
        self.stats.queued.fetch_add(1, Ordering::Relaxed);
        if self.tx.send(job).is_err() {
            self.stats.queued.fetch_sub(1, Ordering::Relaxed);
            tracing::error!("evidence worker is gone: a job was lost");
        }
    }
}

/// Starts a camera's worker thread: it recovers what an earlier run left, then does jobs until
/// [`Job::Stop`] (or until every handle is dropped).
pub fn start(ctx: WorkerCtx) -> std::io::Result<(WorkerHandle, std::thread::JoinHandle<()>)> {
    let (tx, rx) = mpsc::channel();
    let queued_bytes = Arc::new(AtomicUsize::new(0));
    let handle = WorkerHandle { tx, queued_bytes: queued_bytes.clone(), stats: ctx.stats.clone() };
    let name = format!("evidence-{}", ctx.camera_id);
    let thread = std::thread::Builder::new().name(name.chars().take(15).collect()).spawn(move || {
        let mut w = Worker::new(ctx);
        w.recover();
        while let Ok(job) = rx.recv() {
            w.ctx.stats.queued.fetch_sub(1, Ordering::Relaxed);
            if let Job::Alert(a) = &job {
                queued_bytes.fetch_sub(a.bytes(), Ordering::Relaxed);
            }
            if !w.run(job) {
                break;
            }
        }
    })?;
    Ok((handle, thread))
}

struct Worker {
    ctx: WorkerCtx,
    masker: Option<SharedMasker>,
    registry: Registry,
    journal: Journal,
    slow: Option<Duration>,
    /// Sub-stream → main-stream scale of the latest snapshot (dual-stream cameras): alerts
    /// without pictures of their own (`update`, `end`) give their boxes in the same pixels.
    scale: Option<(f32, f32)>,
}

/// Returns the heap memory this thread's alert freed to the system. Each evidence worker is a
/// thread of its own, so glibc gives it an arena of its own, which kept the peak of its last
/// alert (a decoded main-stream picture, its masked and JPEG copies: tens of MB) for as long as
/// the camera ran.
fn give_back_memory() {
    // SAFETY: malloc_trim only walks glibc's own heaps; no pointers are handed over
    unsafe {
        libc::malloc_trim(0);
    }
}

/// One picture of an alert to save: (name, picture, box to draw, annotated, plates readable,
/// where to search for faces and plates).
type PictureToSave<'a> = (String, &'a Picture, Option<&'a MarkedBox>, bool, bool, Option<&'a SearchRegions>);

/// A file name part that cannot leave its directory.
fn safe_name(id: &str) -> String {
    id.chars().map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '_' }).collect()
}

impl Worker {
    fn new(ctx: WorkerCtx) -> Worker {
        let masker = if ctx.privacy.enabled() {
            match SharedMasker::new(&ctx.privacy) {
                Ok(m) => Some(m),
                Err(e) => {
                    // without a working masker nothing identifiable may leave the device
                    tracing::error!(camera = %ctx.camera_id, "privacy masking unavailable, snapshots stay on the device: {e}");
                    None
                }
            }
        } else {
            None
        };
        let file = safe_name(&ctx.camera_id);
        let registry = Registry::load(&registry_path(&ctx.state_dir, &ctx.camera_id));
        let journal = Journal::new(&ctx.state_dir.join("journal").join(&file));
        let slow = crate::failpoint::value("slow_evidence").and_then(|v| {
            let (cam, ms) = v.split_once(':')?;
            if cam != ctx.camera_id {
                return None;
            }
            Some(Duration::from_millis(ms.parse().ok()?))
        });
        Worker { ctx, masker, registry, journal, slow, scale: None }
    }

    /// Redoes the journal's jobs, then ends the events an unclean stop left open.
    fn recover(&mut self) {
        for (path, job) in self.journal.pending() {
            tracing::warn!(camera = %self.ctx.camera_id, event = %job.alert.event_id, state = %job.alert.state, seq = job.alert.seq, "redoing an alert an earlier run did not finish");
            self.ctx.stats.replayed.fetch_add(1, Ordering::Relaxed);
            self.alert(job, Some(path));
        }
        let open = self.registry.open_events();
        if !open.is_empty() {
            tracing::warn!(camera = %self.ctx.camera_id, events = open.len(), "events left open by an unclean stop: ending them (reason restart)");
        }
        for a in open {
            self.ctx.stats.ended_restart.fetch_add(1, Ordering::Relaxed);
            self.alert(AlertJob::bare(a.ended("restart", chrono::Utc::now())), None);
        }
    }

    /// Does one job; false once the worker is to stop.
    fn run(&mut self, job: Job) -> bool {
        if let Some(d) = self.slow {
            std::thread::sleep(d);
        }
        match job {
            Job::Alert(a) => {
                self.alert(*a, None);
                give_back_memory();
            }
            Job::Clip { alert, clip } => {
                self.clip(*alert, &clip);
                give_back_memory();
            }
            Job::Snapshot { picture, captured_at, reply } => {
                let _ = reply.send(self.snapshot(&picture, captured_at));
            }
            Job::Ack { event_id, ack } => {
                if self.registry.ack(&event_id, ack) {
                    self.save_registry();
                }
            }
            Job::Stop { reason } => {
                for a in self.registry.open_events() {
                    self.ctx.stats.ended_shutdown.fetch_add(1, Ordering::Relaxed);
                    self.alert(AlertJob::bare(a.ended(reason, chrono::Utc::now())), None);
                }
                return false;
            }
        }
        true
    }

    fn save_registry(&self) {
        if let Err(e) = self.registry.save() {
            tracing::error!(camera = %self.ctx.camera_id, "cannot save the event registry: {e}; after a crash its open events may get no end");
        }
    }

    /// Numbers, journals, makes the evidence of, and queues one alert. `journaled`: the job
    /// comes from the journal (already numbered and written).
    fn alert(&mut self, mut job: AlertJob, journaled: Option<PathBuf>) {
        if job.alert.seq == 0 {
            self.registry.assign(&mut job.alert);
            job.alert.device_seq = self.ctx.device_seq.next();
            self.save_registry();
        }
        let t0 = std::time::Instant::now();
        if journaled.is_none() {
            self.full_resolution(&mut job);
            super::crop::make_crops(&mut job);
        }
        let t_main = t0.elapsed();
        let record = match journaled {
            Some(p) => Some(p),
            None if job.frame.is_some() || !job.extra.is_empty() => match self.journal.write(&job) {
                Ok(p) => Some(p),
                Err(e) => {
                    tracing::error!(camera = %self.ctx.camera_id, event = %job.alert.event_id, "cannot journal the alert's pictures: {e}; a crash now would lose them");
                    None
                }
            },
            None => None,
        };
        let mut alert = job.alert.clone();
        let mut files = Vec::new();
        match self.pictures(&job, &mut alert, &mut files) {
            Ok(()) => {}
            Err(e) => {
                tracing::error!(camera = %self.ctx.camera_id, event = %alert.event_id, "evidence not saved: {e}; the alert goes without it");
                alert.evidence_error = Some(format!("evidence not saved: {e}"));
                alert.evidence.clear();
                files.clear();
                *self.ctx.stats.disk_error.lock().unwrap() = Some(e);
            }
        }
        let t_pictures = t0.elapsed();
        let mut messages: Vec<(String, Vec<u8>)> = Vec::new();
        if !files.is_empty() {
            match self.seal(&alert, &alert.state.clone(), chrono::Utc::now(), &files) {
                Ok((seal, manifest)) => {
                    *self.ctx.stats.disk_error.lock().unwrap() = None;
                    alert.manifest = Some(seal.0);
                    alert.prev_hash = seal.1;
                    alert.signature = Some(seal.2);
                    messages.extend(self.evidence_messages(&alert, &files));
                    messages.push(manifest);
                }
                Err(e) => {
                    tracing::error!(camera = %self.ctx.camera_id, event = %alert.event_id, "evidence not sealed: {e}; the alert goes without it");
                    alert.evidence_error = Some(format!("evidence not sealed: {e}"));
                    alert.evidence.clear();
                    *self.ctx.stats.disk_error.lock().unwrap() = Some(e);
                }
            }
        }
        if alert.evidence_error.is_some() {
            self.ctx.stats.evidence_errors.fetch_add(1, Ordering::Relaxed);
        }
        crate::failpoint::crash_if_armed("crash_after_evidence");
        self.queue(&alert, messages);
        if job.frame.is_some() {
            tracing::debug!(camera = %self.ctx.camera_id, event = %alert.event_id, main_ms = t_main.as_millis() as u64, pictures_ms = (t_pictures - t_main).as_millis() as u64, total_ms = t0.elapsed().as_millis() as u64, "alert pictures made");
        }
        if let Some(p) = record {
            self.journal.done(&p);
        }
    }

    /// Dual-stream cameras: the job's frame becomes the main-stream picture nearest to it, with
    /// its boxes mapped; without one the sub-stream frame stays (logged, counted).
    fn full_resolution(&mut self, job: &mut AlertJob) {
        let Some(ring) = self.ctx.main_ring.clone() else { return };
        let (Some(frame), Some(at)) = (&job.frame, job.frame_ts) else {
            if let Some(s) = self.scale {
                map_alert(&mut job.alert, s);
            }
            return;
        };
        let sub = frame.size();
        let picture = main_picture::picture_at(&ring, at).and_then(|p| match scale_between(sub, (p.width, p.height)) {
            Some(s) => Ok((p, s)),
            None => Err(main_picture::MainPictureError::Decode(format!("cannot scale {sub:?} to {}x{}", p.width, p.height))),
        });
        match picture {
            Ok((p, s)) => {
                tracing::debug!(camera = %self.ctx.camera_id, event = %job.alert.event_id, at, picture_ts = p.ts, width = p.width, height = p.height, "main-stream snapshot");
                for pt in &mut job.annotation.polygon {
                    *pt = (pt.0 * s.0, pt.1 * s.1);
                }
                for b in &mut job.annotation.boxes {
                    b.bbox = map_box(b.bbox, s);
                }
                map_alert(&mut job.alert, s);
                job.search = job.search.as_ref().map(|r| r.scaled(s.0, s.1));
                job.frame = Some(Picture::Rgb { width: p.width, height: p.height, rgb: Arc::new(p.rgb) });
                self.scale = Some(s);
                self.ctx.stats.main_snapshots.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                tracing::warn!(camera = %self.ctx.camera_id, event = %job.alert.event_id, "no main-stream picture, the snapshot is the sub-stream frame: {e}");
                self.scale = None;
                self.ctx.stats.main_fallbacks.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Queues the alert first, then its evidence messages.
    fn queue(&self, alert: &Alert, messages: Vec<(String, Vec<u8>)>) {
        let topics = self.ctx.publisher.topics().clone();
        let payload = serde_json::to_vec(alert).expect("alert serialises");
        match self.ctx.publisher.enqueue(&topics.alerts(), payload, false) {
            Ok(_) => {
                self.ctx.stats.alerts.fetch_add(1, Ordering::Relaxed);
                tracing::info!(
                    camera = %self.ctx.camera_id, event = %alert.event_id, state = %alert.state, seq = alert.seq, kind = %alert.kind,
                    zone = %alert.zone_id, dwell_s = alert.dwell_s, objects = alert.objects.len(), evidence = alert.evidence.len(), "alert"
                );
            }
            Err(e) => {
                self.ctx.stats.alert_errors.fetch_add(1, Ordering::Relaxed);
                tracing::error!(camera = %self.ctx.camera_id, event = %alert.event_id, state = %alert.state, "ALERT LOST: the outbox refused it: {e}");
            }
        }
        for (topic, bytes) in messages {
            if let Err(e) = self.ctx.publisher.enqueue(&topic, bytes, false) {
                tracing::error!(camera = %self.ctx.camera_id, %topic, "evidence message not queued: {e} (the file stays in the evidence store)");
            }
        }
    }

    /// Saves the job's pictures; fills `alert.evidence` and the files to seal.
    fn pictures(&mut self, job: &AlertJob, alert: &mut Alert, files: &mut Vec<Picked>) -> Result<(), String> {
        let privacy_on = self.ctx.privacy.enabled();
        // the frame's faces and plates are looked for around its people and vehicles only when
        // the camera says so and the frame's detections came with it
        let regions = job.search.as_ref().filter(|_| self.ctx.privacy.search == MaskSearch::Detections);
        let mut pics: Vec<PictureToSave> = Vec::new();
        if let (Some(f), Some((clean, annotated))) = (&job.frame, &job.names) {
            pics.push((clean.clone(), f, None, false, false, regions));
            pics.push((annotated.clone(), f, None, true, false, regions));
        }
        for e in &job.extra {
            pics.push((e.name.clone(), &e.picture, e.mark.as_ref(), false, e.keep_plates, None));
        }
        if pics.is_empty() {
            return Ok(());
        }
        let event = alert.event_id.clone();
        let mut masked_cache: Option<(usize, Option<Vec<u8>>)> = None;
        for (name, pic, mark, annotate, keep_plates, regions) in pics {
            let (w, h) = pic.size();
            let key = pic as *const Picture as usize;
            // the clean and annotated copies share one masking of their frame
            let publishable = match &masked_cache {
                Some((k, m)) if *k == key => m.clone(),
                _ => {
                    let rgb = pic.to_rgb()?;
                    if privacy_on && !annotate {
                        let original = self.ctx.store.save_jpeg(&event, &format!("{name}-original"), &rgb, w, h).map_err(|e| e.to_string())?;
                        files.push(Picked { snapshot: original, published: false });
                    }
                    let m = if keep_plates && privacy_on { super::crop::plates_readable(&self.ctx.privacy, rgb, w, h) } else { self.publishable(rgb, w, h, regions) };
                    masked_cache = Some((key, m.clone()));
                    m
                }
            };
            let Some(mut rgb) = publishable else {
                alert.evidence_error = Some("privacy masking is unavailable on this camera: pictures stay on the device".into());
                continue;
            };
            if annotate {
                rgb = draw(rgb, w, h, &job.annotation.polygon, &job.annotation.boxes);
            } else if let Some(m) = mark {
                rgb = draw(rgb, w, h, &[], std::slice::from_ref(m));
            }
            let s = self.ctx.store.save_jpeg(&event, &name, &rgb, w, h).map_err(|e| e.to_string())?;
            files.push(Picked { snapshot: s, published: true });
        }
        let topics = self.ctx.publisher.topics();
        let max = self.ctx.publisher.max_payload();
        alert.evidence = files.iter().filter(|p| p.published).map(|p| evidence_ref(&p.snapshot, topics.evidence(&event, &p.snapshot.name), max)).collect();
        Ok(())
    }

    /// The picture as it may leave the device: masked when privacy is on; `None` when privacy
    /// is on but masking is not possible.
    fn publishable(&mut self, mut rgb: Vec<u8>, w: u32, h: u32, regions: Option<&SearchRegions>) -> Option<Vec<u8>> {
        if !self.ctx.privacy.enabled() {
            return Some(rgb);
        }
        let m = self.masker.as_ref()?;
        match m.mask_in(&mut rgb, w, h, regions) {
            Ok(_) => Some(rgb),
            Err(e) => {
                tracing::error!(camera = %self.ctx.camera_id, "privacy masking failed, the picture stays on the device: {e}");
                None
            }
        }
    }

    fn evidence_messages(&self, alert: &Alert, files: &[Picked]) -> Vec<(String, Vec<u8>)> {
        let topics = self.ctx.publisher.topics();
        files.iter().filter(|p| p.published).map(|p| (topics.evidence(&alert.event_id, &p.snapshot.name), p.snapshot.jpeg.clone())).collect()
    }

    /// Seals files into the chain; returns the alert's seal fields and the manifest message.
    #[allow(clippy::type_complexity)]
    fn seal(&self, alert: &Alert, state: &str, time: chrono::DateTime<chrono::Utc>, files: &[Picked]) -> Result<((ManifestRef, Option<String>, String), (String, Vec<u8>)), String> {
        let files: Vec<(String, PathBuf)> = files.iter().map(|p| (p.snapshot.name.clone(), p.snapshot.path.clone())).collect();
        self.seal_paths(alert, state, time, files)
    }

    #[allow(clippy::type_complexity)]
    fn seal_paths(&self, alert: &Alert, state: &str, time: chrono::DateTime<chrono::Utc>, files: Vec<(String, PathBuf)>) -> Result<((ManifestRef, Option<String>, String), (String, Vec<u8>)), String> {
        let sealed = self
            .ctx
            .sealer
            .lock()
            .unwrap()
            .seal(ManifestInput {
                event_id: alert.event_id.clone(),
                state: state.into(),
                kind: alert.kind.clone(),
                violation: alert.violation.clone(),
                device_id: alert.device_id.clone(),
                camera_id: alert.camera_id.clone(),
                zone_id: alert.zone_id.clone(),
                location: alert.location.clone(),
                time,
                model_name: alert.model.name.clone(),
                model_sha256: alert.model.sha256.clone(),
                confidence: alert.objects.iter().map(|o| o.score).fold(0.0, f32::max),
                dwell_s: alert.dwell_s,
                files,
            })
            .map_err(|e| e.to_string())?;
        let topic = self.ctx.publisher.topics().evidence(&alert.event_id, &format!("manifest-{}", sealed.seq));
        let bytes = std::fs::read(&sealed.manifest_path).map_err(|e| format!("{}: {e}", sealed.manifest_path.display()))?;
        *self.ctx.stats.chain_head.lock().unwrap() = Some((sealed.seq, sealed.manifest_sha256.clone()));
        let mref = ManifestRef { seq: sealed.seq, sha256: sealed.manifest_sha256, topic: topic.clone(), path: sealed.manifest_path.display().to_string() };
        Ok(((mref, sealed.prev_manifest_sha256, sealed.signature_hex), (topic, bytes)))
    }

    /// The event's clip is written: seal it, queue it (unless privacy is on: a clip cannot be
    /// masked without re-encoding, so it stays on the device), and say so with an `update`.
    fn clip(&mut self, mut alert: Alert, clip: &ClipInfo) {
        let privacy_on = self.ctx.privacy.enabled();
        let bytes = match std::fs::read(&clip.path) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(camera = %self.ctx.camera_id, event = %alert.event_id, "cannot read the written clip: {e}");
                return;
            }
        };
        let topic = if privacy_on { String::new() } else { self.ctx.publisher.topics().evidence(&alert.event_id, "clip") };
        alert.evidence = vec![EvidenceRef {
            name: "clip".into(),
            content_type: "video/mp4".into(),
            sha256: super::seal::sha256_hex(&bytes),
            bytes: bytes.len(),
            width: clip.width,
            height: clip.height,
            topic: topic.clone(),
            chunks: if privacy_on { 0 } else { chunks_of(bytes.len(), self.ctx.publisher.max_payload()) },
            path: clip.path.display().to_string(),
        }];
        self.registry.assign(&mut alert);
        alert.device_seq = self.ctx.device_seq.next();
        self.save_registry();
        let mut messages = Vec::new();
        match self.seal_paths(&alert, "clip", chrono::Utc::now(), vec![("clip".into(), clip.path.clone())]) {
            Ok(((m, prev, sig), manifest)) => {
                alert.manifest = Some(m);
                alert.prev_hash = prev;
                alert.signature = Some(sig);
                if !privacy_on {
                    messages.push((topic, bytes));
                }
                messages.push(manifest);
            }
            Err(e) => {
                tracing::error!(camera = %self.ctx.camera_id, event = %alert.event_id, "clip not sealed: {e}");
                alert.evidence_error = Some(format!("clip not sealed: {e}"));
                alert.evidence.clear();
            }
        }
        self.queue(&alert, messages);
    }

    /// `cmd/snapshot`: the picture, masked, as JPEG on `…/snapshot/{camera}`.
    fn snapshot(&mut self, picture: &Picture, captured_at: chrono::DateTime<chrono::Utc>) -> Result<serde_json::Value, String> {
        let (w, h) = picture.size();
        let rgb = self.publishable(picture.to_rgb()?, w, h, None).ok_or("privacy masking is unavailable on this camera; no picture may leave the device")?;
        let jpeg = super::encode_jpeg(&rgb, w, h).map_err(|e| e.to_string())?;
        let sha = super::seal::sha256_hex(&jpeg);
        let topic = self.ctx.publisher.topics().snapshot(&self.ctx.camera_id);
        let bytes = jpeg.len();
        self.ctx.publisher.enqueue(&topic, jpeg, false).map_err(|e| format!("cannot queue the snapshot: {e}"))?;
        Ok(json!({
            "camera_id": self.ctx.camera_id, "topic": topic, "sha256": sha, "bytes": bytes,
            "width": w, "height": h, "captured_at": rfc3339(captured_at),
        }))
    }
}

/// A saved evidence file and whether it is published (the unmasked original is not).
struct Picked {
    snapshot: Snapshot,
    published: bool,
}

/// Chunks a payload of `bytes` goes in (0: one message), as the publisher splits it.
fn chunks_of(bytes: usize, max_payload: usize) -> u32 {
    if bytes <= max_payload.max(1) { 0 } else { bytes.div_ceil(max_payload.max(1)) as u32 }
}

fn evidence_ref(s: &Snapshot, topic: String, max_payload: usize) -> EvidenceRef {
    EvidenceRef {
        chunks: chunks_of(s.jpeg.len(), max_payload),
        name: s.name.clone(),
        content_type: "image/jpeg".into(),
        sha256: s.sha256.clone(),
        bytes: s.jpeg.len(),
        width: s.width,
        height: s.height,
        topic,
        path: s.path.display().to_string(),
    }
}

/// The picture with a polygon outlined and boxes drawn (involved ones in the alert colour).
fn draw(rgb: Vec<u8>, w: u32, h: u32, polygon: &[(f32, f32)], boxes: &[MarkedBox]) -> Vec<u8> {
    let mut img = image::RgbImage::from_raw(w, h, rgb).expect("picture size");
    if polygon.len() >= 3 {
        crate::detect::draw_polygon(&mut img, polygon, image::Rgb([255, 200, 0]));
    }
    for b in boxes {
        let colour = image::Rgb(if b.involved { [255, 40, 40] } else { [80, 200, 80] });
        let bb = crate::detect::BBox::new(b.bbox[0], b.bbox[1], b.bbox[2], b.bbox[3]);
        crate::detect::draw_box(&mut img, &bb, colour, 2);
        crate::detect::draw_label(&mut img, bb.x1 as i64, bb.y1 as i64, &b.label, colour, 1);
    }
    img.into_raw()
}

/// The alert's boxes in main-stream pixels (the dumper's box stays: it refers to the `dumper`
/// picture, a sub-stream frame from the history).
fn map_alert(alert: &mut Alert, s: (f32, f32)) {
    for o in &mut alert.objects {
        o.bbox = map_box(o.bbox, s).map(f32::round);
    }
    if let Some(d) = &mut alert.dumping {
        d.bbox = map_box(d.bbox, s).map(f32::round);
    }
}

/// A camera's event registry file, `<state_dir>/events/<camera>.json`.
pub fn registry_path(state_dir: &Path, camera_id: &str) -> PathBuf {
    state_dir.join("events").join(format!("{}.json", safe_name(camera_id)))
}

/// A camera's journal directory name under `<state_dir>/journal` (for tools and tests).
pub fn journal_dir(state_dir: &Path, camera_id: &str) -> PathBuf {
    state_dir.join("journal").join(safe_name(camera_id))
}
