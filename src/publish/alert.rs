//! The alert message (versioned JSON). Its JSON Schema is `alert.schema.json` beside this file
//! (printed by `hawkeye schema`); a test validates real alerts against it.
//!
//! [`Alert::from_transition`] is the pure mapping from a rule transition to the alert body; the
//! evidence worker then fills in what only it knows (sequence numbers, evidence, seal).
//!
//! Delivery order and de-duplication: every alert carries `seq`, counting the messages of its
//! event from 1 (`new`), and `device_seq`, strictly increasing over all alerts of the device
//! across restarts (it may skip numbers). A receiver de-duplicates on `event_id` + `seq` and
//! orders an event's messages by `seq`.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use crate::config::Location;
use crate::rules::{EventState, Transition};

/// Version of the alert JSON; bumped on any incompatible change.
pub const SCHEMA_VERSION: &str = "1.1";

/// The JSON Schema of [`Alert`].
pub const ALERT_SCHEMA: &str = include_str!("alert.schema.json");

/// One alert as published on `{prefix}/{device}/alerts`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Alert {
    pub schema_version: String,
    pub event_id: String,
    /// The event's messages counted from 1 (`new`); de-duplicate on `event_id` + `seq`.
    pub seq: u64,
    /// Strictly increasing over every alert of the device, across restarts (may skip).
    pub device_seq: u64,
    /// `new`, `update`, `end`, or after a re-check `resolved` / `recurred`.
    pub state: String,
    /// Why an event ended: `clear` (the rule saw it end), `shutdown` (the daemon stopped while
    /// it was active) or `restart` (found open when the daemon started after a crash); null
    /// for other states.
    pub reason: Option<String>,
    /// `out_of_store`, `dumping`, `flooding`, `occupancy`, `loitering`, `bin_overflow`, `parking` or `crowd`.
    pub kind: String,
    /// The violation as the command centre shows it (违法案由).
    pub violation: String,
    /// `info` for `end` and `resolved`, `warning` otherwise.
    pub severity: String,
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
    pub level: Option<String>,
    pub coverage: Option<f64>,
    /// Crowding: persons in the zone at this transition (`new`, `update`; below `min_count`
    /// at `end`); absent for other kinds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
    /// Crowding: the most persons seen at once since the crowd began (at least `count`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak_count: Option<u32>,
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub geo: Option<serde_json::Value>,
    /// Dumping: the object left behind and the person who brought it, when seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dumping: Option<AlertDumping>,
    /// Why pictures that should come with this alert are missing (privacy masking unavailable,
    /// the evidence disk refusing writes, the evidence worker behind); absent when none are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence_error: Option<String>,
}

/// What an alert says about the device and camera, the same for all its camera's alerts.
#[derive(Clone, Debug)]
pub struct AlertContext {
    pub device_id: String,
    pub camera_id: String,
    /// The device's configured location (drone alerts use the frame's geotag instead).
    pub location: Location,
    pub model: ModelRef,
}

impl Alert {
    /// The alert for transition `t` (pure). `state` is the published state (a clip's alert is
    /// an `update` of its event); `updated` is the wall time of this message. Sequence numbers
    /// are 0 and evidence and seal are empty: the evidence worker fills them in.
    pub fn from_transition(t: &Transition, state: EventState, ctx: &AlertContext, updated: DateTime<Utc>) -> Alert {
        let px = |b: &crate::detect::BBox| [b.x1.round(), b.y1.round(), b.x2.round(), b.y2.round()];
        // stream time → wall time, anchored at the event's start
        let at = |ts: f64| rfc3339(t.started_at + chrono::Duration::milliseconds(((ts - t.started_ts) * 1000.0) as i64));
        let location = match &t.geo {
            Some(g) => Location { lat: Some(g.lat), lon: Some(g.lon), address: String::new() },
            None => ctx.location.clone(),
        };
        Alert {
            schema_version: SCHEMA_VERSION.into(),
            event_id: t.event_id.clone(),
            seq: 0,
            device_seq: 0,
            state: state.as_str().into(),
            reason: (state == EventState::End).then(|| "clear".to_string()),
            kind: t.kind.as_str().into(),
            violation: t.kind.violation().into(),
            severity: if matches!(state, EventState::End | EventState::Resolved) { "info" } else { "warning" }.into(),
            device_id: ctx.device_id.clone(),
            camera_id: ctx.camera_id.clone(),
            zone_id: t.zone_id.clone(),
            location,
            started_at: rfc3339(t.started_at),
            updated_at: rfc3339(updated),
            dwell_s: (t.dwell_s.max(0.0) * 10.0).round() / 10.0,
            level: t.flood.map(|(l, _)| l.as_str().to_string()),
            coverage: t.flood.map(|(_, c)| (c * 1000.0).round() / 1000.0),
            count: t.crowd.map(|c| c.count),
            peak_count: t.crowd.map(|c| c.peak),
            objects: t
                .objects
                .iter()
                .map(|o| AlertObject { class: o.class.clone(), score: (o.score * 1000.0).round() / 1000.0, bbox: px(&o.bbox), track_id: o.id })
                .collect(),
            model: ctx.model.clone(),
            evidence: Vec::new(),
            ack: t.ack.as_ref().map(|a| AlertAck { operator: a.operator.clone(), note: a.note.clone(), at: rfc3339(a.at) }),
            manifest: None,
            prev_hash: None,
            signature: None,
            geo: t.geo.as_ref().and_then(|g| serde_json::to_value(g).ok()),
            dumping: t.dumped.as_ref().map(|d| AlertDumping {
                class: d.class.clone(),
                bbox: px(&d.bbox),
                track_id: d.track_id,
                appeared_at: at(d.appeared_ts),
                dumper: d.dumper.as_ref().map(|p| AlertDumper { track_id: p.track_id, bbox: px(&p.bbox), seen_at: at(p.seen_ts) }),
            }),
            evidence_error: None,
        }
    }

    /// The same event ended without the rule seeing it end: the daemon stopped (`shutdown`) or
    /// found the event still open when it started again (`restart`).
    pub fn ended(&self, reason: &str, updated: DateTime<Utc>) -> Alert {
        Alert {
            // numbered afresh by the evidence worker
            seq: 0,
            device_seq: 0,
            state: "end".into(),
            reason: Some(reason.into()),
            severity: "info".into(),
            updated_at: rfc3339(updated),
            objects: Vec::new(),
            count: self.count.map(|_| 0),
            evidence: Vec::new(),
            manifest: None,
            prev_hash: None,
            signature: None,
            evidence_error: None,
            ..self.clone()
        }
    }
}

/// What a dumping alert says about the object and its likely dumper (行政相对人).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
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
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct AlertDumper {
    pub track_id: u64,
    /// `[x1, y1, x2, y2]` in pixels, at `seen_at`.
    pub bbox: [f32; 4],
    /// UTC, RFC 3339: the latest contact with the object (the `dumper` snapshot's time).
    pub seen_at: String,
}

/// Where the evidence manifest is, and its hash.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ManifestRef {
    pub seq: u64,
    pub sha256: String,
    pub topic: String,
    pub path: String,
}

/// An object involved in the event.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct AlertObject {
    pub class: String,
    pub score: f32,
    /// `[x1, y1, x2, y2]` in pixels of the snapshot.
    pub bbox: [f32; 4],
    pub track_id: u64,
}

/// An operator's acknowledgement as carried in alerts.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct AlertAck {
    pub operator: Option<String>,
    pub note: Option<String>,
    /// UTC, RFC 3339.
    pub at: String,
}

/// The model that produced the detections.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ModelRef {
    pub name: String,
    pub sha256: String,
}

/// One evidence file: where it is published and kept, and its hash.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct EvidenceRef {
    pub name: String,
    pub content_type: String,
    pub sha256: String,
    pub bytes: usize,
    pub width: u32,
    pub height: u32,
    pub topic: String,
    /// 0: one message on `topic`; n > 0: an index on `{topic}/index` and n chunks on
    /// `{topic}/chunk/{i}` (payloads above `mqtt.max_payload_kb`).
    #[serde(default)]
    pub chunks: u32,
    pub path: String,
}

/// RFC 3339 UTC with milliseconds, as every timestamp in hawkeye's messages.
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::BBox;
    use crate::rules::{Ack, DumpedObject, Dumper, FloodLevel};
    use crate::track::Track;

    fn ctx() -> AlertContext {
        AlertContext {
            device_id: "box-7".into(),
            camera_id: "gate".into(),
            location: Location { lat: Some(31.2), lon: Some(121.5), address: "Nanjing Rd 1".into() },
            model: ModelRef { name: "yolox".into(), sha256: "ab".repeat(32) },
        }
    }

    fn transition(kind: crate::config::ZoneKind, state: EventState) -> Transition {
        let t0 = DateTime::parse_from_rfc3339("2026-12-01T08:00:00Z").unwrap().with_timezone(&Utc);
        Transition {
            state,
            event_id: "box-7-gate-z-1".into(),
            zone: 0,
            zone_id: "z".into(),
            kind,
            started_ts: 100.0,
            ts: 130.04,
            started_at: t0,
            dwell_s: 30.04,
            objects: vec![Track { id: 9, class_id: 0, class: "person".into(), score: 0.87654, bbox: BBox::new(10.4, 20.6, 50.5, 90.0), hits: 5, missed: 0, first_seen: 100.0, last_seen: 130.0 }],
            ack: Some(Ack { operator: Some("li".into()), note: Some("on the way".into()), at: t0 }),
            flood: None,
            geo: None,
            dumped: None,
            crowd: None,
        }
    }

    #[test]
    fn a_transition_maps_to_the_alert_body() {
        let t = transition(crate::config::ZoneKind::OutOfStore, EventState::New);
        let now = DateTime::parse_from_rfc3339("2026-12-01T08:00:30.040Z").unwrap().with_timezone(&Utc);
        let a = Alert::from_transition(&t, EventState::New, &ctx(), now);
        assert_eq!((a.state.as_str(), a.kind.as_str(), a.severity.as_str()), ("new", "out_of_store", "warning"));
        assert_eq!(a.reason, None);
        assert_eq!((a.seq, a.device_seq), (0, 0), "numbered by the evidence worker");
        assert_eq!(a.violation, t.kind.violation());
        assert_eq!(a.started_at, "2026-12-01T08:00:00.000Z");
        assert_eq!(a.updated_at, "2026-12-01T08:00:30.040Z");
        assert_eq!(a.dwell_s, 30.0);
        assert_eq!(a.location.address, "Nanjing Rd 1");
        assert_eq!(a.objects[0].bbox, [10.0, 21.0, 51.0, 90.0]);
        assert_eq!(a.objects[0].score, 0.877);
        assert_eq!(a.ack.as_ref().unwrap().note.as_deref(), Some("on the way"));
        assert!(a.evidence.is_empty() && a.manifest.is_none() && a.level.is_none());
        // the JSON a consumer gets validates against the schema once numbered
        let mut numbered = a.clone();
        numbered.seq = 1;
        numbered.device_seq = 1;
        let v = serde_json::to_value(&numbered).unwrap();
        let schema: serde_json::Value = serde_json::from_str(ALERT_SCHEMA).unwrap();
        assert!(jsonschema::is_valid(&schema, &v), "{v}");
        let back: Alert = serde_json::from_value(v).unwrap();
        assert_eq!(back, numbered);
    }

    #[test]
    fn ends_flood_levels_and_dumping_details() {
        let mut t = transition(crate::config::ZoneKind::Flooding, EventState::End);
        t.flood = Some((FloodLevel::Green, 0.04321));
        let a = Alert::from_transition(&t, EventState::End, &ctx(), Utc::now());
        assert_eq!((a.state.as_str(), a.reason.as_deref(), a.severity.as_str()), ("end", Some("clear"), "info"));
        assert_eq!((a.level.as_deref(), a.coverage), (Some("green"), Some(0.043)));
        let stop = a.ended("shutdown", Utc::now());
        assert_eq!((stop.state.as_str(), stop.reason.as_deref()), ("end", Some("shutdown")));
        assert!(stop.objects.is_empty());
        // dumping: the object's times are wall times anchored at the event's start
        let mut t = transition(crate::config::ZoneKind::Dumping, EventState::New);
        t.dumped = Some(DumpedObject {
            bbox: BBox::new(1.0, 2.0, 3.0, 4.0),
            class: "garbage".into(),
            track_id: Some(4),
            appeared_ts: 100.0,
            dumper: Some(Dumper { track_id: 9, bbox: BBox::new(5.0, 6.0, 7.0, 8.0), seen_ts: 97.5 }),
        });
        let a = Alert::from_transition(&t, EventState::New, &ctx(), Utc::now());
        let d = a.dumping.unwrap();
        assert_eq!(d.appeared_at, "2026-12-01T08:00:00.000Z");
        assert_eq!(d.dumper.unwrap().seen_at, "2026-12-01T07:59:57.500Z");
    }

    #[test]
    fn crowd_alerts_carry_the_count_and_its_peak() {
        let mut t = transition(crate::config::ZoneKind::Crowd, EventState::Update);
        t.crowd = Some(crate::rules::CrowdCount { count: 4, peak: 6 });
        let a = Alert::from_transition(&t, EventState::Update, &ctx(), Utc::now());
        assert_eq!((a.kind.as_str(), a.violation.as_str(), a.count, a.peak_count), ("crowd", "crowding (人群聚集)", Some(4), Some(6)));
        let mut numbered = a.clone();
        (numbered.seq, numbered.device_seq) = (2, 2);
        let v = serde_json::to_value(&numbered).unwrap();
        assert_eq!((v["count"].as_u64(), v["peak_count"].as_u64()), (Some(4), Some(6)));
        let schema: serde_json::Value = serde_json::from_str(ALERT_SCHEMA).unwrap();
        assert!(jsonschema::is_valid(&schema, &v), "{v}");
        assert_eq!(a.ended("shutdown", Utc::now()).count, Some(0));
        // other kinds carry neither key
        let other = serde_json::to_value(Alert::from_transition(&transition(crate::config::ZoneKind::OutOfStore, EventState::New), EventState::New, &ctx(), Utc::now())).unwrap();
        assert!(other.get("count").is_none() && other.get("peak_count").is_none(), "{other}");
    }
}
