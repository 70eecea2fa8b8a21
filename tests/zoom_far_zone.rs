//! Zoomed looks at a far zone, end to end on real parts: `hawkeye synth` composites a stall onto
//! the upper car park of Debian's vtest.avi (frames 400–794, never used for training), about
//! 40 px wide in a 640×480 frame; the real daemon plays it in real time through GStreamer and
//! hawkeye's own model in ONNX Runtime, with the zone's `zoom = true`; a real mosquitto delivers
//! the `out_of_store` alert, and `/metrics` counts the crops the detector looked at.
//! (On the whole frame alone the model misses this stall: `hawkeye eval --no-zoom` on the
//! real-background suite, README "Zoomed looks at far zones".)

mod common;

use std::time::Duration;

use common::daemon::Daemon;
use common::mqtt::{Msg, Subscriber};

/// A table set out on the far car park from 3 s to 40 s; the zone's dwell is 8 s. The grace
/// (6 s) lets the far stall be missed in a few looks in a row without the dwell starting over:
/// the test is about the zoomed looks reaching the rules, not about every look finding it.
const FAR_STALL: &str = r#"
description = "A stall on the far car park, seen through a zoomed look at its zone."
seed = 202614202
duration_s = 45
width = 640
height = 480

[scene]
noise = 2

[background]
video = "vtest"
start_frame = 400
end_frame = 794

[[zone]]
id = "lot-d"
kind = "out_of_store"
polygon = [[0.64, 0.25], [0.80, 0.25], [0.80, 0.35], [0.64, 0.35]]
classes = ["goods"]
min_score = 0.35
dwell_s = 8
grace_s = 6
clear_s = 8
cooldown_s = 10
update_s = 30
zoom = true

[[actor]]
kind = "vendor"
at = [0.72, 0.30]
arrive = 3
leave = 40
style = "table"
"#;

#[test]
fn a_far_stall_is_found_through_the_zoomed_look() {
    let _ = common::model::vtest();
    let model = common::model::urban();
    let broker = common::broker::mosquitto();
    let dir = tempfile::tempdir().unwrap();
    let config = common::scene::realtime_camera_of(FAR_STALL, "far", dir.path(), &model, broker.port);
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(text.contains("zoom = true"), "the zone's zoom reaches the generated config:\n{text}");
    common::config::enable_telemetry(&config);
    let topic = "hawkeye/synth-far/alerts";
    let sub = Subscriber::new(broker.port, topic);
    let log = dir.path().join("run.log");
    let daemon = Daemon::start_logged(&config, &log);
    let telemetry = common::config::telemetry_port(&config);
    let is_new = |m: &Msg| m.topic == topic && m.json()["kind"] == "out_of_store" && m.json()["state"] == "new";
    let new = sub.poll_for(0, Duration::from_secs(90), is_new).unwrap_or_else(|| {
        let (_, metrics) = common::config::http_get(telemetry, "/metrics");
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(40).collect::<Vec<_>>().into_iter().rev().collect();
        let zoom: Vec<&str> = metrics.lines().filter(|l| l.contains("zoom") || l.contains("inference")).collect();
        panic!("no out_of_store alert in 90 s; metrics:\n{}\nlog tail:\n{}", zoom.join("\n"), tail.join("\n"));
    });
    let (_, metrics) = common::config::http_get(telemetry, "/metrics");
    assert!(daemon.signal_and_wait("TERM").success());

    let alert = new.json();
    assert_eq!(alert["zone_id"], "lot-d", "{alert:#}");
    let objects = alert["objects"].as_array().unwrap();
    assert!(objects.iter().any(|o| o["class"] == "goods"), "{objects:?}");
    // the goods' box is where the table stands (x 0.72, feet at y 0.30 of 640x480), and small
    let b = objects.iter().find(|o| o["class"] == "goods").unwrap()["bbox"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect::<Vec<_>>();
    let (cx, bottom, w) = ((b[0] + b[2]) / 2.0, b[3], b[2] - b[0]);
    assert!((cx - 0.72 * 640.0).abs() < 40.0 && (bottom - 0.30 * 480.0).abs() < 30.0 && w < 90.0, "goods box {b:?}");

    let crops: f64 = metrics
        .lines()
        .find(|l| l.starts_with("hawkeye_zoomed_crops_total{"))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or_else(|| panic!("no zoomed-crops counter:\n{metrics}"));
    // zoom_fps 2 over the ≥ 11 s until the alert: one crop per look
    assert!(crops >= 15.0, "zoomed crops {crops}:\n{metrics}");
    let alerts: Vec<serde_json::Value> = sub.all().iter().filter(|m| m.topic == topic).map(Msg::json).collect();
    assert!(alerts.iter().all(|a| a["zone_id"] == "lot-d"), "only the stall's zone: {alerts:?}");
}
