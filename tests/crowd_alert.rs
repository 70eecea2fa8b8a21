//! Crowding end to end on real parts: `hawkeye synth` composites a crowd of real people (cut out
//! of vtest.avi's training frames) onto the lawn of frames 400–794, the real daemon (`hawkeye
//! run`) plays the video in real time through GStreamer and hawkeye's own model in ONNX Runtime,
//! and a real mosquitto delivers a `crowd` alert with its head count, `update`s with the peak
//! count, and the `end` once the crowd has gone.

mod common;

use std::time::Duration;

use common::daemon::Daemon;
use common::mqtt::{Msg, Subscriber};

/// Five people gather on the lawn from 1 s, one a second, and walk off one by one from 16 s.
const CROWD_SCENARIO: &str = r#"
description = "A crowd of five gathers on the lawn and disperses."
seed = 1616
duration_s = 30
width = 640
height = 480

[scene]
noise = 2

[background]
video = "vtest"
start_frame = 400
end_frame = 794

[[zone]]
id = "lawn"
kind = "crowd"
polygon = [[0.04, 0.56], [0.32, 0.56], [0.32, 0.76], [0.04, 0.76]]
classes = ["person"]
min_count = 3
min_score = 0.4
dwell_s = 4
grace_s = 2
clear_s = 3
cooldown_s = 0
update_s = 2

[[actor]]
kind = "crowd"
at = [0.18, 0.66]
count = 5
arrive = 1
leave = 16
spread = 0.09
"#;

#[test]
fn a_crowd_publishes_its_count_and_peak_to_mqtt() {
    let _ = common::model::vtest();
    let model = common::model::urban();
    let broker = common::broker::mosquitto();
    let dir = tempfile::tempdir().unwrap();
    let config = common::scene::realtime_camera_of(CROWD_SCENARIO, "crowd", dir.path(), &model, broker.port);
    let topic = "hawkeye/synth-crowd/alerts";
    let sub = Subscriber::new(broker.port, topic);
    let daemon = Daemon::start_logged(&config, &dir.path().join("run.log"));
    sub.wait_for("the crowd's end", Duration::from_secs(90), |m| m.json()["kind"] == "crowd" && m.json()["state"] == "end");
    assert!(daemon.signal_and_wait("TERM").success());
    let mut crowd: Vec<serde_json::Value> = sub.all().iter().filter(|m| m.topic == topic).map(Msg::json).filter(|a| a["kind"] == "crowd").collect();
    crowd.sort_by_key(|a| a["seq"].as_u64().unwrap());
    let seen: Vec<(&str, Option<u64>, Option<u64>)> = crowd.iter().map(|a| (a["state"].as_str().unwrap(), a["count"].as_u64(), a["peak_count"].as_u64())).collect();
    let id = crowd[0]["event_id"].as_str().unwrap();
    assert!(crowd.iter().all(|a| a["event_id"] == id), "one event: {seen:?}");

    // the new: at least min_count persons, each one of the alert's objects
    let new = &crowd[0];
    assert_eq!((new["state"].as_str(), new["violation"].as_str()), (Some("new"), Some("crowding (人群聚集)")), "{new:#}");
    let count = new["count"].as_u64().expect("the new carries the count");
    assert!((3..=8).contains(&count), "{seen:?}");
    let objects = new["objects"].as_array().unwrap();
    assert_eq!(objects.len() as u64, count);
    assert!(objects.iter().all(|o| o["class"] == "person"), "{objects:?}");
    assert!(new["peak_count"].as_u64().unwrap() >= count);

    // updates carry the count now and the peak so far, which never falls
    let updates: Vec<&(&str, Option<u64>, Option<u64>)> = seen.iter().filter(|s| s.0 == "update").collect();
    assert!(!updates.is_empty(), "no update: {seen:?}");
    let mut peak = 0;
    for (_, c, p) in seen.iter().filter(|s| s.0 != "end") {
        let (c, p) = (c.expect("count"), p.expect("peak_count"));
        // the count may exceed the five composited: the video's own people cross the lawn
        assert!(p >= c && p >= peak && p <= 8, "{seen:?}");
        peak = p;
    }
    assert!(peak >= 4, "five people gathered: peak {peak} ({seen:?})");
    let end = seen.last().unwrap();
    assert_eq!(end.0, "end");
    assert!(end.1.unwrap() < 3 && end.2.unwrap() >= peak, "{seen:?}");

    // every message is a valid alert
    let schema: serde_json::Value = serde_json::from_str(hawkeye::publish::ALERT_SCHEMA).unwrap();
    for a in &crowd {
        assert!(jsonschema::is_valid(&schema, a), "{a:#}");
    }
}
