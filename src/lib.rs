//! hawkeye: an edge daemon for smart urban-management cameras.
//!
//! # Layout
//! Modules in the order data flows through them:
//!
//! - [`config`]: TOML config compiled once into typed per-stage values (zones with their
//!   `ZoneRule`, schedules, speaker gates); every error at once, with its TOML path.
//! - [`source`]: one GStreamer pipeline per camera (templates in `pipelines/`), decoded and
//!   scaled to RGB inside GStreamer, reconnect with capped exponential backoff, health.
//! - [`frame_slots`]: latest-frame slot per camera; the shared detector takes them round-robin.
//! - [`detect`]: ONNX Runtime (`ort`, loaded dynamically) running YOLO-family models;
//!   manifest, letterbox, decoders for YOLOX / YOLOv5 / YOLOv8 layouts, per-class NMS.
//! - [`track`]: IoU tracker giving detections stable track ids.
//! - [`camera`]: a camera's task and its pure per-frame step ([`camera::CameraStep`]: detections
//!   → tracks → rule transitions), shared by `run` and `eval`.
//! - [`drone`]: geotags from KLV / DJI OSD telemetry, and events of moving cameras.
//! - [`rules`]: zones (polygons), dwell with grace gap, clear and cooldown → event transitions;
//!   dumping (left-behind objects, static foreground, the person who brought them) and
//!   flooding (water coverage graded green / yellow / red).
//! - [`evidence`]: the per-camera evidence worker (journal, numbering, pictures, privacy
//!   masking, sealing, the alert into the outbox), snapshots, clips, seal, verify, retention.
//! - [`outbox`]: durable on-disk queue (CRC'd records, index in RAM, large payloads chunked);
//!   an entry leaves only on the broker's PubAck; [`state_lock`] keeps one daemon per state_dir.
//! - [`publish`]: MQTT link (rumqttc as a transport), topics, the versioned alert JSON;
//!   [`webhook`]: alerts (and evidence) POSTed to HTTP platforms through durable queues.
//! - [`speaker`]: loudspeaker warnings (Hikvision, Axis, Dahua, ONVIF backchannel, webhook,
//!   local audio, command) triggered by alerts or `cmd/speak`, rate-limited, with quiet hours.
//! - [`telemetry`]: counters of every stage as heartbeat JSON, Prometheus `/metrics`, `/healthz`.
//! - [`notify`]: systemd readiness and watchdog notifications; [`failpoint`]: test hooks.
//! - [`app`]: wires the stages together for `hawkeye run`; [`cli`] holds the subcommands.
//! - [`console`]: the command centre's side (`hawkeye console`): ingest from the broker into
//!   SQLite or PostgreSQL with integrity checks, the operators' web pages, zone editor,
//!   response times.
//! - [`tools`]: apart from the daemon's stages: `synth` renders synthetic street scenarios
//!   (video, ground truth, camera config) and training sets; `eval` runs source → detect →
//!   track → rules on them on stream time and scores detections, track ids, events and flood
//!   levels; `bench` and `demo`.

pub mod app;
pub mod camera;
pub mod cli;
pub mod console;
pub mod config;
pub mod detect;
pub mod drone;
pub mod durable;
pub mod evidence;
pub mod failpoint;
pub mod frame;
pub mod frame_slots;
pub mod notify;
pub mod outbox;
pub mod publish;
pub mod rules;
pub mod source;
pub mod speaker;
pub mod state_lock;
pub mod telemetry;
pub mod tools;
pub mod track;
pub mod webhook;
