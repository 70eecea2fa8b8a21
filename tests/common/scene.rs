//! Rendered scenarios played by the real daemon as if they were cameras.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Renders `scenario` with `hawkeye synth` (hawkeye's `model` in the generated config) into
/// `dir/scene`, and turns the generated config into a camera played at real time that publishes
/// to the test broker on `port`. Returns the config's path.
pub fn realtime_camera(scenario: &Path, dir: &Path, model: &Path, port: u16) -> PathBuf {
    let scene = dir.join("scene");
    let out = Command::new(env!("CARGO_BIN_EXE_hawkeye"))
        .arg("synth")
        .arg(scenario)
        .arg("--out")
        .arg(&scene)
        .arg("--model")
        .arg(model)
        .output()
        .unwrap();
    assert!(out.status.success(), "synth {}: {}", scenario.display(), String::from_utf8_lossy(&out.stderr));
    let config = scene.join("config.toml");
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("mqtt://127.0.0.1:1883", &format!("mqtt://127.0.0.1:{port}"))
        .replace("realtime = false", "realtime = true");
    std::fs::write(&config, text).unwrap();
    config
}

/// [`realtime_camera`] of a scenario given as text (written to `dir/<name>.toml`).
pub fn realtime_camera_of(text: &str, name: &str, dir: &Path, model: &Path, port: u16) -> PathBuf {
    let scenario = dir.join(format!("{name}.toml"));
    std::fs::write(&scenario, text).unwrap();
    realtime_camera(&scenario, dir, model, port)
}
