//! Drones: positions from telemetry (MISB ST 0601 KLV in the stream, DJI Cloud API OSD over
//! MQTT) matched to frames by time, and the moving-camera event rule.
//!
//! - [`klv`]: the ST 0601 local set (parse with checksum, encode for test streams).
//! - [`osd`]: DJI OSD messages.
//! - [`geo`]: fixes by time, distances, lat/lon polygons.
//! - [`rules`]: confirmed sightings, de-duplicated by distance and time, in geographic zones.

pub mod geo;
pub mod klv;
pub mod osd;
pub mod rules;

pub use geo::{GeoFix, GeoTrack};
pub use rules::{DroneRules, Sighting};

/// The position a KLV packet gives: the frame centre when present, else the aircraft.
pub fn fix_from_klv(u: &klv::UasFix) -> Option<GeoFix> {
    let (lat, lon, frame_center) = match (u.frame_center_lat, u.frame_center_lon, u.sensor_lat, u.sensor_lon) {
        (Some(a), Some(o), _, _) => (a, o, true),
        (_, _, Some(a), Some(o)) => (a, o, false),
        _ => return None,
    };
    Some(GeoFix {
        source: "klv",
        lat,
        lon,
        sensor_lat: u.sensor_lat,
        sensor_lon: u.sensor_lon,
        altitude_m: u.sensor_alt_m,
        heading_deg: u.platform_heading_deg,
        frame_center,
    })
}
