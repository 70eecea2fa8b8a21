//! Drone footage with geotagged alerts, on real parts: an MPEG-TS flight with H.264 video
//! (vtest.avi) and MISB ST 0601 KLV packets generated here, muxed by GStreamer's mpegtsmux and
//! read back by the real daemon through the `ts_klv` template; and DJI Cloud API OSD messages
//! published to a real mosquitto while the daemon watches a drone camera. YOLOX-nano's `person`
//! stands in for the watched class.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::daemon::Daemon;
use common::mqtt::{Msg, Subscriber};
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use hawkeye::drone::geo::distance_m;
use hawkeye::drone::klv::{encode_uas_local_set, UasFix};

const LONG: Duration = Duration::from_secs(120);

/// Flight path of the generated KLV: the aircraft flies north at about 11 m/s; the camera
/// looks 0.001° (111 m) ahead of it.
fn sensor_lat(t: f64) -> f64 {
    29.85 + 0.0001 * t
}
const LOOK_AHEAD: f64 = 0.001;
const LON: f64 = 121.55;

/// Writes an MPEG-TS of vtest.avi's first `seconds` (10 fps) as H.264 with a KLV packet every
/// 0.2 s.
fn klv_flight(out: &Path, seconds: f64) {
    gst::init().unwrap();
    let desc = format!(
        "filesrc location={} ! decodebin ! identity eos-after={} ! videoconvert ! video/x-raw,format=I420 ! x264enc speed-preset=ultrafast key-int-max=10 \
         ! h264parse ! queue ! mux. appsrc name=klv format=time caps=meta/x-klv,parsed=true ! queue ! mux. \
         mpegtsmux name=mux ! filesink location={}",
        common::model::vtest().display(),
        (seconds * 10.0) as u64,
        out.display()
    );
    let pipeline = gst::parse::launch(&desc).unwrap().downcast::<gst::Pipeline>().unwrap();
    let src = pipeline.by_name("klv").unwrap().downcast::<gst_app::AppSrc>().unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let mut t = 0.0;
    while t < seconds {
        let fix = UasFix {
            timestamp_us: Some(1_764_600_000_000_000 + (t * 1e6) as u64),
            platform_heading_deg: Some(0.0),
            sensor_lat: Some(sensor_lat(t)),
            sensor_lon: Some(LON),
            sensor_alt_m: Some(120.0),
            frame_center_lat: Some(sensor_lat(t) + LOOK_AHEAD),
            frame_center_lon: Some(LON),
            ..Default::default()
        };
        let mut buf = gst::Buffer::from_mut_slice(encode_uas_local_set(&fix));
        {
            let b = buf.get_mut().unwrap();
            b.set_pts(gst::ClockTime::from_nseconds((t * 1e9) as u64));
            b.set_duration(gst::ClockTime::from_mseconds(200));
        }
        src.push_buffer(buf).unwrap();
        t += 0.2;
    }
    src.end_of_stream().unwrap();
    let bus = pipeline.bus().unwrap();
    let msg = bus.timed_pop_filtered(gst::ClockTime::from_seconds(120), &[gst::MessageType::Eos, gst::MessageType::Error]).expect("muxing finished");
    if let gst::MessageView::Error(e) = msg.view() {
        panic!("muxing the KLV flight failed: {} {:?}", e.error(), e.debug());
    }
    pipeline.set_state(gst::State::Null).unwrap();
}

fn new_alerts(sub: &Subscriber) -> Vec<serde_json::Value> {
    sub.all().iter().filter(|m| m.topic == "hawkeye/test-box/alerts").map(Msg::json).filter(|a| a["state"] == "new").collect()
}

fn assert_schema(alert: &serde_json::Value) {
    let schema: serde_json::Value = serde_json::from_str(hawkeye::publish::ALERT_SCHEMA).unwrap();
    let v = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = v.iter_errors(alert).map(|e| format!("{e} at {}", e.instance_path())).collect();
    assert!(errors.is_empty(), "{errors:?}\n{alert:#}");
}

#[test]
fn klv_geotags_drone_alerts_deduplicated_and_inside_the_geo_zone() {
    let Some(model) = common::model::yolox_nano("klv_geotags_drone_alerts") else { return };
    let dir = tempfile::tempdir().unwrap();
    let ts = dir.path().join("flight.ts");
    klv_flight(&ts, 30.0);
    let broker = common::broker::mosquitto();
    // the zone covers the frame centres of the first ~25 s of the flight
    let (zone_lo, zone_hi) = (29.8505, 29.8535);
    let camera = format!(
        r#"
[[camera]]
id = "drone-klv"
url = "{}"
pipeline = "ts_klv"
realtime = true
detect_fps = 5
  [camera.drone]
  telemetry = "klv"
  confirm_frames = 3
  dedup_m = 40
  dedup_s = 600
  watch = [{{ class = "person", kind = "loitering", min_score = 0.4 }}]
  geo_zone = [{{ id = "first-block", polygon = [[{zone_lo}, 121.54], [{zone_lo}, 121.56], [{zone_hi}, 121.56], [{zone_hi}, 121.54]] }}]
"#,
        ts.display()
    );
    let config = common::config::write(dir.path(), broker.port, &model, &camera);
    let sub = Subscriber::new(broker.port, "hawkeye/#");
    let daemon = Daemon::start(&config);
    sub.wait_for("the flight file ends", LONG, |m| m.topic == "hawkeye/test-box/heartbeat" && m.json()["cameras"][0]["state"] == "ended");
    std::thread::sleep(Duration::from_secs(2));
    let alerts = new_alerts(&sub);
    eprintln!("KLV flight: {} geotagged alerts", alerts.len());
    assert!(alerts.len() >= 2, "the drone flew over people for 25 s inside the zone: {} alerts", alerts.len());
    for a in &alerts {
        assert_schema(a);
        let g = &a["geo"];
        assert_eq!((g["source"].as_str(), g["frame_center"].as_bool(), a["zone_id"].as_str()), (Some("klv"), Some(true), Some("first-block")), "{a:#}");
        let (lat, lon) = (g["lat"].as_f64().unwrap(), g["lon"].as_f64().unwrap());
        assert!((zone_lo..=zone_hi).contains(&lat) && (lon - LON).abs() < 1e-6, "inside the geo zone: {lat}, {lon}");
        assert!((lat - g["sensor_lat"].as_f64().unwrap() - LOOK_AHEAD).abs() < 1e-6, "frame centre, not the aircraft: {g}");
        assert!((g["altitude_m"].as_f64().unwrap() - 120.0).abs() < 0.5, "{g}");
        assert_eq!((a["location"]["lat"].as_f64(), a["location"]["lon"].as_f64()), (Some(lat), Some(lon)), "the alert is placed at the frame");
        assert!(!a["evidence"].as_array().unwrap().is_empty(), "snapshots as for any alert");
    }
    for (i, a) in alerts.iter().enumerate() {
        for b in &alerts[i + 1..] {
            let d = distance_m(a["geo"]["lat"].as_f64().unwrap(), LON, b["geo"]["lat"].as_f64().unwrap(), LON);
            assert!(d > 40.0, "two alerts {d:.0} m apart: one should have been a duplicate");
        }
    }
    assert!(daemon.signal_and_wait("TERM").success());
}

#[test]
fn dji_osd_positions_tag_alerts_and_a_hovering_drone_raises_one_event() {
    let Some(model) = common::model::yolox_nano("dji_osd_positions_tag_alerts") else { return };
    let broker = common::broker::mosquitto();
    let dir = tempfile::tempdir().unwrap();
    let camera = format!(
        r#"
[[camera]]
id = "drone-osd"
url = "{}"
pipeline = "file"
loop = true
realtime = true
detect_fps = 5
  [camera.drone]
  telemetry = "osd"
  osd_sn = "1581F5FHD22"
  confirm_frames = 3
  dedup_m = 30
  dedup_s = 600
  watch = [{{ class = "person", kind = "loitering", min_score = 0.4 }}]
"#,
        common::model::vtest().display()
    );
    let config = common::config::write(dir.path(), broker.port, &model, &camera);
    let sub = Subscriber::new(broker.port, "hawkeye/#");
    // the dock publishes the aircraft's OSD at 5 Hz, with a message without GPS now and then
    let mut publisher = Command::new("mosquitto_pub")
        .args(["-h", "127.0.0.1", "-p", &broker.port.to_string(), "-t", "thing/product/1581F5FHD22/osd", "-l"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = publisher.stdin.take().unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let feeder = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut k = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis();
                let (lat, lon) = if k % 10 == 9 { (0.0, 0.0) } else { (29.861, 121.561) };
                let line = format!(r#"{{"tid":"t{k}","bid":"b","timestamp":{now},"gateway":"DOCK-7","data":{{"latitude":{lat},"longitude":{lon},"height":96.5,"elevation":60.0,"attitude_head":12.5}}}}"#);
                if writeln!(stdin, "{line}").is_err() {
                    break;
                }
                k += 1;
                std::thread::sleep(Duration::from_millis(200));
            }
        })
    };
    let daemon = Daemon::start(&config);
    let first = sub.wait_for("a drone alert", LONG, |m| m.topic == "hawkeye/test-box/alerts" && m.json()["state"] == "new").json();
    assert_schema(&first);
    let g = &first["geo"];
    assert_eq!((g["source"].as_str(), g["frame_center"].as_bool()), (Some("osd"), Some(false)), "{first:#}");
    assert_eq!((first["location"]["lat"].as_f64(), first["location"]["lon"].as_f64()), (Some(29.861), Some(121.561)));
    assert_eq!((g["altitude_m"].as_f64(), g["heading_deg"].as_f64()), (Some(96.5), Some(12.5)));
    assert_eq!((first["camera_id"].as_str(), first["zone_id"].as_str(), first["kind"].as_str()), (Some("drone-osd"), Some("drone"), Some("loitering")));
    // people keep walking under the hovering drone: more confirmed tracks, still one event
    let t0 = Instant::now();
    let mut tracks_seen = 0;
    while t0.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(500));
        tracks_seen = sub.all().iter().rev().find(|m| m.topic == "hawkeye/test-box/heartbeat").map_or(0, |m| m.json()["cameras"][0]["inferred"].as_u64().unwrap_or(0));
    }
    assert!(tracks_seen > 20, "the detector kept running ({tracks_seen} frames)");
    assert_eq!(new_alerts(&sub).len(), 1, "a hovering drone over the same people is one event");
    let hb = sub.all().iter().rev().find(|m| m.topic == "hawkeye/test-box/heartbeat").unwrap().json();
    assert!(hb["drone_telemetry_errors"].as_u64().unwrap() >= 1, "OSD without a GPS fix is counted: {hb}");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    feeder.join().unwrap();
    let _ = publisher.kill();
    let _ = publisher.wait();
    assert!(daemon.signal_and_wait("TERM").success());
}
