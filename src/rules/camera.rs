//! [`CameraRules`]: the zone rules of one camera, its event log, and the operator side of the
//! lifecycle (`ack`, then a re-check (回头看) that reports `resolved` or `recurred`).

use chrono::{DateTime, Utc};

use super::event::{Ack, EventLog, EventState, OpenEvent, Transition, ZoneEvents};
use super::flood::FloodLevel;
use super::static_fg::{StaticFgParams, StaticForeground};
use super::zone::{objects_in_zone, occupied, CompiledZone, FrameInput, RuleState};
use super::Polygon;
use crate::detect::BBox;
use crate::track::Track;

/// One zone at run time: what the compiler made of its config, its rule's state, and its
/// active event.
struct ZoneState {
    spec: CompiledZone,
    rule: RuleState,
    open: Option<OpenEvent>,
}

/// Rules for all zones of one camera.
pub struct CameraRules {
    id_prefix: String,
    zones: Vec<ZoneState>,
    log: EventLog,
    /// Left-behind objects no detection explains, for dumping zones (None without such zones).
    static_fg: Option<StaticForeground>,
    /// The latest static-foreground blobs, in frame pixels.
    blobs: Vec<BBox>,
}

impl CameraRules {
    /// `id_prefix` (e.g. `device-camera`) starts every event id this camera issues; `zones`
    /// come from the config compiler, in config order.
    pub fn new(id_prefix: &str, zones: &[CompiledZone]) -> Self {
        let zones: Vec<ZoneState> = zones.iter().map(|z| ZoneState { rule: RuleState::new(&z.rule), spec: z.clone(), open: None }).collect();
        let static_fg = zones.iter().any(|z| z.rule.wants_frames()).then(|| StaticForeground::new(StaticFgParams::default()));
        CameraRules { id_prefix: id_prefix.to_string(), zones, log: EventLog::default(), static_fg, blobs: Vec::new() }
    }

    /// Feeds a packed RGB frame to the static-object detector of the dumping zones (nothing to
    /// do without such zones); call it before [`CameraRules::evaluate`] with the same frame.
    pub fn observe_frame(&mut self, rgb: &[u8], w: u32, h: u32, ts: f64) {
        if let Some(sf) = self.static_fg.as_mut() {
            self.blobs = sf.observe(rgb, w, h, ts);
        }
    }

    /// Feeds a water mask (frame pixels) to the mask-driven flooding zones; each holds the
    /// coverage it measures until the next mask. Call it before [`CameraRules::evaluate`].
    pub fn observe_water(&mut self, mask: &crate::detect::WaterMask) {
        for z in self.zones.iter_mut() {
            z.rule.observe_water(&z.spec, mask);
        }
    }

    /// Whether any zone of this camera takes its coverage from water masks (only then are
    /// masks worth computing for it).
    pub fn wants_water(&self) -> bool {
        self.zones.iter().any(|z| z.rule.wants_water())
    }

    /// Records an operator's acknowledgement of one of this camera's events at stream time
    /// `ts`; schedules the zone's automatic re-check when it has `recheck_after_s`.
    pub fn ack(&mut self, event_id: &str, ack: Ack, ts: f64) -> Result<(), String> {
        let rec = self.log.find_mut(event_id).ok_or_else(|| format!("unknown event {event_id:?}"))?;
        rec.ack = Some(ack);
        rec.recheck_due = self.zones[rec.zone].spec.zone.recheck_after_s.map(|d| ts + d);
        Ok(())
    }

    /// Remembers an event of an earlier run (the evidence worker keeps them across restarts)
    /// so that `ack` and `recheck` still find it. Its stream time is unknown: it is placed as
    /// long before stream time 0 as it started before `now`. Its automatic re-check, if one was
    /// pending, is not resumed. False when the zone no longer exists or the event is known.
    pub fn restore(&mut self, event_id: &str, zone_id: &str, started_at: DateTime<Utc>, ack: Option<Ack>, now: DateTime<Utc>) -> bool {
        let Some(zone) = self.zones.iter().position(|z| z.spec.zone.id == zone_id) else { return false };
        if self.log.find(event_id).is_some() {
            return false;
        }
        let started_ts = -((now - started_at).num_milliseconds().max(0) as f64 / 1000.0);
        self.log.push(super::event::EventRecord { event_id: event_id.to_string(), zone, started_ts, started_at, ack, recheck_due: None });
        true
    }

    /// Events whose automatic re-check is due at stream time `ts` (each returned once).
    pub fn due_rechecks(&mut self, ts: f64) -> Vec<String> {
        let mut due = Vec::new();
        for e in self.log.records.iter_mut() {
            if e.recheck_due.is_some_and(|d| ts >= d) {
                e.recheck_due = None;
                due.push(e.event_id.clone());
            }
        }
        due
    }

    /// True when `event_id` is one of this camera's (remembered) events.
    pub fn knows(&self, event_id: &str) -> bool {
        self.log.find(event_id).is_some()
    }

    /// Re-examines the zone of `event_id` with the latest tracks: `resolved` when no
    /// qualifying object is in the zone, `recurred` otherwise.
    pub fn recheck(&self, event_id: &str, tracks: &[Track], w: u32, h: u32, ts: f64, wall: DateTime<Utc>) -> Result<Transition, String> {
        let rec = self.log.find(event_id).ok_or_else(|| format!("unknown event {event_id:?}"))?;
        let z = &self.zones[rec.zone];
        let inside = objects_in_zone(&z.spec, tracks, w, h);
        let inside_n = inside.len() as u32;
        let _ = wall;
        Ok(Transition {
            state: if occupied(&z.spec.zone, &inside) { EventState::Recurred } else { EventState::Resolved },
            event_id: rec.event_id.clone(),
            zone: rec.zone,
            zone_id: z.spec.zone.id.clone(),
            kind: z.spec.zone.kind,
            started_ts: rec.started_ts,
            ts,
            started_at: rec.started_at,
            dwell_s: ts - rec.started_ts,
            objects: inside,
            ack: rec.ack.clone(),
            flood: z.rule.flood(),
            geo: None,
            dumped: None,
            crowd: (z.spec.zone.kind == crate::config::ZoneKind::Crowd).then_some(super::CrowdCount { count: inside_n, peak: inside_n }),
        })
    }

    /// The zones' polygons, in config order (for drawing).
    pub fn polygons(&self) -> impl Iterator<Item = &Polygon> {
        self.zones.iter().map(|z| &z.spec.polygon)
    }

    /// Ids of events currently active, with their zone index.
    pub fn active_events(&self) -> Vec<(usize, String)> {
        self.zones.iter().enumerate().filter_map(|(i, z)| z.open.as_ref().map(|e| (i, e.id.clone()))).collect()
    }

    /// Evaluates one frame's tracks (`w`×`h` pixels) at stream time `ts` / wall time `wall`.
    pub fn evaluate(&mut self, tracks: &[Track], w: u32, h: u32, ts: f64, wall: DateTime<Utc>) -> Vec<Transition> {
        let frame = FrameInput { tracks, blobs: &self.blobs, w, h, ts, wall };
        let mut out = Vec::new();
        for (zi, z) in self.zones.iter_mut().enumerate() {
            let mut ev = ZoneEvents { prefix: &self.id_prefix, log: &mut self.log, zone: zi, zone_id: &z.spec.zone.id, kind: z.spec.zone.kind, open: &mut z.open };
            if let Some(t) = z.rule.step(&z.spec, &mut ev, &frame) {
                out.push(t);
            }
        }
        out
    }

    /// Current level and smoothed coverage of every flooding zone, by zone id.
    pub fn flood_levels(&self) -> Vec<(String, FloodLevel, f64)> {
        self.zones.iter().filter_map(|z| z.rule.flood().map(|(l, c)| (z.spec.zone.id.clone(), l, c))).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Zone, ZoneKind};

    /// Rules over zones compiled as the config compiler does.
    fn rules(prefix: &str, zones: &[Zone]) -> CameraRules {
        let compiled: Vec<CompiledZone> = zones.iter().map(|z| CompiledZone::from_zone(z).unwrap()).collect();
        CameraRules::new(prefix, &compiled)
    }

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
            still_frac: 0.25,
            unmask_plates: false,
            zoom: false,
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
        let mut r = rules("dev-cam", &[zone()]);
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
        let mut r = rules("d", std::slice::from_ref(&z));
        let walkers = run(&mut r, |t| {
            let k = (t / 1.2) as u64;
            vec![with_id(k, 100.0 + (t as f32 % 1.2) * 10.0), with_id(k + 100, 150.0)].into_iter().filter(|tr| tr.id < 100 || t % 1.2 < 0.2).collect()
        }, 10.0);
        assert!(walkers.is_empty(), "{:?}", walkers.iter().map(|t| (t.state, t.ts)).collect::<Vec<_>>());
        // one person stays from 1.0 s: new at 3.0 s, started when that person entered
        let mut r = rules("d", &[z]);
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
            let mut r = rules("d", &[zone()]);
            assert!(run(&mut r, |_| vec![t.clone()], 10.0).is_empty());
        }
    }

    #[test]
    fn bottom_centre_decides_not_the_box() {
        // the box reaches into the zone but the feet stand above it
        let mut r = rules("d", &[zone()]);
        assert!(run(&mut r, |_| vec![track("person", 100.0, 230.0, 0.9)], 10.0).is_empty());
    }

    #[test]
    fn ack_then_recheck_reports_resolved_or_recurred() {
        let mut r = rules("d", &[zone()]);
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
        let mut r = rules("d", &[Zone { recheck_after_s: Some(30.0), ..zone() }]);
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
        let mut r = rules("d", std::slice::from_ref(&z));
        assert!(run(&mut r, |_| bikes(2), 10.0).is_empty(), "2 bikes are not an overflow");
        let mut r = rules("d", std::slice::from_ref(&z));
        assert_eq!(run(&mut r, |_| bikes(3), 10.0)[0].state, EventState::New);
        // out-of-store: a person alone is not trading; goods must be there
        let z = Zone { classes: vec!["goods".into(), "person".into()], required: vec!["goods".into()], ..zone() };
        let mut r = rules("d", std::slice::from_ref(&z));
        assert!(run(&mut r, |_| vec![track("person", 100.0, 400.0, 0.9)], 10.0).is_empty());
        let mut r = rules("d", &[z]);
        assert!(!run(&mut r, |_| vec![track("person", 100.0, 400.0, 0.9), track("goods", 150.0, 420.0, 0.9)], 10.0).is_empty());
    }

    #[test]
    fn small_objects_and_off_schedule_times_do_not_count() {
        let mut r = rules("d", &[Zone { min_size_px: 60.0, ..zone() }]);
        assert!(run(&mut r, |_| vec![track("person", 100.0, 400.0, 0.9)], 10.0).is_empty(), "a 40 px box is below 60 px");
        // a window on today's date that does not contain the current time (China time)
        let now = Utc::now().with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).unwrap());
        let day = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"][chrono::Datelike::weekday(&now).num_days_from_monday() as usize];
        let m = chrono::Timelike::hour(&now) * 60 + chrono::Timelike::minute(&now);
        let (a, b) = ((m + 120) % 1440, (m + 180) % 1440);
        let window = format!("{day} {:02}:{:02}-{:02}:{:02}", a / 60, a % 60, b / 60, b % 60);
        let mut r = rules("d", &[Zone { schedule: vec![window], ..zone() }]);
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
        let mut r = rules("d", &[road]);
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
        let mut r = rules("d", &[zone()]);
        let tr = run(&mut r, |t| if (t % 6.0) < 3.0 { vec![track("person", 100.0, 400.0, 0.9)] } else { vec![] }, 12.0);
        let news: Vec<&Transition> = tr.iter().filter(|t| t.state == EventState::New).collect();
        assert_eq!(news.len(), 2);
        assert_ne!(news[0].event_id, news[1].event_id);
    }

    #[test]
    fn each_zone_runs_only_its_own_rule() {
        // three zones over the same ground, watching the same classes: a person and water
        // standing there for 10 s
        let ground = vec![[0.0, 0.5], [1.0, 0.5], [1.0, 1.0], [0.0, 1.0]];
        let classes: Vec<String> = vec!["person".into(), "water".into()];
        let shop = Zone { id: "shop".into(), polygon: ground.clone(), classes: classes.clone(), ..zone() };
        let road = Zone { id: "road".into(), kind: ZoneKind::Flooding, polygon: ground.clone(), classes: classes.clone(), ..zone() };
        let gate = Zone { id: "gate".into(), kind: ZoneKind::Loitering, polygon: ground, classes, dwell_s: 30.0, ..zone() };
        let mut r = rules("d", &[shop, road, gate]);
        let water = Track { id: 9, bbox: BBox::new(0.0, 240.0, 640.0, 480.0), ..track("water", 0.0, 0.0, 0.9) };
        let tr = run(&mut r, |_| vec![track("person", 100.0, 400.0, 0.9), water.clone()], 10.0);
        let by_zone = |id: &str| tr.iter().filter(|t| t.zone_id == id).collect::<Vec<_>>();
        // the dwell zone: one event, no flood level, no dumped object
        let shop = by_zone("shop");
        assert_eq!(shop.len(), 1, "{shop:?}");
        assert!(shop[0].flood.is_none() && shop[0].dumped.is_none() && shop[0].kind == ZoneKind::OutOfStore);
        // the flooding zone grades coverage: its transitions carry a level, and only it has one
        let road = by_zone("road");
        assert_eq!(road.len(), 1, "{road:?}");
        assert_eq!(road[0].flood.map(|f| f.0), Some(FloodLevel::Red));
        assert_eq!(r.flood_levels().iter().map(|f| f.0.as_str()).collect::<Vec<_>>(), ["road"]);
        // the loitering zone times each track: nobody has stayed 30 s
        assert!(by_zone("gate").is_empty());
        // a re-check of the flooding zone's event reports its level; of the dwell zone's, none
        let (road_event, shop_event) = (road[0].event_id.clone(), shop[0].event_id.clone());
        assert_eq!(r.recheck(&road_event, &[], 640, 480, 11.0, Utc::now()).unwrap().flood.map(|f| f.0), Some(FloodLevel::Red));
        assert!(r.recheck(&shop_event, &[], 640, 480, 11.0, Utc::now()).unwrap().flood.is_none());
        assert_eq!(r.active_events().iter().map(|e| e.0).collect::<Vec<_>>(), vec![0, 1]);
    }
}
