//! Events of a moving camera. A drone cannot hold an image polygon on the ground, so an event
//! is a tracked detection of a watched class that is matched in `confirm_frames` frames, placed
//! at the frame's geotag, and kept only inside the configured geographic zones (if any). A
//! sighting of the same class within `dedup_m` metres and `dedup_s` seconds of an earlier one
//! belongs to that event and raises nothing new; the drone flying over a dumped pile twice
//! gives one alert. Pure: fed tracks, fixes and time, returns the new events.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};

use super::geo::{distance_m, inside, GeoFix};
use crate::config::{DroneCfg, ZoneKind};
use crate::track::Track;

/// A new drone event.
#[derive(Clone, Debug, PartialEq)]
pub struct Sighting {
    pub event_id: String,
    pub kind: ZoneKind,
    /// The geographic zone it lies in, or `drone` when no zones are configured.
    pub zone_id: String,
    pub fix: GeoFix,
    pub object: Track,
    pub ts: f64,
    pub wall: DateTime<Utc>,
}

/// Why a confirmed detection raised no event (counted for the heartbeat and tests).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DroneCounts {
    /// The same event seen again.
    pub duplicates: u64,
    /// No position within `max_fix_age_s` of the frame.
    pub unlocated: u64,
    /// Outside every geographic zone.
    pub outside: u64,
}

#[derive(Debug)]
struct Known {
    class: String,
    lat: f64,
    lon: f64,
    last_ts: f64,
}

/// A drone camera's event state.
#[derive(Debug)]
pub struct DroneRules {
    cfg: DroneCfg,
    prefix: String,
    /// Matched frames per live track.
    matched: HashMap<u64, u32>,
    /// Tracks already turned into a sighting (or rejected).
    done: HashSet<u64>,
    events: Vec<Known>,
    pub counts: DroneCounts,
}

impl DroneRules {
    /// `prefix` starts every event id (device and camera).
    pub fn new(prefix: &str, cfg: &DroneCfg) -> DroneRules {
        DroneRules { cfg: cfg.clone(), prefix: prefix.to_string(), matched: HashMap::new(), done: HashSet::new(), events: Vec::new(), counts: DroneCounts::default() }
    }

    /// One frame's tracks at stream time `ts`, with the frame's position (if any).
    pub fn evaluate(&mut self, tracks: &[Track], fix: Option<&GeoFix>, ts: f64, wall: DateTime<Utc>) -> Vec<Sighting> {
        let live: HashSet<u64> = tracks.iter().map(|t| t.id).collect();
        self.matched.retain(|id, _| live.contains(id));
        self.done.retain(|id| live.contains(id));
        let mut out = Vec::new();
        for t in tracks {
            let Some(watch) = self.cfg.watches.iter().find(|w| w.class == t.class) else { continue };
            // only frames where the track was matched, with enough confidence, count
            if t.missed > 0 || t.score < watch.min_score || self.done.contains(&t.id) {
                continue;
            }
            let n = self.matched.entry(t.id).or_default();
            *n += 1;
            if *n < self.cfg.confirm_frames {
                continue;
            }
            self.done.insert(t.id);
            let Some(fix) = fix else {
                self.counts.unlocated += 1;
                continue;
            };
            let zone_id = if self.cfg.geo_zones.is_empty() {
                "drone".to_string()
            } else {
                match self.cfg.geo_zones.iter().find(|z| inside(&z.polygon, fix.lat, fix.lon)) {
                    Some(z) => z.id.clone(),
                    None => {
                        self.counts.outside += 1;
                        continue;
                    }
                }
            };
            let (dm, ds) = (self.cfg.dedup_m, self.cfg.dedup_s);
            if let Some(k) = self.events.iter_mut().find(|k| k.class == t.class && ts - k.last_ts <= ds && distance_m(k.lat, k.lon, fix.lat, fix.lon) <= dm) {
                k.last_ts = ts;
                self.counts.duplicates += 1;
                continue;
            }
            self.events.retain(|k| ts - k.last_ts <= ds);
            self.events.push(Known { class: t.class.clone(), lat: fix.lat, lon: fix.lon, last_ts: ts });
            let event_id = format!("{}-{}-{}", self.prefix, watch.kind.as_str(), wall.format("%Y%m%dT%H%M%S%.3fZ"));
            out.push(Sighting { event_id, kind: watch.kind, zone_id, fix: fix.clone(), object: t.clone(), ts, wall });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{DroneWatch, GeoZone, TelemetrySource};
    use crate::detect::BBox;

    fn cfg(zones: Vec<GeoZone>) -> DroneCfg {
        DroneCfg {
            telemetry: TelemetrySource::Osd,
            osd_sn: Some("SN1".into()),
            max_fix_age_s: 2.0,
            confirm_frames: 3,
            dedup_m: 30.0,
            dedup_s: 600.0,
            watches: vec![DroneWatch { class: "garbage".into(), kind: ZoneKind::Dumping, min_score: 0.5 }],
            geo_zones: zones,
        }
    }

    fn track(id: u64, class: &str, score: f32) -> Track {
        Track { id, class_id: 0, class: class.into(), score, bbox: BBox { x1: 10.0, y1: 10.0, x2: 50.0, y2: 50.0 }, hits: 3, missed: 0, first_seen: 0.0, last_seen: 0.0 }
    }

    fn at(lat: f64, lon: f64) -> GeoFix {
        GeoFix { source: "osd", lat, lon, sensor_lat: Some(lat), sensor_lon: Some(lon), altitude_m: Some(80.0), heading_deg: None, frame_center: false }
    }

    fn run(r: &mut DroneRules, tracks: &[Track], fix: Option<&GeoFix>, ts: f64) -> Vec<Sighting> {
        r.evaluate(tracks, fix, ts, Utc::now())
    }

    #[test]
    fn confirmed_after_n_frames_and_deduplicated_by_distance_and_time() {
        let mut r = DroneRules::new("box-drone", &cfg(vec![]));
        let p = at(29.85, 121.55);
        assert!(run(&mut r, &[track(1, "garbage", 0.9)], Some(&p), 0.0).is_empty());
        assert!(run(&mut r, &[track(1, "garbage", 0.9)], Some(&p), 0.2).is_empty());
        let s = run(&mut r, &[track(1, "garbage", 0.9)], Some(&p), 0.4);
        assert_eq!(s.len(), 1);
        assert_eq!((s[0].kind, s[0].zone_id.as_str(), s[0].fix.lat), (ZoneKind::Dumping, "drone", 29.85));
        assert!(run(&mut r, &[track(1, "garbage", 0.9)], Some(&p), 0.6).is_empty(), "one sighting per track");
        // a new track 10 m away two minutes later: the same pile
        let near = at(29.85009, 121.55);
        for k in 0..3 {
            assert!(run(&mut r, &[track(2, "garbage", 0.9)], Some(&near), 120.0 + k as f64).is_empty());
        }
        assert_eq!(r.counts.duplicates, 1);
        // 200 m away: another event
        let far = at(29.8518, 121.55);
        let mut got = Vec::new();
        for k in 0..3 {
            got.extend(run(&mut r, &[track(3, "garbage", 0.9)], Some(&far), 130.0 + k as f64));
        }
        assert_eq!(got.len(), 1);
        // back at the first place after dedup_s: a new event
        let mut again = Vec::new();
        for k in 0..3 {
            again.extend(run(&mut r, &[track(4, "garbage", 0.9)], Some(&p), 800.0 + k as f64));
        }
        assert_eq!(again.len(), 1, "more than dedup_s after the last sighting");
    }

    #[test]
    fn unwatched_weak_missed_unlocated_and_outside_sightings_raise_nothing() {
        let zone = GeoZone { id: "riverside".into(), polygon: vec![[29.0, 121.0], [29.0, 122.0], [30.0, 122.0], [30.0, 121.0]] };
        let inside_p = at(29.5, 121.5);
        let mut missed = track(3, "garbage", 0.9);
        missed.missed = 1;
        let mut r = DroneRules::new("d", &cfg(vec![zone.clone()]));
        for k in 0..5 {
            assert!(run(&mut r, &[track(1, "person", 0.9), track(2, "garbage", 0.3), missed.clone()], Some(&inside_p), k as f64).is_empty());
        }
        let mut unlocated = DroneRules::new("d", &cfg(vec![zone.clone()]));
        let mut outside = DroneRules::new("d", &cfg(vec![zone.clone()]));
        for k in 0..5 {
            assert!(run(&mut unlocated, &[track(4, "garbage", 0.9)], None, k as f64).is_empty());
            assert!(run(&mut outside, &[track(5, "garbage", 0.9)], Some(&at(31.0, 121.5)), k as f64).is_empty());
        }
        assert_eq!((unlocated.counts.unlocated, outside.counts.outside), (1, 1));
        let mut got = Vec::new();
        for k in 0..3 {
            got.extend(run(&mut r, &[track(6, "garbage", 0.9)], Some(&inside_p), 10.0 + k as f64));
        }
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].zone_id, "riverside");
    }
}
