//! Illegal parking end to end on the real daemon: a rendered scenario (a car drives in, parks on
//! the no-parking kerb and later drives off) plays at real time through `hawkeye run` with
//! hawkeye's own model; the `new` alert on a real mosquitto is a `parking` alert naming the
//! car, validates against the schema, and carries a `vehicle` crop besides the scene snapshots.
//! The camera masks plates, the zone says `unmask_plates`: the published crop is the unmasked
//! original the device keeps.

mod common;

use std::time::Duration;

use common::daemon::Daemon;
use common::mqtt::Subscriber;

const SCENARIO: &str = r#"
description = "A car parks 25 s on the no-parking kerb (dwell 8 s)."
seed = 16001
duration_s = 40

[[zone]]
id = "kerb"
kind = "parking"
polygon = [[0.0, 0.62], [1.0, 0.62], [1.0, 0.97], [0.0, 0.97]]
classes = ["car", "bus", "truck"]
min_score = 0.3
dwell_s = 8
grace_s = 3
clear_s = 4
cooldown_s = 0
update_s = 30
unmask_plates = true

[[actor]]
kind = "parked_car"
at = [0.4, 0.74]
arrive = 4
leave = 29
van = false
"#;

#[test]
fn a_parked_car_raises_a_parking_alert_with_a_vehicle_crop_with_its_plate_readable() {
    let model = common::model::urban();
    let broker = common::broker::mosquitto();
    let dir = tempfile::tempdir().unwrap();
    // played at real time like a camera, publishing to the test broker; plates masked
    let config = common::scene::realtime_camera_of(SCENARIO, "parked_car", dir.path(), &model, broker.port);
    let text = std::fs::read_to_string(&config).unwrap().replace("plates = false", "plates = true");
    assert!(text.contains("plates = true") && text.contains("unmask_plates = true"), "{text}");
    std::fs::write(&config, text).unwrap();
    let sub = Subscriber::new(broker.port, "hawkeye/#");
    let daemon = Daemon::start(&config);
    let root_topic = "hawkeye/synth-parked_car";
    // parked at 4 s; dwell 8 s
    let alert = sub
        .wait_for("a parking alert", Duration::from_secs(60), |m| m.topic == format!("{root_topic}/alerts") && m.json()["kind"] == "parking" && m.json()["state"] == "new")
        .json();
    let schema: serde_json::Value = serde_json::from_str(hawkeye::publish::ALERT_SCHEMA).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator.iter_errors(&alert).map(|e| format!("{e} at {}", e.instance_path())).collect();
    assert!(errors.is_empty(), "{errors:?}\n{alert:#}");
    assert_eq!(alert["zone_id"], "kerb");
    assert_eq!(alert["violation"], "illegal parking (机动车违停)");
    let car = &alert["objects"][0];
    assert!(["car", "bus", "truck"].contains(&car["class"].as_str().unwrap()), "{alert:#}");
    // the event began when the car stopped (4 s), not when the dwell was over
    assert!(alert["dwell_s"].as_f64().unwrap() >= 7.0, "{alert:#}");
    let evidence = alert["evidence"].as_array().unwrap();
    let names: Vec<&str> = evidence.iter().map(|e| e["name"].as_str().unwrap()).collect();
    for name in ["clean", "annotated", "vehicle"] {
        assert!(names.contains(&name), "evidence {names:?} lacks {name}");
    }
    let vehicle = evidence.iter().find(|e| e["name"] == "vehicle").unwrap();
    let bbox: Vec<f64> = car["bbox"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    // the crop is the car's box and a tenth of its size around it (clipped to the frame)
    let (bw, bh) = (bbox[2] - bbox[0], bbox[3] - bbox[1]);
    let (cw, ch) = (vehicle["width"].as_f64().unwrap(), vehicle["height"].as_f64().unwrap());
    assert!(cw >= bw && cw <= bw * 1.2 + 2.0 && ch >= bh && ch <= bh * 1.2 + 2.0, "crop {cw}x{ch} for box {bbox:?}");
    let event_id = alert["event_id"].as_str().unwrap();
    let topic = format!("{root_topic}/evidence/{event_id}/vehicle");
    let m = sub.wait_for(&topic, Duration::from_secs(20), |m| m.topic == topic);
    let jpeg = image::load_from_memory_with_format(&m.payload, image::ImageFormat::Jpeg).expect("a JPEG").to_rgb8();
    assert_eq!((jpeg.width() as f64, jpeg.height() as f64), (cw, ch));
    assert_eq!(hawkeye::evidence::seal::sha256_hex(&m.payload), vehicle["sha256"].as_str().unwrap());
    // the plate is left readable: what is published is the original the device keeps, unmasked
    let original = std::path::Path::new(vehicle["path"].as_str().unwrap()).with_file_name("vehicle-original.jpg");
    let kept = std::fs::read(&original).unwrap_or_else(|e| panic!("{}: {e}", original.display()));
    assert_eq!(kept, m.payload, "the published crop differs from the unmasked original");
    assert!(daemon.signal_and_wait("TERM").success());
}
