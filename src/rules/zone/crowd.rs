//! The crowd rule (人群聚集): the zone is crowded while at least `min_count` qualifying persons
//! stand in it, inside the schedule; a crowd that lasts `dwell_s` starts an event (the dwell
//! state machine, [`crate::rules::Dwell`]: a count that dips below `min_count` for less than
//! `grace_s`, one person hidden behind another for a moment, does not restart the dwell). Every
//! transition carries the head count now and its peak since the crowd began; the peak is
//! forgotten once the zone is idle again (the crowd dispersed before the dwell, or its event
//! ended).

use super::dwell::DwellZone;
use super::{objects_in_zone, CompiledZone, FrameInput};
use crate::rules::dwell::DwellParams;
use crate::rules::event::{CrowdCount, Transition, ZoneEvents};

/// A crowd zone's state.
pub(in crate::rules) struct CrowdZone {
    presence: DwellZone,
    /// The most persons seen at once since the current presence began (0 when idle).
    peak: u32,
}

impl CrowdZone {
    pub(super) fn new(p: DwellParams) -> Self {
        CrowdZone { presence: DwellZone::new(p), peak: 0 }
    }

    pub(super) fn step(&mut self, spec: &CompiledZone, ev: &mut ZoneEvents<'_>, f: &FrameInput<'_>) -> Option<Transition> {
        let inside = objects_in_zone(spec, f.tracks, f.w, f.h);
        let count = inside.len() as u32;
        let peak = self.peak.max(count);
        let t = self.presence.step(spec, ev, f, inside, None);
        // counts below min_count between crowds never raise the next crowd's peak
        self.peak = if self.presence.since().is_some() { peak } else { 0 };
        t.map(|t| Transition { crowd: Some(CrowdCount { count, peak }), ..t })
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use crate::config::{Zone, ZoneKind};
    use crate::detect::BBox;
    use crate::rules::{CameraRules, CompiledZone, EventState, Transition};
    use crate::track::Track;

    /// A crowd zone over the lower half of a 640×480 frame: 3 persons for 4 s, grace 1 s.
    fn square() -> Zone {
        let text = "id = \"square\"\nkind = \"crowd\"\npolygon = [[0.0, 0.5], [1.0, 0.5], [1.0, 1.0], [0.0, 1.0]]\nclasses = [\"person\"]\nmin_count = 3\ndwell_s = 4\ngrace_s = 1\nclear_s = 2\ncooldown_s = 0\nupdate_s = 2\n";
        toml::from_str(text).unwrap()
    }

    fn people(n: usize) -> Vec<Track> {
        (0..n)
            .map(|i| {
                let x = 40.0 + 50.0 * i as f32;
                Track { id: i as u64 + 1, class_id: 0, class: "person".into(), score: 0.8, bbox: BBox::new(x, 300.0, x + 30.0, 400.0), hits: 3, missed: 0, first_seen: 0.0, last_seen: 0.0 }
            })
            .collect()
    }

    /// Runs the zone at 5 frames a second with `count(t)` persons in it.
    fn run(zone: Zone, count: impl Fn(f64) -> usize, until: f64) -> Vec<Transition> {
        assert_eq!(zone.kind, ZoneKind::Crowd);
        let mut r = CameraRules::new("d", &[CompiledZone::from_zone(&zone).unwrap()]);
        let t0 = Utc::now();
        (0..=(until * 5.0) as usize)
            .flat_map(|i| {
                let ts = i as f64 / 5.0;
                r.evaluate(&people(count(ts)), 640, 480, ts, t0 + chrono::Duration::milliseconds((ts * 1000.0) as i64))
            })
            .collect()
    }

    fn counts(tr: &[Transition]) -> Vec<(EventState, u32, u32)> {
        tr.iter().map(|t| (t.state, t.crowd.unwrap().count, t.crowd.unwrap().peak)).collect()
    }

    #[test]
    fn a_crowd_that_stays_alerts_with_its_count_and_peak() {
        // 3 persons from 1 s, 5 from 3 s, 4 from 7 s, nobody from 9 s
        let tr = run(square(), |t| if t < 1.0 { 0 } else if t < 3.0 { 3 } else if t < 7.0 { 5 } else if t < 9.0 { 4 } else { 0 }, 14.0);
        assert_eq!(tr[0].state, EventState::New);
        assert!((tr[0].ts - 5.0).abs() < 1e-9 && (tr[0].started_ts - 1.0).abs() < 1e-9, "{} {}", tr[0].ts, tr[0].started_ts);
        assert_eq!(counts(&tr), [(EventState::New, 5, 5), (EventState::Update, 4, 5), (EventState::End, 0, 5)]);
        assert_eq!(tr[0].objects.len(), 5);
        assert_eq!(tr[0].kind.violation(), "crowding (人群聚集)");
    }

    #[test]
    fn a_group_below_min_count_or_a_crowd_that_disperses_early_never_alerts() {
        assert!(run(square(), |_| 2, 20.0).is_empty(), "two persons are below min_count 3");
        // a crowd of 6 that disperses after 3 s, twice
        assert!(run(square(), |t| if (t % 8.0) < 3.0 { 6 } else { 0 }, 16.0).is_empty());
    }

    #[test]
    fn a_count_dipping_below_min_count_for_less_than_the_grace_keeps_the_dwell() {
        // 3 persons from 0 s, one hidden for 0.6 s at 2 s: the event still starts at 4 s
        let tr = run(square(), |t| if (2.0..2.6).contains(&t) { 2 } else { 3 }, 6.0);
        assert_eq!(tr[0].state, EventState::New);
        assert!((tr[0].ts - 4.0).abs() < 1e-9, "{}", tr[0].ts);
        // a dip longer than the grace starts the dwell over: from 3.6 s, due at 7.6 s (the
        // frame after it, 7.8 s, when 7.6 − 3.6 rounds below 4 in floating point)
        let tr = run(square(), |t| if (2.0..3.5).contains(&t) { 2 } else { 3 }, 9.0);
        assert!((tr[0].started_ts - 3.6).abs() < 1e-9 && (7.6 - 1e-9..=7.8 + 1e-9).contains(&tr[0].ts), "{} {}", tr[0].started_ts, tr[0].ts);
    }

    #[test]
    fn the_peak_starts_afresh_with_each_crowd() {
        // a crowd of 7 that disperses early, then a crowd of 3 that stays: peak 3, not 7
        let tr = run(square(), |t| if t < 2.0 { 7 } else if t < 6.0 { 0 } else { 3 }, 11.0);
        assert_eq!(counts(&tr)[0], (EventState::New, 3, 3));
    }
}
