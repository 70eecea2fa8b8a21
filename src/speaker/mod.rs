//! Remote loudspeaker warnings (远程喊话): an alert (or an operator over `cmd/speak`) asks for a
//! configured message on a configured speaker; hawkeye makes the audio (espeak-ng speech or a
//! file, decoded by GStreamer; G.711 μ-law for camera speakers) and drives the device.
//!
//! - [`audio`]: speech and files → PCM → volume, repeats, μ-law / WAV.
//! - [`http`]: the HTTP client for vendor endpoints (Digest / Basic auth, paced uploads).
//! - [`backend`]: one attempt per device kind (Hikvision, Axis, Dahua, ONVIF, webhook, local,
//!   command).
//! - [`onvif`]: the ONVIF RTSP audio backchannel sender.
//!
//! Safety: only speakers and messages from the config can be played (the allow-list);
//! each speaker keeps a minimum interval between attempts and stays silent in its quiet hours;
//! every attempt, skip and drop is published on `…/speaker_result` and counted. Each speaker
//! has its own worker and a short queue, so a slow or dead speaker delays nothing but itself,
//! and a request never waits: alerts are never held up by a speaker.
//!
//! Clocks: the minimum interval runs on `tokio::time::Instant` and quiet hours on a wall clock
//! derived from it ([`WallClock`]), so both can be tested with paused tokio time.

pub mod audio;
pub mod backend;
pub mod http;
pub mod onvif;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::config::{CompiledSpeaker, MessageCfg, SpeakerCfg, ZoneSpeak};
use crate::rules::Schedule;

/// Requests waiting per speaker beyond the one playing; more are dropped (and reported).
pub const QUEUE_DEPTH: usize = 4;

/// Why a message is played.
#[derive(Clone, Debug, PartialEq)]
pub enum Origin {
    /// An alert transition (or a reminder while the event stays active: `state` = `active`).
    Alert { event_id: String, camera_id: String, zone_id: String, kind: String, state: String },
    /// An operator's `cmd/speak`.
    Operator { request_id: Option<String>, operator: Option<String> },
}

impl Origin {
    /// The event, for alert-triggered warnings.
    pub fn event_id(&self) -> Option<&str> {
        match self {
            Origin::Alert { event_id, .. } => Some(event_id),
            Origin::Operator { .. } => None,
        }
    }
    /// Adds the origin's fields to a JSON object.
    pub fn add_to(&self, v: &mut Value) {
        match self {
            Origin::Alert { event_id, camera_id, zone_id, kind, state } => {
                v["trigger"] = json!("alert");
                v["event_id"] = json!(event_id);
                v["camera_id"] = json!(camera_id);
                v["zone_id"] = json!(zone_id);
                v["kind"] = json!(kind);
                v["state"] = json!(state);
            }
            Origin::Operator { request_id, operator } => {
                v["trigger"] = json!("operator");
                v["request_id"] = json!(request_id);
                v["operator"] = json!(operator);
            }
        }
    }
}

/// A request to play `message` on `speaker`.
#[derive(Clone, Debug, PartialEq)]
pub struct SpeakRequest {
    pub speaker: String,
    pub message: String,
    pub origin: Origin,
}

/// How an attempt ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Outcome {
    Played,
    Failed,
    /// Within the speaker's minimum interval of the previous attempt.
    RateLimited,
    /// In the speaker's quiet hours.
    QuietHours,
    /// The speaker's queue was full.
    Dropped,
}

impl Outcome {
    pub fn as_str(&self) -> &'static str {
        match self {
            Outcome::Played => "played",
            Outcome::Failed => "failed",
            Outcome::RateLimited => "rate_limited",
            Outcome::QuietHours => "quiet_hours",
            Outcome::Dropped => "dropped",
        }
    }
    pub const ALL: [Outcome; 5] = [Outcome::Played, Outcome::Failed, Outcome::RateLimited, Outcome::QuietHours, Outcome::Dropped];
}

/// The report of one request, published on `…/speaker_result`.
#[derive(Clone, Debug)]
pub struct SpeakResult {
    pub request: SpeakRequest,
    pub outcome: Outcome,
    /// What was done, or why not.
    pub detail: String,
    pub audio_bytes: usize,
    pub audio_s: f64,
    pub elapsed_ms: u64,
    pub at: DateTime<Utc>,
}

impl SpeakResult {
    pub fn to_json(&self) -> Vec<u8> {
        let mut v = json!({
            "speaker": self.request.speaker, "message": self.request.message,
            "ok": self.outcome == Outcome::Played, "outcome": self.outcome.as_str(), "detail": self.detail,
            "audio_bytes": self.audio_bytes, "audio_s": (self.audio_s * 100.0).round() / 100.0,
            "elapsed_ms": self.elapsed_ms, "ts": crate::publish::rfc3339(self.at),
        });
        self.request.origin.add_to(&mut v);
        serde_json::to_vec(&v).unwrap_or_default()
    }
}

/// Attempts per speaker and outcome, for the heartbeat and `/metrics`.
#[derive(Debug, Default)]
pub struct SpeakerStats {
    counts: Mutex<BTreeMap<(String, Outcome), u64>>,
}

impl SpeakerStats {
    fn count(&self, speaker: &str, outcome: Outcome) {
        *self.counts.lock().unwrap().entry((speaker.to_string(), outcome)).or_default() += 1;
    }
    /// `(speaker, outcome, count)` rows, sorted.
    pub fn rows(&self) -> Vec<(String, Outcome, u64)> {
        self.counts.lock().unwrap().iter().map(|((s, o), n)| (s.clone(), *o, *n)).collect()
    }
    /// `{speaker: {outcome: count}}`.
    pub fn to_json(&self) -> Value {
        let mut m = serde_json::Map::new();
        for (s, o, n) in self.rows() {
            m.entry(s).or_insert_with(|| json!({}))[o.as_str()] = json!(n);
        }
        Value::Object(m)
    }
}

/// Wall time derived from tokio's clock: `base_wall` at `base`, advancing with tokio time.
#[derive(Clone, Copy, Debug)]
pub struct WallClock {
    base_wall: DateTime<Utc>,
    base: Instant,
}

impl WallClock {
    /// The system's wall clock now.
    pub fn system() -> WallClock {
        WallClock { base_wall: Utc::now(), base: Instant::now() }
    }
    /// A clock that reads `at` now (tests).
    pub fn starting_at(at: DateTime<Utc>) -> WallClock {
        WallClock { base_wall: at, base: Instant::now() }
    }
    pub fn now(&self) -> DateTime<Utc> {
        self.base_wall + chrono::Duration::from_std(Instant::now() - self.base).unwrap_or_default()
    }
}

/// A speaker's safety rules as the config compiler leaves them.
#[derive(Clone, Debug, PartialEq)]
pub struct GateParams {
    /// Two attempts are at least this far apart.
    pub min_interval: Duration,
    /// Windows in which the speaker stays silent; `None`: never quiet.
    pub quiet_hours: Option<Schedule>,
}

/// A speaker's safety rules: minimum interval and quiet hours. Pure.
#[derive(Debug)]
pub struct Gate {
    min_interval: Duration,
    quiet: Option<Schedule>,
    last: Option<Instant>,
}

impl Gate {
    pub fn new(p: &GateParams) -> Gate {
        Gate { min_interval: p.min_interval, quiet: p.quiet_hours.clone(), last: None }
    }
    /// Whether an attempt may start now; if so it is recorded as the latest attempt.
    pub fn admit(&mut self, now: Instant, wall: DateTime<Utc>) -> Result<(), (Outcome, String)> {
        if let Some(q) = &self.quiet {
            if q.is_active(wall) {
                return Err((Outcome::QuietHours, "quiet hours".into()));
            }
        }
        if let Some(last) = self.last {
            let since = now - last;
            if since < self.min_interval {
                return Err((Outcome::RateLimited, format!("last attempt {:.1} s ago, minimum interval {:.0} s", since.as_secs_f64(), self.min_interval.as_secs_f64())));
            }
        }
        self.last = Some(now);
        Ok(())
    }
}

/// Where results go (the app publishes them on MQTT; tests collect them).
pub type ResultSink = Arc<dyn Fn(&SpeakResult) + Send + Sync>;

/// The running speakers: one worker task each.
#[derive(Clone)]
pub struct Speakers {
    workers: Arc<HashMap<String, mpsc::Sender<SpeakRequest>>>,
    messages: Arc<Vec<MessageCfg>>,
    stats: Arc<SpeakerStats>,
    sink: ResultSink,
    clock: WallClock,
}

impl Speakers {
    /// Starts a worker per speaker. `work_dir` holds temporary speech and WAV files;
    /// `base_dir` resolves message files.
    pub fn start(speakers: &[CompiledSpeaker], messages: &[MessageCfg], base_dir: PathBuf, work_dir: PathBuf, clock: WallClock, stats: Arc<SpeakerStats>, sink: ResultSink) -> Speakers {
        let messages = Arc::new(messages.to_vec());
        let mut workers = HashMap::new();
        for CompiledSpeaker { cfg: s, gate } in speakers {
            let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
            workers.insert(s.id.clone(), tx);
            let w = Worker { cfg: s.clone(), gate: gate.clone(), messages: messages.clone(), base_dir: base_dir.clone(), work_dir: work_dir.clone(), clock, stats: stats.clone(), sink: sink.clone() };
            tokio::spawn(w.run(rx));
        }
        Speakers { workers: Arc::new(workers), messages, stats, sink, clock }
    }

    /// Queues a request without waiting. `Err` for a speaker or message that is not in the
    /// config (nothing is played); a full queue is reported as `dropped`, not as an error.
    pub fn request(&self, req: SpeakRequest) -> Result<(), String> {
        let worker = self.workers.get(&req.speaker).ok_or_else(|| format!("unknown speaker {:?} (configured: {})", req.speaker, self.known_speakers()))?;
        if !self.messages.iter().any(|m| m.id == req.message) {
            let known: Vec<&str> = self.messages.iter().map(|m| m.id.as_str()).collect();
            return Err(format!("unknown message {:?} (configured: {})", req.message, known.join(", ")));
        }
        if let Err(mpsc::error::TrySendError::Full(req) | mpsc::error::TrySendError::Closed(req)) = worker.try_send(req) {
            let r = SpeakResult { outcome: Outcome::Dropped, detail: "speaker busy: queue full".into(), audio_bytes: 0, audio_s: 0.0, elapsed_ms: 0, at: self.clock.now(), request: req };
            tracing::warn!(speaker = %r.request.speaker, message = %r.request.message, "speaker busy, warning dropped");
            self.stats.count(&r.request.speaker, r.outcome);
            (self.sink)(&r);
        }
        Ok(())
    }

    fn known_speakers(&self) -> String {
        let mut k: Vec<&str> = self.workers.keys().map(String::as_str).collect();
        k.sort();
        k.join(", ")
    }
}

/// One speaker's worker: gate, audio (rendered once per message), attempt, report.
struct Worker {
    cfg: SpeakerCfg,
    gate: GateParams,
    messages: Arc<Vec<MessageCfg>>,
    base_dir: PathBuf,
    work_dir: PathBuf,
    clock: WallClock,
    stats: Arc<SpeakerStats>,
    sink: ResultSink,
}

impl Worker {
    async fn run(self, mut rx: mpsc::Receiver<SpeakRequest>) {
        let tls = match &self.cfg.ca_file {
            None => Ok(None),
            Some(p) => {
                let path = crate::config::resolve_path(&self.base_dir, p);
                std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display())).and_then(|pem| http::tls_config(&pem)).map(Some)
            }
        };
        if let Err(e) = &tls {
            tracing::error!(speaker = %self.cfg.id, "speaker TLS trust cannot be set up: {e}");
        }
        let client = http::Client::new(self.cfg.username.as_deref(), self.cfg.password.as_deref(), Duration::from_secs_f64(self.cfg.timeout_s), tls);
        let mut gate = Gate::new(&self.gate);
        let mut rendered: HashMap<String, Arc<audio::Pcm>> = HashMap::new();
        while let Some(req) = rx.recv().await {
            let started = Instant::now();
            let at = self.clock.now();
            let result = match gate.admit(started, at) {
                Err((outcome, detail)) => (outcome, detail, backend::Delivered::default()),
                Ok(()) => match self.attempt(&client, &req, &mut rendered).await {
                    Ok(d) => (Outcome::Played, d.detail.clone(), d),
                    Err(e) => (Outcome::Failed, e, backend::Delivered::default()),
                },
            };
            let (outcome, detail, d) = result;
            let r = SpeakResult { request: req, outcome, detail, audio_bytes: d.audio_bytes, audio_s: d.audio_s, elapsed_ms: started.elapsed().as_millis() as u64, at };
            match outcome {
                Outcome::Played => tracing::info!(speaker = %self.cfg.id, message = %r.request.message, detail = %r.detail, "warning played"),
                Outcome::Failed => tracing::warn!(speaker = %self.cfg.id, message = %r.request.message, "warning failed: {}", r.detail),
                _ => tracing::info!(speaker = %self.cfg.id, message = %r.request.message, outcome = outcome.as_str(), "warning skipped: {}", r.detail),
            }
            self.stats.count(&self.cfg.id, outcome);
            (self.sink)(&r);
        }
    }

    async fn attempt(&self, client: &http::Client, req: &SpeakRequest, rendered: &mut HashMap<String, Arc<audio::Pcm>>) -> Result<backend::Delivered, String> {
        let msg = self.messages.iter().find(|m| m.id == req.message).ok_or("message vanished")?;
        if !msg.playable_on(self.cfg.kind) {
            return Err(format!("message {:?} has only a stored clip, which a {} speaker cannot play", msg.id, self.cfg.kind.as_str()));
        }
        let pcm = if msg.needs_audio_on(self.cfg.kind) {
            Some(match rendered.get(&msg.id) {
                Some(p) => p.clone(),
                None => {
                    let p = Arc::new(self.render(msg).await?);
                    rendered.insert(msg.id.clone(), p.clone());
                    p
                }
            })
        } else {
            None
        };
        backend::play(&self.cfg, client, msg, pcm.as_deref(), &req.origin, &self.work_dir).await
    }

    /// The message's audio at the rate this speaker needs, with its volume and repeats.
    async fn render(&self, msg: &MessageCfg) -> Result<audio::Pcm, String> {
        let rate = backend::audio_rate(self.cfg.kind);
        let (msg, work, file) = (msg.clone(), self.work_dir.clone(), msg.file.as_ref().map(|f| crate::config::resolve_path(&self.base_dir, f)));
        tokio::task::spawn_blocking(move || {
            let pcm = match (&msg.text, file) {
                (Some(t), _) => audio::speech(t, &msg.lang, rate, &work),
                (None, Some(f)) => audio::decode_file(&f, rate),
                (None, None) => unreachable!("checked by has_audio"),
            };
            pcm.map(|p| p.shaped(msg.volume, msg.repeat)).map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| format!("audio task: {e}"))?
    }
}

/// Which alert states of a zone trigger its warning, and the reminders while events stay
/// active (`again_after_s`). Pure: fed transitions and stream time, returns what to say.
#[derive(Debug, Default)]
pub struct Reminders {
    /// event id → (zone index, stream time of the last warning)
    active: HashMap<String, (usize, f64)>,
}

impl Reminders {
    /// A transition of `event_id` in zone `zone` at stream time `ts`: whether to warn now.
    pub fn on_transition(&mut self, speak: &ZoneSpeak, zone: usize, event_id: &str, state: &str, ts: f64) -> bool {
        let warn = speak.on.iter().any(|s| s == state);
        match state {
            "end" | "resolved" => {
                self.active.remove(event_id);
            }
            "new" | "recurred" if speak.again_after_s.is_some() => {
                let last = if warn { ts } else { self.active.get(event_id).map_or(ts, |a| a.1) };
                self.active.insert(event_id.to_string(), (zone, last));
            }
            _ => {
                if warn {
                    if let Some(a) = self.active.get_mut(event_id) {
                        a.1 = ts;
                    }
                }
            }
        }
        warn
    }

    /// Events due for a reminder at `ts` (their zone's `speak` from `speak_of`); each one's clock
    /// restarts.
    pub fn due<'a>(&mut self, ts: f64, speak_of: impl Fn(usize) -> Option<&'a ZoneSpeak>) -> Vec<(String, usize)> {
        let mut out = Vec::new();
        for (id, (zone, last)) in self.active.iter_mut() {
            let Some(again) = speak_of(*zone).and_then(|s| s.again_after_s) else { continue };
            if ts - *last >= again {
                *last = ts;
                out.push((id.clone(), *zone));
            }
        }
        out.sort();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn gate(min_interval_s: f64, quiet: &[&str]) -> GateParams {
        CompiledSpeaker::new(speaker(min_interval_s, quiet), std::path::Path::new(".")).unwrap().gate
    }

    fn speaker(min_interval_s: f64, quiet: &[&str]) -> SpeakerCfg {
        let text = format!(
            "id = \"s\"\nkind = \"webhook\"\nurl = \"http://x/\"\nmin_interval_s = {min_interval_s}\nquiet_hours = [{}]\n",
            quiet.iter().map(|q| format!("{q:?}")).collect::<Vec<_>>().join(",")
        );
        toml::from_str(&text).unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn gate_keeps_the_minimum_interval_on_tokio_time() {
        let mut g = Gate::new(&gate(30.0, &[]));
        let wall = Utc.with_ymd_and_hms(2026, 12, 1, 4, 0, 0).unwrap();
        assert!(g.admit(Instant::now(), wall).is_ok());
        tokio::time::advance(Duration::from_secs(29)).await;
        assert_eq!(g.admit(Instant::now(), wall).unwrap_err().0, Outcome::RateLimited);
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(g.admit(Instant::now(), wall).is_ok(), "30 s after the first attempt");
        assert_eq!(g.admit(Instant::now(), wall).unwrap_err().0, Outcome::RateLimited, "skips do not count, attempts do");
    }

    #[tokio::test(start_paused = true)]
    async fn quiet_hours_follow_the_wall_clock_derived_from_tokio_time() {
        let mut g = Gate::new(&gate(0.0, &["mon-sun 22:00-07:00"]));
        // 21:59:30 in +08:00
        let clock = WallClock::starting_at(Utc.with_ymd_and_hms(2026, 12, 1, 13, 59, 30).unwrap());
        assert!(g.admit(Instant::now(), clock.now()).is_ok());
        tokio::time::advance(Duration::from_secs(31)).await;
        assert_eq!(g.admit(Instant::now(), clock.now()).unwrap_err().0, Outcome::QuietHours, "22:00:01");
        tokio::time::advance(Duration::from_secs(9 * 3600)).await;
        assert!(g.admit(Instant::now(), clock.now()).is_ok(), "07:00:01 the next day");
    }

    #[test]
    fn reminders_repeat_while_active_and_stop_at_end() {
        let speak = ZoneSpeak { speaker: "s".into(), message: "m".into(), on: vec!["new".into()], again_after_s: Some(60.0) };
        let mut r = Reminders::default();
        assert!(r.on_transition(&speak, 0, "e1", "new", 100.0));
        assert!(r.due(159.0, |_| Some(&speak)).is_empty());
        assert_eq!(r.due(160.0, |_| Some(&speak)), vec![("e1".to_string(), 0)]);
        assert!(r.due(200.0, |_| Some(&speak)).is_empty(), "the clock restarted at 160");
        assert!(!r.on_transition(&speak, 0, "e1", "update", 210.0), "update is not in `on`");
        assert_eq!(r.due(220.0, |_| Some(&speak)).len(), 1);
        assert!(!r.on_transition(&speak, 0, "e1", "end", 230.0));
        assert!(r.due(1000.0, |_| Some(&speak)).is_empty(), "ended events are not reminded");
        let once = ZoneSpeak { again_after_s: None, ..speak.clone() };
        assert!(r.on_transition(&once, 1, "e2", "new", 0.0));
        assert!(r.due(1e6, |_| Some(&once)).is_empty(), "no again_after_s: no reminders");
    }

    #[test]
    fn results_carry_the_origin() {
        let r = SpeakResult {
            request: SpeakRequest { speaker: "pole".into(), message: "m".into(), origin: Origin::Operator { request_id: Some("r1".into()), operator: None } },
            outcome: Outcome::QuietHours,
            detail: "quiet hours".into(),
            audio_bytes: 0,
            audio_s: 0.0,
            elapsed_ms: 0,
            at: Utc::now(),
        };
        let v: Value = serde_json::from_slice(&r.to_json()).unwrap();
        assert_eq!((v["ok"].as_bool(), v["outcome"].as_str(), v["request_id"].as_str(), v["trigger"].as_str()), (Some(false), Some("quiet_hours"), Some("r1"), Some("operator")));
    }
}
