//! Commands from the command centre over a real mosquitto to the real daemon: snapshot, ack,
//! recheck (回头看), reload (bad config refused and the old one keeps running; good config
//! applied with unchanged cameras left streaming), and malformed commands answered with errors.

mod common;

use std::path::Path;
use std::time::Duration;

use common::daemon::Daemon;
use common::mqtt::{send_command as send, Msg, Subscriber};
use sha2::{Digest, Sha256};

const LONG: Duration = Duration::from_secs(90);
const RESULT: &str = "hawkeye/test-box/cmd_result";

fn reply(sub: &Subscriber, request_id: &str) -> serde_json::Value {
    sub.wait_for(&format!("reply to {request_id}"), LONG, |m| m.topic == RESULT && m.json()["request_id"] == request_id).json()
}

fn validate(alert: &serde_json::Value) {
    let schema: serde_json::Value = serde_json::from_str(hawkeye::publish::ALERT_SCHEMA).unwrap();
    let v = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = v.iter_errors(alert).map(|e| format!("{e} at {}", e.instance_path())).collect();
    assert!(errors.is_empty(), "{errors:?}\n{alert:#}");
}

fn heartbeat_cameras(m: &Msg) -> Option<Vec<serde_json::Value>> {
    (m.topic == "hawkeye/test-box/heartbeat").then(|| m.json()["cameras"].as_array().unwrap().clone())
}

fn camera_config(dir: &Path, port: u16, model: &Path, extra_camera: bool) -> std::path::PathBuf {
    let mut cameras = common::config::vtest_camera("cam-file") + &common::config::walkway_zone(1.0, 1.0, 2.0) + "  recheck_after_s = 2\n";
    if extra_camera {
        cameras += &common::config::vtest_camera("cam-two");
    }
    common::config::write(dir, port, model, &cameras)
}

#[test]
fn snapshot_ack_recheck_reload_and_malformed_commands() {
    let Some(model) = common::model::yolox_nano("snapshot_ack_recheck_reload_and_malformed_commands") else { return };
    let broker = common::broker::mosquitto();
    let sub = Subscriber::new(broker.port, "hawkeye/test-box/#");
    let dir = tempfile::tempdir().unwrap();
    let cfg = camera_config(dir.path(), broker.port, &model, false);
    common::config::enable_telemetry(&cfg);
    let daemon = Daemon::start(&cfg);
    let first = sub.wait_for("a new alert", LONG, |m| m.topic == "hawkeye/test-box/alerts" && m.json()["state"] == "new").json();
    let event_id = first["event_id"].as_str().unwrap().to_string();

    // snapshot: a fresh JPEG of the camera, described in the reply
    send(broker.port, "snapshot", r#"{"camera_id":"cam-file","request_id":"s1"}"#);
    let r = reply(&sub, "s1");
    assert_eq!(r["ok"], true, "{r}");
    let jpeg = sub.wait_for("the snapshot", LONG, |m| m.topic == "hawkeye/test-box/snapshot/cam-file");
    assert_eq!(r["sha256"].as_str().unwrap(), hex::encode(Sha256::digest(&jpeg.payload)));
    let img = image::load_from_memory(&jpeg.payload).unwrap();
    assert_eq!((img.width(), img.height()), (640, 480));
    send(broker.port, "snapshot", r#"{"camera_id":"no-such-cam","request_id":"s2"}"#);
    assert!(reply(&sub, "s2")["error"].as_str().unwrap().contains("unknown camera"));

    // malformed commands get an error reply and are counted; nothing crashes
    send(broker.port, "ack", r#"{"event_id": 12, "request_id":"bad1"}"#);
    assert!(reply(&sub, "bad1")["error"].as_str().unwrap().contains("bad payload"));
    send(broker.port, "launch", r#"{"request_id":"bad2"}"#);
    assert!(reply(&sub, "bad2")["error"].as_str().unwrap().contains("unknown command"));
    send(broker.port, "ack", "\u{1}\u{2} not json");
    sub.wait_for("reply to the garbage ack", LONG, |m| m.topic == RESULT && m.json()["request_id"].is_null() && m.json()["ok"] == false);
    let metrics_port = common::config::telemetry_port(&cfg);
    let (_, metrics) = common::config::http_get(metrics_port, "/metrics");
    assert!(metrics.contains("hawkeye_commands_total{result=\"error\"} 4"), "{metrics}");

    // ack: confirmed, and later alerts of the event carry it
    send(broker.port, "ack", &format!(r#"{{"event_id":"{event_id}","operator":"officer-7","note":"on the way","request_id":"a1"}}"#));
    let r = reply(&sub, "a1");
    assert_eq!(r["ok"], true, "{r}");
    let acked = sub
        .wait_for("a later alert carrying the ack", LONG, |m| {
            m.topic == "hawkeye/test-box/alerts" && m.json()["event_id"] == event_id.as_str() && m.json()["ack"]["operator"] == "officer-7"
        })
        .json();
    validate(&acked);
    send(broker.port, "ack", r#"{"event_id":"no-such-event","request_id":"a2"}"#);
    assert!(reply(&sub, "a2")["error"].as_str().unwrap().contains("unknown event"));

    // the zone's recheck_after_s = 2: an automatic re-check follows the ack
    let auto = sub
        .wait_for("the automatic re-check", LONG, |m| {
            m.topic == "hawkeye/test-box/alerts" && m.json()["event_id"] == event_id.as_str() && matches!(m.json()["state"].as_str(), Some("resolved" | "recurred"))
        })
        .json();
    validate(&auto);

    // recheck on demand: resolved or recurred, with fresh evidence
    let mark = sub.count();
    send(broker.port, "recheck", &format!(r#"{{"event_id":"{event_id}","request_id":"r1"}}"#));
    let r = reply(&sub, "r1");
    assert_eq!(r["ok"], true, "{r}");
    let state = r["state"].as_str().unwrap().to_string();
    assert!(state == "resolved" || state == "recurred", "{r}");
    let re = sub
        .wait_for_after(mark, "the re-check alert", LONG, |m| m.topic == "hawkeye/test-box/alerts" && m.json()["state"] == state.as_str())
        .json();
    validate(&re);
    assert_eq!(re["event_id"], event_id.as_str());
    let names: Vec<&str> = re["evidence"].as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap()).collect();
    assert!(names.iter().all(|n| n.starts_with("recheck-")) && names.len() == 2, "{names:?}");
    assert_eq!(re["objects"].as_array().unwrap().is_empty(), state == "resolved");

    // reload with a broken config: refused with its errors, the old config keeps running
    let good = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(&cfg, good.replace("polygon = [[0.0, 0.30], [0.78, 0.24], [0.78, 0.62], [0.0, 0.52]]", "polygon = [[0.0, 0.30], [0.78, 0.24]]")).unwrap();
    send(broker.port, "reload", r#"{"request_id":"l1"}"#);
    let r = reply(&sub, "l1");
    assert_eq!(r["ok"], false);
    assert!(r["error"].as_str().unwrap().contains("camera[0].zone[0].polygon"), "{r}");
    sub.wait_for_after(sub.count(), "a heartbeat after the refused reload", LONG, |m| {
        heartbeat_cameras(m).is_some_and(|c| c.len() == 1 && c[0]["state"] == "streaming")
    });

    // reload with a second camera: the first keeps streaming (not restarted), the second starts
    let before = sub.all().into_iter().rev().find_map(|m| heartbeat_cameras(&m)).unwrap()[0].clone();
    let two = camera_config(dir.path(), broker.port, &model, true);
    assert_eq!(two, cfg);
    common::config::enable_telemetry(&cfg);
    send(broker.port, "reload", r#"{"request_id":"l2"}"#);
    let r = reply(&sub, "l2");
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(r["kept"], serde_json::json!(["cam-file"]));
    assert_eq!(r["started"], serde_json::json!(["cam-two"]));
    let after = sub.wait_for_after(sub.count(), "both cameras streaming", LONG, |m| {
        heartbeat_cameras(m).is_some_and(|c| c.len() == 2 && c.iter().all(|x| x["state"] == "streaming"))
    });
    let cam0 = heartbeat_cameras(&after).unwrap()[0].clone();
    assert_eq!(cam0["camera_id"], "cam-file");
    assert_eq!(cam0["since"], before["since"], "the unchanged camera was not restarted");
    assert!(cam0["frames"].as_u64() > before["frames"].as_u64());

    assert!(daemon.signal_and_wait("TERM").success());
}
