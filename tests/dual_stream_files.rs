//! Dual-stream cameras from two files (real GStreamer, x264enc): `hawkeye check` probes the
//! files and explains what does not fit (aspect ratios, keyframe interval longer than the clip
//! ring) while a matching pair gets no warning; the real daemon runs the pair (sub-stream
//! decoded, main stream parsed into the ring) and reports the same mismatch in its heartbeat.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::daemon::Daemon;
use common::mqtt::Subscriber;

const LONG: Duration = Duration::from_secs(120);

/// A 4 s, 10 fps H.264 MP4 of a moving test pattern, `width`x`height`, a keyframe every
/// `key_int` frames.
fn clip(dir: &Path, name: &str, width: u32, height: u32, key_int: u32) -> PathBuf {
    let out = dir.join(name);
    let st = Command::new("gst-launch-1.0")
        .args(["-q", "videotestsrc", "num-buffers=40", "pattern=ball", "!"])
        .arg(format!("video/x-raw,width={width},height={height},framerate=10/1"))
        .args(["!", "x264enc", "speed-preset=ultrafast", "tune=zerolatency", &format!("key-int-max={key_int}"), "!", "mp4mux", "!", "filesink"])
        .arg(format!("location={}", out.display()))
        .status()
        .unwrap();
    assert!(st.success(), "gst-launch-1.0 made {name}");
    out
}

fn config(dir: &Path, port: u16, model: &Path, main: &Path, sub: &Path, ring_s: f64) -> PathBuf {
    let camera = format!(
        r#"
[[camera]]
id = "cam-files"
url = "{}"
detect_url = "{}"
pipeline = "file"
loop = true
realtime = true
detect_fps = 2
frame_width = 320
clip_pre_s = 1
clip_post_s = 1
clip_ring_s = {ring_s}
"#,
        main.display(),
        sub.display()
    );
    common::config::write(dir, port, model, &camera)
}

fn check(config: &Path) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_hawkeye")).arg("check").arg(config).output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn check_and_the_daemon_explain_a_dual_stream_mismatch() {
    let Some(model) = common::model::yolox_nano("check_and_the_daemon_explain_a_dual_stream_mismatch") else { return };
    let dir = tempfile::tempdir().unwrap();
    let main = clip(dir.path(), "main.mp4", 1280, 720, 10);
    let sub_ok = clip(dir.path(), "sub_ok.mp4", 640, 360, 10);
    let sub_4x3 = clip(dir.path(), "sub_4x3.mp4", 640, 480, 10);
    let main_sparse = clip(dir.path(), "main_sparse.mp4", 1280, 720, 100);

    // a matching pair: valid, no warning
    let cfg = config(dir.path(), 1883, &model, &main, &sub_ok, 10.0);
    let (ok, stderr) = check(&cfg);
    assert!(ok && !stderr.contains("warning: camera"), "{stderr}");

    // a 4:3 sub-stream behind a 16:9 main stream whose only keyframe is at the start: valid,
    // with both problems explained
    let cfg = config(dir.path(), 1883, &model, &main_sparse, &sub_4x3, 2.0);
    let (ok, stderr) = check(&cfg);
    assert!(ok, "a mismatch does not make the config invalid: {stderr}");
    assert!(stderr.contains("camera[0] (cam-files)") && stderr.contains("aspect ratio (1.333) differs from the main stream's (1.778)"), "{stderr}");
    assert!(stderr.contains("keyframe interval") && stderr.contains("exceeds clip_ring_s (2.0 s)"), "{stderr}");

    // the daemon runs the pair and says the same in its heartbeat once it has seen both streams
    let broker = common::broker::mosquitto();
    let cfg = config(dir.path(), broker.port, &model, &main_sparse, &sub_4x3, 2.0);
    let sub = Subscriber::new(broker.port, "hawkeye/test-box/heartbeat");
    let daemon = Daemon::start_logged(&cfg, &dir.path().join("hawkeye.log"));
    let hb = sub.wait_for("both mismatches in the heartbeat", LONG, |m| {
        let c = &m.json()["cameras"][0];
        c["state"] == "streaming" && c["main_stream"]["state"] == "streaming" && c["mismatch"].as_array().is_some_and(|a| a.len() == 2)
    });
    let c = &hb.json()["cameras"][0];
    let text = c["mismatch"].to_string();
    assert!(text.contains("aspect ratio") && text.contains("keyframe interval"), "{c:#}");
    assert!(c["main_stream"]["units"].as_u64().unwrap() > 0 && c["frames"].as_u64().unwrap() > 0, "{c:#}");
    let status = daemon.signal_and_wait("TERM");
    assert!(status.success(), "{status:?}");
}

#[test]
fn a_looping_pair_keeps_its_clip_ring_to_its_length() {
    // A pair of 4-s files looped at their own rate: each stream's pipeline starts again on its
    // own end of file. The main stream (parsed only) usually ends first; its new run was once
    // stamped with the sub-stream's old offset, a whole clip length back, and the ring, which
    // drops units by age from its newest, kept every unit up to its byte cap (64 MB): on the
    // capacity bench's quiet clip ~0.4 MB a second per camera for most of each loop.
    let Some(model) = common::model::yolox_nano("a_looping_pair_keeps_its_clip_ring_to_its_length") else { return };
    let dir = tempfile::tempdir().unwrap();
    let main = clip(dir.path(), "main.mp4", 1280, 720, 10);
    let sub = clip(dir.path(), "sub.mp4", 640, 360, 10);
    let main_bytes = std::fs::metadata(&main).unwrap().len();
    let broker = common::broker::mosquitto();
    let cfg = config(dir.path(), broker.port, &model, &main, &sub, 2.0);
    let hb = Subscriber::new(broker.port, "hawkeye/test-box/heartbeat");
    let daemon = Daemon::start_logged(&cfg, &dir.path().join("hawkeye.log"));
    let first = hb.wait_for("the main stream in the ring", LONG, |m| m.json()["cameras"][0]["clip_ring"]["bytes"].as_u64().is_some_and(|b| b > 0));
    let mark = hb.count();
    // five loops of both files
    std::thread::sleep(Duration::from_secs(20));
    let last = hb.wait_for_after(hb.count(), "a heartbeat", LONG, |_| true);
    let status = daemon.signal_and_wait("TERM");
    assert!(status.success(), "{status:?}");

    let rings: Vec<(f64, u64)> = hb.all()[mark..]
        .iter()
        .filter_map(|m| {
            let r = &m.json()["cameras"][0]["clip_ring"];
            Some((r["seconds"].as_f64()?, r["bytes"].as_u64()?))
        })
        .collect();
    assert!(rings.len() >= 15, "a heartbeat a second: {}", rings.len());
    let c = &last.json()["cameras"][0];
    // 40 units a run: the main stream went round at least four times
    assert!(c["main_stream"]["units"].as_u64().unwrap() >= 160, "the main stream looped: {c:#}\nfirst: {:#}", first.json());
    // the ring: 2 s, plus up to a keyframe interval (1 s) before its oldest kept keyframe
    for (seconds, bytes) in &rings {
        assert!((0.0..=3.5).contains(seconds), "the ring spans {seconds} s: {rings:?}");
        assert!(*bytes <= main_bytes, "the ring holds {bytes} bytes, more than the whole 4-s main file ({main_bytes}): {rings:?}");
    }
    assert!(rings.iter().any(|(s, _)| *s >= 1.5), "the ring filled: {rings:?}");
}
