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
/// state in `dir/state`) with the given MQTT port, model and camera/zone sections.
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
{cameras}"#,
        model = model.display()
    );
    let path = dir.join("hawkeye.toml");
    std::fs::write(&path, cfg).unwrap();
    path
}
