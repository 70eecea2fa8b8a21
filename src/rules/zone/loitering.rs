//! The loitering rule: each person is timed on their own; only tracks that themselves stayed
//! `dwell_s` in the zone count, so people walking through one after another never alert even
//! when the zone is never empty. The event's presence began when the first of them entered.

use std::collections::HashMap;

use super::dwell::DwellZone;
use super::{objects_in_zone, CompiledZone, FrameInput};
use crate::rules::dwell::DwellParams;
use crate::rules::event::{Transition, ZoneEvents};

/// A loitering zone's state.
pub(in crate::rules) struct LoiterZone {
    dwell_s: f64,
    /// Track id → stream time it entered the zone.
    entered: HashMap<u64, f64>,
    /// The zone's presence (dwell 0: it starts once one track has stayed `dwell_s`).
    presence: DwellZone,
}

impl LoiterZone {
    pub(super) fn new(dwell_s: f64, presence: DwellParams) -> Self {
        LoiterZone { dwell_s, entered: HashMap::new(), presence: DwellZone::new(presence) }
    }

    pub(super) fn step(&mut self, spec: &CompiledZone, ev: &mut ZoneEvents<'_>, f: &FrameInput<'_>) -> Option<Transition> {
        let mut inside = objects_in_zone(spec, f.tracks, f.w, f.h);
        self.entered.retain(|id, _| inside.iter().any(|t| t.id == *id));
        for t in &inside {
            self.entered.entry(t.id).or_insert(f.ts);
        }
        inside.retain(|t| f.ts - self.entered[&t.id] >= self.dwell_s);
        let entered_ts = inside.iter().map(|t| self.entered[&t.id]).reduce(f64::min);
        self.presence.step(spec, ev, f, inside, entered_ts)
    }
}
