//! The per-frame step of one camera, pure: a frame's detections → tracks → rule transitions
//! (zone rules, the drone rule, automatic re-checks that fell due). No I/O, no clocks of its
//! own: it is fed stream time and wall time with every frame. `hawkeye run`'s camera task and
//! `hawkeye eval` both drive it, so what eval measures is what the daemon does.

use chrono::{DateTime, Utc};

use crate::config::{Camera, CompiledZone};
use crate::detect::Detection;
use crate::drone::{DroneRules, GeoFix};
use crate::rules::{Ack, CameraRules, EventState, Transition};
use crate::track::{Track, Tracker, TrackerParams};

/// One frame as the step needs it: times, size and (for the static-object model of dumping
/// zones) its packed RGB pixels.
#[derive(Clone, Copy, Debug)]
pub struct FrameInput<'a> {
    /// Stream time, seconds (all rule timing uses it).
    pub ts: f64,
    pub wall: DateTime<Utc>,
    pub width: u32,
    pub height: u32,
    pub rgb: &'a [u8],
    /// Drones: where the frame was taken.
    pub fix: Option<&'a GeoFix>,
}

/// What one frame produced.
#[derive(Clone, Debug, Default)]
pub struct StepOutput {
    /// The tracks after this frame (confirmed and tentative).
    pub tracks: Vec<Track>,
    /// Zone transitions, then drone events, then automatic re-checks that fell due.
    pub transitions: Vec<Transition>,
}

/// The latest frame the step saw, for commands between frames.
#[derive(Clone, Debug)]
struct Latest {
    ts: f64,
    wall: DateTime<Utc>,
    width: u32,
    height: u32,
    tracks: Vec<Track>,
}

/// A camera's tracker and rules.
pub struct CameraStep {
    tracker: Tracker,
    rules: CameraRules,
    drone: Option<DroneRules>,
    /// Detections below this score are not tracked (0: all the detector returns).
    min_score: f32,
    latest: Option<Latest>,
}

impl CameraStep {
    /// The step for `camera` with its compiled `zones`; `id_prefix` (e.g. `device-camera`)
    /// starts its event ids.
    pub fn new(id_prefix: &str, camera: &Camera, zones: &[CompiledZone], min_score: f32) -> CameraStep {
        CameraStep {
            tracker: Tracker::new(TrackerParams::default()),
            rules: CameraRules::new(id_prefix, zones),
            drone: camera.drone.as_ref().map(|d| DroneRules::new(id_prefix, d)),
            min_score,
            latest: None,
        }
    }

    /// Feeds one frame's detections.
    pub fn step(&mut self, f: FrameInput, detections: &[Detection]) -> StepOutput {
        let tracks = if self.min_score > 0.0 {
            let kept: Vec<Detection> = detections.iter().filter(|d| d.score >= self.min_score).cloned().collect();
            self.tracker.update(&kept, f.ts)
        } else {
            self.tracker.update(detections, f.ts)
        };
        self.rules.observe_frame(f.rgb, f.width, f.height, f.ts);
        let mut transitions = self.rules.evaluate(&tracks, f.width, f.height, f.ts, f.wall);
        if let Some(dr) = self.drone.as_mut() {
            for s in dr.evaluate(&tracks, f.fix, f.ts, f.wall) {
                transitions.push(Transition {
                    state: EventState::New,
                    event_id: s.event_id,
                    zone: usize::MAX,
                    zone_id: s.zone_id,
                    kind: s.kind,
                    started_ts: s.ts,
                    ts: s.ts,
                    started_at: s.wall,
                    dwell_s: 0.0,
                    objects: vec![s.object],
                    ack: None,
                    flood: None,
                    geo: Some(s.fix),
                    dumped: None,
                    crowd: None,
                });
            }
        }
        for id in self.rules.due_rechecks(f.ts) {
            if let Ok(t) = self.rules.recheck(&id, &tracks, f.width, f.height, f.ts, f.wall) {
                transitions.push(t);
            }
        }
        self.latest = Some(Latest { ts: f.ts, wall: f.wall, width: f.width, height: f.height, tracks: tracks.clone() });
        StepOutput { tracks, transitions }
    }

    /// Feeds a water mask of the frame about to be stepped (see [`CameraRules::observe_water`]):
    /// the mask-driven flooding zones hold its coverage until the next mask.
    pub fn observe_water(&mut self, mask: &crate::detect::WaterMask) {
        self.rules.observe_water(mask);
    }

    /// Whether this camera has flooding zones driven by water masks.
    pub fn wants_water(&self) -> bool {
        self.rules.wants_water()
    }

    /// An operator's acknowledgement: `None` when the event is not this camera's.
    pub fn ack(&mut self, event_id: &str, ack: Ack) -> Option<Result<(), String>> {
        let ts = self.latest.as_ref().map_or(0.0, |l| l.ts);
        self.rules.knows(event_id).then(|| self.rules.ack(event_id, ack, ts))
    }

    /// Remembers an event of an earlier run for `ack` and `recheck` (see
    /// [`CameraRules::restore`]).
    pub fn restore(&mut self, event_id: &str, zone_id: &str, started_at: DateTime<Utc>, ack: Option<Ack>, now: DateTime<Utc>) -> bool {
        self.rules.restore(event_id, zone_id, started_at, ack, now)
    }

    /// Re-checks an event now, on the latest frame's tracks: `None` when the event is not this
    /// camera's.
    pub fn recheck_now(&self, event_id: &str) -> Option<Result<Transition, String>> {
        if !self.rules.knows(event_id) {
            return None;
        }
        Some(match &self.latest {
            None => Err("no frame from this camera yet".to_string()),
            Some(l) => self.rules.recheck(event_id, &l.tracks, l.width, l.height, l.ts, l.wall),
        })
    }

    /// The rules (zone polygons, flood levels, active events).
    pub fn rules(&self) -> &CameraRules {
        &self.rules
    }

    /// The latest frame's tracks.
    pub fn latest_tracks(&self) -> &[Track] {
        self.latest.as_ref().map_or(&[], |l| &l.tracks)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Zone, ZoneKind};
    use crate::detect::BBox;

    fn camera(zones: Vec<Zone>) -> Camera {
        let mut c: Camera = toml::from_str("id = \"cam\"\nurl = \"file:///x.mp4\"").expect("minimal camera");
        c.zones = zones;
        c
    }

    /// The step for a camera with `zones`, compiled as the config compiler does.
    fn step_for(prefix: &str, zones: Vec<Zone>, min_score: f32) -> CameraStep {
        let compiled: Vec<CompiledZone> = zones.iter().map(|z| CompiledZone::from_zone(z).expect("a valid zone")).collect();
        CameraStep::new(prefix, &camera(zones), &compiled, min_score)
    }

    fn sidewalk() -> Zone {
        let text = "id = \"sidewalk\"\nkind = \"out_of_store\"\npolygon = [[0.0, 0.5], [0.5, 0.5], [0.5, 1.0], [0.0, 1.0]]\nclasses = [\"person\"]\ndwell_s = 2.0\nclear_s = 1.0\n";
        toml::from_str(text).expect("zone")
    }

    fn person(x: f32, score: f32) -> Detection {
        Detection { class_id: 0, class: "person".into(), score, bbox: BBox::new(x - 10.0, 360.0, x + 10.0, 400.0) }
    }

    /// Runs `secs` of 5 fps frames with `dets(ts)`; returns every transition with its frame time.
    fn run(step: &mut CameraStep, from: f64, secs: f64, dets: impl Fn(f64) -> Vec<Detection>) -> Vec<Transition> {
        let t0 = DateTime::parse_from_rfc3339("2026-12-01T08:00:00Z").unwrap().with_timezone(&Utc);
        let rgb = vec![0u8; 640 * 480 * 3];
        let mut out = Vec::new();
        let mut ts = from;
        while ts <= from + secs + 1e-9 {
            let wall = t0 + chrono::Duration::milliseconds((ts * 1000.0) as i64);
            let f = FrameInput { ts, wall, width: 640, height: 480, rgb: &rgb, fix: None };
            out.extend(step.step(f, &dets(ts)).transitions);
            ts += 0.2;
        }
        out
    }

    #[test]
    fn a_person_in_the_zone_for_dwell_raises_new_then_end_with_the_track() {
        let mut s = step_for("dev-cam", vec![sidewalk()], 0.0);
        let tr = run(&mut s, 0.0, 8.0, |ts| if ts < 4.0 { vec![person(100.0, 0.9)] } else { vec![] });
        let states: Vec<EventState> = tr.iter().map(|t| t.state).collect();
        assert_eq!(states, vec![EventState::New, EventState::End]);
        assert_eq!(tr[0].objects.len(), 1);
        assert_eq!(tr[0].objects[0].class, "person");
        assert_eq!(tr[0].event_id, tr[1].event_id);
        assert!(tr[0].event_id.starts_with("dev-cam-sidewalk-"));
    }

    #[test]
    fn detections_below_min_score_are_not_tracked() {
        let mut s = step_for("d", vec![sidewalk()], 0.7);
        assert!(run(&mut s, 0.0, 6.0, |_| vec![person(100.0, 0.65)]).is_empty());
        let mut s = step_for("d", vec![sidewalk()], 0.0);
        assert_eq!(run(&mut s, 0.0, 6.0, |_| vec![person(100.0, 0.65)])[0].state, EventState::New);
    }

    #[test]
    fn ack_and_recheck_belong_to_the_camera_that_knows_the_event() {
        let zone = Zone { recheck_after_s: Some(3.0), ..sidewalk() };
        let mut s = step_for("d", vec![zone], 0.0);
        assert!(s.recheck_now("x").is_none() && s.ack("x", Ack { operator: None, note: None, at: Utc::now() }).is_none());
        let id = run(&mut s, 0.0, 3.0, |_| vec![person(100.0, 0.9)])[0].event_id.clone();
        // on demand: the person is still there
        assert_eq!(s.recheck_now(&id).unwrap().unwrap().state, EventState::Recurred);
        s.ack(&id, Ack { operator: Some("wang".into()), note: None, at: Utc::now() }).unwrap().unwrap();
        // the person leaves; the automatic re-check 3 s after the ack reports resolved, once
        let later = run(&mut s, 3.2, 6.0, |_| vec![]);
        let rechecks: Vec<&Transition> = later.iter().filter(|t| matches!(t.state, EventState::Resolved | EventState::Recurred)).collect();
        assert_eq!(rechecks.len(), 1, "{later:?}");
        assert_eq!(rechecks[0].state, EventState::Resolved);
        assert_eq!(rechecks[0].ack.as_ref().unwrap().operator.as_deref(), Some("wang"));
    }

    #[test]
    fn the_same_frames_give_the_same_transitions() {
        // pure: two steps fed the same input agree exactly (eval measures what run does)
        let feed = |ts: f64| if (2.0..7.0).contains(&ts) { vec![person(100.0 + ts as f32, 0.8)] } else { vec![] };
        let mut a = step_for("d", vec![sidewalk(), Zone { kind: ZoneKind::Loitering, id: "l".into(), ..sidewalk() }], 0.0);
        let mut b = step_for("d", vec![sidewalk(), Zone { kind: ZoneKind::Loitering, id: "l".into(), ..sidewalk() }], 0.0);
        let (ta, tb) = (run(&mut a, 0.0, 12.0, feed), run(&mut b, 0.0, 12.0, feed));
        let key = |t: &Transition| (t.event_id.clone(), t.state, (t.ts * 10.0).round() as i64);
        assert_eq!(ta.iter().map(key).collect::<Vec<_>>(), tb.iter().map(key).collect::<Vec<_>>());
        assert!(ta.len() >= 4, "{ta:?}");
    }
}
