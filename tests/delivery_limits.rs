//! Size limits on real parts (issue 13): a 17 MiB retained command is refused with a reply and
//! does not send the link into a reconnect loop, retained commands run at most once (across a
//! restart too), and a 20 MB blob goes through the real link in chunks and arrives whole while
//! alerts queued after it keep flowing. Real mosquitto, real `hawkeye run`, real model.

mod common;

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::daemon::Daemon;
use common::mqtt::{Msg, Subscriber};
use hawkeye::outbox::{record, Outbox};
use hawkeye::publish::MqttLink;
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

const LONG: Duration = Duration::from_secs(120);
const RESULT: &str = "hawkeye/test-box/cmd_result";

fn publish_retained(port: u16, cmd: &str, payload_file: &std::path::Path) {
    let st = Command::new("mosquitto_pub")
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-q", "1", "-r", "-t", &format!("hawkeye/test-box/cmd/{cmd}"), "-f"])
        .arg(payload_file)
        .status()
        .unwrap();
    assert!(st.success());
}

fn replies(sub: &Subscriber, request_id: &str) -> Vec<serde_json::Value> {
    sub.all().iter().filter(|m| m.topic == RESULT).map(Msg::json).filter(|v| v["request_id"] == request_id).collect()
}

fn connects(sub: &Subscriber) -> u64 {
    let hb = sub.all().into_iter().rev().find(|m| m.topic == "hawkeye/test-box/heartbeat").expect("a heartbeat");
    hb.json()["mqtt"]["connects"].as_u64().unwrap()
}

#[test]
fn a_retained_17mib_command_is_refused_once_per_connect_and_retained_commands_run_at_most_once() {
    let Some(model) = common::model::yolox_nano("a_retained_17mib_command_is_refused_once_per_connect_and_retained_commands_run_at_most_once") else { return };
    let broker = common::broker::mosquitto();
    let dir = tempfile::tempdir().unwrap();
    // 17 MiB of JSON with its request id up front (salvaged from the head only)
    let huge = dir.path().join("huge.json");
    let mut body = br#"{"request_id":"huge-1","event_id":"e","note":""#.to_vec();
    body.resize(17 << 20, b'x');
    body.extend_from_slice(br#""}"#);
    std::fs::write(&huge, &body).unwrap();
    publish_retained(broker.port, "ack", &huge);
    let plain = dir.path().join("plain.json");
    std::fs::write(&plain, "{}").unwrap();
    publish_retained(broker.port, "reload", &plain);
    let once = dir.path().join("once.json");
    std::fs::write(&once, r#"{"event_id":"no-such-event","request_id":"once-1"}"#).unwrap();
    publish_retained(broker.port, "recheck", &once);

    // `+` keeps the test's own 16 MiB client off the 17 MiB command on `cmd/ack`
    let sub = Subscriber::new(broker.port, "hawkeye/test-box/+");
    let camera = common::config::vtest_camera("cam-file") + &common::config::walkway_zone(1.0, 0.5, 2.0);
    let cfg = common::config::write(dir.path(), broker.port, &model, &camera);
    let daemon = Daemon::start(&cfg);

    let r = sub.wait_for("the refusal of the 17 MiB command", LONG, |m| m.topic == RESULT && m.json()["request_id"] == "huge-1").json();
    assert_eq!(r["ok"], false, "{r}");
    assert_eq!(r["cmd"], "ack");
    assert!(r["error"].as_str().unwrap().contains("larger than"), "{r}");
    let r = sub.wait_for("the refusal of a retained command without request_id", LONG, |m| m.topic == RESULT && m.json()["cmd"] == "reload").json();
    assert!(r["error"].as_str().unwrap().contains("needs a request_id"), "{r}");
    let r = sub.wait_for("the answer to the retained recheck", LONG, |m| m.topic == RESULT && m.json()["request_id"] == "once-1").json();
    assert!(r["error"].as_str().unwrap().contains("unknown event"), "it ran: {r}");

    // alerts keep arriving, and the link stays on its first connection
    let mark = sub.count();
    sub.wait_for_after(mark, "an alert after the refusal", LONG, |m| m.topic == "hawkeye/test-box/alerts");
    let mark = sub.count();
    sub.wait_for_after(mark, "another alert", LONG, |m| m.topic == "hawkeye/test-box/alerts");
    sub.wait_for_after(sub.count(), "a fresh heartbeat", LONG, |m| m.topic == "hawkeye/test-box/heartbeat");
    assert_eq!(connects(&sub), 1, "the link reconnected");
    assert_eq!(replies(&sub, "huge-1").len(), 1);
    assert!(daemon.signal_and_wait("TERM").success());

    // a restart: the broker hands out the retained commands again; the oversized one is refused
    // again (once for this connection), the recheck that already ran does not run again
    let mark = sub.count();
    let daemon = Daemon::start(&cfg);
    sub.wait_for_after(mark, "the second run's refusal", LONG, |m| m.topic == RESULT && m.json()["request_id"] == "huge-1");
    sub.wait_for_after(sub.count(), "an alert of the second run", LONG, |m| m.topic == "hawkeye/test-box/alerts");
    sub.wait_for_after(sub.count(), "a heartbeat of the second run", LONG, |m| m.topic == "hawkeye/test-box/heartbeat");
    let hb = sub.all().into_iter().rev().find(|m| m.topic == "hawkeye/test-box/heartbeat").unwrap().json();
    assert_eq!(hb["broker"]["retained_skipped"], 1, "{hb}");
    assert_eq!(replies(&sub, "once-1").len(), 1, "a retained command ran twice");
    assert_eq!(connects(&sub), 1);
    assert!(daemon.signal_and_wait("TERM").success());
}

/// Reassembles the chunked blob on `topic` from what `sub` received; returns (index, bytes).
fn reassemble(all: &[Msg], topic: &str) -> Option<(serde_json::Value, Vec<u8>)> {
    let index = all.iter().find(|m| m.topic == format!("{topic}/index"))?.json();
    let n = index["chunks"].as_u64()? as usize;
    let prefix = format!("{topic}/chunk/");
    let chunks: BTreeMap<usize, &Msg> = all.iter().filter_map(|m| Some((m.topic.strip_prefix(&prefix)?.parse().ok()?, m))).collect();
    if chunks.len() < n {
        return None;
    }
    assert_eq!(chunks.keys().copied().collect::<Vec<_>>(), (0..n).collect::<Vec<_>>());
    Some((index, chunks.values().flat_map(|m| m.payload.iter().copied()).collect()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_20mb_blob_arrives_whole_through_the_real_link_while_alerts_keep_flowing() {
    let broker = common::broker::mosquitto();
    let dir = tempfile::tempdir().unwrap();
    // an earlier version's whole 600 kB clip left in the outbox: sent as chunks, never whole
    let old: Vec<u8> = (0..600_000u32).map(|i| (i * 7 % 253) as u8).collect();
    std::fs::write(dir.path().join(format!("{:020}.msg", 1)), record::encode_v1("hawkeye/blob-box/evidence/old/clip", &old, false)).unwrap();
    let cfg: hawkeye::config::Mqtt = toml::from_str(&format!("url = \"mqtt://127.0.0.1:{}\"\nheartbeat_s = 60\n", broker.port)).unwrap();
    assert_eq!(cfg.max_payload_kb, 256);
    let outbox = Outbox::open(dir.path()).unwrap();
    let (link, publisher, stats) = MqttLink::new(&cfg, "blob-box", outbox, Box::new(|| b"{}".to_vec()), |p| p.to_path_buf()).unwrap();
    let sub = tokio::task::spawn_blocking(move || Subscriber::new(broker.port, "hawkeye/blob-box/#")).await.unwrap();
    let stop = CancellationToken::new();
    let task = tokio::spawn(link.run(stop.clone(), Duration::from_secs(3)));

    let mut blob = vec![0u8; 20_000_000];
    let mut x: u64 = 0x9e3779b97f4a7c15;
    for b in blob.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    let topic = "hawkeye/blob-box/evidence/ev-big/clip";
    let r = publisher.enqueue_blob(topic, &blob).unwrap();
    assert_eq!((r.chunks, r.bytes), (20_000_000u64.div_ceil(256 * 1024) as u32, 20_000_000));
    assert_eq!(r.sha256, hex::encode(Sha256::digest(&blob)));
    for i in 0..5 {
        publisher.enqueue("hawkeye/blob-box/alerts", format!(r#"{{"event_id":"after-{i}","state":"new"}}"#).into_bytes(), false).unwrap();
    }

    let sub = tokio::task::spawn_blocking(move || {
        for i in 0..5 {
            sub.wait_for(&format!("alert after-{i}"), LONG, |m| m.topic == "hawkeye/blob-box/alerts" && m.payload.ends_with(format!(r#""after-{i}","state":"new"}}"#).as_bytes()));
        }
        sub
    })
    .await
    .unwrap();
    let all = sub.all();
    let (index, whole) = reassemble(&all, topic).expect("every chunk arrived before the alerts queued after them");
    assert_eq!(index["bytes"], 20_000_000);
    assert_eq!(index["sha256"].as_str().unwrap(), r.sha256);
    assert_eq!(hex::encode(Sha256::digest(&whole)), r.sha256, "reassembled blob differs");
    assert!(all.iter().all(|m| m.payload.len() <= 256 * 1024), "a message over the payload limit went out");
    let (_, old_whole) = reassemble(&all, "hawkeye/blob-box/evidence/old/clip").expect("the old clip arrived in chunks");
    assert_eq!(old_whole, old);
    assert!(!all.iter().any(|m| m.topic == "hawkeye/blob-box/evidence/old/clip"), "sent whole");

    assert_eq!(stats.connects.load(Ordering::Relaxed), 1);
    assert_eq!(stats.connection_errors.load(Ordering::Relaxed), 0);
    assert_eq!(stats.rechunked.load(Ordering::Relaxed), 1);
    for _ in 0..100 {
        if publisher.outbox().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(publisher.outbox().is_empty(), "outbox drained");
    stop.cancel();
    task.await.unwrap();
}

/// The order of a clean stop: the evidence workers queue their `end`s, then the link is told
/// to stop at once. Its flush must take what is in its wake queue before it calls the outbox
/// flushed (it once did not, and the ends waited on disk for the next start). One runtime
/// thread: the link task runs only when this one waits, so it sees the stop with every wake
/// still queued, as a busy link does.
#[tokio::test(flavor = "current_thread")]
async fn messages_queued_right_before_the_stop_are_delivered_by_its_flush() {
    let broker = common::broker::mosquitto();
    let dir = tempfile::tempdir().unwrap();
    let cfg: hawkeye::config::Mqtt = toml::from_str(&format!("url = \"mqtt://127.0.0.1:{}\"\nheartbeat_s = 60\n", broker.port)).unwrap();
    let (link, publisher, _) = MqttLink::new(&cfg, "stop-box", Outbox::open(dir.path()).unwrap(), Box::new(|| b"{}".to_vec()), |p| p.to_path_buf()).unwrap();
    let sub = tokio::task::spawn_blocking(move || Subscriber::new(broker.port, "hawkeye/stop-box/alerts")).await.unwrap();
    let stop = CancellationToken::new();
    let task = tokio::spawn(link.run(stop.clone(), Duration::from_secs(3)));
    let topic = "hawkeye/stop-box/alerts";
    let alert = |i: usize| format!(r#"{{"event_id":"ev-{i}","state":"end","reason":"shutdown"}}"#).into_bytes();
    // a first message through, so the link is connected and its ACL probe has passed
    publisher.enqueue(topic, alert(0), false).unwrap();
    let sub = tokio::task::spawn_blocking(move || {
        sub.wait_for("the first alert", LONG, |m| m.payload == alert(0));
        sub
    })
    .await
    .unwrap();
    for i in 1..=20 {
        publisher.enqueue(topic, alert(i), false).unwrap();
    }
    stop.cancel();
    task.await.unwrap();
    assert!(publisher.outbox().is_empty(), "{} message(s) left in the outbox by a stop with the broker up", publisher.outbox().len());
    let sub = tokio::task::spawn_blocking(move || {
        sub.wait_for("the last alert", Duration::from_secs(10), |m| m.payload == alert(20));
        sub
    })
    .await
    .unwrap();
    let got: Vec<Vec<u8>> = sub.all().iter().map(|m: &Msg| m.payload.clone()).collect();
    assert_eq!(got, (0..=20).map(alert).collect::<Vec<_>>(), "every message once, in order");
}
