//! The event lifecycle shared by every zone rule: states, transitions, the operator's
//! acknowledgement, and the records `ack` and `recheck` find events by.

use std::collections::VecDeque;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::dumping::DumpedObject;
use super::flood::FloodLevel;
use crate::config::ZoneKind;
use crate::track::Track;

/// Lifecycle state carried by an alert.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventState {
    New,
    Update,
    End,
    /// Re-check after an operator's action: the zone is clear.
    Resolved,
    /// Re-check after an operator's action: the violation is still (or again) there.
    Recurred,
}

impl EventState {
    pub fn as_str(&self) -> &'static str {
        match self {
            EventState::New => "new",
            EventState::Update => "update",
            EventState::End => "end",
            EventState::Resolved => "resolved",
            EventState::Recurred => "recurred",
        }
    }
}

/// One event transition in one zone.
#[derive(Clone, Debug)]
pub struct Transition {
    pub state: EventState,
    pub event_id: String,
    /// Index of the zone in the camera's config.
    pub zone: usize,
    pub zone_id: String,
    pub kind: ZoneKind,
    /// Stream time at which presence began, and of this transition.
    pub started_ts: f64,
    pub ts: f64,
    /// Wall-clock time at which presence began.
    pub started_at: DateTime<Utc>,
    /// Seconds from the start of presence to this transition.
    pub dwell_s: f64,
    /// Objects in the zone at this transition (empty for `end`).
    pub objects: Vec<Track>,
    /// The operator's acknowledgement, once given.
    pub ack: Option<Ack>,
    /// Flooding zones: the level after this transition and the smoothed coverage (0..1).
    pub flood: Option<(FloodLevel, f64)>,
    /// Drones: where the frame was taken.
    pub geo: Option<crate::drone::GeoFix>,
    /// Dumping: the object left behind and the person who brought it (`new` and `update`).
    pub dumped: Option<DumpedObject>,
    /// Crowding: the persons in the zone now and the most seen since the event's presence began.
    pub crowd: Option<CrowdCount>,
}

/// A crowd zone's head count at a transition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CrowdCount {
    /// Qualifying persons in the zone at this transition.
    pub count: u32,
    /// The most seen at once since the event's presence began (at least `count`).
    pub peak: u32,
}

/// An operator's acknowledgement of an event.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Ack {
    pub operator: Option<String>,
    pub note: Option<String>,
    pub at: DateTime<Utc>,
}

/// What the rules remember of an event, active or ended, for `ack` and `recheck`.
#[derive(Clone, Debug)]
pub(super) struct EventRecord {
    pub(super) event_id: String,
    pub(super) zone: usize,
    pub(super) started_ts: f64,
    pub(super) started_at: DateTime<Utc>,
    pub(super) ack: Option<Ack>,
    /// Stream time at which an automatic re-check is due (set by `ack`).
    pub(super) recheck_due: Option<f64>,
}

/// Events remembered per camera for acknowledgement and re-check.
const REMEMBERED_EVENTS: usize = 256;

/// A camera's remembered events, oldest first (bounded: the oldest is forgotten first).
#[derive(Debug, Default)]
pub(super) struct EventLog {
    pub(super) records: VecDeque<EventRecord>,
}

impl EventLog {
    /// The record of `event_id`, if it is still remembered.
    pub(super) fn find(&self, event_id: &str) -> Option<&EventRecord> {
        self.records.iter().find(|e| e.event_id == event_id)
    }

    pub(super) fn find_mut(&mut self, event_id: &str) -> Option<&mut EventRecord> {
        self.records.iter_mut().find(|e| e.event_id == event_id)
    }

    pub(super) fn push(&mut self, rec: EventRecord) {
        if self.records.len() == REMEMBERED_EVENTS {
            self.records.pop_front();
        }
        self.records.push_back(rec);
    }

    /// The acknowledgement of the latest record of `event_id`.
    fn ack_of(&self, event_id: &str) -> Option<Ack> {
        self.records.iter().rev().find(|e| e.event_id == event_id).and_then(|e| e.ack.clone())
    }
}

/// A zone's active event: its id and when its presence began.
#[derive(Clone, Debug)]
pub(super) struct OpenEvent {
    pub(super) id: String,
    pub(super) started_ts: f64,
    pub(super) started_wall: DateTime<Utc>,
}

/// What a zone rule's step needs of its camera: the zone (index, id, kind), the zone's active
/// event, and the camera's event log.
pub(super) struct ZoneEvents<'a> {
    pub(super) prefix: &'a str,
    pub(super) log: &'a mut EventLog,
    pub(super) zone: usize,
    pub(super) zone_id: &'a str,
    pub(super) kind: ZoneKind,
    pub(super) open: &'a mut Option<OpenEvent>,
}

impl ZoneEvents<'_> {
    /// Opens an event whose presence began at `started_ts` / `started_wall`: its id (from the
    /// start's wall time), and the record `ack` and `recheck` find it by.
    pub(super) fn open(&mut self, started_ts: f64, started_wall: DateTime<Utc>) {
        let id = format!("{}-{}-{}", self.prefix, self.zone_id, started_wall.format("%Y%m%dT%H%M%S%.3fZ"));
        self.log.push(EventRecord { event_id: id.clone(), zone: self.zone, started_ts, started_at: started_wall, ack: None, recheck_due: None });
        *self.open = Some(OpenEvent { id, started_ts, started_wall });
    }

    /// The active event's id and acknowledgement, for a transition in `state`; an `end` closes
    /// the event.
    pub(super) fn current(&mut self, state: EventState) -> (String, Option<Ack>) {
        let event_id = self.open.as_ref().map(|e| e.id.clone()).unwrap_or_default();
        if state == EventState::End {
            *self.open = None;
        }
        let ack = self.log.ack_of(&event_id);
        (event_id, ack)
    }

    /// The transition of the active event (no flood level, geotag or dumped object); an
    /// `end` closes the event.
    pub(super) fn transition(&mut self, state: EventState, ts: f64, wall: DateTime<Utc>, objects: Vec<Track>) -> Transition {
        let (started_ts, started_at) = self.open.as_ref().map_or((0.0, wall), |e| (e.started_ts, e.started_wall));
        let (event_id, ack) = self.current(state);
        self.make(state, event_id, ack, started_ts, started_at, ts, objects)
    }

    /// A transition of this zone with every field given.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn make(
        &self,
        state: EventState,
        event_id: String,
        ack: Option<Ack>,
        started_ts: f64,
        started_at: DateTime<Utc>,
        ts: f64,
        objects: Vec<Track>,
    ) -> Transition {
        Transition {
            state,
            event_id,
            zone: self.zone,
            zone_id: self.zone_id.to_string(),
            kind: self.kind,
            started_ts,
            ts,
            started_at,
            dwell_s: ts - started_ts,
            objects,
            ack,
            flood: None,
            geo: None,
            dumped: None,
            crowd: None,
        }
    }
}
