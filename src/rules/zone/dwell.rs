//! The dwell rule (out-of-store trading, occupancy): the zone is occupied while at least
//! `min_count` qualifying objects (with every `required` class among them) stand in it, inside
//! the schedule; occupation that lasts `dwell_s` starts an event (see [`crate::rules::Dwell`]).

use chrono::{DateTime, Utc};

use super::{occupied, CompiledZone, FrameInput};
use crate::rules::dwell::{Dwell, DwellParams, DwellStep};
use crate::rules::event::{EventState, Transition, ZoneEvents};
use crate::track::Track;

/// A dwell zone's state.
pub(in crate::rules) struct DwellZone {
    dwell: Dwell,
    /// Wall time of the first observation of the current presence.
    presence_wall: Option<DateTime<Utc>>,
}

impl DwellZone {
    pub(super) fn new(p: DwellParams) -> Self {
        DwellZone { dwell: Dwell::new(p), presence_wall: None }
    }

    /// Start (stream time) of the current presence, pending or active.
    pub(super) fn since(&self) -> Option<f64> {
        self.dwell.since()
    }

    /// One frame: `inside` are the qualifying objects in the zone; `entered_ts` (loitering)
    /// is when the first of them entered, which may be before the zone's presence began.
    pub(super) fn step(&mut self, spec: &CompiledZone, ev: &mut ZoneEvents<'_>, f: &FrameInput<'_>, inside: Vec<Track>, entered_ts: Option<f64>) -> Option<Transition> {
        let (ts, wall) = (f.ts, f.wall);
        // outside the zone's schedule nothing counts: a running event ends after clear_s
        let present = spec.schedule.is_active(wall) && occupied(&spec.zone, &inside);
        let since_before = self.dwell.since();
        let step = self.dwell.observe(present, ts);
        match self.dwell.since() {
            Some(s) if Some(s) != since_before => self.presence_wall = Some(wall),
            None => self.presence_wall = None,
            _ => {}
        }
        let state = match step {
            DwellStep::Quiet => return None,
            DwellStep::Start { .. } => EventState::New,
            DwellStep::Update => EventState::Update,
            DwellStep::End => EventState::End,
        };
        let started_ts = match (step, ev.open.as_ref()) {
            (DwellStep::Start { since }, _) => entered_ts.map_or(since, |e| e.min(since)),
            (_, Some(open)) => open.started_ts,
            _ => self.dwell.since().unwrap_or(ts),
        };
        let started_at = match step {
            // a loitering track may have entered before the zone's presence began
            DwellStep::Start { since } => self.presence_wall.unwrap_or(wall) - chrono::Duration::milliseconds(((since - started_ts).max(0.0) * 1000.0) as i64),
            _ => ev.open.as_ref().map(|e| e.started_wall).or(self.presence_wall).unwrap_or(wall),
        };
        if state == EventState::New {
            ev.open(started_ts, started_at);
        }
        let (event_id, ack) = ev.current(state);
        Some(ev.make(state, event_id, ack, started_ts, started_at, ts, inside))
    }
}
