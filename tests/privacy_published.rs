//! Published snapshots of a scene with a face have it masked (its detail gone, no face found
//! apart from the masked one), while the unmasked original stays
//! on the device (sealed). Real parts: a video made from opencv-doc's messi5.jpg, the real
//! daemon with YOLOX-nano, a real mosquitto, and OpenCV's face cascade to check the result.

mod common;

use std::process::Command;
use std::time::Duration;

use common::daemon::Daemon;
use common::mqtt::Subscriber;
use hawkeye::evidence::Masker;

const MESSI: &str = "/usr/share/doc/opencv-doc/examples/data/messi5.jpg";

/// Mean absolute difference of neighbouring grey values inside `b` of a JPEG: how much detail
/// there is to read.
fn detail(jpeg: &[u8], b: &hawkeye::detect::BBox) -> f64 {
    let img = image::load_from_memory(jpeg).unwrap().to_luma8();
    let (mut sum, mut n) = (0.0, 0.0);
    for y in b.y1 as u32..b.y2 as u32 - 1 {
        for x in b.x1 as u32..b.x2 as u32 - 1 {
            let g = |x: u32, y: u32| img.get_pixel(x, y).0[0] as f64;
            sum += (g(x, y) - g(x + 1, y)).abs() + (g(x, y) - g(x, y + 1)).abs();
            n += 2.0;
        }
    }
    sum / n
}

fn faces(jpeg: &[u8]) -> Vec<hawkeye::detect::BBox> {
    let img = image::load_from_memory(jpeg).unwrap().to_rgb8();
    let cfg = hawkeye::config::PrivacyCfg { plates: false, ..Default::default() };
    let mut m = Masker::new(&cfg).unwrap();
    m.detect(img.as_raw(), img.width(), img.height()).unwrap().faces
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
    // the original is on the device, unmasked, and shows the face
    let original = std::fs::read(dir.path().join(format!("state/evidence/{event}/clean-original.jpg"))).unwrap();
    let in_original = faces(&original);
    let face = *in_original.iter().find(|b| b.x1 < 246.0 && 246.0 < b.x2 && b.y1 < 113.0 && 113.0 < b.y2).unwrap_or_else(|| panic!("the original shows Messi's face: {in_original:?}"));
    for name in ["clean", "annotated"] {
        let topic = format!("hawkeye/test-box/evidence/{event}/{name}");
        let published = sub.wait_for(&topic, Duration::from_secs(30), |m| m.topic == topic).payload;
        // the face is unreadable: its detail is gone (the published copy is a JPEG as well)
        let (before, after) = (detail(&original, &face), detail(&published, &face));
        assert!(after < before / 2.0, "{name}: detail in the face only fell from {before:.1} to {after:.1}");
        // the cascade finds no face apart from the masked one (on the pixelated blob a coarse
        // window may still fire: it overlaps the mask, and there is nothing to read there)
        let found = faces(&published);
        assert!(found.iter().all(|b| b.x1 < face.x2 && face.x1 < b.x2 && b.y1 < face.y2 && face.y1 < b.y2), "a face is visible in the published {name} snapshot at {found:?} (masked: {face:?}); the alert's objects: {}", alert["objects"]);
    }
    assert!(!sub.all().iter().any(|m| m.topic.contains("original")), "the original was never published");
    let manifest = std::fs::read_to_string(alert["manifest"]["path"].as_str().unwrap()).unwrap();
    assert!(manifest.contains("clean-original.jpg"));
    assert!(daemon.signal_and_wait("TERM").success());
}
