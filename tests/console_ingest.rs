//! The console's ingest against the real servers: 10 000 alerts from 20 devices through a real
//! mosquitto into SQLite and into PostgreSQL (Debian's server, a private cluster), with the
//! console killed (SIGKILL) and restarted while the devices publish: nothing lost, nothing
//! stored twice. And the integrity checks on evidence sealed by hawkeye's own sealer: a clean
//! set verifies; tampered evidence, a tampered manifest, a broken chain and a changed device
//! key are flagged.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::console::{Console, Postgres};
use hawkeye::console::store::{EventFilter, Store};
use hawkeye::tools::demo::{free_port, Mosquitto};
use rumqttc::{AsyncClient, Event, MqttOptions, Outgoing, Packet, QoS};
use serde_json::{json, Value};

const DEVICES: usize = 20;
const EVENTS: usize = 100;
const STATES: [&str; 5] = ["new", "update", "update", "update", "end"];

/// A broker that queues without limit for a console that is away (mosquitto's default queue
/// of 1000 per client would drop the rest; the README says so for deployments).
fn broker() -> Mosquitto {
    Mosquitto::start_with(free_port().unwrap(), "allow_anonymous true\npersistence false\nmax_queued_messages 0\n").expect("mosquitto")
}

fn alert(device: &str, e: usize, seq: usize) -> Value {
    let event_id = format!("{device}-cam-1-kerb-{e:04}");
    let t = |s: usize| format!("2026-12-07T08:{:02}:{:02}.000Z", (e / 6) % 60, (e * 10 + s) % 60);
    json!({
        "schema_version": "1.1", "event_id": event_id, "seq": seq, "device_seq": e * 10 + seq,
        "state": STATES[seq - 1], "reason": if seq == 5 { json!("clear") } else { Value::Null },
        "kind": if e % 2 == 0 { "dumping" } else { "out_of_store" }, "violation": "test", "severity": "warning",
        "device_id": device, "camera_id": "cam-1", "zone_id": "kerb",
        "started_at": t(0), "updated_at": t(seq), "dwell_s": 3.0, "level": null, "coverage": null,
        "objects": [], "model": { "name": "m", "sha256": "0" }, "ack": null, "evidence": [],
        "manifest": null, "prev_hash": null, "signature": null
    })
}

/// One device: publishes its 500 alerts in order (QoS 1), then 10 of them again (a device
/// redelivering after a reconnect); returns when the broker has acknowledged every one.
async fn device(port: u16, d: usize, sent: Arc<AtomicUsize>) {
    let name = format!("box-{d:02}");
    let mut o = MqttOptions::new(format!("load-{name}"), "127.0.0.1", port);
    o.set_keep_alive(Duration::from_secs(30));
    o.set_inflight(20);
    let (client, mut ev) = AsyncClient::new(o, 64);
    let mut messages: Vec<Value> = (0..EVENTS).flat_map(|e| (1..=5).map(move |s| (e, s))).map(|(e, s)| alert(&name, e, s)).collect();
    messages.extend((0..10).map(|i| alert(&name, i * 7, 2)));
    let total = messages.len();
    let topic = format!("hawkeye/{name}/alerts");
    let pub_task = tokio::spawn(async move {
        for m in messages {
            client.publish(&topic, QoS::AtLeastOnce, false, m.to_string()).await.unwrap();
        }
        client
    });
    let mut acked = 0;
    let t0 = Instant::now();
    while acked < total {
        match tokio::time::timeout(Duration::from_secs(60), ev.poll()).await.expect("broker answers") {
            Ok(Event::Incoming(Packet::PubAck(_))) => {
                acked += 1;
                sent.fetch_add(1, Ordering::Relaxed);
            }
            Ok(Event::Outgoing(Outgoing::Publish(_))) | Ok(_) => {}
            Err(e) => panic!("{name}: {e}"),
        }
        assert!(t0.elapsed() < Duration::from_secs(300), "{name}: publishing took too long");
    }
    let _ = pub_task.await;
}

async fn stored(db: &str) -> (i64, usize) {
    let s = Store::open(db).await.unwrap();
    let n = s.alert_count().await.unwrap();
    let events = s.events(&EventFilter { limit: Some(10_000), ..Default::default() }).await.unwrap();
    (n, events.len())
}

fn ten_thousand_alerts_across_a_console_kill(name: &str, db: String) {
    let dir = tempfile::Builder::new().prefix(name).tempdir().unwrap();
    let broker = broker();
    let mut console = Console::start(dir.path(), broker.port, &db);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let sent = Arc::new(AtomicUsize::new(0));
    let devices: Vec<_> = (0..DEVICES).map(|d| rt.spawn(device(broker.port, d, sent.clone()))).collect();

    // kill the console (no chance to flush anything) while the devices are publishing, keep it
    // away for a while (the broker queues its messages), and start it again
    let t0 = Instant::now();
    while sent.load(Ordering::Relaxed) < 3_000 {
        assert!(t0.elapsed() < Duration::from_secs(120), "devices stalled at {}", sent.load(Ordering::Relaxed));
        std::thread::sleep(Duration::from_millis(20));
    }
    console.kill();
    let at_kill = rt.block_on(stored(&db)).0;
    std::thread::sleep(Duration::from_secs(2));
    console.restart();
    for d in devices {
        rt.block_on(d).unwrap();
    }
    let total = DEVICES * (EVENTS * 5 + 10);
    assert_eq!(sent.load(Ordering::Relaxed), total);

    let expected = (DEVICES * EVENTS * 5) as i64;
    let t1 = Instant::now();
    let (mut n, mut events) = rt.block_on(stored(&db));
    while n < expected && t1.elapsed() < Duration::from_secs(300) {
        std::thread::sleep(Duration::from_millis(500));
        (n, events) = rt.block_on(stored(&db));
    }
    eprintln!("{name}: {at_kill} alerts stored when the console was killed; {n} of {expected} in the end, {events} events, in {:.1} s", t0.elapsed().as_secs_f64());
    assert!(at_kill > 0 && at_kill < expected, "the kill must fall in the middle of the load ({at_kill})");
    assert_eq!(n, expected, "every alert stored exactly once (the primary key refuses a second copy); log:\n{}", console.log_text());
    assert_eq!(events, DEVICES * EVENTS);
    // each event ends in its highest seq, raised at its `new`
    let s = rt.block_on(Store::open(&db)).unwrap();
    let all = rt.block_on(s.events(&EventFilter { limit: Some(10_000), ..Default::default() })).unwrap();
    assert!(all.iter().all(|e| e.state == "end" && e.last_seq == 5 && e.raised_at.is_some()), "{:?}", all.iter().find(|e| e.state != "end"));
    // and the operators' API sees the same
    let (cookie, _) = console.login("admin", "admin-password-1");
    let (code, body) = console.get(&cookie, "/api/events?limit=10000&device=box-07");
    assert_eq!(code, 200);
    assert_eq!(serde_json::from_str::<Vec<Value>>(&body).unwrap().len(), EVENTS);
    let (_, metrics) = console.get(&cookie, "/metrics");
    assert!(metrics.contains("hawkeye_console_events_raised{kind=\"dumping\"} 1000"), "{metrics}");
}

#[test]
fn sqlite_keeps_10000_alerts_from_20_devices_across_a_console_kill() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite:{}", dir.path().join("console.db").display());
    ten_thousand_alerts_across_a_console_kill("sqlite", db);
}

#[test]
fn postgres_keeps_10000_alerts_from_20_devices_across_a_console_kill() {
    let pg = Postgres::start();
    let db = pg.database("load");
    ten_thousand_alerts_across_a_console_kill("postgres", db);
}

/// Publishes what one sealed evidence set puts on the wire: the alert (with manifest seq,
/// sha256 and signature), the picture, the manifest. `tamper` changes bytes on the way.
struct Device {
    sealer: hawkeye::evidence::seal::Sealer,
    dir: tempfile::TempDir,
    name: String,
}

enum Tamper {
    Nothing,
    Picture,
    Manifest,
}

impl Device {
    fn new(name: &str) -> Device {
        let dir = tempfile::tempdir().unwrap();
        let key = hawkeye::evidence::keys::DeviceKey::load_or_create(&dir.path().join("keys")).unwrap();
        let sealer = hawkeye::evidence::seal::Sealer::open(&dir.path().join("evidence"), key).unwrap();
        Device { sealer, dir, name: name.into() }
    }

    /// (topic, payload) of one evidence set.
    fn event(&mut self, n: usize, tamper: Tamper) -> (String, Vec<(String, Vec<u8>)>) {
        let event_id = format!("{}-cam-1-kerb-{n}", self.name);
        let jpeg: Vec<u8> = [0xff, 0xd8].into_iter().chain((0..2000u32).map(|i| (i * 31 + n as u32) as u8)).chain([0xff, 0xd9]).collect();
        let path = self.dir.path().join(format!("clean-{n}.jpg"));
        std::fs::write(&path, &jpeg).unwrap();
        let sealed = self
            .sealer
            .seal(hawkeye::evidence::seal::ManifestInput {
                event_id: event_id.clone(),
                state: "new".into(),
                kind: "dumping".into(),
                violation: "dumping".into(),
                device_id: self.name.clone(),
                camera_id: "cam-1".into(),
                zone_id: "kerb".into(),
                location: Default::default(),
                time: chrono::Utc::now(),
                model_name: "m".into(),
                model_sha256: "0".into(),
                confidence: 0.9,
                dwell_s: 3.0,
                files: vec![("clean".into(), path)],
            })
            .unwrap();
        let mut manifest = std::fs::read(&sealed.manifest_path).unwrap();
        let mut a = alert(&self.name, n, 1);
        a["event_id"] = json!(event_id);
        a["evidence"] = json!([{ "name": "clean", "content_type": "image/jpeg", "sha256": hawkeye::evidence::seal::sha256_hex(&jpeg), "bytes": jpeg.len() }]);
        a["manifest"] = json!({ "seq": sealed.seq, "sha256": sealed.manifest_sha256 });
        a["prev_hash"] = json!(sealed.prev_manifest_sha256);
        a["signature"] = json!(sealed.signature_hex);
        let mut picture = jpeg;
        match tamper {
            Tamper::Nothing => {}
            Tamper::Picture => *picture.last_mut().unwrap() ^= 0x55,
            Tamper::Manifest => {
                let text = String::from_utf8(manifest).unwrap().replace("\"confidence\": 0.9", "\"confidence\": 0.1");
                manifest = text.into_bytes();
            }
        }
        let root = format!("hawkeye/{}", self.name);
        (
            event_id.clone(),
            vec![
                (format!("{root}/alerts"), a.to_string().into_bytes()),
                (format!("{root}/evidence/{event_id}/clean"), picture),
                (format!("{root}/evidence/{event_id}/manifest-{}", sealed.seq), manifest),
            ],
        )
    }

    fn pubkey(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("keys/device.pub")).unwrap().trim().to_string()
    }
}

fn publish_all(port: u16, msgs: &[(String, Vec<u8>)]) {
    for (topic, payload) in msgs {
        let mut c = std::process::Command::new("mosquitto_pub");
        c.args(["-h", "127.0.0.1", "-p", &port.to_string(), "-q", "1", "-t", topic, "-s"]);
        c.stdin(std::process::Stdio::piped());
        let mut child = c.spawn().unwrap();
        use std::io::Write;
        child.stdin.take().unwrap().write_all(payload).unwrap();
        assert!(child.wait().unwrap().success());
    }
}

fn wait_integrity(console: &Console, cookie: &str, event_id: &str) -> Value {
    let t0 = Instant::now();
    loop {
        let (code, body) = console.get(cookie, &format!("/api/events/{event_id}"));
        if code == 200 {
            let v: Value = serde_json::from_str(&body).unwrap();
            if !v["event"]["integrity"].is_null() {
                return v;
            }
        }
        assert!(t0.elapsed() < Duration::from_secs(30), "no integrity verdict for {event_id}; log:\n{}", console.log_text());
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn sealed_evidence_verifies_and_tampering_is_flagged() {
    let dir = tempfile::tempdir().unwrap();
    let broker = broker();
    let db = format!("sqlite:{}", dir.path().join("console.db").display());
    let console = Console::start(dir.path(), broker.port, &db);
    let (cookie, _) = console.login("admin", "admin-password-1");
    let mut dev = Device::new("box-sealed");
    publish_all(broker.port, &[("hawkeye/box-sealed/pubkey".into(), dev.pubkey().into_bytes())]);

    let (good, msgs) = dev.event(1, Tamper::Nothing);
    publish_all(broker.port, &msgs);
    let v = wait_integrity(&console, &cookie, &good);
    assert_eq!(v["event"]["integrity"], "verified", "{v}");
    assert_eq!(v["evidence"], json!(["clean"]));

    let (bad_picture, msgs) = dev.event(2, Tamper::Picture);
    publish_all(broker.port, &msgs);
    let v = wait_integrity(&console, &cookie, &bad_picture);
    let why = v["event"]["integrity"].as_str().unwrap();
    assert!(why.starts_with("FAILED") && why.contains("evidence clean does not hash"), "{why}");

    let (bad_manifest, msgs) = dev.event(3, Tamper::Manifest);
    publish_all(broker.port, &msgs);
    let v = wait_integrity(&console, &cookie, &bad_manifest);
    let why = v["event"]["integrity"].as_str().unwrap();
    assert!(why.starts_with("FAILED") && why.contains("does not hash to what its alert says") && why.contains("signature does not match"), "{why}");

    // a manifest left out: the next one does not link to the one before it that the console has
    let _ = dev.event(4, Tamper::Nothing);
    let (after_gap, msgs) = dev.event(5, Tamper::Nothing);
    publish_all(broker.port, &msgs);
    let v = wait_integrity(&console, &cookie, &after_gap);
    assert_eq!(v["event"]["integrity"], "verified", "a gap alone is not a break: {v}");

    // the chain: a manifest whose predecessor is here but does not match — a forged one
    // signed by another key, published under the same device, for the next seq
    let mut forger = Device::new("box-sealed");
    for i in 1..=5 {
        let _ = forger.event(100 + i, Tamper::Nothing);
    }
    let (forged, msgs) = forger.event(106, Tamper::Nothing);
    publish_all(broker.port, &msgs);
    let v = wait_integrity(&console, &cookie, &forged);
    let why = v["event"]["integrity"].as_str().unwrap();
    assert!(why.contains("another key") && why.contains("signature does not match") && why.contains("chain broken"), "{why}");

    // a device that announces another key: the alarm shows, the known key stays
    publish_all(broker.port, &[("hawkeye/box-sealed/pubkey".into(), forger.pubkey().into_bytes())]);
    let t0 = Instant::now();
    loop {
        let (_, body) = console.get(&cookie, "/api/devices");
        let devices: Vec<Value> = serde_json::from_str(&body).unwrap();
        let d = devices.iter().find(|d| d["device_id"] == "box-sealed").unwrap();
        if d["key_alarm"].is_string() {
            assert_eq!(d["pubkey"], dev.pubkey().as_str());
            assert_eq!(d["key_source"], "first-use");
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(20), "no key alarm: {d}");
        std::thread::sleep(Duration::from_millis(200));
    }
    // an admin who knows why it changed accepts the new key; the alarm clears, and the
    // device's next evidence verifies against it
    let (cookie_admin, csrf) = console.login("admin", "admin-password-1");
    let (code, body) = console.post(&cookie_admin, &csrf, "/api/devices/box-sealed/accept-key", &json!({}));
    assert_eq!(code, 200, "{body}");
    let (code, _) = console.post(&cookie_admin, "wrong-token", "/api/devices/box-sealed/accept-key", &json!({}));
    assert_eq!(code, 403, "a request without the session's CSRF token is refused");
    let (_, body) = console.get(&cookie, "/api/devices");
    let devices: Vec<Value> = serde_json::from_str(&body).unwrap();
    let d = devices.iter().find(|d| d["device_id"] == "box-sealed").unwrap();
    assert!(d["key_alarm"].is_null() && d["pubkey"] == forger.pubkey().as_str() && d["key_source"] == "accepted", "{d}");
    let (after_accept, msgs) = forger.event(107, Tamper::Nothing);
    publish_all(broker.port, &msgs);
    let v = wait_integrity(&console, &cookie, &after_accept);
    assert_eq!(v["event"]["integrity"], "verified", "{v}");

    let (_, metrics) = console.get(&cookie, "/metrics");
    let failures: f64 = metrics.lines().find_map(|l| l.strip_prefix("hawkeye_console_integrity_failures_total ")).unwrap().parse().unwrap();
    assert!(failures >= 4.0, "{metrics}");
    // the alert list shows them as tampered
    let (_, list) = console.get(&cookie, "/api/events?device=box-sealed");
    let list: Vec<Value> = serde_json::from_str(&list).unwrap();
    assert_eq!(list.iter().filter(|e| e["integrity"].as_str().is_some_and(|i| i.starts_with("FAILED"))).count(), 3, "{list:?}");
}

#[test]
fn a_chunked_picture_is_put_together_and_checked() {
    let dir = tempfile::tempdir().unwrap();
    let broker = broker();
    let db = format!("sqlite:{}", dir.path().join("console.db").display());
    let console = Console::start(dir.path(), broker.port, &db);
    let (cookie, _) = console.login("admin", "admin-password-1");
    let mut a = alert("box-c", 1, 1);
    let event_id = a["event_id"].as_str().unwrap().to_string();
    let blob: Vec<u8> = (0..700_000u32).map(|i| (i % 251) as u8).collect();
    a["evidence"] = json!([{ "name": "clip", "sha256": hawkeye::evidence::seal::sha256_hex(&blob), "bytes": blob.len() }]);
    let topic = format!("hawkeye/box-c/evidence/{event_id}/clip");
    let chunk = 262_144;
    let n = blob.len().div_ceil(chunk);
    let index = json!({ "topic": topic, "bytes": blob.len(), "sha256": hawkeye::evidence::seal::sha256_hex(&blob), "chunks": n, "chunk_bytes": chunk, "chunk_topic": format!("{topic}/chunk/{{i}}") });
    let mut msgs = vec![("hawkeye/box-c/alerts".to_string(), a.to_string().into_bytes()), (format!("{topic}/index"), index.to_string().into_bytes())];
    // out of order, one twice
    for i in [2usize, 0, 1, 0] {
        msgs.push((format!("{topic}/chunk/{i}"), blob[i * chunk..((i + 1) * chunk).min(blob.len())].to_vec()));
    }
    publish_all(broker.port, &msgs);
    let t0 = Instant::now();
    loop {
        let (code, _, body) = common::console::http_raw(console.port, "GET", &format!("/api/events/{event_id}/evidence/clip"), &[("Cookie", &cookie)], None).expect("console answers");
        if code == 200 {
            assert_eq!(body, blob);
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(30), "the chunked clip never arrived; log:\n{}", console.log_text());
        std::thread::sleep(Duration::from_millis(200));
    }
}
