//! One daemon per state_dir (issue 13: two instances kicked each other off the broker and
//! alerted twice). A second real `hawkeye run` on the same state_dir refuses to start, naming the
//! holder; the first keeps running and publishing. Real mosquitto, real binary, real model.

mod common;

use std::time::Duration;

use common::mqtt::Subscriber;
use common::process::{hawkeye_run, hawkeye_run_to_end};

const LONG: Duration = Duration::from_secs(120);

#[test]
fn a_second_daemon_on_the_same_state_dir_refuses_to_start_and_the_first_keeps_publishing() {
    let Some(model) = common::model::yolox_nano("a_second_daemon_on_the_same_state_dir_refuses_to_start_and_the_first_keeps_publishing") else { return };
    let broker = common::broker::mosquitto();
    let sub = Subscriber::new(broker.port, "hawkeye/test-box/+");
    let dir = tempfile::tempdir().unwrap();
    let camera = common::config::vtest_camera("cam-file") + &common::config::walkway_zone(1.0, 0.5, 2.0);
    let cfg = common::config::write(dir.path(), broker.port, &model, &camera);
    let mut first = hawkeye_run(&cfg);
    sub.wait_for("the first daemon's heartbeat", LONG, |m| m.topic == "hawkeye/test-box/heartbeat");

    let second = hawkeye_run_to_end(&cfg, LONG);
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(!second.status.success(), "the second daemon ran: {stderr}");
    assert!(stderr.contains(&format!("is in use by hawkeye pid {} on host", first.pid())), "{stderr}");
    assert!(stderr.contains("device.state_dir"), "{stderr}");
    assert!(!stderr.contains("mqtt: connected"), "the second daemon reached the broker: {stderr}");

    assert!(first.is_running());
    let mark = sub.count();
    sub.wait_for_after(mark, "an alert of the first daemon after the refusal", LONG, |m| m.topic == "hawkeye/test-box/alerts");
    sub.wait_for_after(sub.count(), "a heartbeat of the first daemon", LONG, |m| m.topic == "hawkeye/test-box/heartbeat");
    let hb = sub.all().into_iter().rev().find(|m| m.topic == "hawkeye/test-box/heartbeat").unwrap().json();
    assert_eq!(hb["mqtt"]["connects"], 1, "the first daemon lost its connection: {hb}");

    first.signal("TERM");
    for _ in 0..200 {
        if !first.is_running() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!first.is_running());
    // released at exit
    hawkeye::state_lock::StateLock::acquire(&dir.path().join("state")).unwrap();
}
