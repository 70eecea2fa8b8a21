//! `cmd/zones` on the real daemon (what a zone editor sends): a camera without zones plays
//! vtest.avi; a bad zone set is refused with every error and changes nothing; a good one (a
//! loitering zone over the walkway) is written to the config's zones drop-in and applied by hot
//! reload, so real people on the walkway raise alerts in it; `hawkeye check` reads the drop-in,
//! and after a restart the daemon still has the zone.

mod common;

use std::time::Duration;

use common::daemon::Daemon;
use common::mqtt::{send_command, Subscriber};
use serde_json::json;

fn reply(sub: &Subscriber, request_id: &str) -> serde_json::Value {
    sub.wait_for(&format!("the reply to {request_id}"), Duration::from_secs(20), |m| m.topic == "hawkeye/test-box/cmd_result" && m.json()["request_id"] == request_id).json()
}

fn walkway_alert(sub: &Subscriber, after: usize) -> serde_json::Value {
    sub.wait_for_after(after, "a walkway alert", Duration::from_secs(40), |m| m.topic == "hawkeye/test-box/alerts" && m.json()["zone_id"] == "walkway" && m.json()["state"] == "new").json()
}

#[test]
fn zones_sent_by_command_are_checked_kept_and_applied() {
    let broker = common::broker::mosquitto();
    let dir = tempfile::tempdir().unwrap();
    let config = common::config::write(dir.path(), broker.port, &common::model::urban(), &common::config::vtest_camera("cam-1"));
    let dropin = dir.path().join("hawkeye.zones.toml");
    let sub = Subscriber::new(broker.port, "hawkeye/test-box/#");
    let mut daemon = Daemon::start_logged(&config, &dir.path().join("daemon.log"));
    sub.wait_for("the first heartbeat", Duration::from_secs(20), |m| m.topic == "hawkeye/test-box/heartbeat");

    // two mistakes in one zone and an unknown camera: every error comes back, nothing changes
    let bad = json!({
        "camera_id": "cam-1",
        "request_id": "bad-1",
        "zones": [{ "id": "walkway", "kind": "loitering", "polygon": [[0.0, 0.3], [1.4, 0.24], [0.78, 0.62]], "classes": ["persn"], "dwell_s": 2 }]
    });
    send_command(broker.port, "zones", &bad.to_string());
    let r = reply(&sub, "bad-1");
    assert_eq!(r["ok"], false, "{r}");
    let err = r["error"].as_str().unwrap();
    assert!(err.starts_with("2 error(s)"), "{err}");
    assert!(err.contains("camera[0].zone[0].polygon[1]: [1.4, 0.24] is outside 0..1"), "{err}");
    assert!(err.contains("camera[0].zone[0].classes[0]: \"persn\" is not a class of the model"), "{err}");
    assert!(err.contains("(zones from "), "{err}");
    assert!(!dropin.exists(), "a refused zone set is not written");
    let unknown = json!({ "camera_id": "cam-9", "request_id": "bad-2", "zones": [] });
    send_command(broker.port, "zones", &unknown.to_string());
    let r = reply(&sub, "bad-2");
    assert!(r["error"].as_str().unwrap().contains("\"cam-9\" is not a camera of the config"), "{r}");

    // the walkway zone: applied by reload, alerts on the real people walking there
    let good = json!({
        "camera_id": "cam-1",
        "request_id": "good-1",
        "zones": [{ "id": "walkway", "kind": "loitering", "polygon": [[0.0, 0.30], [0.78, 0.24], [0.78, 0.62], [0.0, 0.52]], "classes": ["person"], "min_score": 0.4, "dwell_s": 2, "grace_s": 1.5, "clear_s": 2, "cooldown_s": 0, "update_s": 30 }]
    });
    let mark = sub.count();
    send_command(broker.port, "zones", &good.to_string());
    let r = reply(&sub, "good-1");
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(r["zones"], 1, "{r}");
    assert!(dropin.is_file());
    let a = walkway_alert(&sub, mark);
    assert_eq!((a["camera_id"].as_str(), a["kind"].as_str()), (Some("cam-1"), Some("loitering")), "{a}");

    // `hawkeye check` reads the drop-in; the config file itself is untouched
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hawkeye")).arg("check").arg(&config).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.contains("zone walkway"), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(!std::fs::read_to_string(&config).unwrap().contains("walkway"));

    // a restart keeps the zone
    assert!(daemon.signal_and_wait("TERM").success());
    let mark = sub.count();
    daemon = Daemon::start_logged(&config, &dir.path().join("daemon2.log"));
    walkway_alert(&sub, mark);
    assert!(daemon.signal_and_wait("TERM").success());
}
