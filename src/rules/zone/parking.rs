//! The illegal-parking rule (机动车违停): each vehicle is timed on its own, and only while it
//! stands still, so passing and queuing traffic never counts.
//!
//! Semantics, each clause a test below:
//! - A vehicle is *still* while its box centre stays within `still_frac` of the box's own width
//!   (horizontally) and height (vertically) of where it stood when it stopped (its anchor).
//!   Moving further for longer than `grace_s` re-anchors it where it is now: its clock starts
//!   over (from the first of its latest positions near there). A shorter excursion (half of
//!   it hidden by a passing bus, a jumpy box) leaves the clock alone, but while it lasts the
//!   vehicle does not count as parked.
//! - A vehicle still for `dwell_s` is *parked*. A car waiting at a red light shorter than the
//!   dwell, or a van that leaves before it, never is.
//! - Missed detections: a vehicle unseen for up to `grace_s` keeps its clock; longer, it is
//!   forgotten.
//! - A re-acquired id (the tracker lost the vehicle and gave it a new id) takes over the clock
//!   of a vehicle lost within `grace_s` whose anchor its box centre is still within: it is the
//!   same vehicle standing on the same spot. If several fit, the one standing longest.
//! - The zone's event starts once one vehicle is parked (its presence began when that vehicle
//!   stopped), `update`s carry the parked vehicles, and it ends when no vehicle has been parked
//!   for `clear_s` (the dwell state machine with a dwell of 0, as loitering).

use std::collections::HashMap;

use super::dwell::DwellZone;
use super::{objects_in_zone, CompiledZone, FrameInput};
use crate::rules::dwell::DwellParams;
use crate::rules::event::{Transition, ZoneEvents};
use crate::track::Track;

/// A parking zone's parameters (from the zone's config).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ParkingParams {
    /// Seconds a vehicle must stand still before it is parked.
    pub dwell_s: f64,
    /// How far (a fraction of the box's own size) a still vehicle's centre may wander.
    pub still_frac: f64,
    /// The zone's presence timing (its `dwell_s` is 0; `grace_s` also bridges a vehicle's
    /// missed detections).
    pub presence: DwellParams,
}

/// Where a vehicle stopped and since when.
#[derive(Clone, Debug, PartialEq)]
struct Still {
    /// Box centre and size when it stopped (pixels).
    cx: f32,
    cy: f32,
    w: f32,
    h: f32,
    since: f64,
    /// Last time it was seen at all (anchored or not).
    last_seen: f64,
    /// Observations off the anchor since it was last seen on it: `(ts, cx, cy)`.
    strayed: Vec<(f64, f32, f32)>,
}

fn centre(t: &Track) -> (f32, f32) {
    let b = &t.bbox;
    ((b.x1 + b.x2) * 0.5, (b.y1 + b.y2) * 0.5)
}

impl Still {
    fn at(t: &Track, ts: f64) -> Still {
        let (cx, cy) = centre(t);
        Still { cx, cy, w: t.bbox.width(), h: t.bbox.height(), since: ts, last_seen: ts, strayed: Vec::new() }
    }

    /// Whether a box centre `(x, y)` is within `frac` of this anchor.
    fn near(&self, (x, y): (f32, f32), frac: f64) -> bool {
        let f = frac as f32;
        (x - self.cx).abs() <= f * self.w && (y - self.cy).abs() <= f * self.h
    }

    /// One observation of the vehicle. Off its anchor for longer than `grace_s` it has moved:
    /// it is anchored where it is now, still since the first of the latest observations that
    /// lie within `frac` of there. A shorter excursion (a passing bus hides half of it, the box
    /// jumps) leaves its clock alone.
    fn observe(&mut self, t: &Track, ts: f64, frac: f64, grace_s: f64) {
        self.last_seen = ts;
        let c = centre(t);
        if self.near(c, frac) {
            self.strayed.clear();
            return;
        }
        self.strayed.push((ts, c.0, c.1));
        if ts - self.strayed[0].0 <= grace_s {
            return;
        }
        let mut anchor = Still::at(t, ts);
        for (at, x, y) in self.strayed.iter().rev() {
            if !anchor.near((*x, *y), frac) {
                break;
            }
            anchor.since = *at;
        }
        *self = anchor;
    }

    /// When it stopped, unless it is off its anchor now.
    fn still_since(&self) -> Option<f64> {
        self.strayed.is_empty().then_some(self.since)
    }
}

/// The per-vehicle stillness clocks of one zone. Pure: fed the zone's vehicles and stream time.
#[derive(Debug, Default)]
pub(in crate::rules) struct StillClocks {
    still: HashMap<u64, Still>,
}

impl StillClocks {
    /// Feeds the vehicles in the zone at `ts`; returns when each one stopped, in the order
    /// given (`None` while it is off the place where it stopped).
    pub(in crate::rules) fn observe(&mut self, inside: &[Track], ts: f64, still_frac: f64, grace_s: f64) -> Vec<Option<f64>> {
        // vehicles tracked before keep (or restart) their own clocks first, so that a new id
        // can only take over the clock of one that is really gone
        let mut fresh = Vec::new();
        for t in inside {
            match self.still.get_mut(&t.id) {
                Some(s) => s.observe(t, ts, still_frac, grace_s),
                None => fresh.push(t),
            }
        }
        for t in fresh {
            let lost = self
                .still
                .iter()
                .filter(|(id, s)| s.last_seen < ts && ts - s.last_seen <= grace_s && s.near(centre(t), still_frac) && !inside.iter().any(|o| o.id == **id))
                .min_by(|a, b| a.1.since.total_cmp(&b.1.since))
                .map(|(id, _)| *id);
            let clock = match lost.and_then(|id| self.still.remove(&id)) {
                Some(s) => Still { last_seen: ts, strayed: Vec::new(), ..s },
                None => Still::at(t, ts),
            };
            self.still.insert(t.id, clock);
        }
        self.still.retain(|_, s| ts - s.last_seen <= grace_s);
        inside.iter().map(|t| self.still[&t.id].still_since()).collect()
    }
}

/// A parking zone's state.
pub(in crate::rules) struct ParkingZone {
    p: ParkingParams,
    clocks: StillClocks,
    /// The zone's presence (dwell 0: it starts once one vehicle is parked).
    presence: DwellZone,
}

impl ParkingZone {
    pub(super) fn new(p: ParkingParams) -> Self {
        ParkingZone { p, clocks: StillClocks::default(), presence: DwellZone::new(p.presence) }
    }

    pub(super) fn step(&mut self, spec: &CompiledZone, ev: &mut ZoneEvents<'_>, f: &FrameInput<'_>) -> Option<Transition> {
        let inside = objects_in_zone(spec, f.tracks, f.w, f.h);
        let since = self.clocks.observe(&inside, f.ts, self.p.still_frac, self.p.presence.grace_s);
        // parked vehicles, longest parked first (the alert's first object is its vehicle)
        let mut parked: Vec<(f64, Track)> = since.into_iter().zip(inside).filter_map(|(s, t)| s.filter(|s| f.ts - s >= self.p.dwell_s).map(|s| (s, t))).collect();
        parked.sort_by(|a, b| a.0.total_cmp(&b.0));
        let stopped_ts = parked.first().map(|(s, _)| *s);
        self.presence.step(spec, ev, f, parked.into_iter().map(|(_, t)| t).collect(), stopped_ts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::BBox;

    const FRAC: f64 = 0.25;
    const GRACE: f64 = 2.0;

    /// A 100×50 px car whose box centre is at `(cx, 300)`.
    fn car(id: u64, cx: f32) -> Track {
        Track { id, class_id: 2, class: "car".into(), score: 0.9, bbox: BBox::new(cx - 50.0, 275.0, cx + 50.0, 325.0), hits: 5, missed: 0, first_seen: 0.0, last_seen: 0.0 }
    }

    /// Runs 5 fps frames over `[from, to)` with `cars(ts)`; returns the last frame's clocks.
    fn run(c: &mut StillClocks, from: f64, to: f64, cars: impl Fn(f64) -> Vec<Track>) -> Vec<Option<f64>> {
        let mut last = Vec::new();
        let mut ts = from;
        while ts < to - 1e-9 {
            last = c.observe(&cars(ts), ts, FRAC, GRACE);
            ts += 0.2;
        }
        last
    }

    #[test]
    fn a_still_car_keeps_its_clock_through_jitter() {
        let mut c = StillClocks::default();
        // ±10 px of box jitter on a 100 px car: 20 px apart, less than a quarter of its width
        let since = run(&mut c, 0.0, 30.0, |ts| vec![car(1, 300.0 + if (ts * 5.0).round() as i64 % 2 == 0 { 10.0 } else { -10.0 })]);
        assert_eq!(since, vec![Some(0.0)]);
    }

    #[test]
    fn moving_more_than_still_frac_restarts_the_clock() {
        let mut c = StillClocks::default();
        run(&mut c, 0.0, 10.0, |_| vec![car(1, 300.0)]);
        // 30 px is more than a quarter of 100 px: off its place, not parked while it might
        // still come back...
        assert_eq!(run(&mut c, 10.0, 11.0, |_| vec![car(1, 330.0)]), vec![None]);
        // ...and after grace_s it has moved: still since it got there at 10 s
        let since = run(&mut c, 11.0, 20.0, |_| vec![car(1, 330.0)]);
        assert!((since[0].unwrap() - 10.0).abs() < 1e-9, "{since:?}");
    }

    #[test]
    fn a_short_excursion_off_the_anchor_keeps_the_clock() {
        let mut c = StillClocks::default();
        run(&mut c, 0.0, 10.0, |_| vec![car(1, 300.0)]);
        // a passing car hides half of it for 1.6 s: its box centre jumps 40 px
        assert_eq!(run(&mut c, 10.0, 11.6, |_| vec![car(1, 340.0)]), vec![None]);
        assert_eq!(run(&mut c, 11.6, 12.0, |_| vec![car(1, 300.0)]), vec![Some(0.0)]);
    }

    #[test]
    fn creeping_traffic_never_accumulates() {
        let mut c = StillClocks::default();
        // a queue creeping at 10 px/s: re-anchored every ~2.6 s, never still longer
        let mut longest = 0.0f64;
        let mut ts = 0.0;
        while ts < 120.0 {
            if let Some(since) = c.observe(&[car(1, 100.0 + 10.0 * ts as f32)], ts, FRAC, GRACE)[0] {
                longest = longest.max(ts - since);
            }
            ts += 0.2;
        }
        // off its anchor after 2.5 s, re-anchored grace_s later: never still for 5 s
        assert!(longest < 5.0, "{longest}");
    }

    #[test]
    fn missed_detections_within_grace_keep_the_clock_longer_gaps_restart_it() {
        let mut c = StillClocks::default();
        run(&mut c, 0.0, 10.0, |_| vec![car(1, 300.0)]);
        // unseen for 1.8 s, then back with the same id
        run(&mut c, 10.0, 11.8, |_| vec![]);
        assert_eq!(run(&mut c, 11.8, 12.0, |_| vec![car(1, 300.0)]), vec![Some(0.0)]);
        // unseen for 3 s: forgotten
        run(&mut c, 12.0, 15.0, |_| vec![]);
        let since = run(&mut c, 15.0, 15.2, |_| vec![car(1, 300.0)]);
        assert!((since[0].unwrap() - 15.0).abs() < 1e-9, "{since:?}");
    }

    #[test]
    fn a_reacquired_id_on_the_same_spot_keeps_the_clock() {
        let mut c = StillClocks::default();
        run(&mut c, 0.0, 10.0, |_| vec![car(1, 300.0)]);
        run(&mut c, 10.0, 11.0, |_| vec![]);
        // the tracker gives the same car a new id, 10 px off: the clock goes with it
        assert_eq!(run(&mut c, 11.0, 12.0, |_| vec![car(2, 310.0)]), vec![Some(0.0)]);
        // and the old id is gone: coming back it is a new vehicle
        let since = run(&mut c, 12.0, 12.2, |_| vec![car(2, 310.0), car(1, 600.0)]);
        assert_eq!(since[0], Some(0.0));
        assert!((since[1].unwrap() - 12.0).abs() < 1e-9, "{since:?}");
    }

    #[test]
    fn a_new_id_elsewhere_or_beside_a_visible_car_starts_its_own_clock() {
        let mut c = StillClocks::default();
        run(&mut c, 0.0, 10.0, |_| vec![car(1, 300.0)]);
        run(&mut c, 10.0, 11.0, |_| vec![]);
        // a new id far from where the lost car stood: a different vehicle
        let since = run(&mut c, 11.0, 11.2, |_| vec![car(2, 420.0)]);
        assert!((since[0].unwrap() - 11.0).abs() < 1e-9, "{since:?}");
        // a car still tracked keeps its own clock; a new id on its spot does not take it
        let mut c = StillClocks::default();
        run(&mut c, 0.0, 10.0, |_| vec![car(1, 300.0)]);
        let since = run(&mut c, 10.0, 10.2, |_| vec![car(1, 300.0), car(3, 305.0)]);
        assert_eq!(since[0], Some(0.0));
        assert!((since[1].unwrap() - 10.0).abs() < 1e-9, "{since:?}");
    }

    mod zone {
        use chrono::{DateTime, Utc};

        use super::car;
        use crate::config::{Zone, ZoneKind};
        use crate::rules::{CameraRules, CompiledZone, EventState, Transition};
        use crate::track::Track;

        /// A parking zone over the whole 640×480 frame: dwell 20 s, clear 5 s.
        fn rules() -> CameraRules {
            let text = "id = \"kerb\"\nkind = \"parking\"\npolygon = [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]\ndwell_s = 20\ngrace_s = 2\nclear_s = 5\ncooldown_s = 0\nupdate_s = 10\n";
            let z: Zone = toml::from_str(text).unwrap();
            assert_eq!(z.kind, ZoneKind::Parking);
            CameraRules::new("d", &[CompiledZone::from_zone(&z).unwrap()])
        }

        fn run(r: &mut CameraRules, from: f64, to: f64, cars: impl Fn(f64) -> Vec<Track>) -> Vec<Transition> {
            let t0 = DateTime::parse_from_rfc3339("2026-12-01T08:00:00Z").unwrap().with_timezone(&Utc);
            let mut out = Vec::new();
            let mut ts = from;
            while ts < to - 1e-9 {
                let wall = t0 + chrono::Duration::milliseconds((ts * 1000.0) as i64);
                out.extend(r.evaluate(&cars(ts), 640, 480, ts, wall));
                ts += 0.2;
            }
            out
        }

        /// A car driving in from the left at 100 px/s, stopping at x = 300 at `stop`, leaving
        /// to the right at `go`.
        fn visit(id: u64, stop: f64, go: f64) -> impl Fn(f64) -> Option<Track> {
            move |ts| {
                let x = if ts < stop { 300.0 - 100.0 * (stop - ts) } else if ts < go { 300.0 } else { 300.0 + 100.0 * (ts - go) };
                (-50.0..=690.0).contains(&x).then(|| car(id, x as f32))
            }
        }

        #[test]
        fn a_parked_car_raises_new_with_its_stop_time_updates_and_ends() {
            let mut r = rules();
            let v = visit(1, 5.0, 60.0);
            let tr = run(&mut r, 0.0, 80.0, |ts| v(ts).into_iter().collect());
            let states: Vec<EventState> = tr.iter().map(|t| t.state).collect();
            assert_eq!(states.first(), Some(&EventState::New), "{states:?}");
            assert_eq!(states.last(), Some(&EventState::End), "{states:?}");
            let new = &tr[0];
            // parked from 5 s (the stop), due at 25 s
            assert!((new.ts - 25.0).abs() < 0.25, "{}", new.ts);
            assert!((new.started_ts - 5.0).abs() < 0.25, "{}", new.started_ts);
            assert_eq!(new.objects.iter().map(|o| o.id).collect::<Vec<_>>(), vec![1]);
            assert!(tr.iter().filter(|t| t.state == EventState::Update).all(|t| t.objects.len() == 1));
            // ends clear_s after it drove off
            let end = tr.last().unwrap();
            assert!(end.ts > 60.0 && end.ts < 66.0, "{}", end.ts);
        }

        #[test]
        fn a_red_light_queue_and_a_van_leaving_early_are_not_parked() {
            let mut r = rules();
            // three cars queue at the light for 15 s (less than the 20 s dwell), one after another
            let queue = |ts: f64| -> Vec<Track> {
                (0..3u64).filter_map(|k| visit(10 + k, 5.0 + k as f64, 20.0 + k as f64)(ts).map(|mut t| {
                    t.bbox = crate::detect::BBox::new(t.bbox.x1 - 110.0 * k as f32, t.bbox.y1, t.bbox.x2 - 110.0 * k as f32, t.bbox.y2);
                    t
                })).collect()
            };
            assert!(run(&mut r, 0.0, 40.0, queue).is_empty());
            // a delivery van stops 19 s and leaves
            let van = visit(20, 45.0, 64.0);
            assert!(run(&mut r, 40.0, 90.0, |ts| van(ts).into_iter().collect()).is_empty());
        }

        #[test]
        fn a_tracker_flicker_neither_restarts_nor_ends_the_parking() {
            let mut r = rules();
            // parked from 0 s; the track drops out for 0.8 s every 7 s and comes back with a new id
            let tr = run(&mut r, 0.0, 60.0, |ts| {
                let phase = ts % 7.0;
                if (5.0..5.7).contains(&phase) { vec![] } else { vec![car(100 + ((ts + 1.25) / 7.0) as u64, 300.0)] }
            });
            let states: Vec<EventState> = tr.iter().map(|t| t.state).collect();
            assert_eq!(states.iter().filter(|s| **s == EventState::New).count(), 1, "{states:?}");
            assert!(!states.contains(&EventState::End), "{states:?}");
            assert!((tr[0].ts - 20.0).abs() < 0.25 && tr[0].started_ts == 0.0, "{:?}", (tr[0].ts, tr[0].started_ts));
        }
    }
}
