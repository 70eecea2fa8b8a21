//! The real daemon's memory does not grow with what waits in its outbox: 10 000 messages of
//! 20 kB (200 MB of payload) left by an earlier run, broker unreachable, against the same daemon
//! with an empty outbox. Payloads stay on disk; RAM holds an index.

mod common;

use std::time::{Duration, Instant};

use common::daemon::Daemon;

const MESSAGES: usize = 10_000;
const PAYLOAD: usize = 20_000;

/// VmRSS of a process, kB.
fn rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status.lines().find_map(|l| l.strip_prefix("VmRSS:")).and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok()).expect("VmRSS")
}

/// Starts a daemon on `dir`'s config, waits until it has loaded its outbox and runs, returns
/// its settled RSS and the outbox depth it reports.
fn settled_rss(dir: &std::path::Path, model: &std::path::Path, port: u16) -> (u64, u64) {
    let camera = common::config::vtest_camera("cam-file") + &common::config::walkway_zone(1.0, 0.5, 2.0);
    let cfg = common::config::write(dir, port, model, &camera);
    common::config::enable_telemetry(&cfg);
    let daemon = Daemon::start_logged(&cfg, &dir.join("run.log"));
    let http = common::config::telemetry_port(&cfg);
    // let it load the outbox, decode and detect for a while
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(12) {
        std::thread::sleep(Duration::from_millis(500));
    }
    let metrics = common::config::http_get(http, "/metrics").1;
    let depth = metrics.lines().find_map(|l| l.strip_prefix("hawkeye_outbox_depth ")).and_then(|v| v.trim().parse::<f64>().ok()).expect("outbox depth") as u64;
    let rss = rss_kb(daemon.pid());
    assert!(daemon.signal_and_wait("KILL").code().is_none());
    (rss, depth)
}

#[test]
fn ten_thousand_queued_messages_do_not_live_in_ram() {
    let Some(model) = common::model::yolox_nano("ten_thousand_queued_messages_do_not_live_in_ram") else { return };
    // nothing listens on this port: everything stays queued
    let port = hawkeye::tools::demo::free_port().unwrap();
    let full = tempfile::tempdir().unwrap();
    {
        let ob = hawkeye::outbox::Outbox::open_bounded(&full.path().join("state/outbox"), 1 << 30).unwrap();
        for i in 0..MESSAGES {
            let payload: Vec<u8> = (0..PAYLOAD).map(|k| ((i * 31 + k) % 251) as u8).collect();
            ob.push(&format!("hawkeye/test-box/evidence/ev-{i}/clean"), payload, false).unwrap();
        }
    }
    let empty = tempfile::tempdir().unwrap();
    let (rss_empty, depth_empty) = settled_rss(empty.path(), &model, port);
    let (rss_full, depth_full) = settled_rss(full.path(), &model, port);
    eprintln!("RSS with an empty outbox {rss_empty} kB; with {MESSAGES} queued messages ({} MB) {rss_full} kB", MESSAGES * PAYLOAD / 1_000_000);
    assert!(depth_full >= MESSAGES as u64, "the daemon sees the queued messages: depth {depth_full}");
    assert!(depth_empty < 100, "{depth_empty}");
    // 200 MB of payload waiting; RAM may grow by the index (and noise), not by the payloads
    assert!(rss_full < rss_empty + 40_000, "RSS {rss_full} kB with the queue vs {rss_empty} kB without");
}
