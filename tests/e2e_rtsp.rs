//! End to end on real parts: an in-process RTSP server (gstreamer-rtsp-server, port 0) serving
//! vtest.avi re-encoded to H.264, a real mosquitto, the real `hawkeye run` binary with YOLOX-nano,
//! and a real MQTT subscriber asserting on what arrives. Also: SIGTERM → clean exit 0, and the
//! reconnect path (RTSP server stopped and restarted).

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::daemon::Daemon;
use common::mqtt::{Msg, Subscriber};
use common::rtsp::{h264_launch, RtspServer};
use common::speaker_http::{Auth, SpeakerServer};
use sha2::{Digest, Sha256};

const LONG: Duration = Duration::from_secs(120);

fn write_config(dir: &Path, mqtt_port: u16, rtsp_url: &str, model: &Path) -> std::path::PathBuf {
    write_config_with(dir, mqtt_port, rtsp_url, model, "")
}

/// `extra` is appended to the walkway zone (its `speak`) and after it (`[[speaker]]`, …).
fn write_config_with(dir: &Path, mqtt_port: u16, rtsp_url: &str, model: &Path, extra: &str) -> std::path::PathBuf {
    let camera = format!(
        r#"
[[camera]]
id = "cam-rtsp"
url = "{rtsp_url}"
pipeline = "rtsp_h264"
detect_fps = 5
frame_width = 640
latency_ms = 100
stall_timeout_s = 4
backoff_initial_s = 0.5
backoff_max_s = 2
clip_pre_s = 2
clip_post_s = 2
clip_ring_s = 10
{}{extra}"#,
        common::config::walkway_zone(2.0, 2.0, 30.0)
    );
    common::config::write(dir, mqtt_port, model, &camera)
}

fn spawn_hawkeye(config: &Path) -> Daemon {
    Daemon::start(config)
}

fn sigterm_and_wait(d: Daemon) -> std::process::ExitStatus {
    d.signal_and_wait("TERM")
}

fn is_alert(m: &Msg, state: &str) -> bool {
    m.topic == "hawkeye/test-box/alerts" && m.json()["state"] == state
}

fn camera_state(m: &Msg) -> Option<String> {
    if m.topic != "hawkeye/test-box/heartbeat" {
        return None;
    }
    m.json()["cameras"][0]["state"].as_str().map(str::to_string)
}

/// The walkway zone warns on a Hikvision pole speaker (a test server enforcing Digest auth).
fn speaker_config(url: &str) -> String {
    format!(
        r#"  speak = {{ speaker = "pole-1", message = "leave", on = ["new"] }}

[[speaker]]
id = "pole-1"
kind = "hikvision_isapi"
url = "{url}"
username = "admin"
password = "Hik12345"
min_interval_s = 600

[[message]]
id = "leave"
text = "请勿在此停留"
lang = "zh"
"#
    )
}

fn mosquitto_pub(port: u16, topic: &str, payload: &str) {
    let st = std::process::Command::new("mosquitto_pub")
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-q", "1", "-t", topic, "-m", payload])
        .status()
        .unwrap();
    assert!(st.success());
}

#[test]
fn rtsp_camera_to_alert_with_snapshots_over_mqtt_then_clean_sigterm() {
    let Some(model) = common::model::yolox_nano("rtsp_camera_to_alert_with_snapshots_over_mqtt") else { return };
    let broker = common::broker::mosquitto();
    let rtsp = RtspServer::start(&h264_launch(), 0);
    let speaker = SpeakerServer::start_threaded(Auth::digest("admin", "Hik12345"), &[]);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config_with(dir.path(), broker.port, &rtsp.url(), &model, &speaker_config(&speaker.url()));
    common::config::enable_telemetry(&config);
    let sub = Subscriber::new(broker.port, "hawkeye/#");
    let child = spawn_hawkeye(&config);

    sub.wait_for("status online", LONG, |m| m.topic == "hawkeye/test-box/status" && m.payload == b"online");
    let alert_msg = sub.wait_for("a `new` alert", LONG, |m| is_alert(m, "new"));
    let alert = alert_msg.json();

    // the alert is valid against the schema in the repository
    let schema: serde_json::Value = serde_json::from_str(hawkeye::publish::ALERT_SCHEMA).unwrap();
    let validator = jsonschema::validator_for(&schema).expect("schema compiles");
    let errors: Vec<String> = validator.iter_errors(&alert).map(|e| format!("{} at {}", e, e.instance_path())).collect();
    assert!(errors.is_empty(), "alert does not match its schema: {errors:?}\n{alert:#}");
    assert_eq!(alert["kind"], "loitering");
    assert_eq!(alert["camera_id"], "cam-rtsp");
    assert_eq!(alert["zone_id"], "walkway");
    assert_eq!(alert["location"]["address"], "Test street 1");
    assert!(alert["dwell_s"].as_f64().unwrap() >= 2.0);
    let objects = alert["objects"].as_array().unwrap();
    assert!(!objects.is_empty() && objects.iter().all(|o| o["class"] == "person"));

    // both snapshots arrive on their topics, decode to the frame size, and match the alert's hashes
    let event_id = alert["event_id"].as_str().unwrap().to_string();
    for name in ["clean", "annotated"] {
        let topic = format!("hawkeye/test-box/evidence/{event_id}/{name}");
        let m = sub.wait_for(&topic, LONG, |m| m.topic == topic);
        let img = image::load_from_memory_with_format(&m.payload, image::ImageFormat::Jpeg).expect("a JPEG");
        assert_eq!((img.width(), img.height()), (640, 480), "vtest 768x576 scaled to width 640");
        let ev = alert["evidence"].as_array().unwrap().iter().find(|e| e["name"] == name).unwrap().clone();
        assert_eq!(ev["sha256"].as_str().unwrap(), hex::encode(Sha256::digest(&m.payload)));
        assert_eq!(ev["topic"].as_str().unwrap(), topic);
        let on_disk = std::fs::read(ev["path"].as_str().unwrap()).expect("evidence kept on disk");
        assert_eq!(on_disk, m.payload);
    }

    // the heartbeat reports the camera streaming
    sub.wait_for("heartbeat with camera streaming", LONG, |m| camera_state(m).as_deref() == Some("streaming"));

    // Prometheus metrics and health over HTTP
    let metrics_port = common::config::telemetry_port(&config);
    let (code, health) = common::config::http_get(metrics_port, "/healthz");
    assert_eq!(code, 200, "{health}");
    assert!(health.contains("\"ok\""), "{health}");
    let (code, metrics) = common::config::http_get(metrics_port, "/metrics");
    assert_eq!(code, 200);
    let value = |line_start: &str| -> f64 {
        let line = metrics.lines().find(|l| l.starts_with(line_start)).unwrap_or_else(|| panic!("{line_start} missing:\n{metrics}"));
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };
    assert!(value("hawkeye_frames_decoded_total{camera=\"cam-rtsp\"}") > 0.0);
    assert!(value("hawkeye_frames_inferred_total{camera=\"cam-rtsp\"}") > 0.0);
    assert!(value("hawkeye_inference_seconds_count") > 0.0);
    assert_eq!(value("hawkeye_inference_seconds_bucket{le=\"+Inf\"}"), value("hawkeye_inference_seconds_count"));
    assert!(value("hawkeye_alerts_raised_total") >= 1.0);
    assert!(value("hawkeye_messages_acked_total") >= 3.0, "alert + two snapshots acknowledged");
    assert_eq!(value("hawkeye_mqtt_connected"), 1.0);
    assert_eq!(value("hawkeye_camera_streaming{camera=\"cam-rtsp\"}"), 1.0);
    assert!(metrics.contains("# TYPE hawkeye_inference_seconds histogram"));

    // the evidence is sealed: the manifest arrives, its hash and signature match the alert and
    // the retained public key
    let man = alert["manifest"].clone();
    let man_msg = sub.wait_for("the manifest", LONG, |m| m.topic == man["topic"].as_str().unwrap());
    assert_eq!(hex::encode(Sha256::digest(&man_msg.payload)), man["sha256"].as_str().unwrap());
    let pubkey = sub.wait_for("the retained public key", LONG, |m| m.topic == "hawkeye/test-box/pubkey");
    let pubkey = String::from_utf8(pubkey.payload).unwrap();
    hawkeye::evidence::keys::verify_signature(&pubkey, &man_msg.payload, alert["signature"].as_str().unwrap())
        .expect("the alert's signature verifies against the published key");

    // the event clip (2 s before, 2 s after) follows in an `update` alert, sealed as well
    let clip_alert = sub
        .wait_for("the clip", LONG, |m| {
            is_alert(m, "update") && m.json()["event_id"] == event_id.as_str() && m.json()["evidence"][0]["name"] == "clip"
        })
        .json();
    assert!(validator.iter_errors(&clip_alert).next().is_none(), "{clip_alert:#}");
    let clip_ref = &clip_alert["evidence"][0];
    assert_eq!(clip_ref["content_type"], "video/mp4");
    // privacy is on (the default): a clip cannot be masked without re-encoding, so it stays on
    // the device, sealed, and the alert gives its path and hash but no topic
    assert_eq!(clip_ref["topic"], "");
    let clip = std::fs::read(clip_ref["path"].as_str().unwrap()).unwrap();
    assert_eq!(&clip[4..8], b"ftyp", "an MP4 file");
    assert_eq!(hex::encode(Sha256::digest(&clip)), clip_ref["sha256"].as_str().unwrap());
    assert!(!sub.all().iter().any(|m| m.topic.ends_with("/clip")), "the clip was not published");
    assert!(clip_alert["manifest"]["seq"].as_u64() > alert["manifest"]["seq"].as_u64());

    // the alert warned on the pole's loudspeaker: the result names the event, the speaker got
    // the speech as G.711 μ-law over ISAPI two-way audio
    let spoken = sub.wait_for("the speaker result", LONG, |m| m.topic == "hawkeye/test-box/speaker_result").json();
    assert_eq!((spoken["outcome"].as_str(), spoken["trigger"].as_str()), (Some("played"), Some("alert")), "{spoken}");
    assert_eq!((spoken["event_id"].as_str(), spoken["zone_id"].as_str(), spoken["state"].as_str()), (Some(event_id.as_str()), Some("walkway"), Some("new")));
    let audio = speaker.accepted().into_iter().find(|r| r.path() == "/ISAPI/System/TwoWayAudio/channels/1/audioData").expect("audio sent");
    assert_eq!(audio.body.len() as u64, spoken["audio_bytes"].as_u64().unwrap());
    let expected = common::speaker_http::espeak_seconds("请勿在此停留", "cmn") * 8000.0;
    assert!((audio.body.len() as f64 - expected).abs() < expected * 0.03, "{} bytes, expected {expected:.0}", audio.body.len());
    // an operator's warning inside the speaker's 600 s minimum interval is skipped and says so;
    // a message outside the allow-list is refused
    mosquitto_pub(broker.port, "hawkeye/test-box/cmd/speak", r#"{"speaker":"pole-1","message":"leave","operator":"li","request_id":"sp-1"}"#);
    let reply = sub.wait_for("cmd/speak reply", LONG, |m| m.topic == "hawkeye/test-box/cmd_result" && m.json()["request_id"] == "sp-1").json();
    assert_eq!(reply["ok"], true, "{reply}");
    let skipped = sub.wait_for("operator speaker result", LONG, |m| m.topic == "hawkeye/test-box/speaker_result" && m.json()["request_id"] == "sp-1").json();
    assert_eq!((skipped["outcome"].as_str(), skipped["operator"].as_str()), (Some("rate_limited"), Some("li")), "{skipped}");
    mosquitto_pub(broker.port, "hawkeye/test-box/cmd/speak", r#"{"speaker":"pole-1","message":"anything I like","request_id":"sp-2"}"#);
    let refused = sub.wait_for("refused cmd/speak", LONG, |m| m.topic == "hawkeye/test-box/cmd_result" && m.json()["request_id"] == "sp-2").json();
    assert_eq!(refused["ok"], false);
    assert!(refused["error"].as_str().unwrap().contains("unknown message"), "{refused}");
    let (_, metrics) = common::config::http_get(metrics_port, "/metrics");
    assert!(metrics.contains("hawkeye_speaker_attempts_total{speaker=\"pole-1\",outcome=\"played\"} 1"), "{metrics}");

    let status = sigterm_and_wait(child);
    assert!(status.success(), "exit status after SIGTERM: {status:?}");
    sub.wait_for("status offline", Duration::from_secs(10), |m| m.topic == "hawkeye/test-box/status" && m.payload == b"offline");
    rtsp.stop();

    // `hawkeye verify` accepts the daemon's evidence directory, and names a tampered snapshot
    let evidence = dir.path().join("state/evidence");
    let verify = |d: &Path| std::process::Command::new(env!("CARGO_BIN_EXE_hawkeye")).args(["verify", d.to_str().unwrap()]).output().unwrap();
    let out = verify(&evidence);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    let clean = Path::new(alert["evidence"][0]["path"].as_str().unwrap()).to_path_buf();
    let mut bytes = std::fs::read(&clean).unwrap();
    bytes[100] ^= 0x10;
    std::fs::write(&clean, bytes).unwrap();
    let out = verify(&evidence);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains(clean.to_str().unwrap()));
}

#[test]
fn rtsp_server_restart_is_survived_and_alerts_resume() {
    let Some(model) = common::model::yolox_nano("rtsp_server_restart_is_survived_and_alerts_resume") else { return };
    let broker = common::broker::mosquitto();
    let launch = h264_launch();
    let rtsp = RtspServer::start(&launch, 0);
    let port = rtsp.port();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), broker.port, &rtsp.url(), &model);
    let sub = Subscriber::new(broker.port, "hawkeye/#");
    let child = spawn_hawkeye(&config);

    let first = sub.wait_for("first alert", LONG, |m| is_alert(m, "new"));
    sub.wait_for("streaming", LONG, |m| camera_state(m).as_deref() == Some("streaming"));

    rtsp.stop();
    let n_before = sub.all().len();
    // only heartbeats after the stop count (the first ones, before streaming, say `connecting`)
    let down = sub.wait_for_after(n_before, "heartbeat showing the camera down", LONG, |m| {
        matches!(camera_state(m).as_deref(), Some("failed" | "stalled" | "connecting"))
    });
    assert!(down.json()["cameras"][0]["last_error"].is_string(), "a down camera reports its last error: {}", down.json());

    // stay down for longer than the zone's clear_s (2 s), so the event cannot simply continue
    std::thread::sleep(Duration::from_secs(3));
    let rtsp = RtspServer::start(&launch, port);
    // after the restart: streaming again, and a new alert with a different event id
    let t_restart = sub.all().len().max(n_before);
    let msgs_after = |pred: &dyn Fn(&Msg) -> bool| sub.all().into_iter().skip(t_restart).any(|m| pred(&m));
    let t0 = Instant::now();
    while !msgs_after(&|m| camera_state(m).as_deref() == Some("streaming")) {
        assert!(t0.elapsed() < LONG, "camera never streamed again after the server restart");
        std::thread::sleep(Duration::from_millis(200));
    }
    let first_id = first.json()["event_id"].clone();
    while !msgs_after(&|m| is_alert(m, "new") && m.json()["event_id"] != first_id) {
        assert!(t0.elapsed() < LONG, "no new alert after the server restart");
        std::thread::sleep(Duration::from_millis(200));
    }
    // the outage closed the first event
    let first_id2 = first_id.clone();
    sub.wait_for("end of the first event", LONG, |m| is_alert(m, "end") && m.json()["event_id"] == first_id2);
    let hb = sub.all().into_iter().rev().find_map(|m| (m.topic == "hawkeye/test-box/heartbeat").then(|| m.json())).unwrap();
    assert!(hb["cameras"][0]["reconnects"].as_u64().unwrap() >= 1, "reconnect counted: {hb}");

    assert!(sigterm_and_wait(child).success());
    rtsp.stop();
}
