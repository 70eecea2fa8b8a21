//! Event clips from the encoded ring, on real parts: an in-process RTSP server serves H.264
//! (and H.265) with a 1 s GOP, hawkeye's source keeps the encoded access units, and a clip is
//! muxed to MP4 without re-encoding. The MP4 is decoded back with GStreamer to check that it
//! starts on a decodable keyframe and lasts as long as requested (within one GOP).

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::rtsp::RtspServer;
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use hawkeye::config::Camera;
use hawkeye::evidence::{record_clip, write_clip, EncodedRing};
use hawkeye::frame_slots::FrameSlots;
use hawkeye::source::{run_camera, CameraHealth, SourceCtx};
use tokio_util::sync::CancellationToken;

/// GOP of the test streams: key-int-max=10 at 10 fps.
const GOP_S: f64 = 1.0;
/// Seconds the test's ring keeps.
const RING_S: f64 = 4.0;

fn launch(codec: &str) -> String {
    format!(
        "( filesrc location={} ! decodebin ! videoconvert ! video/x-raw,format=I420 \
         ! x{codec}enc tune=zerolatency speed-preset=ultrafast key-int-max=10 \
         ! rtph{codec}pay name=pay0 pt=96 config-interval=-1 )",
        common::rtsp::VTEST
    )
}

/// Decodes an MP4 back; returns (decoded frames, last frame PTS in seconds).
fn decode_mp4(path: &Path, codec: &str) -> (usize, f64) {
    let p = gst::parse::launch(&format!(
        "filesrc location={} ! qtdemux ! h{codec}parse ! avdec_h{codec} ! appsink name=out sync=false",
        path.display()
    ))
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let sink = p.by_name("out").unwrap().downcast::<gst_app::AppSink>().unwrap();
    p.set_state(gst::State::Playing).unwrap();
    let (mut n, mut last) = (0, 0.0);
    while let Ok(s) = sink.pull_sample() {
        n += 1;
        last = s.buffer().and_then(|b| b.pts()).map_or(last, |t| t.nseconds() as f64 / 1e9);
    }
    p.set_state(gst::State::Null).unwrap();
    (n, last)
}

async fn clip_case(codec: &str) {
    hawkeye::source::init_gstreamer().unwrap();
    let server = RtspServer::start(&launch(codec), 0);
    let cam: Camera = toml::from_str(&format!("id = \"c\"\nurl = \"{}\"\npipeline = \"rtsp_h{codec}\"\n", server.url())).unwrap();
    // a ring of 4 s, shorter than the event clip below: its post-event part is recorded live
    let ring = Arc::new(EncodedRing::new(RING_S, 64 << 20));
    let slots = Arc::new(FrameSlots::new(1));
    let stop = CancellationToken::new();
    let ctx = SourceCtx {
        index: 0,
        camera: cam,
        base_dir: "/".into(),
        slots: slots.clone(),
        health: Arc::new(CameraHealth::new("c")),
        lossless: false,
        ring: Some(ring.clone()),
        klv: None,
    };
    let task = tokio::spawn(run_camera(ctx, stop.clone()));
    // frames must be taken for the stream clock to advance; a stand-in detector drains them
    let drain = {
        let slots = slots.clone();
        std::thread::spawn(move || while slots.take(Duration::from_millis(100)).is_some() || !slots.is_closed() {})
    };
    let t0 = std::time::Instant::now();
    while ring.latest_ts().unwrap_or(0.0) < 6.0 {
        assert!(t0.elapsed() < Duration::from_secs(60), "the ring never reached 6 s of stream");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let dir = tempfile::tempdir().unwrap();

    // a past window in the ring: [now-2.5, now-1]
    let now = ring.latest_ts().unwrap();
    let (start, end) = (now - 2.5, now - 1.0);
    let out = dir.path().join("past.mp4");
    let info = write_clip(&ring, start, end, &out).unwrap();
    assert!(info.covers_start);
    assert!(info.first_ts <= start && info.first_ts > start - GOP_S - 1e-6, "first {} for start {start}", info.first_ts);
    assert!((info.last_ts - end).abs() <= 0.15, "last {} for end {end}", info.last_ts);
    let (frames, last_pts) = decode_mp4(&out, codec);
    assert!(frames >= info.frames - 1 && frames > 0, "{frames} decoded of {} muxed", info.frames);
    let duration = end - start;
    assert!((last_pts - duration).abs() <= GOP_S, "clip lasts {last_pts:.2} s for a {duration:.2} s request");

    // the post-event part is still in the future: record_clip records it as it comes, so the
    // clip (8 s) may be longer than the ring (4 s)
    let now = ring.latest_ts().unwrap();
    let out = dir.path().join("event.mp4");
    let info = record_clip(ring.clone(), now - 2.0, now + 6.0, out.clone(), Duration::from_secs(30)).await.unwrap();
    assert!(info.covers_start && info.first_ts <= now - 2.0, "the pre-roll came from the ring: {info:?}");
    assert!(info.last_ts >= now + 5.9, "waited for the post-event seconds: {info:?}");
    assert!(ring.oldest_ts().unwrap() > info.first_ts + 2.0, "the ring no longer holds the clip's start");
    let (frames, last_pts) = decode_mp4(&out, codec);
    assert!(frames > 70, "{frames} frames in an 8 s clip at 10 fps");
    assert!((last_pts - 8.0).abs() <= GOP_S, "{last_pts}");
    assert!(!dir.path().join("event.mp4.part").exists(), "the part file became the clip");

    // a recording given up (the camera task stopped): no clip, no part file left behind
    let now = ring.latest_ts().unwrap();
    let out = dir.path().join("abandoned.mp4");
    let rec = tokio::spawn(record_clip(ring.clone(), now - 1.0, now + 60.0, out.clone(), Duration::from_secs(90)));
    let part = dir.path().join("abandoned.mp4.part");
    let t0 = std::time::Instant::now();
    while !part.exists() {
        assert!(t0.elapsed() < Duration::from_secs(10), "the recording never started its part file");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(800)).await;
    rec.abort();
    assert!(rec.await.unwrap_err().is_cancelled());
    assert!(!part.exists() && !out.exists(), "an abandoned recording leaves nothing");

    stop.cancel();
    task.await.unwrap();
    slots.close();
    drain.join().unwrap();
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h264_clip_from_the_encoded_ring() {
    clip_case("264").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h265_clip_from_the_encoded_ring() {
    clip_case("265").await;
}
