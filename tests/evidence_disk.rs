//! An evidence store on a disk that refuses writes never holds alerts back: the real daemon
//! (vtest.avi, the shared COCO model, real mosquitto) keeps publishing `new` alerts while its
//! evidence directory, on a small tmpfs, is read-only — each saying why its pictures are missing
//! (`evidence_error`), with `/healthz` 503 and the heartbeat naming the problem — and attaches
//! pictures again once the disk takes writes.

mod common;

use std::time::{Duration, Instant};

use common::daemon::Daemon;
use common::mqtt::Subscriber;
use common::tmpfs::Tmpfs;

const LONG: Duration = Duration::from_secs(120);
const ALERTS: &str = "hawkeye/test-box/alerts";

fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !cond() {
        assert!(t0.elapsed() < LONG, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn alerts_keep_flowing_while_the_evidence_disk_refuses_writes() {
    let test = "alerts_keep_flowing_while_the_evidence_disk_refuses_writes";
    let Some(model) = common::model::yolox_nano(test) else { return };
    let dir = tempfile::tempdir().unwrap();
    let Some(disk) = Tmpfs::mount(test, &dir.path().join("state/evidence"), "64m") else { return };
    let broker = common::broker::mosquitto();
    let sub = Subscriber::new(broker.port, "hawkeye/test-box/#");
    let camera = common::config::vtest_camera("cam-file") + &common::config::walkway_zone(1.0, 0.5, 2.0);
    let cfg = common::config::write(dir.path(), broker.port, &model, &camera);
    common::config::enable_telemetry(&cfg);
    let daemon = Daemon::start_logged(&cfg, &dir.path().join("run.log"));
    let http = common::config::telemetry_port(&cfg);
    let news = |after: usize| -> Vec<serde_json::Value> {
        sub.all().iter().skip(after).filter(|m| m.topic == ALERTS).map(|m| m.json()).filter(|a| a["state"] == "new").collect()
    };
    wait_until("a new alert with its pictures", || news(0).iter().any(|a| !a["evidence"].as_array().unwrap().is_empty()));

    disk.set_read_only(true);
    let mark = sub.count();
    wait_until("a new alert raised on the read-only evidence disk", || news(mark).iter().any(|a| a["evidence_error"].is_string()));
    let refused = news(mark).into_iter().find(|a| a["evidence_error"].is_string()).unwrap();
    assert!(refused["evidence"].as_array().unwrap().is_empty(), "{refused:#}");
    assert!(refused["evidence_error"].as_str().unwrap().contains("evidence not saved"), "{refused:#}");
    assert!(refused["seq"].as_u64().unwrap() >= 1 && refused["manifest"].is_null());
    let (code, body) = common::config::http_get(http, "/healthz");
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("evidence store refuses writes"), "{body}");
    let hb = sub.wait_for_after(sub.count(), "a heartbeat naming the problem", LONG, |m| m.topic == "hawkeye/test-box/heartbeat").json();
    assert!(hb["evidence_worker"]["disk_error"].is_string(), "{hb:#}");
    assert!(hb["evidence_worker"]["evidence_errors"].as_u64().unwrap() >= 1);

    disk.set_read_only(false);
    let mark = sub.count();
    wait_until("a new alert with pictures again", || news(mark).iter().any(|a| !a["evidence"].as_array().unwrap().is_empty() && a["evidence_error"].is_null()));
    wait_until("/healthz back to 200", || common::config::http_get(http, "/healthz").0 == 200);
    assert!(daemon.signal_and_wait("TERM").success());
    drop(disk);
}
