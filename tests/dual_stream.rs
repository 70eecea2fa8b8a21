//! Dual-stream cameras on real parts: two in-process RTSP servers (gstreamer-rtsp-server, port 0)
//! serve vtest.avi as a camera does, a 1280x960 H.264 main stream and a 640x480 H.264
//! sub-stream (x264enc, keyframe every second); a real mosquitto; the real `hawkeye run` with
//! YOLOX-nano detecting on the sub-stream; a real MQTT subscriber. Asserted: the snapshots and
//! the clip are main-stream resolution, the alert's boxes are in main-stream pixels (YOLOX-nano
//! run again on the published snapshot finds its people there), detection ran on 640-wide
//! frames, and a main stream that dies (its server stopped) leaves detection running and comes
//! back when the server does. (Two servers, one per stream, so that one stream can be killed on
//! the server side while the other keeps streaming.)

mod common;

use std::path::Path;
use std::time::Duration;

use common::daemon::Daemon;
use common::mqtt::{send_command, Msg, Subscriber};
use common::rtsp::{RtspServer, VTEST};
use hawkeye::detect::{BBox, Detector, DetectorOptions};

const LONG: Duration = Duration::from_secs(120);

/// vtest.avi (768x576, 10 fps) scaled to `width`x`height`, H.264 with a keyframe every second.
fn stream(width: u32, height: u32) -> String {
    format!(
        "( filesrc location={VTEST} ! decodebin ! videoscale ! videoconvert \
         ! video/x-raw,format=I420,width={width},height={height},pixel-aspect-ratio=1/1 \
         ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=10 \
         ! rtph264pay name=pay0 pt=96 config-interval=-1 )"
    )
}

fn write_config(dir: &Path, mqtt_port: u16, main_url: &str, sub_url: &str, model: &Path) -> std::path::PathBuf {
    let camera = format!(
        r#"
[[camera]]
id = "cam-dual"
url = "{main_url}"
detect_url = "{sub_url}"
pipeline = "rtsp_h264"
detect_fps = 5
frame_width = 640
latency_ms = 100
stall_timeout_s = 3
backoff_initial_s = 0.5
backoff_max_s = 1
clip_pre_s = 2
clip_post_s = 6
clip_ring_s = 4
privacy = {{ faces = false, plates = false }}
{}"#,
        common::config::walkway_zone(2.0, 2.0, 30.0)
    );
    common::config::write(dir, mqtt_port, model, &camera)
}

fn is_alert(m: &Msg, state: &str) -> bool {
    m.topic == "hawkeye/test-box/alerts" && m.json()["state"] == state
}

/// The camera's part of a heartbeat.
fn camera(m: &Msg) -> Option<serde_json::Value> {
    (m.topic == "hawkeye/test-box/heartbeat").then(|| m.json()["cameras"][0].clone())
}

fn bbox(v: &serde_json::Value) -> BBox {
    let b: Vec<f32> = v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect();
    BBox::new(b[0], b[1], b[2], b[3])
}

#[test]
fn dual_stream_camera_detects_on_the_sub_stream_with_main_stream_evidence() {
    let Some(model) = common::model::yolox_nano("dual_stream_camera_detects_on_the_sub_stream_with_main_stream_evidence") else { return };
    let broker = common::broker::mosquitto();
    let main = RtspServer::start(&stream(1280, 960), 0);
    let sub_server = RtspServer::start(&stream(640, 480), 0);
    let main_port = main.port();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), broker.port, &main.url(), &sub_server.url(), &model);
    common::config::enable_telemetry(&config);
    let sub = Subscriber::new(broker.port, "hawkeye/#");
    let daemon = Daemon::start_logged(&config, &dir.path().join("hawkeye.log"));
    let telemetry = common::config::telemetry_port(&config);

    let alert = sub.wait_for("a `new` alert", LONG, |m| is_alert(m, "new")).json();
    let event_id = alert["event_id"].as_str().unwrap().to_string();
    let objects = alert["objects"].as_array().unwrap().clone();
    assert!(!objects.is_empty(), "{alert:#}");

    // both snapshots are main-stream pictures
    let mut clean = None;
    for name in ["clean", "annotated"] {
        let topic = format!("hawkeye/test-box/evidence/{event_id}/{name}");
        let m = sub.wait_for(&topic, LONG, |m| m.topic == topic);
        let img = image::load_from_memory_with_format(&m.payload, image::ImageFormat::Jpeg).expect("a JPEG").to_rgb8();
        assert_eq!(img.dimensions(), (1280, 960), "{name} is main-stream resolution");
        let ev = alert["evidence"].as_array().unwrap().iter().find(|e| e["name"] == name).unwrap().clone();
        assert_eq!((ev["width"].as_u64(), ev["height"].as_u64()), (Some(1280), Some(960)));
        if name == "clean" {
            clean = Some(img);
        }
    }

    // the alert's boxes are in the snapshot's (main-stream) pixels: the detector run on the
    // published 1280x960 snapshot finds a person around each of them (the centre of each box
    // lies in a person's box, with a margin for the tracker's smoothing and the two streams'
    // few ms apart). Boxes left in sub-stream pixels would sit at half the coordinates.
    let clean = clean.unwrap();
    let opts = DetectorOptions { score_threshold: 0.3, nms_iou: 0.45, threads: 1 };
    let mut det = Detector::load(&model, None, opts).unwrap();
    let people: Vec<BBox> = det.detect(clean.as_raw(), 1280, 960).unwrap().into_iter().filter(|d| d.class == "person").map(|d| d.bbox).collect();
    let on_a_person = |x: f32, y: f32| {
        people.iter().any(|p| {
            let (mx, my) = ((p.x2 - p.x1) * 0.15, (p.y2 - p.y1) * 0.15);
            x >= p.x1 - mx && x <= p.x2 + mx && y >= p.y1 - my && y <= p.y2 + my
        })
    };
    let boxes: Vec<BBox> = objects.iter().map(|o| bbox(&o["bbox"])).collect();
    for b in &boxes {
        let (cx, cy) = ((b.x1 + b.x2) / 2.0, (b.y1 + b.y2) / 2.0);
        assert!(on_a_person(cx, cy), "alert box {b:?} is on no person of the main-stream snapshot; people: {people:?}");
    }
    assert!(
        boxes.iter().any(|b| !on_a_person((b.x1 + b.x2) / 4.0, (b.y1 + b.y2) / 4.0)),
        "the same boxes at sub-stream scale would also be on people: the check cannot tell ({boxes:?}, {people:?})"
    );
    assert!(boxes.iter().any(|b| b.x2 > 640.0 || b.y2 > 480.0), "some box lies beyond the sub-stream's frame: {boxes:?}");

    // detection runs on the 640-wide sub-stream: the camera's latest detected frame
    send_command(broker.port, "snapshot", r#"{"camera_id":"cam-dual","request_id":"s1"}"#);
    let r = sub.wait_for("snapshot reply", LONG, |m| m.topic == "hawkeye/test-box/cmd_result" && m.json()["request_id"] == "s1").json();
    assert_eq!((r["width"].as_u64(), r["height"].as_u64()), (Some(640), Some(480)), "{r}");

    // the clip is cut from the main stream's ring
    let clip_alert = sub
        .wait_for("the clip", LONG, |m| is_alert(m, "update") && m.json()["event_id"] == event_id.as_str() && m.json()["evidence"][0]["name"] == "clip")
        .json();
    let clip_ref = &clip_alert["evidence"][0];
    assert_eq!((clip_ref["width"].as_u64(), clip_ref["height"].as_u64()), (Some(1280), Some(960)), "{clip_alert:#}");
    let clip_path = clip_ref["path"].as_str().unwrap();
    let (size, span) = video_size_and_span(Path::new(clip_path));
    assert_eq!(size, (1280, 960), "the MP4 itself");
    // 2 s before the alert and 6 s after, from a ring that holds 4 s: the post-event part was
    // recorded as it came, not cut from the ring
    assert!(span >= 7.5, "the clip covers {span:.2} s of the 8 s asked for");

    // health: both streams streaming, nothing mismatched (both 4:3, keyframes every second)
    let hb = sub.wait_for("both streams streaming", LONG, |m| {
        camera(m).is_some_and(|c| c["state"] == "streaming" && c["main_stream"]["state"] == "streaming")
            && m.json()["evidence_worker"]["main_snapshots"].as_u64().unwrap_or(0) >= 1
    });
    let c = camera(&hb).unwrap();
    assert!(c["main_stream"]["units"].as_u64().unwrap() > 0 && c.get("mismatch").is_none(), "{c:#}");
    assert_eq!(hb.json()["evidence_worker"]["main_fallbacks"].as_u64(), Some(0), "{:#}", hb.json()["evidence_worker"]);
    let (_, metrics) = common::config::http_get(telemetry, "/metrics");
    assert!(metrics.lines().any(|l| l.starts_with("hawkeye_main_snapshots_total ") && !l.ends_with(" 0")), "{metrics}");

    // the main stream dies: detection goes on, the main stream is reported failing
    main.stop();
    let mark = sub.count();
    let down = sub.wait_for_after(mark, "main stream down", LONG, |m| {
        camera(m).is_some_and(|c| c["main_stream"]["state"] != "streaming" && c["main_stream"]["last_error"].is_string())
    });
    let inferred_then = camera(&down).unwrap()["inferred"].as_u64().unwrap();
    let (code, body) = common::config::http_get(telemetry, "/healthz");
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("camera cam-dual: main stream is"), "/healthz names the failing main stream: {body}");
    let mark = sub.count();
    let later = sub.wait_for_after(mark, "detection still running", LONG, |m| {
        camera(m).is_some_and(|c| c["state"] == "streaming" && c["inferred"].as_u64().unwrap() >= inferred_then + 10 && c["main_stream"]["state"] != "streaming")
    });
    assert_eq!(camera(&later).unwrap()["state"], "streaming");

    // the main stream's server comes back on its port: the ring is fed again
    let main = RtspServer::start(&stream(1280, 960), main_port);
    let mark = sub.count();
    let back = sub.wait_for_after(mark, "main stream back", LONG, |m| camera(m).is_some_and(|c| c["main_stream"]["state"] == "streaming"));
    assert!(camera(&back).unwrap()["main_stream"]["reconnects"].as_u64().unwrap() >= 1);

    let status = daemon.signal_and_wait("TERM");
    assert!(status.success(), "{status:?}");
    main.stop();
}

/// Width and height of the first decoded picture of an MP4.
/// The picture size of an MP4 and the time between its first and last decoded picture.
fn video_size_and_span(path: &Path) -> ((u32, u32), f64) {
    use gstreamer as gst;
    use gstreamer::prelude::*;
    gst::init().unwrap();
    let launch = format!("filesrc location={} ! qtdemux ! h264parse ! avdec_h264 ! appsink name=sink sync=false", path.display());
    let p = gst::parse::launch(&launch).unwrap().downcast::<gst::Pipeline>().unwrap();
    let sink = p.by_name("sink").unwrap().downcast::<gstreamer_app::AppSink>().unwrap();
    p.set_state(gst::State::Playing).unwrap();
    let sample = sink.pull_sample().expect("a decoded picture");
    let pts = |s: &gst::Sample| s.buffer().and_then(|b| b.pts()).map_or(0.0, |t| t.nseconds() as f64 / 1e9);
    let (first, mut last) = (pts(&sample), pts(&sample));
    while let Ok(s) = sink.pull_sample() {
        last = pts(&s);
    }
    p.set_state(gst::State::Null).unwrap();
    let s = sample.caps().unwrap().structure(0).unwrap().to_owned();
    ((s.get::<i32>("width").unwrap() as u32, s.get::<i32>("height").unwrap() as u32), last - first)
}
