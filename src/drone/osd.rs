//! DJI Cloud API OSD ("on-screen display") telemetry: the dock or remote controller publishes
//! the aircraft's state on `thing/product/{sn}/osd` as JSON with a millisecond `timestamp` and
//! `data.latitude`, `data.longitude`, `data.height` (ellipsoid height, m), `data.elevation`
//! (height above the take-off point, m) and `data.attitude_head` (heading, degrees).

use serde::Deserialize;
use serde_json::Value;

use super::geo::GeoFix;

/// The serial number from an OSD topic `thing/product/{sn}/osd`.
pub fn topic_sn(topic: &str) -> Option<&str> {
    topic.strip_prefix("thing/product/")?.strip_suffix("/osd").filter(|sn| !sn.is_empty() && !sn.contains('/'))
}

/// The subscription that covers every aircraft's OSD.
pub const OSD_FILTER: &str = "thing/product/+/osd";

#[derive(Deserialize)]
struct Osd {
    timestamp: u64,
    data: Value,
}

/// Parses one OSD message into (Unix seconds, fix). Messages without a usable position (no
/// GPS lock reports 0, 0) are errors, which the caller counts.
pub fn parse(payload: &[u8]) -> Result<(f64, GeoFix), String> {
    let m: Osd = serde_json::from_slice(payload).map_err(|e| format!("not an OSD message: {e}"))?;
    let num = |k: &str| m.data.get(k).and_then(Value::as_f64);
    let (lat, lon) = match (num("latitude"), num("longitude")) {
        (Some(a), Some(o)) => (a, o),
        _ => return Err("OSD without data.latitude / data.longitude".into()),
    };
    if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lon) {
        return Err(format!("OSD position {lat}, {lon} is out of range"));
    }
    if lat == 0.0 && lon == 0.0 {
        return Err("OSD reports no position (0, 0: no GPS fix)".into());
    }
    let fix = GeoFix {
        source: "osd",
        lat,
        lon,
        sensor_lat: Some(lat),
        sensor_lon: Some(lon),
        altitude_m: num("height").or(num("elevation")),
        heading_deg: num("attitude_head"),
        frame_center: false,
    };
    Ok((m.timestamp as f64 / 1000.0, fix))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn osd_messages_parse_and_bad_ones_are_explained() {
        let msg = br#"{"tid":"t","bid":"b","timestamp":1764615600123,"gateway":"DOCK1","data":{"latitude":29.857,"longitude":121.551,"height":96.5,"elevation":60.2,"attitude_head":-45.0,"mode_code":3}}"#;
        let (t, f) = parse(msg).unwrap();
        assert!((t - 1_764_615_600.123).abs() < 1e-6);
        assert_eq!((f.lat, f.lon, f.altitude_m, f.heading_deg), (29.857, 121.551, Some(96.5), Some(-45.0)));
        assert!(parse(br#"{"timestamp":1,"data":{"latitude":0,"longitude":0}}"#).unwrap_err().contains("no GPS"));
        assert!(parse(br#"{"timestamp":1,"data":{"latitude":91,"longitude":0}}"#).unwrap_err().contains("out of range"));
        assert!(parse(br#"{"timestamp":1,"data":{}}"#).is_err());
        assert!(parse(b"not json").unwrap_err().contains("not an OSD"));
        assert_eq!(topic_sn("thing/product/1581F5/osd"), Some("1581F5"));
        assert_eq!(topic_sn("thing/product//osd"), None);
        assert_eq!(topic_sn("hawkeye/box/cmd/ack"), None);
    }
}
