//! The alert message (versioned JSON). Its JSON Schema is `alert.schema.json` beside this file
//! (printed by `hawkeye schema`); a test validates real alerts against it.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use crate::config::Location;

/// Version of the alert JSON; bumped on any incompatible change.
pub const SCHEMA_VERSION: &str = "1.0";

/// The JSON Schema of [`Alert`].
pub const ALERT_SCHEMA: &str = include_str!("alert.schema.json");

/// One alert as published on `{prefix}/{device}/alerts`.
#[derive(Clone, Debug, Serialize)]
pub struct Alert {
    pub schema_version: &'static str,
    pub event_id: String,
    /// `new`, `update`, `end`, or after a re-check `resolved` / `recurred`.
    pub state: &'static str,
    /// `out_of_store`, `dumping`, `flooding`, `occupancy` or `loitering`.
    pub kind: &'static str,
    /// The violation as the command centre shows it (违法案由).
    pub violation: &'static str,
    /// `info` for `end`, `warning` otherwise.
    pub severity: &'static str,
    pub device_id: String,
    pub camera_id: String,
    pub zone_id: String,
    pub location: Location,
    /// UTC, RFC 3339.
    pub started_at: String,
    pub updated_at: String,
    pub dwell_s: f64,
    /// Flooding: the road segment's level (`green`, `yellow`, `red`) after this transition and
    /// the smoothed share of the segment covered by water; null for other kinds.
    pub level: Option<&'static str>,
    pub coverage: Option<f64>,
    pub objects: Vec<AlertObject>,
    pub model: ModelRef,
    pub evidence: Vec<EvidenceRef>,
    /// The operator's acknowledgement (`cmd/ack`), once given.
    pub ack: Option<AlertAck>,
    /// The signed manifest sealing this alert's evidence (null when it carries none).
    pub manifest: Option<ManifestRef>,
    /// sha256 of the device's previous manifest (the hash chain), with `manifest`.
    pub prev_hash: Option<String>,
    /// Ed25519 signature (hex) of the manifest, verifiable with the key on `…/pubkey`.
    pub signature: Option<String>,
    /// Drones: where the frame was taken (`location` then holds its lat/lon, not the device's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub geo: Option<crate::drone::GeoFix>,
    /// Dumping: the object left behind and the person who brought it, when seen.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dumping: Option<AlertDumping>,
}

/// What a dumping alert says about the object and its likely dumper (行政相对人).
#[derive(Clone, Debug, Serialize)]
pub struct AlertDumping {
    /// Waste class, or `unknown` for a left-behind object no detection explains.
    pub class: String,
    /// `[x1, y1, x2, y2]` in pixels of the snapshot.
    pub bbox: [f32; 4],
    pub track_id: Option<u64>,
    /// UTC, RFC 3339: when the object came to rest (the `before` snapshot is from just before).
    pub appeared_at: String,
    pub dumper: Option<AlertDumper>,
}

/// The person track nearest to the object when it appeared.
#[derive(Clone, Debug, Serialize)]
pub struct AlertDumper {
    pub track_id: u64,
    /// `[x1, y1, x2, y2]` in pixels, at `seen_at`.
    pub bbox: [f32; 4],
    /// UTC, RFC 3339: the latest contact with the object (the `dumper` snapshot's time).
    pub seen_at: String,
}

/// Where the evidence manifest is, and its hash.
#[derive(Clone, Debug, Serialize)]
pub struct ManifestRef {
    pub seq: u64,
    pub sha256: String,
    pub topic: String,
    pub path: String,
}

/// An object involved in the event.
#[derive(Clone, Debug, Serialize)]
pub struct AlertObject {
    pub class: String,
    pub score: f32,
    /// `[x1, y1, x2, y2]` in pixels of the snapshot.
    pub bbox: [f32; 4],
    pub track_id: u64,
}

/// An operator's acknowledgement as carried in alerts.
#[derive(Clone, Debug, Serialize)]
pub struct AlertAck {
    pub operator: Option<String>,
    pub note: Option<String>,
    /// UTC, RFC 3339.
    pub at: String,
}

/// The model that produced the detections.
#[derive(Clone, Debug, Serialize)]
pub struct ModelRef {
    pub name: String,
    pub sha256: String,
}

/// One evidence file: where it is published and kept, and its hash.
#[derive(Clone, Debug, Serialize)]
pub struct EvidenceRef {
    pub name: String,
    pub content_type: &'static str,
    pub sha256: String,
    pub bytes: usize,
    pub width: u32,
    pub height: u32,
    pub topic: String,
    pub path: String,
}

/// RFC 3339 UTC with milliseconds, as every timestamp in hawkeye's messages.
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}
