//! Positions for frames of a moving camera: fixes from telemetry kept in a short time-ordered
//! track, looked up by time; distances on the WGS-84 sphere; points in lat/lon polygons.

use std::collections::VecDeque;
use std::sync::Mutex;

use serde::Serialize;

/// Fixes kept per drone (a few seconds of telemetry at 10–30 Hz).
const KEEP: usize = 512;
/// Mean Earth radius (m), for haversine distances.
const EARTH_R: f64 = 6_371_008.8;

/// Where a frame was taken (and what it looked at, when telemetry says).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GeoFix {
    /// `klv` or `osd`.
    pub source: &'static str,
    /// The position events are placed at: the frame centre when known, else the aircraft.
    pub lat: f64,
    pub lon: f64,
    /// Aircraft position and height.
    pub sensor_lat: Option<f64>,
    pub sensor_lon: Option<f64>,
    pub altitude_m: Option<f64>,
    pub heading_deg: Option<f64>,
    /// True when `lat`/`lon` is the frame centre (KLV tags 23/24), not the aircraft.
    pub frame_center: bool,
}

/// A drone's recent fixes keyed by time (stream seconds for KLV, Unix seconds for OSD).
#[derive(Debug, Default)]
pub struct GeoTrack {
    fixes: Mutex<VecDeque<(f64, GeoFix)>>,
}

impl GeoTrack {
    pub fn push(&self, at: f64, fix: GeoFix) {
        let mut f = self.fixes.lock().unwrap();
        // telemetry can restart (a new stream): drop what lies after the new fix
        while f.back().is_some_and(|(t, _)| *t > at) {
            f.pop_back();
        }
        f.push_back((at, fix));
        while f.len() > KEEP {
            f.pop_front();
        }
    }

    /// The fix nearest in time to `at`, if within `max_age` seconds.
    pub fn at(&self, at: f64, max_age: f64) -> Option<GeoFix> {
        let f = self.fixes.lock().unwrap();
        f.iter()
            .map(|(t, fix)| ((t - at).abs(), fix))
            .filter(|(d, _)| *d <= max_age)
            .min_by(|a, b| a.0.total_cmp(&b.0))
            .map(|(_, fix)| fix.clone())
    }

    pub fn len(&self) -> usize {
        self.fixes.lock().unwrap().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Great-circle distance in metres.
pub fn distance_m(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dp = p2 - p1;
    let dl = (lon2 - lon1).to_radians();
    let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * EARTH_R * a.sqrt().asin()
}

/// Whether `[lat, lon]` lies inside the polygon of `[lat, lon]` points (even-odd rule; zones
/// are small enough for lat/lon to be treated as planar).
pub fn inside(polygon: &[[f64; 2]], lat: f64, lon: f64) -> bool {
    let mut inside = false;
    let n = polygon.len();
    for i in 0..n {
        let [ya, xa] = polygon[i];
        let [yb, xb] = polygon[(i + n - 1) % n];
        if (ya > lat) != (yb > lat) && lon < (xb - xa) * (lat - ya) / (yb - ya) + xa {
            inside = !inside;
        }
    }
    inside
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fix(lat: f64) -> GeoFix {
        GeoFix { source: "osd", lat, lon: 121.5, sensor_lat: None, sensor_lon: None, altitude_m: None, heading_deg: None, frame_center: false }
    }

    #[test]
    fn nearest_fix_within_the_age_limit() {
        let t = GeoTrack::default();
        t.push(10.0, fix(29.0));
        t.push(11.0, fix(29.1));
        assert_eq!(t.at(10.4, 2.0).unwrap().lat, 29.0);
        assert_eq!(t.at(10.6, 2.0).unwrap().lat, 29.1);
        assert!(t.at(14.0, 2.0).is_none(), "too old");
        t.push(5.0, fix(30.0));
        assert_eq!(t.len(), 1, "a restarted clock drops the later fixes");
    }

    #[test]
    fn distances_and_polygons() {
        // one degree of latitude is about 111.2 km
        assert!((distance_m(29.0, 121.0, 30.0, 121.0) - 111_195.0).abs() < 50.0);
        assert!(distance_m(29.85, 121.55, 29.85, 121.5501) < 10.0);
        let square = [[29.0, 121.0], [29.0, 122.0], [30.0, 122.0], [30.0, 121.0]];
        assert!(inside(&square, 29.5, 121.5));
        assert!(!inside(&square, 30.5, 121.5));
        assert!(!inside(&square, 29.5, 120.9));
    }
}
