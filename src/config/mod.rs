//! Configuration: TOML → raw serde structs ([`parse`]: type errors of every table, not only the
//! first) → [`compile`]: every check, every error at once with its TOML path
//! (`camera[0].zone[1].polygon`), and the typed per-stage values ([`Compiled`]).

mod compile;
mod drone;
pub mod fleet;
mod parse;
mod speaker;
mod validate;
mod webhook;
pub mod zones_file;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use drone::{DroneCfg, DroneWatch, GeoZone, TelemetrySource};
pub use speaker::{MessageCfg, SpeakerCfg, SpeakerKind, ZoneSpeak, SPEAK_STATES};
pub use compile::{compile, load, load_str, load_with_fleet, load_with_zones, Compiled, CompiledCamera, CompiledSpeaker};
pub use crate::rules::CompiledZone;
pub use validate::{validate, ConfigErrors};
pub use webhook::{WebhookCfg, WebhookEvidence};

/// The whole config file.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Config {
    pub device: Device,
    pub mqtt: Mqtt,
    pub model: Model,
    /// The water segmentation model that drives flooding zones (absent: flooding zones use
    /// the detector's water-class boxes).
    #[serde(default)]
    pub water: Option<WaterCfg>,
    #[serde(default)]
    pub outbox: OutboxCfg,
    #[serde(default)]
    pub telemetry: TelemetryCfg,
    #[serde(default)]
    pub evidence: EvidenceCfg,
    #[serde(default, rename = "camera")]
    pub cameras: Vec<Camera>,
    /// Loudspeakers that warnings can be played on.
    #[serde(default, rename = "speaker")]
    pub speakers: Vec<SpeakerCfg>,
    /// The warnings that may be played (automatic triggers and `cmd/speak` choose from these).
    #[serde(default, rename = "message")]
    pub messages: Vec<MessageCfg>,
    /// HTTP platforms that get every alert (and optionally its evidence) POSTed as JSON.
    #[serde(default, rename = "webhook")]
    pub webhooks: Vec<WebhookCfg>,
    /// Cameras and zones from the command centre (a signed retained `…/config`).
    #[serde(default)]
    pub fleet: Option<fleet::FleetCfg>,
    /// Directory the config was read from; relative paths in the config resolve against it.
    #[serde(skip)]
    pub base_dir: PathBuf,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Device {
    pub id: String,
    #[serde(default)]
    pub location: Location,
    /// Where the outbox and evidence live (relative to the config file).
    #[serde(default = "default_state_dir")]
    pub state_dir: PathBuf,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
pub struct Location {
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    #[serde(default)]
    pub address: String,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Mqtt {
    /// `mqtt://host:port` (default port 1883) or `mqtts://host:port` (TLS, default 8883).
    pub url: String,
    /// CA certificate (PEM) that signed the broker's certificate; required for `mqtts://`.
    pub ca_file: Option<PathBuf>,
    /// Client certificate and key (PEM) for brokers that require client authentication.
    pub client_cert: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
    pub client_id: Option<String>,
    #[serde(default = "default_prefix")]
    pub topic_prefix: String,
    pub username: Option<String>,
    pub password: Option<String>,
    #[serde(default = "default_heartbeat_s")]
    pub heartbeat_s: f64,
    #[serde(default = "default_keep_alive_s")]
    pub keep_alive_s: u64,
    /// Largest payload handed to the broker in one message (KiB); larger ones are chunked.
    /// Brokers limit packets (EMQX: 1 MB by default); keep this below the broker's limit.
    #[serde(default = "default_max_payload_kb")]
    pub max_payload_kb: u64,
    /// At every connect, check that the broker delivers what this device publishes (an ACL that
    /// refuses is otherwise invisible with MQTT 3.1.1); hold the outbox while it does not.
    #[serde(default = "default_true")]
    pub acl_probe: bool,
}

fn default_max_payload_kb() -> u64 {
    256
}

/// Where `/metrics` and `/healthz` are served.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct TelemetryCfg {
    /// `host:port` to listen on; absent or empty turns the HTTP endpoint off.
    #[serde(default = "default_telemetry_listen")]
    pub listen: Option<String>,
}

impl Default for TelemetryCfg {
    fn default() -> Self {
        TelemetryCfg { listen: default_telemetry_listen() }
    }
}

fn default_telemetry_listen() -> Option<String> {
    Some("127.0.0.1:9464".into())
}

/// How long evidence is kept, and how much of it.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct EvidenceCfg {
    /// Keep every event's evidence at least this many days (public-space cameras: 30 or more).
    #[serde(default = "default_retain_days")]
    pub retain_days: f64,
    /// Disk-usage cap of the evidence store (MB). Over it, the oldest delivered evidence goes
    /// early (logged at ERROR); undelivered evidence is never deleted.
    #[serde(default = "default_evidence_mb")]
    pub max_mb: u64,
    /// How often the store is swept.
    #[serde(default = "default_sweep_s")]
    pub sweep_s: f64,
}

impl Default for EvidenceCfg {
    fn default() -> Self {
        EvidenceCfg { retain_days: default_retain_days(), max_mb: default_evidence_mb(), sweep_s: default_sweep_s() }
    }
}

fn default_retain_days() -> f64 {
    30.0
}
fn default_evidence_mb() -> u64 {
    20 * 1024
}
fn default_sweep_s() -> f64 {
    600.0
}

/// Bounds of the on-disk outbox (see `outbox` module docs for the eviction policy).
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct OutboxCfg {
    /// Payload megabytes the outbox may hold while the broker is unreachable.
    #[serde(default = "default_outbox_mb")]
    pub max_mb: u64,
    /// Megabytes of messages held in memory while the disk refuses writes (read-only, full).
    #[serde(default = "default_outbox_memory_mb")]
    pub memory_mb: u64,
}

impl Default for OutboxCfg {
    fn default() -> Self {
        OutboxCfg { max_mb: default_outbox_mb(), memory_mb: default_outbox_memory_mb() }
    }
}

fn default_outbox_memory_mb() -> u64 {
    32
}

fn default_outbox_mb() -> u64 {
    256
}

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Model {
    pub path: PathBuf,
    /// Manifest TOML; default: next to the model with extension `.toml`, else a built-in manifest
    /// matched by the model's sha256.
    pub manifest: Option<PathBuf>,
    #[serde(default = "default_score")]
    pub score_threshold: f32,
    #[serde(default = "default_nms")]
    pub nms_iou: f32,
    /// ONNX Runtime threads per session (intra-op).
    #[serde(default = "default_threads")]
    pub threads: usize,
    /// Detector workers: threads each with their own session of the model, taking the
    /// cameras' frames round-robin (a camera's frames one at a time, in order).
    #[serde(default = "default_workers")]
    pub workers: usize,
}

/// Four workers of one thread each: on a 2-core box, sub-streams only, 4 × 1 held 13 cameras
/// and 2 × 1 held 10; dual-stream, 2 × 1 held 9 where one worker of two threads held 6, and
/// spinning threads 4 (`hawkeye bench --capacity`, README). More inferences in flight keep
/// both cores busy while each waits on memory.
fn default_workers() -> usize {
    4
}

/// `[water]`: a segmentation model (manifest `kind = "segmentation"`) whose mask gives the
/// water coverage of flooding zones. It runs only for cameras with flooding zones, at `fps`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct WaterCfg {
    /// The `.onnx` file (relative to the config file).
    pub model: PathBuf,
    /// Manifest TOML; default: next to the model with extension `.toml`.
    pub manifest: Option<PathBuf>,
    /// Masks per second per camera (water rises slowly; a camera may override it with
    /// `water_fps`).
    #[serde(default = "default_water_fps")]
    pub fps: f64,
}

fn default_water_fps() -> f64 {
    1.0
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct Camera {
    pub id: String,
    /// Stream or file: `rtsp://…`, `file:///…`, or a plain path (relative to the config file).
    pub url: String,
    /// Template name in `pipelines/` (`rtsp_h264`, `rtsp_h265`, `rtsp`, `file`) or a path to a
    /// `.pipeline` file of your own.
    #[serde(default = "default_pipeline")]
    pub pipeline: String,
    /// Dual-stream cameras: the sub-stream (e.g. 640x360) that is decoded and detected, with the
    /// same template; `url` is then the main stream, parsed only (no decode) into the clip ring
    /// for clips and full-resolution snapshots.
    #[serde(default)]
    pub detect_url: Option<String>,
    #[serde(default = "default_detect_fps")]
    pub detect_fps: f64,
    /// Water masks per second for this camera's flooding zones (default: `[water] fps`).
    #[serde(default)]
    pub water_fps: Option<f64>,
    /// Zoomed looks per second at the zones with `zoom = true` (each such zone is also seen
    /// through a crop at the model's full input, see `detect::zoom`).
    #[serde(default = "default_zoom_fps")]
    pub zoom_fps: f64,
    /// Motion gating: frames unchanged since the last inference reuse its detections instead
    /// of running the detector (see `detect::gate`).
    #[serde(default = "default_true")]
    pub motion_gate: bool,
    /// With gating on, inference at least this often (per second), moving or not, so static
    /// objects (stalls, dumped bags) stay seen.
    #[serde(default = "default_min_detect_fps")]
    pub min_detect_fps: f64,
    /// Grey-level change (1–255) of a tiny-copy pixel that counts as motion.
    #[serde(default = "default_motion_threshold")]
    pub motion_threshold: u8,
    /// Width the frames are scaled to (inside GStreamer, before colour conversion).
    #[serde(default = "default_frame_width")]
    pub frame_width: u32,
    /// Files only: start again from the beginning at the end of the file.
    #[serde(default, rename = "loop")]
    pub looping: bool,
    /// Files only: play at the file's own speed (true) or as fast as decode allows (false).
    #[serde(default = "default_true")]
    pub realtime: bool,
    /// RTSP jitter-buffer latency.
    #[serde(default = "default_latency_ms")]
    pub latency_ms: u32,
    /// RTSP only: how RTP reaches the box (absent: [`Transport::Auto`]). Read it through
    /// [`Camera::transport`].
    #[serde(default)]
    pub transport: Option<Transport>,
    /// No frame for this long marks the stream stalled and restarts it.
    #[serde(default = "default_stall_s")]
    pub stall_timeout_s: f64,
    #[serde(default = "default_backoff_initial")]
    pub backoff_initial_s: f64,
    #[serde(default = "default_backoff_max")]
    pub backoff_max_s: f64,
    /// Event clips (RTSP H.264/H.265 templates): seconds before and after the event start,
    /// and how much encoded video the ring keeps (at least pre; default pre + 10, see
    /// [`Camera::clip_ring`]).
    #[serde(default = "default_clip_pre")]
    pub clip_pre_s: f64,
    #[serde(default = "default_clip_post")]
    pub clip_post_s: f64,
    #[serde(default)]
    pub clip_ring_s: Option<f64>,
    #[serde(default, rename = "zone")]
    pub zones: Vec<Zone>,
    /// Face and licence-plate masking of the snapshots that leave the device.
    #[serde(default)]
    pub privacy: PrivacyCfg,
    /// A moving camera (drone): geotagged events instead of image zones.
    #[serde(default)]
    pub drone: Option<DroneCfg>,
}

impl Camera {
    /// The camera's motion-gate settings.
    pub fn gate_params(&self) -> crate::detect::GateParams {
        crate::detect::GateParams { enabled: self.motion_gate, min_fps: self.min_detect_fps, threshold: self.motion_threshold }
    }

    /// The RTSP transport asked for (`auto` when the key is absent).
    pub fn transport(&self) -> Transport {
        self.transport.unwrap_or_default()
    }

    /// Seconds of encoded video the camera's ring keeps: `clip_ring_s`, or by default the
    /// clip's pre-roll plus [`RING_MARGIN_S`] (a keyframe interval before the pre-roll's start,
    /// and the evidence worker's lag behind the stream when it decodes a main-stream snapshot).
    /// The post-event part of a clip is not kept in the ring: it is recorded as it comes.
    pub fn clip_ring(&self) -> f64 {
        self.clip_ring_s.unwrap_or(self.clip_pre_s + RING_MARGIN_S)
    }
}

/// What the default clip ring holds beyond a clip's pre-roll (see [`Camera::clip_ring`]).
pub const RING_MARGIN_S: f64 = 10.0;

/// How an RTSP camera's RTP packets travel (rtspsrc's `protocols`).
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Transport {
    /// Interleaved in the RTSP TCP connection: no UDP ports to open, no packet loss.
    Tcp,
    /// RTP over UDP (cameras and servers without interleaving, such as VLC's).
    Udp,
    /// TCP first; when the camera sets up no stream over TCP, UDP (remembered while the
    /// daemon runs, and swapped back when UDP is refused in turn).
    #[default]
    Auto,
}

impl Transport {
    /// The name as written in the config.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Tcp => "tcp",
            Transport::Udp => "udp",
            Transport::Auto => "auto",
        }
    }

    /// The value of rtspsrc's `protocols` for the first attempt.
    pub fn protocols(self) -> &'static str {
        match self {
            Transport::Tcp | Transport::Auto => "tcp",
            Transport::Udp => "udp",
        }
    }
}

/// Per-camera privacy masking of published snapshots (the unmasked original stays on the device).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct PrivacyCfg {
    /// Mask faces (frontal and profile Haar cascades).
    #[serde(default = "default_true")]
    pub faces: bool,
    /// Mask licence plates (plate Haar cascade).
    #[serde(default = "default_true")]
    pub plates: bool,
    #[serde(default)]
    pub method: MaskMethod,
    /// Smallest face (height in frame pixels) that is looked for; smaller is slower and finds
    /// more false positives. Plates are looked for down to the cascade's 60x20 window.
    #[serde(default = "default_min_size_px")]
    pub min_size_px: u32,
    /// Where faces and plates are looked for in an alert's snapshot.
    #[serde(default)]
    pub search: MaskSearch,
}

/// Where the privacy masker looks for faces and plates in an alert's snapshot.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum MaskSearch {
    /// Faces around the people the detector found in the frame, plates around its vehicles:
    /// a fraction of the whole picture's cost. Pictures without the frame's detections (kept
    /// history frames, crops, command snapshots, journal replays) are searched whole.
    #[default]
    Detections,
    /// The whole picture, always.
    Whole,
}

impl Default for PrivacyCfg {
    fn default() -> Self {
        PrivacyCfg { faces: true, plates: true, method: MaskMethod::default(), min_size_px: default_min_size_px(), search: MaskSearch::default() }
    }
}

impl PrivacyCfg {
    /// True when anything is to be detected and masked.
    pub fn enabled(&self) -> bool {
        self.faces || self.plates
    }
}

/// How a masked region is made unreadable.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum MaskMethod {
    /// Coarse blocks (about 8 across the region), each the mean colour of its pixels.
    #[default]
    Pixelate,
    /// Strong box blur (three passes, radius a sixth of the region).
    Blur,
    /// Flat grey.
    Fill,
}

fn default_min_size_px() -> u32 {
    24
}

fn default_clip_pre() -> f64 {
    10.0
}
fn default_clip_post() -> f64 {
    20.0
}

/// What a zone alerts on.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum ZoneKind {
    OutOfStore,
    Dumping,
    Flooding,
    Occupancy,
    Loitering,
    BinOverflow,
    /// Illegal parking: a vehicle standing still in a no-parking zone (see `rules::zone::parking`).
    Parking,
    /// Crowding (人群聚集): at least `min_count` persons in the zone for `dwell_s`.
    Crowd,
}

impl ZoneKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            ZoneKind::OutOfStore => "out_of_store",
            ZoneKind::Dumping => "dumping",
            ZoneKind::Flooding => "flooding",
            ZoneKind::Occupancy => "occupancy",
            ZoneKind::Loitering => "loitering",
            ZoneKind::BinOverflow => "bin_overflow",
            ZoneKind::Parking => "parking",
            ZoneKind::Crowd => "crowd",
        }
    }
    /// The violation (违法案由) as the command center shows it.
    pub fn violation(&self) -> &'static str {
        match self {
            ZoneKind::OutOfStore => "out-of-store trading (跨门经营/占道经营)",
            ZoneKind::Dumping => "illegal dumping (乱倒垃圾)",
            ZoneKind::Flooding => "road flooding (道路积水)",
            ZoneKind::Occupancy => "illegal occupation of public space (占道堆放)",
            ZoneKind::Loitering => "loitering in a restricted zone (区域滞留)",
            ZoneKind::BinOverflow => "overflowing rubbish bin (垃圾满溢)",
            ZoneKind::Parking => "illegal parking (机动车违停)",
            ZoneKind::Crowd => "crowding (人群聚集)",
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct Zone {
    pub id: String,
    pub kind: ZoneKind,
    /// Polygon in normalised image coordinates (0..1), at least 3 points.
    pub polygon: Vec<[f64; 2]>,
    /// Model classes that count in this zone (parking zones: the model's vehicle classes when
    /// empty, see [`PARKING_CLASSES`]).
    #[serde(default)]
    pub classes: Vec<String>,
    #[serde(default = "default_zone_score")]
    pub min_score: f32,
    /// Seconds an object must stay in the zone before the alert is raised.
    pub dwell_s: f64,
    /// Gaps shorter than this (occlusion, missed detections) do not reset the dwell.
    #[serde(default = "default_grace_s")]
    pub grace_s: f64,
    /// The event ends after the zone has been clear this long.
    #[serde(default = "default_clear_s")]
    pub clear_s: f64,
    /// After an event ends, no new event in this zone for this long.
    #[serde(default = "default_cooldown_s")]
    pub cooldown_s: f64,
    /// While an event is active, an `update` at most this often.
    #[serde(default = "default_update_s")]
    pub update_s: f64,
    /// After an operator's `ack`, re-check the zone automatically after this many seconds
    /// (回头看); absent: only on `cmd/recheck`.
    #[serde(default)]
    pub recheck_after_s: Option<f64>,
    /// Objects smaller than this (box height, frame pixels) do not count.
    #[serde(default)]
    pub min_size_px: f32,
    /// The zone counts as occupied when at least this many qualifying objects are in it
    /// (occupancy: e.g. more than 10 shared bikes).
    #[serde(default = "default_min_count")]
    pub min_count: u32,
    /// Classes that must all be present for the zone to count (e.g. goods, not just a person).
    #[serde(default)]
    pub required: Vec<String>,
    /// Weekly windows when the zone is watched ("mon-fri 07:00-22:00"); empty: always.
    #[serde(default)]
    pub schedule: Vec<String>,
    /// UTC offset of the schedule's times.
    #[serde(default = "default_timezone")]
    pub timezone: String,
    /// Flooding zones: smoothed share of the segment covered by water at which the level
    /// becomes yellow / red; hysteresis on the way down; how long a new level must hold; and
    /// the smoothing time constant.
    #[serde(default = "default_yellow_at")]
    pub yellow_at: f64,
    #[serde(default = "default_red_at")]
    pub red_at: f64,
    #[serde(default = "default_hysteresis")]
    pub hysteresis: f64,
    #[serde(default = "default_level_min_s")]
    pub level_min_s: f64,
    #[serde(default = "default_smooth_s")]
    pub smooth_s: f64,
    /// Parking zones: a vehicle counts as still while its box centre stays within this fraction
    /// of the box's own width (horizontally) and height (vertically) of where it stopped.
    #[serde(default = "default_still_frac")]
    pub still_frac: f64,
    /// Parking zones: the `vehicle` crop of a `new` alert is published with its plate readable
    /// (faces in it are still masked); the scene snapshots stay masked as the camera's
    /// `privacy` says. Without it the crop is masked like every other picture.
    #[serde(default)]
    pub unmask_plates: bool,
    /// Far zones: besides the whole frame, the detector looks at a crop around the zone at its
    /// full input size (`zoom_fps` times a second), so small objects there are seen 2–3× larger.
    #[serde(default)]
    pub zoom: bool,
    /// Warn on a loudspeaker when the zone's events reach the given states.
    #[serde(default)]
    pub speak: Option<ZoneSpeak>,
}

fn default_yellow_at() -> f64 {
    0.15
}
fn default_red_at() -> f64 {
    0.4
}
fn default_hysteresis() -> f64 {
    0.05
}
fn default_level_min_s() -> f64 {
    10.0
}
fn default_smooth_s() -> f64 {
    5.0
}

/// Vehicle classes a parking zone watches when it names none: the COCO-based urban model's
/// `car`, `bus`, `truck`, `motorcycle`, and the old synthetic detector's `vehicle` (only those
/// the model has are kept).
pub const PARKING_CLASSES: [&str; 5] = ["car", "bus", "truck", "motorcycle", "vehicle"];

fn default_zoom_fps() -> f64 {
    2.0
}
fn default_still_frac() -> f64 {
    0.25
}

fn default_min_count() -> u32 {
    1
}
fn default_timezone() -> String {
    "+08:00".into()
}

fn default_state_dir() -> PathBuf {
    PathBuf::from("state")
}
fn default_prefix() -> String {
    "hawkeye".into()
}
fn default_heartbeat_s() -> f64 {
    10.0
}
fn default_keep_alive_s() -> u64 {
    15
}
fn default_score() -> f32 {
    0.3
}
fn default_nms() -> f32 {
    0.45
}
fn default_threads() -> usize {
    1
}
fn default_pipeline() -> String {
    "rtsp_h264".into()
}
fn default_min_detect_fps() -> f64 {
    1.0
}

fn default_motion_threshold() -> u8 {
    10
}

fn default_detect_fps() -> f64 {
    5.0
}
fn default_frame_width() -> u32 {
    640
}
fn default_true() -> bool {
    true
}
fn default_latency_ms() -> u32 {
    200
}
fn default_stall_s() -> f64 {
    10.0
}
fn default_backoff_initial() -> f64 {
    1.0
}
fn default_backoff_max() -> f64 {
    30.0
}
fn default_zone_score() -> f32 {
    0.4
}
fn default_grace_s() -> f64 {
    2.0
}
fn default_clear_s() -> f64 {
    10.0
}
fn default_cooldown_s() -> f64 {
    60.0
}
fn default_update_s() -> f64 {
    60.0
}

/// A path from a config file: absolute as it is, relative against the config's directory.
pub fn resolve_path(base_dir: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base_dir.join(p)
    }
}

impl Config {
    /// The polygons of `cam`'s zoomed zones.
    pub fn zoom_polygons(cam: &Camera) -> Vec<Vec<[f64; 2]>> {
        cam.zones.iter().filter(|z| z.zoom).map(|z| z.polygon.clone()).collect()
    }

    /// Water masks per second for `cam`: 0 when no water model is configured or the camera has
    /// no flooding zone (then no mask is ever computed for it).
    pub fn water_rate(&self, cam: &Camera) -> f64 {
        match &self.water {
            Some(w) if cam.zones.iter().any(|z| z.kind == ZoneKind::Flooding) => cam.water_fps.unwrap_or(w.fps),
            _ => 0.0,
        }
    }

    /// Parses TOML text without checking it. Unknown keys are returned (not fatal here) so that
    /// [`validate`] can report them together with every other mistake; `Err` lists syntax and
    /// type errors (all of them, each with its path).
    pub fn parse(text: &str, base_dir: &Path) -> Result<(Config, Vec<String>), ConfigErrors> {
        let p = parse::parse(text, base_dir)?;
        match p.config {
            Some(c) if p.type_errors.is_empty() => Ok((c, p.unknown)),
            _ => Err(ConfigErrors(p.unknown.iter().map(|u| format!("{u}: unknown key")).chain(p.type_errors).collect())),
        }
    }

    /// Reads, parses and checks a config file (through [`compile`]); `Err` lists every problem
    /// found. Stages that need typed values take [`load`]'s [`Compiled`] instead.
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        load(path).map(|c| c.raw)
    }

    /// Parses and checks config text whose relative paths resolve against `base_dir`.
    pub fn load_str(text: &str, base_dir: &Path) -> Result<Config, ConfigErrors> {
        load_str(text, base_dir).map(|c| c.raw)
    }

    /// Resolves a path from the config against the config file's directory.
    pub fn resolve(&self, p: &Path) -> PathBuf {
        resolve_path(&self.base_dir, p)
    }

    /// `hawkeye/haishu-cam-017` — the prefix of every topic this device uses.
    pub fn topic_root(&self) -> String {
        format!("{}/{}", self.mqtt.topic_prefix, self.device.id)
    }
}
