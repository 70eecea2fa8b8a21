//! Store and forward on real parts: alerts raised while the broker is down reach it after it
//! comes back, and alerts left in the outbox by a SIGKILLed daemon are delivered by the next run.
//! Real mosquitto (persistent, stopped and restarted by PID), real `hawkeye run`, real model.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use common::daemon::Daemon;
use common::mqtt::Subscriber;
use hawkeye::outbox::{read_message_file, Entry};

const LONG: Duration = Duration::from_secs(120);
const ALERTS: &str = "hawkeye/test-box/alerts";

/// Alert messages currently waiting in the outbox directory.
fn outbox_alerts(state: &Path) -> Vec<Entry> {
    let dir = state.join("outbox");
    let mut v: Vec<Entry> = std::fs::read_dir(&dir)
        .map(|rd| rd.filter_map(|e| read_message_file(&e.ok()?.path())).filter(|e| e.topic == ALERTS).collect())
        .unwrap_or_default();
    v.sort_by_key(|e| e.seq);
    v
}

fn wait_until(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !cond() {
        assert!(t0.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// (event_id, state) of an alert payload.
fn key(payload: &[u8]) -> (String, String) {
    let v: serde_json::Value = serde_json::from_slice(payload).unwrap();
    (v["event_id"].as_str().unwrap().to_string(), v["state"].as_str().unwrap().to_string())
}

fn config(dir: &Path, port: u16, model: &Path) -> std::path::PathBuf {
    // short dwell and clear so that events keep starting and ending on the looping clip
    let camera = common::config::vtest_camera("cam-file") + &common::config::walkway_zone(1.0, 0.5, 2.0);
    common::config::write(dir, port, model, &camera)
}

#[test]
fn alerts_raised_while_the_broker_is_down_arrive_after_it_returns() {
    let Some(model) = common::model::yolox_nano("alerts_raised_while_the_broker_is_down_arrive_after_it_returns") else { return };
    let persist = tempfile::tempdir().unwrap();
    let port = hawkeye::tools::demo::free_port().unwrap();
    let mut broker = hawkeye::tools::demo::Mosquitto::start_with(
        port,
        &format!("allow_anonymous true\npersistence true\npersistence_location {}/\n", persist.path().display()),
    )
    .unwrap();
    let sub = Subscriber::persistent(port, "hawkeye/test-box/alerts");
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(&config(dir.path(), port, &model));
    sub.wait_for("a first alert", LONG, |m| m.topic == ALERTS);

    broker.stop();
    // alerts raised now can only wait in the outbox
    let mut at_risk = Vec::new();
    wait_until("three alerts queued in the outbox during the outage", LONG, || {
        at_risk = outbox_alerts(&dir.path().join("state"));
        at_risk.len() >= 3
    });
    std::thread::sleep(Duration::from_secs(2));
    let at_risk: BTreeSet<(String, String)> = outbox_alerts(&dir.path().join("state"))
        .iter()
        .chain(at_risk.iter())
        .map(|e| key(&e.payload))
        .collect();

    broker.restart().unwrap();
    wait_until("every alert from the outage delivered", LONG, || {
        let got: BTreeSet<(String, String)> = sub.all().iter().filter(|m| m.topic == ALERTS).map(|m| key(&m.payload)).collect();
        at_risk.is_subset(&got)
    });
    // duplicates are allowed only as the same (event_id, state), which the set comparison treats as one
    wait_until("outbox drained", LONG, || outbox_alerts(&dir.path().join("state")).is_empty());
    assert!(daemon.signal_and_wait("TERM").success());
}

#[test]
fn alerts_in_the_outbox_of_a_killed_daemon_are_delivered_by_the_next_run() {
    let Some(model) = common::model::yolox_nano("alerts_in_the_outbox_of_a_killed_daemon_are_delivered_by_the_next_run") else { return };
    // nothing listens on the broker port during the first run
    let port = hawkeye::tools::demo::free_port().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), port, &model);
    let state = dir.path().join("state");
    let first = Daemon::start(&cfg);
    wait_until("alerts in the outbox", LONG, || outbox_alerts(&state).len() >= 3);
    let status = first.signal_and_wait("KILL");
    assert!(!status.success(), "SIGKILL is not a clean exit");
    let left: Vec<Entry> = outbox_alerts(&state);
    assert!(left.len() >= 3);

    let _broker = hawkeye::tools::demo::Mosquitto::start_with(port, hawkeye::tools::demo::PLAIN_BROKER).unwrap();
    let sub = Subscriber::new(port, "hawkeye/test-box/alerts");
    let second = Daemon::start(&cfg);
    for e in &left {
        let k = key(&e.payload);
        // byte for byte the message the first run stored
        sub.wait_for(&format!("alert {k:?} from the killed run"), LONG, |m| m.topic == ALERTS && m.payload == e.payload);
    }
    // and in the order they were raised
    let order: Vec<u64> = {
        let all = sub.all();
        left.iter().map(|e| all.iter().position(|m| m.payload == e.payload).unwrap() as u64).collect()
    };
    assert!(order.windows(2).all(|w| w[0] < w[1]), "replay keeps order: {order:?}");
    assert!(second.signal_and_wait("TERM").success());
}
