//! Overflowing bins end to end on the real daemon: a rendered scenario (rubbish piles up beside
//! two street bins at the curb and is cleared) plays at real time through `hawkeye run` with
//! hawkeye's own model; the `bin_overflow` alert on a real mosquitto validates against the
//! schema, names its violation, lists the rubbish (garbage, standing in the zone, not the bins)
//! with snapshots, and ends once the rubbish is cleared.

mod common;

use std::time::Duration;

use common::daemon::Daemon;
use common::mqtt::Subscriber;

#[test]
fn rubbish_around_the_bins_raises_and_ends_a_bin_overflow_alert() {
    let model = common::model::urban();
    let broker = common::broker::mosquitto();
    let dir = tempfile::tempdir().unwrap();
    let scenario = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scenarios/14_bin_overflow.toml");
    let config = common::scene::realtime_camera(&scenario, dir.path(), &model, broker.port);
    let sub = Subscriber::new(broker.port, "hawkeye/#");
    let daemon = Daemon::start(&config);
    let alerts = "hawkeye/synth-14_bin_overflow/alerts";
    // the first piece appears at 5 s, dwell 10 s: due at 15 s of the video
    let alert = sub.wait_for("a bin_overflow alert", Duration::from_secs(60), |m| m.topic == alerts && m.json()["state"] == "new").json();
    let schema: serde_json::Value = serde_json::from_str(hawkeye::publish::ALERT_SCHEMA).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator.iter_errors(&alert).map(|e| format!("{e} at {}", e.instance_path())).collect();
    assert!(errors.is_empty(), "{errors:?}\n{alert:#}");
    assert_eq!((alert["kind"].as_str(), alert["zone_id"].as_str()), (Some("bin_overflow"), Some("bins-curb")), "{alert:#}");
    assert_eq!(alert["violation"], "overflowing rubbish bin (垃圾满溢)");
    let objects = alert["objects"].as_array().unwrap();
    assert!(!objects.is_empty() && objects.iter().all(|o| o["class"] == "garbage"), "{alert:#}");
    // the rubbish lies beside the bins (x 0.56–0.92 of 640 px): the boxes are there
    for o in objects {
        let x = (o["bbox"][0].as_f64().unwrap() + o["bbox"][2].as_f64().unwrap()) / 2.0;
        assert!((0.5 * 640.0..0.95 * 640.0).contains(&x), "{o}");
    }
    let event_id = alert["event_id"].as_str().unwrap().to_string();
    let names: Vec<&str> = alert["evidence"].as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap()).collect();
    assert!(names.contains(&"clean") && names.contains(&"annotated"), "{names:?}");
    let topic = format!("hawkeye/synth-14_bin_overflow/evidence/{event_id}/annotated");
    let m = sub.wait_for(&topic, Duration::from_secs(20), |m| m.topic == topic);
    image::load_from_memory_with_format(&m.payload, image::ImageFormat::Jpeg).expect("a JPEG");
    // cleared at 34 s, clear_s 4: the event ends
    let end = sub.wait_for("its end", Duration::from_secs(40), |m| m.topic == alerts && m.json()["event_id"] == event_id.as_str() && m.json()["state"] == "end").json();
    assert_eq!(end["kind"], "bin_overflow");
    assert!(daemon.signal_and_wait("TERM").success());
}
