//! A disk that refuses writes (issue 13: a full or read-only disk lost alerts silently and
//! `/healthz` stayed 200). The outbox sits on a small tmpfs made read-only, then full:
//! messages are held in memory and still delivered, `/healthz` answers 503 with the reason, the
//! heartbeat and `/metrics` flag it, and after recovery everything is on disk and delivered in
//! order. Real mosquitto, the real daemon, and the real link in-process for a broker outage
//! during the refusal.

mod common;

use std::time::Duration;

use common::config::{http_get, telemetry_port};
use common::daemon::Daemon;
use common::mqtt::{Msg, Subscriber};
use common::tmpfs::Tmpfs;
use hawkeye::outbox::Outbox;
use hawkeye::publish::MqttLink;
use tokio_util::sync::CancellationToken;

const LONG: Duration = Duration::from_secs(120);
const RESULT: &str = "hawkeye/test-box/cmd_result";

fn send(port: u16, request_id: &str) {
    let st = std::process::Command::new("mosquitto_pub")
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-q", "1", "-t", "hawkeye/test-box/cmd/recheck"])
        .args(["-m", &format!(r#"{{"event_id":"no-such-event","request_id":"{request_id}"}}"#)])
        .status()
        .unwrap();
    assert!(st.success());
}

fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let t0 = std::time::Instant::now();
    while !cond() {
        assert!(t0.elapsed() < LONG, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn last_heartbeat(sub: &Subscriber, after: usize) -> serde_json::Value {
    sub.wait_for_after(after, "a heartbeat", LONG, |m| m.topic == "hawkeye/test-box/heartbeat").json()
}

/// The replies to `ids`, checking they all arrived and in this order.
fn assert_replies_in_order(sub: &Subscriber, ids: &[String]) {
    for id in ids {
        sub.wait_for(&format!("reply {id}"), LONG, |m| m.topic == RESULT && m.json()["request_id"] == id.as_str());
    }
    let all = sub.all();
    let pos: Vec<usize> = ids.iter().map(|id| all.iter().position(|m| m.topic == RESULT && m.json()["request_id"] == id.as_str()).unwrap()).collect();
    assert!(pos.windows(2).all(|w| w[0] < w[1]), "replies out of order: {pos:?}");
}

/// Drives one refusal episode: `refuse` makes the disk refuse, `accept` undoes it.
fn episode(sub: &Subscriber, broker_port: u16, http: u16, tag: &str, refuse: impl FnOnce(), accept: impl FnOnce()) {
    refuse();
    let ids: Vec<String> = (0..4).map(|i| format!("{tag}-{i}")).collect();
    for id in &ids {
        send(broker_port, id);
    }
    // held in memory, still delivered, in order
    assert_replies_in_order(sub, &ids);
    let (code, body) = http_get(http, "/healthz");
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("the disk refuses outbox writes"), "{body}");
    let hb = last_heartbeat(sub, sub.count());
    assert_eq!(hb["outbox"]["disk_ok"], false, "{hb}");
    assert!(hb["outbox"]["disk_errors"].as_u64().unwrap() >= 1, "{hb}");
    let (_, metrics) = http_get(http, "/metrics");
    assert!(metrics.contains("hawkeye_outbox_disk_ok 0"), "{metrics}");
    assert!(!metrics.contains("hawkeye_outbox_disk_errors_total 0\n"), "{metrics}");

    accept();
    wait_until(&format!("{tag}: the heartbeat shows the disk back"), || last_heartbeat(sub, sub.count())["outbox"]["disk_ok"] == true);
    wait_until(&format!("{tag}: /healthz no longer names the disk"), || !http_get(http, "/healthz").1.contains("disk refuses"));
    // the daemon keeps working: a new command gets its reply
    let after = format!("{tag}-after");
    send(broker_port, &after);
    sub.wait_for(&after, LONG, |m| m.topic == RESULT && m.json()["request_id"] == after.as_str());
}

#[test]
fn a_read_only_then_full_state_dir_is_reported_and_nothing_is_lost() {
    const TEST: &str = "a_read_only_then_full_state_dir_is_reported_and_nothing_is_lost";
    let Some(model) = common::model::yolox_nano(TEST) else { return };
    let dir = tempfile::tempdir().unwrap();
    // the outbox's own file system: the daemon keeps files open for writing elsewhere in
    // state_dir (its lock, the evidence chain), which a remount to read-only would refuse
    let Some(fs) = Tmpfs::mount(TEST, &dir.path().join("state/outbox"), "64m") else { return };
    let broker = common::broker::mosquitto();
    let sub = Subscriber::new(broker.port, "hawkeye/test-box/+");
    let camera = common::config::vtest_camera("cam-file") + &common::config::walkway_zone(1.0, 0.5, 2.0);
    let cfg = common::config::write(dir.path(), broker.port, &model, &camera);
    common::config::enable_telemetry(&cfg);
    let daemon = Daemon::start(&cfg);
    let http = telemetry_port(&cfg);
    sub.wait_for("a first alert", LONG, |m| m.topic == "hawkeye/test-box/alerts");
    wait_until("/healthz 200", || http_get(http, "/healthz").0 == 200);

    episode(&sub, broker.port, http, "ro", || fs.set_read_only(true), || fs.set_read_only(false));
    let filler = std::cell::RefCell::new(None);
    episode(&sub, broker.port, http, "full", || *filler.borrow_mut() = Some(fs.fill("filler")), || std::fs::remove_file(filler.borrow().as_ref().unwrap()).unwrap());

    let mark = sub.count();
    sub.wait_for_after(mark, "an alert after both episodes", LONG, |m| m.topic == "hawkeye/test-box/alerts");
    assert!(daemon.signal_and_wait("TERM").success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_held_while_the_disk_and_the_broker_are_both_down_reach_disk_and_then_the_broker_in_order() {
    const TEST: &str = "messages_held_while_the_disk_and_the_broker_are_both_down_reach_disk_and_then_the_broker_in_order";
    let dir = tempfile::tempdir().unwrap();
    let Some(fs) = Tmpfs::mount(TEST, &dir.path().join("state"), "8m") else { return };
    let outbox_dir = fs.path.join("outbox");
    let port = hawkeye::tools::demo::free_port().unwrap();
    let cfg: hawkeye::config::Mqtt = toml::from_str(&format!("url = \"mqtt://127.0.0.1:{port}\"\nheartbeat_s = 60\n")).unwrap();

    // first run: no broker; the disk turns read-only, then full, while messages are queued
    let outbox = Outbox::open(&outbox_dir).unwrap();
    let (link, publisher, stats) = MqttLink::new(&cfg, "test-box", outbox, Box::new(|| b"{}".to_vec()), |p| p.to_path_buf()).unwrap();
    let stop = CancellationToken::new();
    let task = tokio::spawn(link.run(stop.clone(), Duration::from_secs(1)));
    let alert = |i: usize| format!(r#"{{"event_id":"ev-{i}","state":"new"}}"#).into_bytes();
    let topic = "hawkeye/test-box/alerts";
    publisher.enqueue(topic, alert(0), false).unwrap();
    fs.set_read_only(true);
    for i in 1..=5 {
        publisher.enqueue(topic, alert(i), false).unwrap();
    }
    let h = publisher.outbox().health();
    assert!(!h.disk_ok && h.in_memory == 5, "{h:?}");
    fs.set_read_only(false);
    // the link's periodic retry (every 2 s) writes the held ones
    for _ in 0..100 {
        if publisher.outbox().health().in_memory == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(publisher.outbox().health().disk_ok, "{:?}", publisher.outbox().health());
    let filler = fs.fill("filler");
    for i in 6..=10 {
        publisher.enqueue(topic, alert(i), false).unwrap();
    }
    assert_eq!(publisher.outbox().health().in_memory, 5, "{:?}", publisher.outbox().health());
    std::fs::remove_file(&filler).unwrap();
    // the link's periodic retry writes them once the disk takes them again
    for _ in 0..100 {
        if publisher.outbox().health().in_memory == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let h = publisher.outbox().health();
    assert!(h.disk_ok && h.in_memory == 0, "{h:?}");
    assert_eq!(stats.acked.load(std::sync::atomic::Ordering::Relaxed), 0);
    stop.cancel();
    task.await.unwrap();
    drop(publisher);

    // second run (a restart): everything comes from disk and reaches the broker in order
    let _broker = hawkeye::tools::demo::Mosquitto::start_with(port, hawkeye::tools::demo::PLAIN_BROKER).unwrap();
    let sub = tokio::task::spawn_blocking(move || Subscriber::new(port, "hawkeye/test-box/alerts")).await.unwrap();
    let outbox = Outbox::open(&outbox_dir).unwrap();
    assert_eq!(outbox.len(), 11);
    let (link, publisher, _) = MqttLink::new(&cfg, "test-box", outbox, Box::new(|| b"{}".to_vec()), |p| p.to_path_buf()).unwrap();
    let stop = CancellationToken::new();
    let task = tokio::spawn(link.run(stop.clone(), Duration::from_secs(3)));
    let sub = tokio::task::spawn_blocking(move || {
        sub.wait_for("the last alert", LONG, |m| m.payload == alert(10));
        sub
    })
    .await
    .unwrap();
    let got: Vec<Vec<u8>> = sub.all().iter().map(|m: &Msg| m.payload.clone()).collect();
    assert_eq!(got, (0..=10).map(alert).collect::<Vec<_>>(), "every message, in order");
    for _ in 0..50 {
        if publisher.outbox().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(publisher.outbox().is_empty());
    stop.cancel();
    task.await.unwrap();
}
