//! Zone rules: turn tracked objects into event transitions (`new`, `update`, `end`), and the
//! operator side of the lifecycle: `ack`, then a re-check (回头看) that reports `resolved` or
//! `recurred`.
//!
//! In this first version every zone kind uses the dwell rule: an object of one of the zone's
//! classes, with score ≥ `min_score`, whose bottom-centre lies inside the polygon, present for
//! `dwell_s` (gaps < `grace_s` forgiven). Pure logic: fed tracks and stream time, returns
//! transitions; evidence and publishing happen elsewhere.

pub mod dumping;
mod dwell;
pub mod flood;
pub mod schedule;
pub mod static_fg;
mod zone;

use chrono::{DateTime, Utc};
use serde::Serialize;

pub use dumping::{DumpedObject, Dumper, Dumping, DumpingParams, DumpingStep};
pub use dwell::{Dwell, DwellParams, DwellStep};
pub use flood::{Flood, FloodLevel, FloodParams};
pub use schedule::Schedule;
pub use zone::Polygon;

use crate::config::{Zone, ZoneKind};
use crate::detect::BBox;
use static_fg::{StaticFgParams, StaticForeground};
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
struct EventRecord {
    event_id: String,
    zone: usize,
    started_ts: f64,
    started_at: DateTime<Utc>,
    ack: Option<Ack>,
    /// Stream time at which an automatic re-check is due (set by `ack`).
    recheck_due: Option<f64>,
}

/// Events remembered per camera for acknowledgement and re-check.
const REMEMBERED_EVENTS: usize = 256;

struct ZoneState {
    zone: Zone,
    polygon: Polygon,
    schedule: Schedule,
    /// Flooding zones are graded by coverage instead of the dwell rule.
    flood: Option<Flood>,
    /// Dumping zones follow left-behind objects instead of the dwell rule.
    dumping: Option<Dumping>,
    /// Loitering zones time each person: track id → stream time it entered the zone.
    loiter: Option<std::collections::HashMap<u64, f64>>,
    dwell: Dwell,
    /// Wall time of the first observation of the current presence.
    presence_wall: Option<DateTime<Utc>>,
    event_id: Option<String>,
    /// Stream and wall time at which the active event's presence began.
    event_started_ts: f64,
    event_wall: Option<DateTime<Utc>>,
}

/// Rules for all zones of one camera.
pub struct CameraRules {
    id_prefix: String,
    zones: Vec<ZoneState>,
    events: std::collections::VecDeque<EventRecord>,
    /// Left-behind objects no detection explains, for dumping zones (None without such zones).
    static_fg: Option<StaticForeground>,
    /// The latest static-foreground blobs, in frame pixels.
    blobs: Vec<BBox>,
}

impl CameraRules {
    /// `id_prefix` (e.g. `device-camera`) starts every event id this camera issues.
    pub fn new(id_prefix: &str, zones: &[Zone]) -> Self {
        let zones: Vec<ZoneState> = zones
            .iter()
            .map(|z| ZoneState {
                zone: z.clone(),
                polygon: Polygon::new(&z.polygon),
                // validated with the config; an unparsable schedule means "always"
                schedule: Schedule::parse(&z.schedule, &z.timezone).unwrap_or_default(),
                flood: (z.kind == ZoneKind::Flooding).then(|| {
                    Flood::new(FloodParams {
                        yellow_at: z.yellow_at,
                        red_at: z.red_at,
                        hysteresis: z.hysteresis,
                        min_duration_s: z.level_min_s,
                        smooth_s: z.smooth_s,
                    })
                }),
                dumping: (z.kind == ZoneKind::Dumping).then(|| {
                    Dumping::new(DumpingParams {
                        dwell_s: z.dwell_s,
                        grace_s: z.grace_s,
                        clear_s: z.clear_s,
                        cooldown_s: z.cooldown_s,
                        update_s: z.update_s,
                        waste_classes: z.classes.clone(),
                        min_score: z.min_score,
                        ..DumpingParams::default()
                    })
                }),
                loiter: (z.kind == ZoneKind::Loitering).then(Default::default),
                dwell: Dwell::new(DwellParams {
                    // loitering zones apply dwell_s per track (below); their zone presence
                    // starts once one track has stayed that long
                    dwell_s: if z.kind == ZoneKind::Loitering { 0.0 } else { z.dwell_s },
                    grace_s: z.grace_s,
                    clear_s: z.clear_s,
                    cooldown_s: z.cooldown_s,
                    update_s: z.update_s,
                }),
                presence_wall: None,
                event_id: None,
                event_started_ts: 0.0,
                event_wall: None,
            })
            .collect();
        let static_fg = zones.iter().any(|z: &ZoneState| z.dumping.is_some()).then(|| StaticForeground::new(StaticFgParams::default()));
        CameraRules { id_prefix: id_prefix.to_string(), zones, events: Default::default(), static_fg, blobs: Vec::new() }
    }

    /// Feeds a packed RGB frame to the static-object detector of the dumping zones (nothing to
    /// do without such zones); call it before [`CameraRules::evaluate`] with the same frame.
    pub fn observe_frame(&mut self, rgb: &[u8], w: u32, h: u32, ts: f64) {
        if let Some(sf) = self.static_fg.as_mut() {
            self.blobs = sf.observe(rgb, w, h, ts);
        }
    }

    /// Records an operator's acknowledgement of one of this camera's events at stream time
    /// `ts`; schedules the zone's automatic re-check when it has `recheck_after_s`.
    pub fn ack(&mut self, event_id: &str, ack: Ack, ts: f64) -> Result<(), String> {
        let rec = self.events.iter_mut().find(|e| e.event_id == event_id).ok_or_else(|| format!("unknown event {event_id:?}"))?;
        rec.ack = Some(ack);
        rec.recheck_due = self.zones[rec.zone].zone.recheck_after_s.map(|d| ts + d);
        Ok(())
    }

    /// Events whose automatic re-check is due at stream time `ts` (each returned once).
    pub fn due_rechecks(&mut self, ts: f64) -> Vec<String> {
        let mut due = Vec::new();
        for e in self.events.iter_mut() {
            if e.recheck_due.is_some_and(|d| ts >= d) {
                e.recheck_due = None;
                due.push(e.event_id.clone());
            }
        }
        due
    }

    /// True when `event_id` is one of this camera's (remembered) events.
    pub fn knows(&self, event_id: &str) -> bool {
        self.events.iter().any(|e| e.event_id == event_id)
    }

    /// Re-examines the zone of `event_id` with the latest tracks: `resolved` when no
    /// qualifying object is in the zone, `recurred` otherwise.
    pub fn recheck(&self, event_id: &str, tracks: &[Track], w: u32, h: u32, ts: f64, wall: DateTime<Utc>) -> Result<Transition, String> {
        let rec = self.events.iter().find(|e| e.event_id == event_id).ok_or_else(|| format!("unknown event {event_id:?}"))?;
        let z = &self.zones[rec.zone];
        let inside = objects_in_zone(z, tracks, w, h);
        let _ = wall;
        Ok(Transition {
            state: if occupied(&z.zone, &inside) { EventState::Recurred } else { EventState::Resolved },
            event_id: rec.event_id.clone(),
            zone: rec.zone,
            zone_id: z.zone.id.clone(),
            kind: z.zone.kind,
            started_ts: rec.started_ts,
            ts,
            started_at: rec.started_at,
            dwell_s: ts - rec.started_ts,
            objects: inside,
            ack: rec.ack.clone(),
            flood: z.flood.as_ref().map(|f| (f.level(), f.coverage())),
            geo: None,
            dumped: None,
        })
    }

    /// The zones' polygons, in config order (for drawing).
    pub fn polygons(&self) -> impl Iterator<Item = &Polygon> {
        self.zones.iter().map(|z| &z.polygon)
    }

    /// Ids of events currently active, with their zone index.
    pub fn active_events(&self) -> Vec<(usize, String)> {
        self.zones.iter().enumerate().filter_map(|(i, z)| z.event_id.clone().map(|id| (i, id))).collect()
    }

    /// Evaluates one frame's tracks (`w`×`h` pixels) at stream time `ts` / wall time `wall`.
    pub fn evaluate(&mut self, tracks: &[Track], w: u32, h: u32, ts: f64, wall: DateTime<Utc>) -> Vec<Transition> {
        let mut out = Vec::new();
        for (zi, z) in self.zones.iter_mut().enumerate() {
            if z.flood.is_some() {
                if let Some(t) = flood_step(&self.id_prefix, &mut self.events, zi, z, tracks, w, h, ts, wall) {
                    out.push(t);
                }
                continue;
            }
            if z.dumping.is_some() {
                if let Some(t) = dumping_step(&self.id_prefix, &mut self.events, zi, z, tracks, &self.blobs, w, h, ts, wall) {
                    out.push(t);
                }
                continue;
            }
            let mut inside = objects_in_zone(z, tracks, w, h);
            // loitering: only tracks that themselves stayed dwell_s count, and the presence
            // began when the first of them entered
            let mut entered_ts = None;
            if let Some(entered) = z.loiter.as_mut() {
                entered.retain(|id, _| inside.iter().any(|t| t.id == *id));
                for t in &inside {
                    entered.entry(t.id).or_insert(ts);
                }
                inside.retain(|t| ts - entered[&t.id] >= z.zone.dwell_s);
                entered_ts = inside.iter().map(|t| entered[&t.id]).reduce(f64::min);
            }
            // outside the zone's schedule nothing counts: a running event ends after clear_s
            let present = z.schedule.is_active(wall) && occupied(&z.zone, &inside);
            let since_before = z.dwell.since();
            let step = z.dwell.observe(present, ts);
            match z.dwell.since() {
                Some(s) if Some(s) != since_before => z.presence_wall = Some(wall),
                None => z.presence_wall = None,
                _ => {}
            }
            let state = match step {
                DwellStep::Quiet => continue,
                DwellStep::Start { .. } => EventState::New,
                DwellStep::Update => EventState::Update,
                DwellStep::End => EventState::End,
            };
            let started_ts = match step {
                DwellStep::Start { since } => entered_ts.map_or(since, |e| e.min(since)),
                _ if z.event_id.is_some() => z.event_started_ts,
                _ => z.dwell.since().unwrap_or(ts),
            };
            let started_at = match step {
                // a loitering track may have entered before the zone's presence began
                DwellStep::Start { since } => z.presence_wall.unwrap_or(wall) - chrono::Duration::milliseconds(((since - started_ts).max(0.0) * 1000.0) as i64),
                _ => z.event_wall.or(z.presence_wall).unwrap_or(wall),
            };
            if state == EventState::New {
                open_event(&self.id_prefix, &mut self.events, zi, z, started_ts, started_at);
            }
            let (event_id, ack) = current_event(&self.events, z, state);
            out.push(Transition {
                state,
                event_id,
                zone: zi,
                zone_id: z.zone.id.clone(),
                kind: z.zone.kind,
                started_ts,
                ts,
                started_at,
                dwell_s: ts - started_ts,
                objects: inside,
                ack,
                flood: None,
                geo: None,
                dumped: None,
            });
        }
        out
    }

    /// Current level and smoothed coverage of every flooding zone, by zone id.
    pub fn flood_levels(&self) -> Vec<(String, FloodLevel, f64)> {
        self.zones.iter().filter_map(|z| z.flood.as_ref().map(|f| (z.zone.id.clone(), f.level(), f.coverage()))).collect()
    }
}

/// Opens an event in zone `zi` whose presence began at `started_ts` / `started_wall`: its id
/// (from the start's wall time), and the record `ack` and `recheck` find it by.
fn open_event(prefix: &str, events: &mut std::collections::VecDeque<EventRecord>, zi: usize, z: &mut ZoneState, started_ts: f64, started_wall: DateTime<Utc>) {
    let event_id = format!("{prefix}-{}-{}", z.zone.id, started_wall.format("%Y%m%dT%H%M%S%.3fZ"));
    z.event_id = Some(event_id.clone());
    z.event_started_ts = started_ts;
    z.event_wall = Some(started_wall);
    if events.len() == REMEMBERED_EVENTS {
        events.pop_front();
    }
    events.push_back(EventRecord { event_id, zone: zi, started_ts, started_at: started_wall, ack: None, recheck_due: None });
}

/// The zone's current event id and its acknowledgement, for a transition in `state`; an `end`
/// closes the event.
fn current_event(events: &std::collections::VecDeque<EventRecord>, z: &mut ZoneState, state: EventState) -> (String, Option<Ack>) {
    let event_id = z.event_id.clone().unwrap_or_default();
    if state == EventState::End {
        z.event_id = None;
    }
    let ack = events.iter().rev().find(|e| e.event_id == event_id).and_then(|e| e.ack.clone());
    (event_id, ack)
}

/// The transition of the zone's current event started at `event_started_ts` (no flood level,
/// geotag or dumped object); an `end` closes the event.
#[allow(clippy::too_many_arguments)]
fn event_transition(events: &std::collections::VecDeque<EventRecord>, zi: usize, z: &mut ZoneState, state: EventState, ts: f64, wall: DateTime<Utc>, objects: Vec<Track>) -> Transition {
    let (event_id, ack) = current_event(events, z, state);
    Transition {
        state,
        event_id,
        zone: zi,
        zone_id: z.zone.id.clone(),
        kind: z.zone.kind,
        started_ts: z.event_started_ts,
        ts,
        started_at: z.event_wall.unwrap_or(wall),
        dwell_s: ts - z.event_started_ts,
        objects,
        ack,
        flood: None,
        geo: None,
        dumped: None,
    }
}

/// One observation of a flooding zone: water boxes of the zone's classes (anywhere over the
/// segment) → coverage → level. Leaving green starts an event (`new`), each further level
/// change is an `update`, and returning to green ends it.
#[allow(clippy::too_many_arguments)]
fn flood_step(
    prefix: &str,
    events: &mut std::collections::VecDeque<EventRecord>,
    zi: usize,
    z: &mut ZoneState,
    tracks: &[Track],
    w: u32,
    h: u32,
    ts: f64,
    wall: DateTime<Utc>,
) -> Option<Transition> {
    let water: Vec<Track> = tracks
        .iter()
        .filter(|t| t.score >= z.zone.min_score && t.bbox.height() >= z.zone.min_size_px && z.zone.classes.contains(&t.class))
        .cloned()
        .collect();
    let boxes: Vec<crate::detect::BBox> = water.iter().map(|t| t.bbox).collect();
    let watched = z.schedule.is_active(wall);
    let c = if watched { flood::coverage(&z.polygon, &boxes, w, h) } else { 0.0 };
    let flood = z.flood.as_mut()?;
    let (from, to) = flood.observe(c, ts)?;
    let coverage = flood.coverage();
    let state = match (from, to) {
        (FloodLevel::Green, _) => EventState::New,
        (_, FloodLevel::Green) => EventState::End,
        _ => EventState::Update,
    };
    if state == EventState::New {
        open_event(prefix, events, zi, z, ts, wall);
    }
    Some(Transition { flood: Some((to, coverage)), ..event_transition(events, zi, z, state, ts, wall, water) })
}

/// One observation of a dumping zone: left-behind objects (waste tracks or static blobs) that
/// stay put for `dwell_s` start an event naming the person who brought them.
#[allow(clippy::too_many_arguments)]
fn dumping_step(
    prefix: &str,
    events: &mut std::collections::VecDeque<EventRecord>,
    zi: usize,
    z: &mut ZoneState,
    tracks: &[Track],
    blobs: &[BBox],
    w: u32,
    h: u32,
    ts: f64,
    wall: DateTime<Utc>,
) -> Option<Transition> {
    // outside the schedule nothing is seen: candidates are dropped, a running event ends
    let (tracks, blobs): (&[Track], &[BBox]) = if z.schedule.is_active(wall) { (tracks, blobs) } else { (&[], &[]) };
    let big_enough: Vec<Track> = tracks.iter().filter(|t| t.bbox.height() >= z.zone.min_size_px || t.class == "person").cloned().collect();
    let poly = &z.polygon;
    let step = z.dumping.as_mut()?.observe(&big_enough, blobs, |b: &BBox| {
        let (x, y) = b.bottom_center();
        poly.contains_px(x, y, w, h)
    }, ts);
    let (state, object) = match step {
        DumpingStep::Quiet => return None,
        DumpingStep::Start { object } => (EventState::New, Some(object)),
        DumpingStep::Update { object } => (EventState::Update, Some(object)),
        DumpingStep::End => (EventState::End, None),
    };
    if state == EventState::New {
        let appeared = object.as_ref().map_or(ts, |o| o.appeared_ts);
        let started_wall = wall - chrono::Duration::milliseconds(((ts - appeared).max(0.0) * 1000.0) as i64);
        open_event(prefix, events, zi, z, appeared, started_wall);
    }
    // the object as a track: the live track when it has one, else its last box
    let objects = object
        .as_ref()
        .map(|o| {
            let live = o.track_id.and_then(|id| tracks.iter().find(|t| t.id == id)).cloned();
            vec![live.unwrap_or(Track {
                id: o.track_id.unwrap_or(0),
                class_id: usize::MAX,
                class: o.class.clone(),
                score: 1.0,
                bbox: o.bbox,
                hits: 0,
                missed: 0,
                first_seen: o.appeared_ts,
                last_seen: ts,
            })]
        })
        .unwrap_or_default();
    Some(Transition { dumped: object, ..event_transition(events, zi, z, state, ts, wall, objects) })
}

/// Tracks of the zone's classes, scored high and large enough, standing (bottom-centre) in the
/// polygon.
fn objects_in_zone(z: &ZoneState, tracks: &[Track], w: u32, h: u32) -> Vec<Track> {
    tracks
        .iter()
        .filter(|t| {
            let (x, y) = t.bbox.bottom_center();
            t.score >= z.zone.min_score
                && t.bbox.height() >= z.zone.min_size_px
                && z.zone.classes.contains(&t.class)
                && z.polygon.contains_px(x, y, w, h)
        })
        .cloned()
        .collect()
}

/// Whether the objects in a zone make it occupied: at least `min_count` of them, and every
/// `required` class among them.
fn occupied(zone: &Zone, inside: &[Track]) -> bool {
    inside.len() >= zone.min_count as usize && zone.required.iter().all(|r| inside.iter().any(|t| t.class == *r))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::BBox;

    fn zone() -> Zone {
        Zone {
            id: "sidewalk".into(),
            kind: ZoneKind::OutOfStore,
            polygon: vec![[0.0, 0.5], [0.5, 0.5], [0.5, 1.0], [0.0, 1.0]],
            classes: vec!["person".into()],
            min_score: 0.4,
            dwell_s: 2.0,
            grace_s: 0.5,
            clear_s: 1.0,
            cooldown_s: 0.0,
            update_s: 100.0,
            recheck_after_s: None,
            min_size_px: 0.0,
            min_count: 1,
            required: Vec::new(),
            schedule: Vec::new(),
            timezone: "+08:00".into(),
            yellow_at: 0.15,
            red_at: 0.4,
            hysteresis: 0.05,
            level_min_s: 1.0,
            smooth_s: 0.0,
            speak: None,
        }
    }

    fn track(class: &str, x: f32, y: f32, score: f32) -> Track {
        Track {
            id: 7,
            class_id: 0,
            class: class.into(),
            score,
            bbox: BBox::new(x - 10.0, y - 40.0, x + 10.0, y),
            hits: 3,
            missed: 0,
            first_seen: 0.0,
            last_seen: 0.0,
        }
    }

    fn run(rules: &mut CameraRules, tracks_at: impl Fn(f64) -> Vec<Track>, until: f64) -> Vec<Transition> {
        let t0 = Utc::now();
        let mut out = Vec::new();
        let mut i = 0;
        loop {
            let ts = i as f64 * 0.2;
            if ts > until {
                break;
            }
            let wall = t0 + chrono::Duration::milliseconds((ts * 1000.0) as i64);
            out.extend(rules.evaluate(&tracks_at(ts), 640, 480, ts, wall));
            i += 1;
        }
        out
    }

    #[test]
    fn object_inside_for_dwell_raises_new_then_end() {
        let mut r = CameraRules::new("dev-cam", &[zone()]);
        let tr = run(&mut r, |t| if t < 4.0 { vec![track("person", 100.0, 400.0, 0.9)] } else { vec![] }, 8.0);
        assert_eq!(tr.len(), 2);
        assert_eq!(tr[0].state, EventState::New);
        assert!((tr[0].ts - 2.0).abs() < 1e-9 && tr[0].dwell_s >= 2.0);
        assert_eq!(tr[0].objects.len(), 1);
        assert!(tr[0].event_id.starts_with("dev-cam-sidewalk-"));
        assert_eq!(tr[1].state, EventState::End);
        assert_eq!(tr[1].event_id, tr[0].event_id);
    }

    #[test]
    fn loitering_times_each_person_not_the_zone() {
        // zone: x < 320, y > 240 (of 640x480); dwell 2 s
        let z = Zone { kind: ZoneKind::Loitering, ..zone() };
        let with_id = |id: u64, x: f32| Track { id, ..track("person", x, 400.0, 0.9) };
        // people walk through one after another, each inside for 1.4 s, the zone never empty
        let mut r = CameraRules::new("d", std::slice::from_ref(&z));
        let walkers = run(&mut r, |t| {
            let k = (t / 1.2) as u64;
            vec![with_id(k, 100.0 + (t as f32 % 1.2) * 10.0), with_id(k + 100, 150.0)].into_iter().filter(|tr| tr.id < 100 || t % 1.2 < 0.2).collect()
        }, 10.0);
        assert!(walkers.is_empty(), "{:?}", walkers.iter().map(|t| (t.state, t.ts)).collect::<Vec<_>>());
        // one person stays from 1.0 s: new at 3.0 s, started when that person entered
        let mut r = CameraRules::new("d", &[z]);
        let tr = run(&mut r, |t| if t >= 1.0 { vec![with_id(5, 100.0)] } else { vec![] }, 5.0);
        assert_eq!(tr.len(), 1, "{:?}", tr.iter().map(|t| (t.state, t.ts)).collect::<Vec<_>>());
        assert_eq!(tr[0].state, EventState::New);
        assert!((tr[0].ts - 3.0).abs() < 1e-6 && (tr[0].started_ts - 1.0).abs() < 1e-6, "{} {}", tr[0].ts, tr[0].started_ts);
        assert!((tr[0].dwell_s - 2.0).abs() < 1e-6);
        assert_eq!(tr[0].objects.iter().map(|o| o.id).collect::<Vec<_>>(), vec![5]);
    }

    #[test]
    fn outside_wrong_class_or_low_score_never_alert() {
        for t in [track("person", 500.0, 400.0, 0.9), track("car", 100.0, 400.0, 0.9), track("person", 100.0, 400.0, 0.2)] {
            let mut r = CameraRules::new("d", &[zone()]);
            assert!(run(&mut r, |_| vec![t.clone()], 10.0).is_empty());
        }
    }

    #[test]
    fn bottom_centre_decides_not_the_box() {
        // the box reaches into the zone but the feet stand above it
        let mut r = CameraRules::new("d", &[zone()]);
        assert!(run(&mut r, |_| vec![track("person", 100.0, 230.0, 0.9)], 10.0).is_empty());
    }

    #[test]
    fn ack_then_recheck_reports_resolved_or_recurred() {
        let mut r = CameraRules::new("d", &[zone()]);
        let tr = run(&mut r, |_| vec![track("person", 100.0, 400.0, 0.9)], 3.0);
        let id = tr[0].event_id.clone();
        assert!(r.knows(&id) && !r.knows("other"));
        assert!(r.ack("other", Ack { operator: None, note: None, at: Utc::now() }, 3.0).is_err());
        r.ack(&id, Ack { operator: Some("li".into()), note: None, at: Utc::now() }, 3.0).unwrap();
        assert!(r.due_rechecks(100.0).is_empty(), "no automatic re-check without recheck_after_s");
        let still = r.recheck(&id, &[track("person", 100.0, 400.0, 0.9)], 640, 480, 4.0, Utc::now()).unwrap();
        assert_eq!(still.state, EventState::Recurred);
        assert_eq!(still.ack.as_ref().unwrap().operator.as_deref(), Some("li"));
        let gone = r.recheck(&id, &[track("person", 500.0, 100.0, 0.9)], 640, 480, 5.0, Utc::now()).unwrap();
        assert_eq!(gone.state, EventState::Resolved);
        assert!(gone.objects.is_empty());
        assert!(r.recheck("nope", &[], 640, 480, 5.0, Utc::now()).is_err());
        // later transitions of the event carry the acknowledgement
        let end: Vec<Transition> = (0..10).flat_map(|i| r.evaluate(&[], 640, 480, 6.0 + i as f64 * 0.2, Utc::now())).collect();
        assert!(end.iter().any(|t| t.state == EventState::End && t.ack.is_some()), "{end:?}");
    }

    #[test]
    fn an_ack_schedules_the_automatic_recheck_once() {
        let mut r = CameraRules::new("d", &[Zone { recheck_after_s: Some(30.0), ..zone() }]);
        let id = run(&mut r, |_| vec![track("person", 100.0, 400.0, 0.9)], 3.0)[0].event_id.clone();
        r.ack(&id, Ack { operator: None, note: None, at: Utc::now() }, 10.0).unwrap();
        assert!(r.due_rechecks(39.9).is_empty());
        assert_eq!(r.due_rechecks(40.0), vec![id]);
        assert!(r.due_rechecks(41.0).is_empty());
    }

    #[test]
    fn occupancy_needs_min_count_and_required_classes() {
        let bikes = |n: usize| -> Vec<Track> {
            (0..n).map(|i| Track { id: i as u64 + 1, ..track("bicycle", 50.0 + i as f32 * 10.0, 400.0, 0.9) }).collect()
        };
        let z = Zone { classes: vec!["bicycle".into(), "person".into()], min_count: 3, ..zone() };
        let mut r = CameraRules::new("d", std::slice::from_ref(&z));
        assert!(run(&mut r, |_| bikes(2), 10.0).is_empty(), "2 bikes are not an overflow");
        let mut r = CameraRules::new("d", std::slice::from_ref(&z));
        assert_eq!(run(&mut r, |_| bikes(3), 10.0)[0].state, EventState::New);
        // out-of-store: a person alone is not trading; goods must be there
        let z = Zone { classes: vec!["goods".into(), "person".into()], required: vec!["goods".into()], ..zone() };
        let mut r = CameraRules::new("d", std::slice::from_ref(&z));
        assert!(run(&mut r, |_| vec![track("person", 100.0, 400.0, 0.9)], 10.0).is_empty());
        let mut r = CameraRules::new("d", &[z]);
        assert!(!run(&mut r, |_| vec![track("person", 100.0, 400.0, 0.9), track("goods", 150.0, 420.0, 0.9)], 10.0).is_empty());
    }

    #[test]
    fn small_objects_and_off_schedule_times_do_not_count() {
        let mut r = CameraRules::new("d", &[Zone { min_size_px: 60.0, ..zone() }]);
        assert!(run(&mut r, |_| vec![track("person", 100.0, 400.0, 0.9)], 10.0).is_empty(), "a 40 px box is below 60 px");
        // a window on today's date that does not contain the current time (China time)
        let now = Utc::now().with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).unwrap());
        let day = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"][chrono::Datelike::weekday(&now).num_days_from_monday() as usize];
        let m = chrono::Timelike::hour(&now) * 60 + chrono::Timelike::minute(&now);
        let (a, b) = ((m + 120) % 1440, (m + 180) % 1440);
        let window = format!("{day} {:02}:{:02}-{:02}:{:02}", a / 60, a % 60, b / 60, b % 60);
        let mut r = CameraRules::new("d", &[Zone { schedule: vec![window], ..zone() }]);
        assert!(run(&mut r, |_| vec![track("person", 100.0, 400.0, 0.9)], 10.0).is_empty(), "outside the schedule");
    }

    #[test]
    fn a_flooding_segment_reports_each_level_change_as_one_event() {
        let road = Zone {
            id: "road-7".into(),
            kind: ZoneKind::Flooding,
            polygon: vec![[0.0, 0.5], [1.0, 0.5], [1.0, 1.0], [0.0, 1.0]],
            classes: vec!["water".into()],
            ..zone()
        };
        let water = |frac: f32| Track { bbox: BBox::new(0.0, 240.0, 640.0 * frac, 480.0), ..track("water", 0.0, 0.0, 0.9) };
        let mut r = CameraRules::new("d", &[road]);
        let tr = run(
            &mut r,
            |t| match t {
                t if t < 2.0 => vec![],
                t if t < 5.0 => vec![water(0.25)], // yellow
                t if t < 8.0 => vec![water(0.6)],  // red
                _ => vec![],                       // receded
            },
            12.0,
        );
        let seen: Vec<(EventState, FloodLevel)> = tr.iter().map(|t| (t.state, t.flood.unwrap().0)).collect();
        assert_eq!(seen, vec![(EventState::New, FloodLevel::Yellow), (EventState::Update, FloodLevel::Red), (EventState::End, FloodLevel::Green)]);
        assert!(tr.iter().all(|t| t.event_id == tr[0].event_id));
        assert_eq!(r.flood_levels()[0].1, FloodLevel::Green);
    }

    #[test]
    fn next_event_gets_a_new_id() {
        let mut r = CameraRules::new("d", &[zone()]);
        let tr = run(&mut r, |t| if (t % 6.0) < 3.0 { vec![track("person", 100.0, 400.0, 0.9)] } else { vec![] }, 12.0);
        let news: Vec<&Transition> = tr.iter().filter(|t| t.state == EventState::New).collect();
        assert_eq!(news.len(), 2);
        assert_ne!(news[0].event_id, news[1].event_id);
    }
}
