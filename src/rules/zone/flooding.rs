//! The flooding rule: the water over the segment → coverage of the polygon → level (see
//! [`crate::rules::Flood`]). With a water model configured (`FloodParams::from_mask`), the
//! coverage is the share of the polygon its latest mask calls water: masks come at a low rate
//! (`[water] fps`), and between them the last coverage holds (0 before the first). Without
//! one, it is the union of the water-class boxes over the segment (the rule as it was before
//! water masks). Leaving green starts an event (`new`), each further level change is an
//! `update`, and returning to green ends it.

use super::{CompiledZone, FrameInput};
use crate::rules::event::{EventState, Transition, ZoneEvents};
use crate::rules::flood::{self, Flood, FloodLevel, FloodParams};
use crate::detect::WaterMask;
use crate::track::Track;

/// A flooding zone's state.
pub(in crate::rules) struct FloodZone {
    flood: Flood,
    from_mask: bool,
    /// Coverage measured on the latest water mask (mask-driven zones).
    mask_coverage: Option<f64>,
}

impl FloodZone {
    pub(super) fn new(p: FloodParams) -> Self {
        FloodZone { flood: Flood::new(p), from_mask: p.from_mask, mask_coverage: None }
    }

    /// Whether this zone's coverage comes from water masks.
    pub(super) fn wants_water(&self) -> bool {
        self.from_mask
    }

    /// Measures the zone on a new water mask; it holds until the next one.
    pub(super) fn observe_water(&mut self, spec: &CompiledZone, mask: &WaterMask) {
        if self.from_mask {
            self.mask_coverage = Some(mask.coverage(&spec.polygon));
        }
    }

    /// The current level and smoothed coverage (0..1).
    pub(super) fn level(&self) -> (FloodLevel, f64) {
        (self.flood.level(), self.flood.coverage())
    }

    pub(super) fn step(&mut self, spec: &CompiledZone, ev: &mut ZoneEvents<'_>, f: &FrameInput<'_>) -> Option<Transition> {
        let z = &spec.zone;
        // a mask-driven zone has no water tracks: the mask is the evidence
        let water: Vec<Track> = if self.from_mask {
            Vec::new()
        } else {
            f.tracks.iter().filter(|t| t.score >= z.min_score && t.bbox.height() >= z.min_size_px && z.classes.contains(&t.class)).cloned().collect()
        };
        // outside the schedule the segment counts as dry
        let c = if !spec.schedule.is_active(f.wall) {
            0.0
        } else if self.from_mask {
            self.mask_coverage.unwrap_or(0.0)
        } else {
            let boxes: Vec<crate::detect::BBox> = water.iter().map(|t| t.bbox).collect();
            flood::coverage(&spec.polygon, &boxes, f.w, f.h)
        };
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
