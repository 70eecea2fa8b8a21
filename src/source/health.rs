//! Per-camera health, shared between the camera's supervisor (writer), its appsink callback
//! (frame counter) and telemetry (reader: heartbeat, /healthz).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Serialize;

/// Window over which [`HealthSnapshot::fps`] is measured.
const FPS_WINDOW: Duration = Duration::from_secs(5);

/// Where a camera's source stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthState {
    /// Pipeline built and starting; no frame yet.
    Connecting,
    /// Frames are arriving.
    Streaming,
    /// No frame for `stall_timeout_s`; the pipeline is being restarted.
    Stalled,
    /// The pipeline failed (error, unexpected EOS, state change); waiting to retry, or given up
    /// for good when the pipeline description itself is invalid.
    Failed,
    /// A file source without `loop` reached its end.
    Ended,
    /// Shut down on request.
    Stopped,
}

impl HealthState {
    /// The state as it appears in JSON and logs.
    pub fn as_str(&self) -> &'static str {
        match self {
            HealthState::Connecting => "connecting",
            HealthState::Streaming => "streaming",
            HealthState::Stalled => "stalled",
            HealthState::Failed => "failed",
            HealthState::Ended => "ended",
            HealthState::Stopped => "stopped",
        }
    }
}

impl std::fmt::Display for HealthState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a camera's pipeline was torn down and restarted (after fallbacksrc's `RetryReason`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RetryReason {
    /// An error message on the bus.
    Error,
    /// End of stream on a live source (the camera closed the stream).
    Eos,
    /// The pipeline refused to go to Playing.
    StateChangeFailure,
    /// No frame for `stall_timeout_s`.
    Timeout,
}

/// How often each [`RetryReason`] caused a restart.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RetryStats {
    pub error: u64,
    pub eos: u64,
    pub state_change_failure: u64,
    pub timeout: u64,
}

/// A point-in-time copy of a camera's health.
#[derive(Clone, Debug, Serialize)]
pub struct HealthSnapshot {
    pub camera_id: String,
    pub state: HealthState,
    pub last_error: Option<String>,
    pub reconnects: u64,
    pub frames: u64,
    /// Frames per second delivered over the last few seconds.
    pub fps: f64,
    /// When the state last changed.
    pub since: DateTime<Utc>,
    /// Dual-stream cameras: the main stream (parsed into the clip ring). `state` above is the
    /// detected sub-stream's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub main_stream: Option<MainStreamSnapshot>,
    /// Why the two streams of a dual-stream camera do not fit together (aspect ratios differ, no
    /// keyframe within the clip ring), found once both streams are seen; empty when they fit.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mismatch: Vec<String>,
    /// Cameras with a clip ring: what it holds now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clip_ring: Option<ClipRingSnapshot>,
}

/// What a camera's clip ring holds: seconds of stream (oldest unit to newest) and bytes.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct ClipRingSnapshot {
    pub seconds: f64,
    pub bytes: usize,
}

/// A point-in-time copy of a dual-stream camera's main-stream health.
#[derive(Clone, Debug, Serialize)]
pub struct MainStreamSnapshot {
    pub state: HealthState,
    pub last_error: Option<String>,
    pub reconnects: u64,
    /// Encoded access units put in the clip ring so far.
    pub units: u64,
    pub retries: RetryStats,
    pub since: DateTime<Utc>,
}

struct Status {
    state: HealthState,
    last_error: Option<String>,
    since: DateTime<Utc>,
}

/// Health of one camera; share it as `Arc<CameraHealth>`.
pub struct CameraHealth {
    camera_id: String,
    status: Mutex<Status>,
    frames: AtomicU64,
    reconnects: AtomicU64,
    retries: Mutex<RetryStats>,
    /// (instant, frame count) samples, one per frame at most every 100 ms, for the fps window.
    rate: Mutex<VecDeque<(Instant, u64)>>,
    /// Dual-stream cameras only: the main stream's own status (see [`CameraHealth::enable_main`]).
    main: Mutex<Option<MainStatus>>,
    main_units: AtomicU64,
    /// (kind, message): one entry per kind of mismatch, its message kept current.
    mismatch: Mutex<Vec<(&'static str, String)>>,
    /// The camera's clip ring, when it keeps one (see [`CameraHealth::attach_ring`]).
    ring: std::sync::OnceLock<Arc<crate::evidence::EncodedRing>>,
}

struct MainStatus {
    status: Status,
    reconnects: u64,
    retries: RetryStats,
}

impl CameraHealth {
    /// Reports this ring's contents in the snapshot (once; later calls are ignored).
    pub fn attach_ring(&self, ring: Arc<crate::evidence::EncodedRing>) {
        let _ = self.ring.set(ring);
    }

    /// What the camera's clip ring holds now (None: it keeps none).
    pub fn clip_ring(&self) -> Option<ClipRingSnapshot> {
        self.ring.get().map(|r| {
            let (seconds, bytes) = r.held();
            ClipRingSnapshot { seconds: (seconds * 100.0).round() / 100.0, bytes }
        })
    }

    /// New health record in state `Connecting`.
    pub fn new(camera_id: impl Into<String>) -> Self {
        CameraHealth {
            camera_id: camera_id.into(),
            status: Mutex::new(Status { state: HealthState::Connecting, last_error: None, since: Utc::now() }),
            frames: AtomicU64::new(0),
            reconnects: AtomicU64::new(0),
            retries: Mutex::new(RetryStats::default()),
            rate: Mutex::new(VecDeque::new()),
            main: Mutex::new(None),
            main_units: AtomicU64::new(0),
            mismatch: Mutex::new(Vec::new()),
            ring: std::sync::OnceLock::new(),
        }
    }

    /// Marks the camera dual-stream: its snapshot gets a `main_stream` part (state `connecting`).
    pub fn enable_main(&self) {
        let mut m = self.main.lock().unwrap_or_else(|e| e.into_inner());
        if m.is_none() {
            let status = Status { state: HealthState::Connecting, last_error: None, since: Utc::now() };
            *m = Some(MainStatus { status, reconnects: 0, retries: RetryStats::default() });
        }
    }

    /// The main stream's state (`None`: not a dual-stream camera).
    pub fn main_state(&self) -> Option<HealthState> {
        self.main.lock().unwrap_or_else(|e| e.into_inner()).as_ref().map(|m| m.status.state)
    }

    /// Moves the main stream to `state`, recording `error` when given; logged like the camera's
    /// own state, with `stream = "main"`.
    pub fn set_main(&self, state: HealthState, error: Option<String>) {
        let mut guard = self.main.lock().unwrap_or_else(|e| e.into_inner());
        let Some(m) = guard.as_mut() else { return };
        let prev = m.status.state;
        let changed = prev != state;
        if changed {
            m.status.since = Utc::now();
        }
        m.status.state = state;
        if let Some(e) = &error {
            m.status.last_error = Some(e.clone());
        }
        drop(guard);
        if !changed && error.is_none() {
            return;
        }
        let (cam, err) = (self.camera_id.as_str(), error.as_deref().unwrap_or(""));
        match state {
            HealthState::Stalled | HealthState::Failed => {
                tracing::warn!(camera = cam, stream = "main", from = %prev, to = %state, error = err, "camera state")
            }
            _ => tracing::info!(camera = cam, stream = "main", from = %prev, to = %state, error = err, "camera state"),
        }
    }

    /// Counts a main-stream reconnect, or a restart by `reason`.
    pub fn count_main_retry(&self, reason: Option<RetryReason>) {
        if let Some(m) = self.main.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            match reason {
                None => m.reconnects += 1,
                Some(r) => bump(&mut m.retries, r),
            }
        }
    }

    /// Counts one main-stream access unit put in the clip ring.
    pub fn count_main_unit(&self) {
        self.main_units.fetch_add(1, Ordering::Relaxed);
    }

    /// Main-stream access units so far.
    pub fn main_units(&self) -> u64 {
        self.main_units.load(Ordering::Relaxed)
    }

    /// Records a mismatch of `kind` between the two streams: logged at WARN the first time,
    /// later messages of the same kind (a figure that grew) only replace it.
    pub fn add_mismatch(&self, kind: &'static str, message: String) {
        let mut m = self.mismatch.lock().unwrap_or_else(|e| e.into_inner());
        match m.iter_mut().find(|(k, _)| *k == kind) {
            Some(entry) => entry.1 = message,
            None => {
                tracing::warn!(camera = %self.camera_id, "dual-stream mismatch: {message}");
                m.push((kind, message));
            }
        }
    }

    /// The camera this record belongs to.
    pub fn camera_id(&self) -> &str {
        &self.camera_id
    }

    /// Current state.
    pub fn state(&self) -> HealthState {
        self.status.lock().unwrap_or_else(|e| e.into_inner()).state
    }

    /// Last error recorded, if any.
    pub fn last_error(&self) -> Option<String> {
        self.status.lock().unwrap_or_else(|e| e.into_inner()).last_error.clone()
    }

    /// Moves to `state`; logs when it differs from the current one. The last error is kept.
    pub fn set_state(&self, state: HealthState) {
        self.transition(state, None);
    }

    /// Moves to `state` and records `error` as the last error (logged with the change).
    pub fn set_error(&self, state: HealthState, error: impl Into<String>) {
        self.transition(state, Some(error.into()));
    }

    fn transition(&self, state: HealthState, error: Option<String>) {
        let mut st = self.status.lock().unwrap_or_else(|e| e.into_inner());
        let changed = st.state != state;
        if changed {
            st.since = Utc::now();
        }
        let prev = st.state;
        st.state = state;
        if let Some(e) = &error {
            st.last_error = Some(e.clone());
        }
        drop(st);
        if !changed && error.is_none() {
            return;
        }
        let cam = self.camera_id.as_str();
        let err = error.as_deref().unwrap_or("");
        match state {
            HealthState::Stalled | HealthState::Failed => {
                tracing::warn!(camera = cam, from = %prev, to = %state, error = err, "camera state")
            }
            _ => tracing::info!(camera = cam, from = %prev, to = %state, error = err, "camera state"),
        }
    }

    /// Counts one delivered frame.
    pub fn count_frame(&self) {
        let n = self.frames.fetch_add(1, Ordering::Relaxed) + 1;
        let now = Instant::now();
        let mut rate = self.rate.lock().unwrap_or_else(|e| e.into_inner());
        if rate.back().is_none_or(|(t, _)| now.duration_since(*t) >= Duration::from_millis(100)) {
            rate.push_back((now, n));
        } else if let Some(last) = rate.back_mut() {
            last.1 = n;
        }
        while rate.front().is_some_and(|(t, _)| now.duration_since(*t) > FPS_WINDOW) {
            rate.pop_front();
        }
    }

    /// Counts one reconnect (a new pipeline after a failure).
    pub fn count_reconnect(&self) {
        self.reconnects.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts why a pipeline is being restarted.
    pub fn count_retry(&self, reason: RetryReason) {
        bump(&mut self.retries.lock().unwrap_or_else(|e| e.into_inner()), reason);
    }

    /// Restarts so far, by reason.
    pub fn retry_stats(&self) -> RetryStats {
        *self.retries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Frames delivered so far.
    pub fn frames(&self) -> u64 {
        self.frames.load(Ordering::Relaxed)
    }

    /// Reconnects so far.
    pub fn reconnects(&self) -> u64 {
        self.reconnects.load(Ordering::Relaxed)
    }

    fn fps(&self) -> f64 {
        let now = Instant::now();
        let rate = self.rate.lock().unwrap_or_else(|e| e.into_inner());
        let recent = rate.iter().filter(|(t, _)| now.duration_since(*t) <= FPS_WINDOW);
        let mut first = None;
        let mut last = None;
        for s in recent {
            first.get_or_insert(*s);
            last = Some(*s);
        }
        match (first, last) {
            (Some((t0, n0)), Some((_, n1))) if n1 > n0 => {
                // Frames after the first sample, over the time since it: a stream that stopped
                // decays towards 0 instead of reporting its old rate.
                let dt = now.duration_since(t0).as_secs_f64().max(0.1);
                (n1 - n0) as f64 / dt
            }
            _ => 0.0,
        }
    }

    /// A copy of the current health.
    pub fn snapshot(&self) -> HealthSnapshot {
        let st = self.status.lock().unwrap_or_else(|e| e.into_inner());
        let (state, last_error, since) = (st.state, st.last_error.clone(), st.since);
        drop(st);
        HealthSnapshot {
            camera_id: self.camera_id.clone(),
            state,
            last_error,
            reconnects: self.reconnects(),
            frames: self.frames(),
            fps: self.fps(),
            since,
            main_stream: self.main.lock().unwrap_or_else(|e| e.into_inner()).as_ref().map(|m| MainStreamSnapshot {
                state: m.status.state,
                last_error: m.status.last_error.clone(),
                reconnects: m.reconnects,
                units: self.main_units(),
                retries: m.retries,
                since: m.status.since,
            }),
            mismatch: self.mismatch.lock().unwrap_or_else(|e| e.into_inner()).iter().map(|(_, m)| m.clone()).collect(),
            clip_ring: self.clip_ring(),
        }
    }
}

fn bump(r: &mut RetryStats, reason: RetryReason) {
    match reason {
        RetryReason::Error => r.error += 1,
        RetryReason::Eos => r.eos += 1,
        RetryReason::StateChangeFailure => r.state_change_failure += 1,
        RetryReason::Timeout => r.timeout += 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_changes_move_since_and_keep_the_last_error() {
        let h = CameraHealth::new("cam-1");
        let s0 = h.snapshot();
        assert_eq!(s0.state, HealthState::Connecting);
        assert!(s0.last_error.is_none());
        std::thread::sleep(Duration::from_millis(5));
        h.set_error(HealthState::Failed, "rtspsrc0: could not connect");
        let s1 = h.snapshot();
        assert_eq!(s1.state, HealthState::Failed);
        assert!(s1.since > s0.since);
        h.set_state(HealthState::Connecting);
        h.count_reconnect();
        let s2 = h.snapshot();
        assert_eq!(s2.last_error.as_deref(), Some("rtspsrc0: could not connect"));
        assert_eq!(s2.reconnects, 1);
        // same state again: since does not move
        h.set_state(HealthState::Connecting);
        assert_eq!(h.snapshot().since, s2.since);
    }

    #[test]
    fn frames_and_fps_are_counted() {
        let h = CameraHealth::new("cam-1");
        assert_eq!(h.snapshot().fps, 0.0);
        for _ in 0..6 {
            h.count_frame();
            std::thread::sleep(Duration::from_millis(110));
        }
        let s = h.snapshot();
        assert_eq!(s.frames, 6);
        assert!(s.fps > 2.0 && s.fps < 20.0, "fps {}", s.fps);
    }

    #[test]
    fn the_main_stream_has_its_own_state_and_mismatches_are_kept_once() {
        let h = CameraHealth::new("cam-2");
        assert!(serde_json::to_value(h.snapshot()).unwrap().get("main_stream").is_none());
        h.enable_main();
        h.set_state(HealthState::Streaming);
        h.set_main(HealthState::Failed, Some("rtspsrc1: could not connect".into()));
        h.count_main_retry(Some(RetryReason::Error));
        h.count_main_retry(None);
        h.count_main_unit();
        h.add_mismatch("aspect", "aspect 1.3".into());
        h.add_mismatch("aspect", "aspect 1.4".into());
        let v = serde_json::to_value(h.snapshot()).unwrap();
        assert_eq!(v["state"], "streaming");
        assert_eq!(v["main_stream"]["state"], "failed");
        assert_eq!(v["main_stream"]["last_error"], "rtspsrc1: could not connect");
        assert_eq!((v["main_stream"]["reconnects"].as_u64(), v["main_stream"]["retries"]["error"].as_u64()), (Some(1), Some(1)));
        assert_eq!(v["main_stream"]["units"], 1);
        assert_eq!(v["mismatch"], serde_json::json!(["aspect 1.4"]));
        assert!(h.last_error().is_none(), "the sub-stream's error is its own");
    }

    #[test]
    fn snapshot_serializes_snake_case() {
        let h = CameraHealth::new("cam-9");
        h.set_state(HealthState::Streaming);
        let v = serde_json::to_value(h.snapshot()).unwrap();
        assert_eq!(v["state"], "streaming");
        assert_eq!(v["camera_id"], "cam-9");
        assert!(v["since"].is_string());
    }
}
