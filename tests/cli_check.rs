//! `hawkeye check` on real files: every mistake reported at once with its TOML path; a valid
//! config gives a summary and exit 0. Also `hawkeye schema` and `hawkeye detect` errors.

mod common;

use std::process::Command;

fn hawkeye(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_hawkeye")).args(args).output().expect("run hawkeye")
}

/// Writes `text` to `dir/name`, runs `hawkeye check` on it, expects exit status 2 (a bad
/// config) and returns what it printed on stderr.
fn check_fails(dir: &std::path::Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    let out = hawkeye(&["check", path.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "stderr: {err}");
    err
}

#[test]
fn check_reports_every_mistake_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let model = common::model::yolox_nano("check_reports_every_mistake_with_its_path (class check)");
    let model_line = match &model {
        Some(p) => format!("path = \"{}\"", p.display()),
        None => "path = \"missing.onnx\"".to_string(),
    };
    let cfg = format!(
        r#"
[device]
id = "box 1"
colour = "blue"

[mqtt]
url = "not a url"

[model]
{model_line}
score_threshold = 1.5

[[camera]]
id = "cam-a"
url = "rtsp://10.0.0.5/stream"
pipeline = "no_such_template"
detect_fps = 0

  [[camera.zone]]
  id = "z1"
  kind = "out_of_store"
  polygon = [[0.1, 0.1], [0.9, 0.1]]
  classes = ["person", "stall_goods"]
  dwell_s = 10
  speed = 3

  [[camera.zone]]
  id = "z2"
  kind = "dumping"
  polygon = [[0.1, 0.1], [1.4, 0.1], [0.5, 0.9]]
  classes = ["person"]
  dwell_s = -1

[[camera]]
id = "cam-a"
url = "rtsp://10.0.0.6/stream"
"#
    );
    let err = check_fails(dir.path(), "bad.toml", &cfg);
    let mut expected = vec![
        "device.colour: unknown key",
        "camera[0].zone[0].speed: unknown key",
        "device.id:",
        "mqtt.url:",
        "model.score_threshold:",
        "camera[0].pipeline: ",
        "camera[0].detect_fps:",
        "camera[0].zone[0].polygon: needs at least 3 points",
        "camera[0].zone[1].polygon[1]: [1.4, 0.1] is outside 0..1",
        "camera[0].zone[1].dwell_s:",
        "camera[1].id: duplicate camera id",
    ];
    if model.is_some() {
        expected.push("camera[0].zone[0].classes[1]: \"stall_goods\" is not a class of the model");
    } else {
        expected.push("model.path: model file");
    }
    for e in &expected {
        assert!(err.contains(e), "missing {e:?} in:\n{err}");
    }
    assert!(err.contains(&format!("{} error(s)", err.lines().filter(|l| l.trim_start().starts_with("- ")).count())));
}

#[test]
fn check_reports_a_syntax_error_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let err = check_fails(dir.path(), "broken.toml", "[device]\nid = \"x\"\n[mqtt\nurl = 1\n");
    assert!(err.contains("line 3"), "{err}");
}

#[test]
fn the_demo_config_is_valid_and_summarised() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/config/demo.toml");
    let out = hawkeye(&["check", path]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}\n{}", text, String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("config OK"));
    assert!(text.contains("plaza-cam-1") && text.contains("zone walkway"));
    assert!(text.contains("hawkeye_urban.onnx") && text.contains("82 classes"), "{text}");
}

#[test]
fn schema_command_prints_the_alert_schema() {
    let out = hawkeye(&["schema"]);
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["properties"]["schema_version"]["const"], "1.1");
}

#[test]
fn detect_with_a_missing_model_explains_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("grey.jpg");
    image::RgbImage::from_pixel(32, 24, image::Rgb([128, 128, 128])).save(&img).unwrap();
    let out = hawkeye(&["detect", "--model", "/nonexistent/model.onnx", img.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent/model.onnx"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
}

#[test]
fn check_reports_every_speaker_mistake_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = r#"
[device]
id = "box"
[mqtt]
url = "mqtt://127.0.0.1:1883"
[model]
path = "missing.onnx"

[[camera]]
id = "cam-a"
url = "rtsp://10.0.0.5/stream"
  [[camera.zone]]
  id = "z1"
  kind = "out_of_store"
  polygon = [[0.1, 0.1], [0.9, 0.1], [0.5, 0.9]]
  classes = ["person"]
  dwell_s = 10
  speak = { speaker = "pole-9", message = "nope", on = ["started"], again_after_s = 0 }
  [[camera.zone]]
  id = "z2"
  kind = "dumping"
  polygon = [[0.1, 0.1], [0.9, 0.1], [0.5, 0.9]]
  classes = ["person"]
  dwell_s = 10
  speak = { speaker = "dahua-1", message = "siren" }

[[speaker]]
id = "pole-17"
kind = "hikvision_isapi"
url = "rtsp://10.0.0.5/"
password = "x"
quiet_hours = ["nightly 22:00-07:00"]

[[speaker]]
id = "pole-17"
kind = "loudhailer"

[[speaker]]
id = "dahua-1"
kind = "dahua"
url = "http://10.0.0.7"
timeout_s = 0

[[speaker]]
id = "amp"
kind = "command"

[[message]]
id = "siren"
clip = "3"
volume = 120
[[message]]
id = "both"
text = "请离开"
file = "nowhere.wav"
lang = "fr"
repeat = 0
"#;
    // the unknown kind (a type error) comes with every other mistake; the rest of its own
    // table is checked once the kind is one hawkeye knows
    let err = check_fails(dir.path(), "speakers.toml", cfg);
    assert!(err.contains("speaker[1].kind: unknown variant `loudhailer`"), "{err}");
    assert!(!err.contains("speaker[1].id") && !err.contains("speaker[1].url"), "{err}");
    let mut expected = vec![
        "speaker[0].url: hikvision_isapi needs a http/https:// URL, not rtsp://",
        "speaker[0].password: needs username",
        "speaker[0].quiet_hours: unknown day",
        "speaker[2].timeout_s:",
        "speaker[3].command: a command speaker needs the program to run",
        "message[0].volume: 120 must be in 0..=100",
        "message[1]: give text or file, not both",
        "message[1].lang: \"fr\" is not supported",
        "message[1].file:",
        "message[1].repeat: 0 must be in 1..=10",
        "camera[0].zone[0].speak.speaker: no [[speaker]] with id \"pole-9\"",
        "camera[0].zone[0].speak.message: no [[message]] with id \"nope\"",
        "camera[0].zone[0].speak.on[0]: \"started\" is not an alert state",
        "camera[0].zone[0].speak.again_after_s: 0 must be > 0",
        "camera[0].zone[1].speak: message \"siren\" has only a stored clip, which a dahua speaker cannot play",
    ];
    for e in &expected {
        assert!(err.contains(e), "missing {e:?} in:\n{err}");
    }
    let err = check_fails(dir.path(), "speakers.toml", &cfg.replace("kind = \"loudhailer\"", "kind = \"webhook\"\nurl = \"ftp://x\""));
    expected.extend(["speaker[1].id: duplicate speaker id \"pole-17\"", "speaker[1].url: webhook needs a http/https:// URL, not ftp://"]);
    for e in &expected {
        assert!(err.contains(e), "missing {e:?} in:\n{err}");
    }
}

#[test]
fn the_intersection_example_with_a_pole_speaker_is_valid() {
    // the example uses the repository's own models (detector and water), no shared file
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/config/intersection.toml");
    let out = hawkeye(&["check", path]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}\n{}", text, String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("speak no-vending on new/recurred → pole-17, again every 120s"), "{text}");
    assert!(text.contains("speakers 1  messages 2"), "{text}");
    assert!(text.contains("zone road-seg-31    flooding     classes [water]"), "{text}");
    assert!(text.contains("zone bus-stop-kerb  parking      classes [car/bus/truck/motorcycle/vehicle of the model's]"), "{text}");
    assert!(text.contains("parking: still within 0.25 of the box, vehicle crop plates readable (unmask_plates)"), "{text}");
    assert!(text.contains("zone bus-stop-square crowd"), "{text}");
    assert!(text.contains("zone storefront-across out_of_store") && text.contains("zoom: also looked at through a crop around the zone, 2 times a second (zoom_fps)"), "{text}");
}

#[test]
fn check_refuses_a_crowd_of_one_with_its_place() {
    let dir = tempfile::tempdir().unwrap();
    let example = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config/intersection.toml")).unwrap();
    let models = concat!(env!("CARGO_MANIFEST_DIR"), "/models/");
    let cfg = example.replace("../models/", models).replace("  min_count = 8\n", "  min_count = 1\n");
    let err = check_fails(dir.path(), "crowd.toml", &cfg);
    assert!(err.contains("camera[1].zone[2].min_count: 1 is no crowd; a crowd zone needs min_count >= 2"), "{err}");
}

#[test]
fn check_reports_drone_mistakes_with_their_paths() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = r#"
[device]
id = "box"
[mqtt]
url = "mqtt://127.0.0.1:1883"
[model]
path = "missing.onnx"

[[camera]]
id = "drone-1"
url = "srt://:9000?mode=listener"
pipeline = "srt"
  [camera.drone]
  telemetry = "klv"
  osd_sn = "SN1"
  confirm_frames = 0
  watch = [{ class = "garbage", kind = "dumping", min_score = 2.0 }]
  geo_zone = [{ id = "river side", polygon = [[29.8, 121.5], [95.0, 121.6]] }]
  [[camera.zone]]
  id = "z"
  kind = "dumping"
  polygon = [[0.1, 0.1], [0.9, 0.1], [0.5, 0.9]]
  classes = ["garbage"]
  dwell_s = 5

[[camera]]
id = "drone-2"
url = "rtmp://media/live/d2"
pipeline = "rtmp"
  [camera.drone]
  telemetry = "osd"
  watch = []
"#;
    let err = check_fails(dir.path(), "drones.toml", cfg);
    for e in [
        "camera[0].zone: a drone camera moves, so image zones do not apply",
        "camera[0].drone.osd_sn: only for telemetry = \"osd\"",
        "camera[0].drone.telemetry: KLV needs a template that extracts it (pipeline = \"ts_klv\")",
        "camera[0].drone.confirm_frames: must be at least 1",
        "camera[0].drone.watch[0].min_score: 2 is outside 0..1",
        "camera[0].drone.geo_zone[0].id:",
        "camera[0].drone.geo_zone[0].polygon: needs at least 3 [lat, lon] points",
        "camera[0].drone.geo_zone[0].polygon[1]: [95, 121.6] is not [lat, lon]",
        "camera[1].drone.osd_sn: telemetry = \"osd\" needs the aircraft's serial number",
        "camera[1].drone.watch: name at least one class to watch",
    ] {
        assert!(err.contains(e), "missing {e:?} in:\n{err}");
    }
}

#[test]
fn the_drone_example_is_valid() {
    let out = hawkeye(&["check", concat!(env!("CARGO_MANIFEST_DIR"), "/config/drone.toml")]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}\n{}", text, String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("drone telemetry klv, watch [garbage→dumping, goods→out_of_store]"), "{text}");
    assert!(text.contains("drone telemetry osd"), "{text}");
}

#[test]
fn check_reports_every_type_error_with_its_path_in_one_run() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = r#"
[device]
id = "box"
[mqtt]
url = "mqtt://127.0.0.1:1883"
keep_alive_s = "long"
[model]
path = "missing.onnx"

[[camera]]
id = "cam-a"
url = "rtsp://10.0.0.5/stream"
detect_fps = 0
  [[camera.zone]]
  id = "z0"
  kind = "out_of_store"
  polygon = [[0.1, 0.1], [0.9, 0.1], [0.5, 0.9]]
  classes = ["person"]
  dwell_s = "ten"
  [[camera.zone]]
  id = "z1"
  kind = "occupancy"
  polygon = [[0.1, 0.1], [0.9, 0.1], [0.5, 0.9]]
  classes = "bicycle"
  dwell_s = 10
  min_count = -1
  [[camera.zone]]
  id = "z2"
  kind = "speeding"
  polygon = [[0.1, 0.1], [0.9, 0.1]]
  classes = ["car"]
  dwell_s = 10

[[camera]]
id = "cam-b"
url = "rtsp://10.0.0.6/stream"
loop = "yes"
"#;
    let err = check_fails(dir.path(), "types.toml", cfg);
    for e in [
        "mqtt.keep_alive_s: invalid type: string \"long\"",
        "camera[0].zone[0].dwell_s: invalid type: string \"ten\", expected f64",
        "camera[0].zone[1].classes: invalid type: string \"bicycle\", expected a sequence",
        "camera[0].zone[1].min_count: invalid value: integer `-1`, expected u32",
        "camera[0].zone[2].kind: unknown variant `speeding`",
        "camera[1].loop: invalid type: string \"yes\", expected a boolean",
        // the checks of everything else run in the same pass
        "camera[0].detect_fps: 0 must be in (0, 120]",
        "model.path: model file",
    ] {
        assert!(err.contains(e), "missing {e:?} in:\n{err}");
    }
    // a stand-in for a mistyped value raises no error of its own
    assert_eq!(err.matches("camera[0].zone[1].min_count").count(), 1, "{err}");
    assert!(!err.contains("camera[0].zone[1].classes: must name"), "{err}");
    assert!(err.contains("8 error(s)"), "{err}");
}

#[test]
fn check_reports_a_model_that_onnx_runtime_cannot_run() {
    let dir = tempfile::tempdir().unwrap();
    // a valid manifest (no sha256, so it fits any file) beside a model file ORT cannot read:
    // every static check passes, only running the model shows the problem
    let manifest = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/models/yolox_nano.toml")).unwrap();
    let manifest: String = manifest.lines().filter(|l| !l.starts_with("sha256")).map(|l| format!("{l}\n")).collect();
    std::fs::write(dir.path().join("broken.toml"), manifest).unwrap();
    std::fs::write(dir.path().join("broken.onnx"), b"this is not an ONNX graph").unwrap();
    let cfg = r#"
[device]
id = "box"
[mqtt]
url = "mqtt://127.0.0.1:1883"
[model]
path = "broken.onnx"
[[camera]]
id = "cam-a"
url = "rtsp://10.0.0.5/stream"
"#;
    let err = check_fails(dir.path(), "model.toml", cfg);
    assert!(err.contains("1 error(s)"), "{err}");
    assert!(err.contains("model.path: ONNX Runtime cannot load") && err.contains("broken.onnx"), "{err}");
    // reported with the other mistakes
    let err = check_fails(dir.path(), "model2.toml", &cfg.replace("id = \"cam-a\"", "id = \"cam a\""));
    assert!(err.contains("2 error(s)") && err.contains("camera[0].id:") && err.contains("model.path: ONNX Runtime cannot load"), "{err}");
}
