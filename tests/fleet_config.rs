//! Fleet-wide configuration (issue 18): the command centre signs a box's cameras and zones with
//! `hawkeye fleet-sign` and publishes them retained on `hawkeye/test-box/config`; the real
//! daemon (real mosquitto, real model, vtest.avi) applies a good version by hot reload and
//! reports it on `config_status`, refuses a bad one with every error in its place and a forged
//! one, keeps running what it had, and later starts from its last good config with no broker.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::config::{enable_telemetry, http_get, telemetry_port};
use common::daemon::Daemon;
use common::mqtt::Subscriber;

const LONG: Duration = Duration::from_secs(120);
const STATUS: &str = "hawkeye/test-box/config_status";

/// `hawkeye fleet-sign`: the message for `cameras` (TOML), and the key's public half.
fn sign(key_dir: &Path, version: u64, cameras: &str, out: &Path) -> String {
    let toml = out.with_extension("toml");
    std::fs::write(&toml, cameras).unwrap();
    let run = Command::new(env!("CARGO_BIN_EXE_hawkeye"))
        .args(["fleet-sign", "--key-dir", key_dir.to_str().unwrap(), "--device", "test-box", "--version", &version.to_string(), "--out", out.to_str().unwrap(), toml.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let stderr = String::from_utf8_lossy(&run.stderr);
    stderr.split("public key ([fleet] public_key): ").nth(1).expect("the public key is printed").trim().to_string()
}

fn publish_retained(port: u16, file: &Path) {
    let st = Command::new("mosquitto_pub")
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-q", "1", "-r", "-t", "hawkeye/test-box/config", "-f", file.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(st.success());
}

fn fleet_camera(dwell: &str) -> String {
    common::config::vtest_camera("cam-fleet") + &common::config::walkway_zone(1.0, 0.5, 2.0).replace("dwell_s = 1", &format!("dwell_s = {dwell}"))
}

#[test]
fn a_box_applies_signed_fleet_configs_refuses_bad_and_forged_ones_and_starts_from_the_last_good() {
    let Some(model) = common::model::yolox_nano("a_box_applies_signed_fleet_configs_refuses_bad_and_forged_ones_and_starts_from_the_last_good") else { return };
    let mut broker = common::broker::mosquitto();
    let sub = Subscriber::new(broker.port, "hawkeye/test-box/#");
    let centre = tempfile::tempdir().unwrap();
    let msgs = tempfile::tempdir().unwrap();
    let good = msgs.path().join("v1.json");
    let public_key = sign(&centre.path().join("key"), 1, &fleet_camera("1.0"), &good);

    // the installer's config: one local camera without zones, and the centre's public key
    let dir = tempfile::tempdir().unwrap();
    let cfg = common::config::write(dir.path(), broker.port, &model, &common::config::vtest_camera("cam-local"));
    let mut text = std::fs::read_to_string(&cfg).unwrap();
    text.push_str(&format!("\n[fleet]\npublic_key = \"{public_key}\"\n"));
    std::fs::write(&cfg, text).unwrap();
    enable_telemetry(&cfg);
    let daemon = Daemon::start_logged(&cfg, &dir.path().join("run1.log"));
    let st = sub.wait_for("the box's config status at start", LONG, |m| m.topic == STATUS).json();
    assert_eq!(st["state"], "applied");
    assert!(st["version"].is_null(), "{st}");

    // v1: applied by hot reload, reported, and its zone raises alerts on its camera
    let mark = sub.count();
    publish_retained(broker.port, &good);
    let st = sub.wait_for_after(mark, "version 1 applied", LONG, |m| m.topic == STATUS && m.json()["version"] == 1).json();
    assert_eq!(st["state"], "applied", "{st}");
    assert_eq!(st["reload"]["started"], serde_json::json!(["cam-fleet"]), "{st}");
    assert_eq!(st["reload"]["restarted_or_removed"], serde_json::json!(["cam-local"]), "{st}");
    let applied = sub.wait_for_after(mark, "the applied config naming cam-fleet", LONG, |m| m.topic == "hawkeye/test-box/applied_config" && m.json()["cameras"][0]["camera_id"] == "cam-fleet").json();
    assert_eq!(applied["cameras"][0]["zones"][0]["id"], "walkway", "{applied}");
    sub.wait_for_after(mark, "an alert from the fleet's camera and zone", LONG, |m| m.topic == "hawkeye/test-box/alerts" && m.json()["camera_id"] == "cam-fleet");
    let last_good = dir.path().join("state/fleet/config.json");
    assert_eq!(std::fs::read(&last_good).unwrap(), std::fs::read(&good).unwrap(), "the last good config is kept as received");

    // v2 with mistakes: refused with every error in its place; v1 keeps running
    let bad = msgs.path().join("v2.json");
    let bad_cameras = fleet_camera("-3").replace("grace_s = 1.5", "grace_s = 1.5\n  colour = \"red\"") + "\n[[camera]]\nid = \"cam-fleet\"\nurl = \"rtsp://10.0.0.9/s\"\n";
    sign(&centre.path().join("key"), 2, &bad_cameras, &bad);
    let mark = sub.count();
    publish_retained(broker.port, &bad);
    let st = sub.wait_for_after(mark, "version 2 refused", LONG, |m| m.topic == STATUS && m.json()["version"] == 2).json();
    assert_eq!(st["state"], "rejected", "{st}");
    assert_eq!(st["applied_version"], 1, "{st}");
    let errors: Vec<String> = st["errors"].as_array().unwrap().iter().map(|e| e.as_str().unwrap().to_string()).collect();
    for want in ["camera[0].zone[0].dwell_s", "camera[0].zone[0].colour: unknown key", "camera[1].id: duplicate camera id"] {
        assert!(errors.iter().any(|e| e.contains(want)), "no error about {want} in {errors:#?}");
    }
    assert_eq!(std::fs::read(&last_good).unwrap(), std::fs::read(&good).unwrap(), "a refused config is not kept");

    // v3 signed by another key: refused, nothing applied
    let forged = msgs.path().join("v3.json");
    sign(&msgs.path().join("other-key"), 3, &fleet_camera("1.0"), &forged);
    let mark = sub.count();
    publish_retained(broker.port, &forged);
    let st = sub.wait_for_after(mark, "the forged config refused", LONG, |m| m.topic == STATUS && m.json()["state"] == "rejected" && m.json()["version"].is_null()).json();
    assert!(st["errors"][0].as_str().unwrap().starts_with("signature"), "{st}");
    let mark = sub.count();
    sub.wait_for_after(mark, "alerts from cam-fleet still", LONG, |m| m.topic == "hawkeye/test-box/alerts" && m.json()["camera_id"] == "cam-fleet");
    assert!(daemon.signal_and_wait("TERM").success());

    // no broker now: the box starts from its last good config (v1), and check says so
    broker.stop();
    let check = Command::new(env!("CARGO_BIN_EXE_hawkeye")).args(["check", cfg.to_str().unwrap()]).output().unwrap();
    let out = String::from_utf8_lossy(&check.stdout);
    assert!(out.contains("cameras come from the last good fleet config, version 1"), "{out}");
    std::fs::remove_file(dir.path().join("state/telemetry.addr")).unwrap();
    let daemon = Daemon::start_logged(&cfg, &dir.path().join("run2.log"));
    let port = telemetry_port(&cfg);
    let t0 = std::time::Instant::now();
    loop {
        let (_, metrics) = http_get(port, "/metrics");
        if metrics.contains("camera=\"cam-fleet\"") && !metrics.contains("camera=\"cam-local\"") {
            break;
        }
        assert!(t0.elapsed() < LONG, "the box did not start from its last good config:\n{metrics}");
        std::thread::sleep(Duration::from_millis(300));
    }
    let (code, health) = http_get(port, "/healthz");
    assert_eq!(code, 503, "{health}");
    assert!(health.contains("MQTT broker not connected"), "{health}");
    assert!(daemon.signal_and_wait("TERM").success());
}
