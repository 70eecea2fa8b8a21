//! The flooding rule: water boxes of the zone's classes (anywhere over the segment) →
//! coverage of the polygon → level (see [`crate::rules::Flood`]). Leaving green starts an event
//! (`new`), each further level change is an `update`, and returning to green ends it.

use super::{CompiledZone, FrameInput};
use crate::rules::event::{EventState, Transition, ZoneEvents};
use crate::rules::flood::{self, Flood, FloodLevel, FloodParams};
use crate::track::Track;

/// A flooding zone's state.
pub(in crate::rules) struct FloodZone {
    flood: Flood,
}

impl FloodZone {
    pub(super) fn new(p: FloodParams) -> Self {
        FloodZone { flood: Flood::new(p) }
    }

    /// The current level and smoothed coverage (0..1).
    pub(super) fn level(&self) -> (FloodLevel, f64) {
        (self.flood.level(), self.flood.coverage())
    }

    pub(super) fn step(&mut self, spec: &CompiledZone, ev: &mut ZoneEvents<'_>, f: &FrameInput<'_>) -> Option<Transition> {
        let z = &spec.zone;
        let water: Vec<Track> = f.tracks.iter().filter(|t| t.score >= z.min_score && t.bbox.height() >= z.min_size_px && z.classes.contains(&t.class)).cloned().collect();
        let boxes: Vec<crate::detect::BBox> = water.iter().map(|t| t.bbox).collect();
        // outside the schedule the segment counts as dry
        let c = if spec.schedule.is_active(f.wall) { flood::coverage(&spec.polygon, &boxes, f.w, f.h) } else { 0.0 };
        let (from, to) = self.flood.observe(c, f.ts)?;
        let state = match (from, to) {
            (FloodLevel::Green, _) => EventState::New,
            (_, FloodLevel::Green) => EventState::End,
            _ => EventState::Update,
        };
        if state == EventState::New {
            ev.open(f.ts, f.wall);
        }
        Some(Transition { flood: Some((to, self.flood.coverage())), ..ev.transition(state, f.ts, f.wall, water) })
    }
}
