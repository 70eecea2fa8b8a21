//! Dumping end to end on the real daemon: a rendered scenario (a person carries a bag to the
//! curb corner, puts it down and walks away) plays at real time through `hawkeye run` with
//! hawkeye's own model; the `new` alert on a real mosquitto names the bag and the person who
//! brought it, validates against the schema, and carries a `before` snapshot (the place without
//! the bag) and a `dumper` snapshot.

mod common;

use std::time::Duration;

use common::daemon::Daemon;
use common::mqtt::Subscriber;

/// Mean absolute difference of two RGB pictures inside a box.
fn box_difference(a: &image::RgbImage, b: &image::RgbImage, bbox: [f64; 4]) -> f64 {
    let (x0, y0) = (bbox[0].max(0.0) as u32, bbox[1].max(0.0) as u32);
    let (x1, y1) = ((bbox[2] as u32).min(a.width()), (bbox[3] as u32).min(a.height()));
    let (mut sum, mut n) = (0.0f64, 0.0f64);
    for y in y0..y1 {
        for x in x0..x1 {
            for k in 0..3 {
                sum += (a.get_pixel(x, y)[k] as f64 - b.get_pixel(x, y)[k] as f64).abs();
                n += 1.0;
            }
        }
    }
    sum / n.max(1.0)
}

#[test]
fn dumped_bag_alert_names_the_dumper_with_before_and_dumper_snapshots() {
    let model = common::model::urban();
    let broker = common::broker::mosquitto();
    let dir = tempfile::tempdir().unwrap();
    // the generated config, played at real time like a camera, publishing to the test broker
    let scenario = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scenarios/05_dumping_bag.toml");
    let config = common::scene::realtime_camera(&scenario, dir.path(), &model, broker.port);
    let sub = Subscriber::new(broker.port, "hawkeye/#");
    let daemon = Daemon::start(&config);
    let root_topic = "hawkeye/synth-05_dumping_bag";
    // the bag is put down at 15 s; dwell 10 s
    let alert = sub
        .wait_for("a dumping alert", Duration::from_secs(60), |m| {
            m.topic == format!("{root_topic}/alerts") && m.json()["kind"] == "dumping" && m.json()["state"] == "new"
        })
        .json();
    let schema: serde_json::Value = serde_json::from_str(hawkeye::publish::ALERT_SCHEMA).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator.iter_errors(&alert).map(|e| format!("{e} at {}", e.instance_path())).collect();
    assert!(errors.is_empty(), "{errors:?}\n{alert:#}");
    assert_eq!(alert["zone_id"], "curb-corner");
    let d = &alert["dumping"];
    assert_eq!(d["class"], "garbage", "{alert:#}");
    assert!(d["dumper"]["track_id"].as_u64().is_some(), "no dumper named: {alert:#}");
    assert!(d["appeared_at"].as_str().unwrap() < alert["updated_at"].as_str().unwrap());
    let names: Vec<&str> = alert["evidence"].as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap()).collect();
    for name in ["clean", "annotated", "before", "dumper"] {
        assert!(names.contains(&name), "evidence {names:?} lacks {name}");
    }
    let event_id = alert["event_id"].as_str().unwrap();
    let picture = |name: &str| {
        let topic = format!("{root_topic}/evidence/{event_id}/{name}");
        let m = sub.wait_for(&topic, Duration::from_secs(20), |m| m.topic == topic);
        image::load_from_memory_with_format(&m.payload, image::ImageFormat::Jpeg).expect("a JPEG").to_rgb8()
    };
    let (clean, before) = (picture("clean"), picture("before"));
    let bbox: Vec<f64> = d["bbox"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    let bbox = [bbox[0], bbox[1], bbox[2], bbox[3]];
    // the bag is in the clean snapshot and not yet in the before snapshot
    let diff = box_difference(&clean, &before, bbox);
    assert!(diff > 25.0, "before and clean look alike at the bag's place (mean difference {diff:.1})");
    let _ = picture("dumper");
    assert!(daemon.signal_and_wait("TERM").success());
}
