//! The README's demo command, run as a user would (shortened with --duration): it starts its own
//! mosquitto, renders the embedded street scenario, runs hawkeye's own model on it, and prints
//! the alerts it receives back over MQTT. With `--video` it plays a file with the walkway config.

mod common;

use std::process::Command;

#[test]
fn demo_shows_all_three_event_kinds_from_the_own_model() {
    let state = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_hawkeye"))
        .args(["demo", "--duration", "50", "--state", state.path().to_str().unwrap(), "--console", "127.0.0.1:0"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run demo");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "demo failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("hawkeye_urban.onnx"), "{stdout}");
    assert!(stdout.contains("status online"), "{stdout}");
    for (kind, zone) in [("out_of_store", "zone=storefront-a"), ("dumping", "zone=curb-corner"), ("flooding", "zone=road-seg-1")] {
        let line = stdout
            .lines()
            .find(|l| l.starts_with("ALERT new") && l.contains(kind))
            .unwrap_or_else(|| panic!("no {kind} alert printed:\n{stdout}\n{stderr}"));
        assert!(line.contains(zone), "{line}");
    }
    assert!(stdout.contains("evidence clean") && stdout.contains("evidence annotated") && stdout.contains("evidence before"), "{stdout}");
    assert!(stdout.contains("heartbeat camera=synth state=streaming"), "{stdout}");
    // the command centre's console on the demo broker, with a first admin's password
    assert!(stdout.contains("hawkeye console: http://127.0.0.1:"), "{stdout}");
    assert!(stdout.contains("hawkeye console: first admin \"admin\", password "), "{stdout}");
    assert!(state.path().join("console.db").is_file());
    // its config is a file, so reload and the console's zone editor work on the demo
    assert!(state.path().join("scene/demo.toml").is_file());
    assert!(!stderr.contains("zone editing are off"), "{stderr}");
}

#[test]
fn demo_plays_a_video_with_the_walkway_config() {
    // real footage with hawkeye's own street detector (the demo config's model)
    let model = common::model::urban();
    let state = tempfile::tempdir().unwrap();
    let video = common::model::vtest();
    let out = Command::new(env!("CARGO_BIN_EXE_hawkeye"))
        .args(["demo", "--duration", "25", "--model", model.to_str().unwrap(), "--video", video.to_str().unwrap(), "--state", state.path().to_str().unwrap(), "--no-console"])
        .output()
        .expect("run demo");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "demo failed:\n{stdout}\n{stderr}");
    let alert = stdout.lines().find(|l| l.starts_with("ALERT new")).unwrap_or_else(|| panic!("no alert printed:\n{stdout}\n{stderr}"));
    assert!(alert.contains("loitering") && alert.contains("zone=walkway") && alert.contains("person#"), "{alert}");
    assert!(stdout.contains("heartbeat camera=plaza-cam-1 state=streaming"), "{stdout}");
}
