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

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use crate::config::Zone;
    use crate::detect::{BBox, WaterMask};
    use crate::rules::{CameraRules, CompiledZone, FloodLevel, ZoneRule};
    use crate::track::Track;

    /// Rules of one flooding zone over the lower half of a 100×100 frame, graded at 0.2 / 0.5.
    fn rules(from_mask: bool) -> CameraRules {
        let text = "id = \"road\"\nkind = \"flooding\"\npolygon = [[0.0, 0.5], [1.0, 0.5], [1.0, 1.0], [0.0, 1.0]]\nclasses = [\"water\"]\ndwell_s = 0\nyellow_at = 0.2\nred_at = 0.5\nlevel_min_s = 1\nsmooth_s = 0\n";
        let z: Zone = toml::from_str(text).unwrap();
        let mut c = CompiledZone::from_zone(&z).unwrap();
        if let ZoneRule::Flooding(p) = &mut c.rule {
            p.from_mask = from_mask;
        }
        CameraRules::new("d-c", &[c])
    }

    /// Water over the left `share` of the frame's lower half.
    fn mask(share: f64) -> WaterMask {
        let mut m = WaterMask::dry(100, 100);
        for y in 50..100 {
            for x in 0..(share * 100.0) as usize {
                m.data[y * 100 + x] = 1;
            }
        }
        m
    }

    fn water_box() -> Track {
        Track { id: 1, class_id: 0, class: "water".into(), score: 0.9, bbox: BBox::new(0.0, 50.0, 100.0, 100.0), hits: 3, missed: 0, first_seen: 0.0, last_seen: 0.0 }
    }

    /// Steps 5 fps frames for `secs`, a mask (from `mask_at`) once a second; returns the
    /// levels after each second.
    fn run(r: &mut CameraRules, secs: usize, tracks: &[Track], mask_at: impl Fn(usize) -> Option<WaterMask>) -> Vec<FloodLevel> {
        let mut out = Vec::new();
        for i in 0..secs * 5 {
            if i % 5 == 0 {
                if let Some(m) = mask_at(i / 5) {
                    r.observe_water(&m);
                }
            }
            r.evaluate(tracks, 100, 100, i as f64 * 0.2, Utc::now());
            if i % 5 == 4 {
                out.push(r.flood_levels()[0].1);
            }
        }
        out
    }

    #[test]
    fn mask_coverage_holds_between_masks_and_boxes_no_longer_count() {
        let mut r = rules(true);
        assert!(r.wants_water());
        // 60 % water from second 2; masks stop coming after second 4: the coverage holds
        let levels = run(&mut r, 8, &[water_box()], |s| match s {
            0 | 1 => Some(mask(0.0)),
            2..=4 => Some(mask(0.6)),
            _ => None,
        });
        use FloodLevel::*;
        assert_eq!(levels, vec![Green, Green, Green, Red, Red, Red, Red, Red]);
        // a new mask with 30 %: yellow; with none: green (the water box never counts)
        let levels = run(&mut r, 6, &[water_box()], |s| Some(mask(if s < 3 { 0.3 } else { 0.0 })));
        assert_eq!(levels[1..3], [Yellow, Yellow]);
        assert_eq!(levels[5], Green);
    }

    #[test]
    fn without_a_water_model_boxes_drive_the_zone_and_masks_are_ignored() {
        let mut r = rules(false);
        assert!(!r.wants_water());
        let levels = run(&mut r, 4, &[water_box()], |_| Some(mask(0.0)));
        assert_eq!(levels[3], FloodLevel::Red);
        let mut r = rules(false);
        let levels = run(&mut r, 4, &[], |_| Some(mask(1.0)));
        assert_eq!(levels[3], FloodLevel::Green);
    }
}
