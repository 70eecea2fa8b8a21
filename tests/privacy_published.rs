//! Published snapshots of a scene with a face have it masked, while the unmasked original stays
//! on the device (sealed). Real parts: a video made from opencv-doc's messi5.jpg, the real
//! daemon with YOLOX-nano, a real mosquitto, and OpenCV's face cascade to check the result.

mod common;

use std::process::Command;
use std::time::Duration;

use common::daemon::Daemon;
use common::mqtt::Subscriber;
use hawkeye::evidence::Masker;

const MESSI: &str = "/usr/share/doc/opencv-doc/examples/data/messi5.jpg";

fn faces(jpeg: &[u8]) -> usize {
    let img = image::load_from_memory(jpeg).unwrap().to_rgb8();
    let cfg = hawkeye::config::PrivacyCfg { plates: false, ..Default::default() };
    let mut m = Masker::new(&cfg).unwrap();
    m.detect(img.as_raw(), img.width(), img.height()).unwrap().faces.len()
}

#[test]
fn published_snapshots_have_faces_masked_and_the_original_stays_sealed() {
    let Some(model) = common::model::yolox_nano("published_snapshots_have_faces_masked_and_the_original_stays_sealed") else { return };
    let dir = tempfile::tempdir().unwrap();
    let clip = dir.path().join("messi.mp4");
    let st = Command::new("gst-launch-1.0")
        .args(["-q", "filesrc", &format!("location={MESSI}"), "!", "jpegdec", "!", "imagefreeze", "num-buffers=50", "!", "video/x-raw,framerate=10/1", "!", "videoconvert", "!", "video/x-raw,format=I420", "!", "x264enc", "tune=zerolatency", "!", "mp4mux", "!", "filesink", &format!("location={}", clip.display())])
        .status()
        .unwrap();
    assert!(st.success());
    let broker = common::broker::mosquitto();
    let sub = Subscriber::new(broker.port, "hawkeye/test-box/#");
    let camera = format!(
        r#"
[[camera]]
id = "cam-face"
url = "{}"
pipeline = "file"
loop = true
detect_fps = 5
frame_width = 548

  [[camera.zone]]
  id = "everywhere"
  kind = "loitering"
  polygon = [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]
  classes = ["person"]
  dwell_s = 0.5
  clear_s = 60
"#,
        clip.display()
    );
    let cfg = common::config::write(dir.path(), broker.port, &model, &camera);
    let daemon = Daemon::start(&cfg);
    let alert = sub
        .wait_for("an alert", Duration::from_secs(90), |m| m.topic == "hawkeye/test-box/alerts" && m.json()["state"] == "new")
        .json();
    let event = alert["event_id"].as_str().unwrap().to_string();
    for name in ["clean", "annotated"] {
        let topic = format!("hawkeye/test-box/evidence/{event}/{name}");
        let published = sub.wait_for(&topic, Duration::from_secs(30), |m| m.topic == topic).payload;
        assert_eq!(faces(&published), 0, "a face is visible in the published {name} snapshot");
    }
    // the original is on the device, unmasked, and covered by the signed manifest
    let original = dir.path().join(format!("state/evidence/{event}/clean-original.jpg"));
    assert!(faces(&std::fs::read(&original).unwrap()) >= 1, "the original shows the face");
    assert!(!sub.all().iter().any(|m| m.topic.contains("original")), "the original was never published");
    let manifest = std::fs::read_to_string(alert["manifest"]["path"].as_str().unwrap()).unwrap();
    assert!(manifest.contains("clean-original.jpg"));
    assert!(daemon.signal_and_wait("TERM").success());
}
