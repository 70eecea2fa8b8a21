//! The README's demo command, run as a user would (shortened with --duration): it starts its own
//! mosquitto, plays the sample street video, and prints the alerts it receives back over MQTT.

mod common;

use std::process::Command;

#[test]
fn demo_prints_alerts_received_over_mqtt() {
    let Some(model) = common::model::yolox_nano("demo_prints_alerts_received_over_mqtt") else { return };
    let out = Command::new(env!("CARGO_BIN_EXE_hawkeye"))
        .args(["demo", "--duration", "25", "--model", model.to_str().unwrap()])
        .output()
        .expect("run demo");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "demo failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("status online"), "{stdout}");
    let alert = stdout.lines().find(|l| l.starts_with("ALERT new")).unwrap_or_else(|| panic!("no alert printed:\n{stdout}\n{stderr}"));
    assert!(alert.contains("loitering") && alert.contains("zone=walkway") && alert.contains("person#"), "{alert}");
    assert!(stdout.contains("evidence clean") && stdout.contains("evidence annotated"), "{stdout}");
    assert!(stdout.contains("heartbeat camera=plaza-cam-1 state=streaming"), "{stdout}");
}
