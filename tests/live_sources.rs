//! Live sources beyond RTSP, against real peers on loopback: a drone's stream pushed over RTMP
//! to a real nginx (Debian's RTMP module) and pulled by hawkeye; H.264 in MPEG-TS over SRT with
//! hawkeye as the caller and as the listener. The real daemon with YOLOX-nano must raise the
//! walkway alert from each.

mod common;

use std::time::{Duration, Instant};

use common::daemon::Daemon;
use common::mqtt::Subscriber;
use common::streams::{free_port, rtmp_sender, srt_sender, Nginx, RetryingCaller};

const LONG: Duration = Duration::from_secs(120);

fn camera(id: &str, pipeline: &str, url: &str) -> String {
    format!(
        "\n[[camera]]\nid = \"{id}\"\nurl = \"{url}\"\npipeline = \"{pipeline}\"\ndetect_fps = 5\nlatency_ms = 120\nstall_timeout_s = 5\nbackoff_initial_s = 0.5\nbackoff_max_s = 2\nclip_pre_s = 1\nclip_post_s = 1\nclip_ring_s = 5\n{}",
        common::config::walkway_zone(2.0, 2.0, 30.0)
    )
}

/// Runs the daemon on `camera`, calling `tick` while it waits, until a `new` alert of that
/// camera arrives; checks the alert and that the camera reported streaming.
fn alert_from(name: &str, cam_id: &str, camera_toml: &str, mut tick: impl FnMut()) {
    let Some(model) = common::model::yolox_nano(name) else { return };
    let broker = common::broker::mosquitto();
    let dir = tempfile::tempdir().unwrap();
    let config = common::config::write(dir.path(), broker.port, &model, camera_toml);
    let sub = Subscriber::new(broker.port, "hawkeye/#");
    let daemon = Daemon::start(&config);
    let t0 = Instant::now();
    let alert = loop {
        tick();
        if let Some(m) = sub.all().into_iter().find(|m| m.topic == "hawkeye/test-box/alerts" && m.json()["state"] == "new") {
            break m.json();
        }
        assert!(t0.elapsed() < LONG, "no alert from {cam_id} within {LONG:?}; received {:?}", sub.all().iter().map(|m| m.topic.clone()).collect::<Vec<_>>());
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!((alert["camera_id"].as_str(), alert["zone_id"].as_str()), (Some(cam_id), Some("walkway")), "{alert}");
    assert!(alert["objects"].as_array().is_some_and(|o| !o.is_empty()));
    let hb = sub.wait_for("heartbeat", LONG, |m| m.topic == "hawkeye/test-box/heartbeat" && m.json()["cameras"][0]["frames"].as_u64() > Some(0)).json();
    assert_eq!(hb["cameras"][0]["camera_id"], cam_id);
    assert!(daemon.signal_and_wait("TERM").success());
}

#[test]
fn rtmp_stream_pushed_to_nginx_is_pulled_and_raises_an_alert() {
    let nginx = Nginx::start_rtmp();
    let url = format!("rtmp://127.0.0.1:{}/live/drone-7", nginx.port);
    let mut sender = rtmp_sender(&url);
    // the daemon reconnects with backoff until the drone's stream exists on the server
    alert_from("rtmp_stream_pushed_to_nginx", "drone-7", &camera("drone-7", "rtmp", &url), || {
        assert!(!sender.has_exited(), "the RTMP sender stopped");
    });
}

#[test]
fn srt_hawkeye_calls_the_sender_and_raises_an_alert() {
    let port = free_port();
    let mut sender = srt_sender(&format!("srt://:{port}?mode=listener"));
    let url = format!("srt://127.0.0.1:{port}?mode=caller");
    alert_from("srt_hawkeye_calls_the_sender", "dock-caller", &camera("dock-caller", "srt", &url), || {
        assert!(!sender.has_exited(), "the SRT sender stopped");
    });
}

#[test]
fn srt_hawkeye_listens_for_the_sender_and_raises_an_alert() {
    let port = free_port();
    let mut caller = RetryingCaller::new(&format!("srt://127.0.0.1:{port}?mode=caller"));
    let url = format!("srt://:{port}?mode=listener");
    alert_from("srt_hawkeye_listens_for_the_sender", "dock-listener", &camera("dock-listener", "srt", &url), || caller.poke());
}
