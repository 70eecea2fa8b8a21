//! Config files for tests that run the real daemon.

use std::path::{Path, PathBuf};

/// A loitering zone over vtest.avi's walkway (class person).
pub fn walkway_zone(dwell_s: f64, clear_s: f64, update_s: f64) -> String {
    format!(
        r#"
  [[camera.zone]]
  id = "walkway"
  kind = "loitering"
  polygon = [[0.0, 0.30], [0.78, 0.24], [0.78, 0.62], [0.0, 0.52]]
  classes = ["person"]
  min_score = 0.4
  dwell_s = {dwell_s}
  grace_s = 1.5
  clear_s = {clear_s}
  cooldown_s = 0
  update_s = {update_s}
"#
    )
}

/// A camera that plays vtest.avi in a loop in real time.
pub fn vtest_camera(id: &str) -> String {
    format!(
        r#"
[[camera]]
id = "{id}"
url = "{}"
pipeline = "file"
loop = true
realtime = true
detect_fps = 5
"#,
        super::model::vtest().display()
    )
}

/// Writes `dir/hawkeye.toml` for device `test-box` (topics `hawkeye/test-box/…`, heartbeat 1 s,
/// state in `dir/state`, telemetry HTTP off) with the given MQTT port, model and camera/zone
/// sections.
pub fn write(dir: &Path, mqtt_port: u16, model: &Path, cameras: &str) -> PathBuf {
    let cfg = format!(
        r#"
[device]
id = "test-box"
location = {{ lat = 29.85, lon = 121.55, address = "Test street 1" }}
state_dir = "state"

[mqtt]
url = "mqtt://127.0.0.1:{mqtt_port}"
topic_prefix = "hawkeye"
heartbeat_s = 1

[model]
path = "{model}"
score_threshold = 0.35

[telemetry]
listen = ""
{cameras}"#,
        model = model.display()
    );
    let path = dir.join("hawkeye.toml");
    std::fs::write(&path, cfg).unwrap();
    path
}

/// Turns the telemetry endpoint on (port picked by the system) in a config written by [`write`].
pub fn enable_telemetry(path: &Path) {
    let text = std::fs::read_to_string(path).unwrap().replace("listen = \"\"", "listen = \"127.0.0.1:0\"");
    std::fs::write(path, text).unwrap();
}

/// The port the daemon's telemetry endpoint bound (from `state/telemetry.addr`), waiting for it.
pub fn telemetry_port(config: &Path) -> u16 {
    let file = config.parent().unwrap().join("state/telemetry.addr");
    for _ in 0..600 {
        if let Some(port) = std::fs::read_to_string(&file).ok().and_then(|a| a.rsplit(':').next()?.trim().parse().ok()) {
            return port;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("{} never appeared", file.display());
}

/// `GET path` on 127.0.0.1:`port`; returns (status code, body).
pub fn http_get(port: u16, path: &str) -> (u16, String) {
    let (code, _, body) = super::console::http_full(port, "GET", path, &[], None).expect("telemetry port open");
    (code, body)
}
