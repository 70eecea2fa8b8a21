//! hawkeye's camera source against real GStreamer: an in-process RTSP server on port 0 and
//! local files. Timeouts are failure guards only; assertions are about behaviour.

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::rtsp::{self, RtspServer};
use hawkeye::config::Camera;
use hawkeye::frame_slots::FrameSlots;
use hawkeye::source::{run_camera, CameraHealth, HealthState, SourceCtx};
use tokio_util::sync::CancellationToken;

const GUARD: Duration = Duration::from_secs(40);

/// What the test keeps of each frame.
#[derive(Clone, Copy, Debug)]
struct Seen {
    camera: usize,
    ts: f64,
    width: u32,
    height: u32,
}

/// N cameras, their health, and a stand-in detector thread taking frames from the slots.
struct Rig {
    slots: Arc<FrameSlots>,
    health: Vec<Arc<CameraHealth>>,
    frames: Arc<Mutex<Vec<Seen>>>,
    shutdown: CancellationToken,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    stop: Arc<AtomicBool>,
    taker: Option<std::thread::JoinHandle<()>>,
}

impl Rig {
    fn start(cameras: Vec<Camera>, lossless: bool) -> Rig {
        hawkeye::source::init_gstreamer().unwrap();
        let slots = Arc::new(FrameSlots::new(cameras.len()));
        let frames = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let taker = {
            let (slots, frames, stop) = (slots.clone(), frames.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if let Some(f) = slots.take(Duration::from_millis(50)) {
                        assert_eq!(f.rgb.len(), (f.width * f.height * 3) as usize);
                        frames.lock().unwrap().push(Seen { camera: f.camera, ts: f.ts, width: f.width, height: f.height });
                    }
                }
            })
        };
        let shutdown = CancellationToken::new();
        let mut health = Vec::new();
        let mut tasks = Vec::new();
        for (index, camera) in cameras.into_iter().enumerate() {
            let h = Arc::new(CameraHealth::new(camera.id.clone()));
            health.push(h.clone());
            let ctx = SourceCtx {
                index,
                camera,
                base_dir: Path::new("/").to_path_buf(),
                slots: slots.clone(),
                health: h,
                lossless,
                ring: None,
                klv: None,
            };
            tasks.push(tokio::spawn(run_camera(ctx, shutdown.clone())));
        }
        Rig { slots, health, frames, shutdown, tasks, stop, taker: Some(taker) }
    }

    fn seen(&self, camera: usize) -> Vec<Seen> {
        self.frames.lock().unwrap().iter().filter(|f| f.camera == camera).copied().collect()
    }

    async fn wait(&self, what: &str, mut ok: impl FnMut(&Rig) -> bool) {
        let t0 = Instant::now();
        while !ok(self) {
            if t0.elapsed() > GUARD {
                let states: Vec<_> = self.health.iter().map(|h| h.snapshot()).collect();
                panic!("timed out waiting for {what}; health: {states:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn finish(mut self) {
        self.shutdown.cancel();
        self.slots.close();
        for t in self.tasks.drain(..) {
            tokio::time::timeout(GUARD, t).await.expect("camera task stops on shutdown").unwrap();
        }
        for h in &self.health {
            let s = h.state();
            assert!(matches!(s, HealthState::Stopped | HealthState::Ended | HealthState::Failed), "{s:?}");
        }
        self.stop.store(true, Ordering::Relaxed);
        self.taker.take().unwrap().join().unwrap();
    }
}

fn camera(id: &str, url: &str, pipeline: &str) -> Camera {
    let mut c: Camera = toml::from_str(&format!("id = {id:?}\nurl = {url:?}\npipeline = {pipeline:?}\n")).unwrap();
    c.detect_fps = 5.0;
    c.frame_width = 640;
    c.latency_ms = 100;
    c.stall_timeout_s = 4.0;
    c.backoff_initial_s = 0.2;
    c.backoff_max_s = 1.0;
    c
}

fn assert_monotonic(frames: &[Seen]) {
    for w in frames.windows(2) {
        assert!(w[1].ts > w[0].ts, "ts went from {} to {}", w[0].ts, w[1].ts);
    }
}

/// Frames per second of stream time over the frames seen.
fn stream_rate(frames: &[Seen]) -> f64 {
    let span = frames.last().unwrap().ts - frames.first().unwrap().ts;
    (frames.len() - 1) as f64 / span
}

async fn streams_vtest(pipeline: &str, launch: String) {
    let server = RtspServer::start(&launch, 0);
    let rig = Rig::start(vec![camera("cam-a", &server.url(), pipeline)], false);
    rig.wait("20 frames", |r| r.seen(0).len() >= 20).await;
    let snap = rig.health[0].snapshot();
    assert_eq!(snap.state, HealthState::Streaming);
    assert!(snap.frames >= 20);
    let frames = rig.seen(0);
    assert!(frames.iter().all(|f| (f.width, f.height) == (640, 480)), "{:?}", frames[0]);
    assert_monotonic(&frames);
    // vtest is 10 fps; detect_fps 5 keeps every other frame.
    let rate = stream_rate(&frames[2..]);
    assert!((4.0..=6.0).contains(&rate), "stream rate {rate}");
    rig.finish().await;
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rtsp_h264_delivers_scaled_frames_at_detect_fps() {
    streams_vtest("rtsp_h264", rtsp::h264_launch()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rtsp_h265_delivers_scaled_frames_at_detect_fps() {
    streams_vtest("rtsp_h265", rtsp::h265_launch()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnects_after_the_server_restarts_on_the_same_port() {
    let server = RtspServer::start(&rtsp::synthetic_h264_launch(), 0);
    let port = server.port();
    let url = server.url();
    let rig = Rig::start(vec![camera("cam-r", &url, "rtsp_h264")], false);
    rig.wait("streaming", |r| r.seen(0).len() >= 5).await;
    assert_eq!(rig.health[0].state(), HealthState::Streaming);
    let (w, h) = (rig.seen(0)[0].width, rig.seen(0)[0].height);
    assert_eq!((w, h), (640, 480));

    server.stop();
    rig.wait("the camera to notice", |r| r.health[0].state() != HealthState::Streaming).await;
    let snap = rig.health[0].snapshot();
    assert!(matches!(snap.state, HealthState::Failed | HealthState::Stalled | HealthState::Connecting), "{snap:?}");
    rig.wait("a last_error", |r| r.health[0].last_error().is_some()).await;
    println!("after the server stopped: {:?}", rig.health[0].snapshot());
    let before = rig.seen(0);
    let last_ts = before.last().unwrap().ts;

    let server = RtspServer::start(&rtsp::synthetic_h264_launch(), port);
    assert_eq!(server.port(), port);
    rig.wait("frames after the restart", |r| {
        r.health[0].state() == HealthState::Streaming && r.seen(0).len() >= before.len() + 5
    })
    .await;
    let after = rig.seen(0);
    assert!(after[before.len()..].iter().all(|f| f.ts > last_ts));
    assert_monotonic(&after);
    let snap = rig.health[0].snapshot();
    assert!(snap.reconnects >= 1, "{snap:?}");
    assert!(snap.last_error.is_some());
    rig.finish().await;
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_camera_fails_while_another_keeps_streaming() {
    let server = RtspServer::start(&rtsp::synthetic_h264_launch(), 0);
    let dead_port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let dead = camera("cam-dead", &format!("rtsp://127.0.0.1:{dead_port}/cam"), "rtsp_h264");
    let rig = Rig::start(vec![camera("cam-live", &server.url(), "rtsp_h264"), dead], false);
    rig.wait("the dead camera to fail", |r| {
        r.health[1].state() == HealthState::Failed && r.health[1].last_error().is_some()
    })
    .await;
    rig.wait("the live camera to stream", |r| r.seen(0).len() >= 5).await;
    let n = rig.seen(0).len();
    rig.wait("a second failed attempt", |r| r.health[1].reconnects() >= 2).await;
    rig.wait("the live camera to keep streaming", |r| r.seen(0).len() >= n + 10).await;
    assert_eq!(rig.health[0].state(), HealthState::Streaming);
    assert!(rig.seen(1).is_empty());
    let err = rig.health[1].last_error().unwrap();
    println!("dead camera: {:?}", rig.health[1].snapshot());
    assert!(err.contains("rtspsrc"), "{err}");
    rig.finish().await;
    server.stop();
}

/// A 3 s, 10 fps clip made with gst-launch-1.0.
fn make_clip(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("clip.mp4");
    let status = std::process::Command::new("gst-launch-1.0")
        .args(["-q", "videotestsrc", "num-buffers=30", "pattern=ball", "!"])
        .args(["video/x-raw,width=320,height=240,framerate=10/1", "!", "videoconvert", "!"])
        .args(["video/x-raw,format=I420", "!", "x264enc", "speed-preset=ultrafast", "!", "mp4mux", "!"])
        .arg("filesink")
        .arg(format!("location={}", path.display()))
        .status()
        .expect("gst-launch-1.0 runs");
    assert!(status.success());
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn looping_file_keeps_going_and_a_plain_file_ends() {
    let dir = tempfile::tempdir().unwrap();
    let clip = make_clip(dir.path());
    let mut looping = camera("file-loop", clip.to_str().unwrap(), "file");
    looping.looping = true;
    looping.realtime = false;
    looping.detect_fps = 30.0;
    let rig = Rig::start(vec![looping], true);
    rig.wait("three passes", |r| r.seen(0).len() >= 80).await;
    let frames = rig.seen(0);
    assert_monotonic(&frames);
    assert!(frames.last().unwrap().ts > 7.0, "{:?}", frames.last());
    assert!(frames.iter().all(|f| (f.width, f.height) == (640, 480)));
    assert_eq!(rig.health[0].reconnects(), 0);
    assert_eq!(rig.health[0].state(), HealthState::Streaming);
    rig.finish().await;

    let mut once = camera("file-once", &format!("file://{}", clip.display()), "file");
    once.realtime = false;
    once.detect_fps = 30.0;
    let rig = Rig::start(vec![once], true);
    rig.wait("the end of the file", |r| r.health[0].state() == HealthState::Ended).await;
    // lossless: every one of the 30 frames arrived, in order
    rig.wait("all frames taken", |r| r.seen(0).len() == 30).await;
    assert_monotonic(&rig.seen(0));
    rig.finish().await;
}

/// Lossless, non-realtime file decoding delivers every frame of vtest.avi (795), in order.
/// (Throughput is measured by `hawkeye bench`, not here.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lossless_file_mode_delivers_every_frame_of_vtest() {
    let mut cam = camera("vtest", rtsp::VTEST, "file");
    cam.realtime = false;
    cam.detect_fps = 1000.0;
    let rig = Rig::start(vec![cam], true);
    rig.wait("the end of the file", |r| r.health[0].state() == HealthState::Ended).await;
    rig.wait("all frames taken", |r| r.seen(0).len() == 795).await;
    assert_monotonic(&rig.seen(0));
    rig.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_pipeline_fails_for_good_and_shutdown_stops_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let tpl = dir.path().join("broken.pipeline");
    std::fs::write(&tpl, "# no such element\nnosuchsrc location={url} ! decodebin\n").unwrap();
    let server = RtspServer::start(&rtsp::synthetic_h264_launch(), 0);
    let broken = camera("cam-broken", "rtsp://127.0.0.1:9/cam", tpl.to_str().unwrap());
    let mut rig = Rig::start(vec![camera("cam-ok", &server.url(), "rtsp_h264"), broken], false);
    rig.wait("the broken camera to give up", |r| r.tasks[1].is_finished()).await;
    let snap = rig.health[1].snapshot();
    assert_eq!(snap.state, HealthState::Failed);
    assert!(snap.last_error.as_deref().unwrap().contains("nosuchsrc"), "{snap:?}");
    rig.wait("the other camera to stream", |r| r.health[0].state() == HealthState::Streaming).await;
    rig.tasks.remove(1).await.unwrap();
    rig.health.remove(1);
    let ok = rig.health[0].clone();
    rig.finish().await;
    assert_eq!(ok.state(), HealthState::Stopped);
    server.stop();
}
