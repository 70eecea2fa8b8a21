//! `[[webhook]]` (issue 18): a city platform that takes alerts over HTTPS. Real `hawkeye run` on
//! vtest.avi with the real model, real mosquitto beside it, and a real HTTPS server (hyper +
//! rustls, certificate from a CA made by openssl) that answers 503 for a while, is then down, and
//! comes back while the daemon is SIGKILLed and restarted. Every alert the broker got reaches the
//! platform, in order, signed (HMAC-SHA256 checked here), with its evidence inline; an evidence
//! POST refused with 422 is kept aside and the queue goes on.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use common::config::{enable_telemetry, http_get, telemetry_port};
use common::daemon::Daemon;
use common::mqtt::{alert_key, check_alerts_in_order, Subscriber};
use common::platform::{Platform, Posted};
use sha2::Digest as _;

const LONG: Duration = Duration::from_secs(120);
const ALERTS: &str = "hawkeye/test-box/alerts";
const SECRET: &str = "city-platform-shared-secret";

fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !cond() {
        assert!(t0.elapsed() < LONG, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Checks the signature headers the way a platform does.
fn verify(p: &Posted) {
    let ts = p.header("x-hawkeye-timestamp").expect("timestamp header");
    let age = chrono::Utc::now().timestamp() - ts.parse::<i64>().expect("unix seconds");
    assert!((0..300).contains(&age), "stale timestamp {ts}");
    let want = format!("sha256={}", hawkeye::webhook::signature(SECRET.as_bytes(), ts, &p.body));
    assert_eq!(p.header("x-hawkeye-signature"), Some(want.as_str()), "bad signature on {}", String::from_utf8_lossy(&p.body));
    assert_eq!(p.header("x-hawkeye-device"), Some("test-box"));
    assert_eq!(p.header("content-type"), Some("application/json"));
}

fn alerts_at(platform: &Platform) -> Vec<Posted> {
    platform.accepted().into_iter().filter(|p| p.header("x-hawkeye-kind") == Some("alert")).collect()
}

fn metric(port: u16, line_start: &str) -> f64 {
    let (_, text) = http_get(port, "/metrics");
    text.lines().find(|l| l.starts_with(line_start)).and_then(|l| l.rsplit(' ').next()?.parse().ok()).unwrap_or_else(|| panic!("no {line_start} in /metrics"))
}

fn config(dir: &Path, broker: u16, model: &Path, platform: &Platform, ca: &Path) -> std::path::PathBuf {
    let camera = common::config::vtest_camera("cam-file") + &common::config::walkway_zone(1.0, 0.5, 2.0);
    let path = common::config::write(dir, broker, model, &camera);
    let webhook = format!(
        "\n[[webhook]]\nid = \"platform\"\nurl = \"{}\"\nsecret = \"{SECRET}\"\nca_file = \"{}\"\nevidence = \"inline\"\nbackoff_initial_s = 0.2\nbackoff_max_s = 1.0\n",
        platform.url("/api/hawkeye"),
        ca.display()
    );
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str(&webhook);
    std::fs::write(&path, text).unwrap();
    enable_telemetry(&path);
    path
}

#[test]
fn every_alert_reaches_an_https_platform_through_server_errors_an_outage_and_a_daemon_kill() {
    let Some(model) = common::model::yolox_nano("every_alert_reaches_an_https_platform_through_server_errors_an_outage_and_a_daemon_kill") else { return };
    let pki = tempfile::tempdir().unwrap();
    common::pki::make_ca_and_server_cert(pki.path());
    let read = |n: &str| std::fs::read(pki.path().join(n)).unwrap();
    let mut platform = Platform::start_tls(&read("server.crt"), &read("server.key"));
    // the first evidence file is refused for good (a platform that does not take clips, say)
    platform.refuse_next("evidence", 422, 1);
    let broker = common::broker::mosquitto();
    let sub = Subscriber::new(broker.port, ALERTS);
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), broker.port, &model, &platform, &pki.path().join("ca.crt"));
    let daemon = Daemon::start_logged(&cfg, &dir.path().join("run1.log"));
    let port = telemetry_port(&cfg);

    // 1. alerts arrive, signed, the same JSON as on MQTT; evidence inline, matching its hashes
    wait_until("an alert and two evidence files at the platform", || {
        alerts_at(&platform).len() >= 2 && platform.accepted().iter().filter(|p| p.header("x-hawkeye-kind") == Some("evidence")).count() >= 2
    });
    let first = alerts_at(&platform)[0].clone();
    verify(&first);
    let on_mqtt = sub.wait_for("the platform's first alert on MQTT", LONG, |m| m.topic == ALERTS && alert_key(&m.json()) == alert_key(&first.json()));
    assert_eq!(on_mqtt.json(), first.json(), "the platform gets the alert JSON the broker gets");
    for ev in platform.accepted().iter().filter(|p| p.header("x-hawkeye-kind") == Some("evidence")) {
        verify(ev);
        let v = ev.json();
        let data = decode_base64(v["data_base64"].as_str().unwrap());
        assert_eq!(data.len() as u64, v["bytes"].as_u64().unwrap());
        assert_eq!(hex::encode(sha2::Sha256::digest(&data)), v["sha256"].as_str().unwrap(), "evidence bytes match their hash");
    }
    // a picture's hash is the one its alert names
    let pictures: BTreeMap<String, String> =
        alerts_at(&platform).iter().flat_map(|a| a.json()["evidence"].as_array().cloned().unwrap_or_default()).map(|e| (e["sha256"].as_str().unwrap().to_string(), e["name"].as_str().unwrap().to_string())).collect();
    assert!(
        platform.accepted().iter().filter(|p| p.header("x-hawkeye-kind") == Some("evidence")).any(|p| pictures.contains_key(p.json()["sha256"].as_str().unwrap())),
        "no delivered evidence file is one an alert names"
    );
    let rejected = dir.path().join("state/webhook/platform/rejected");
    let kept: Vec<_> = std::fs::read_dir(&rejected).expect("a rejected folder").map(|e| e.unwrap().path()).collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
    let kept: serde_json::Value = serde_json::from_slice(&std::fs::read(&kept[0]).unwrap()).unwrap();
    assert_eq!(kept["status"], 422);
    assert_eq!(kept["kind"], "evidence");
    assert!(kept["body"]["data_base64"].is_string(), "the refused message is kept whole: {kept}");
    assert_eq!(metric(port, "hawkeye_webhook_rejected_total{webhook=\"platform\"}"), 1.0);

    // 2. the platform answers 503 for a while: the daemon retries, /healthz says so
    platform.answer(Some(503));
    let failed_before = platform.posted().iter().filter(|p| p.status == 503).count();
    wait_until("retries answered 503 and /healthz naming the webhook", || {
        let (code, body) = http_get(port, "/healthz");
        platform.posted().iter().filter(|p| p.status == 503).count() >= failed_before + 3 && code == 503 && body.contains("webhook platform failing")
    });
    assert!(metric(port, "hawkeye_webhook_failures_total{webhook=\"platform\"}") >= 3.0);

    // 3. then it is down altogether while alerts keep coming
    platform.stop();
    let mark = sub.all().iter().filter(|m| m.topic == ALERTS).count();
    wait_until("two more alerts on MQTT while the platform is down", || sub.all().iter().filter(|m| m.topic == ALERTS).count() >= mark + 2);

    // 4. the daemon is killed with messages in its webhook queue, and started again
    let queue = dir.path().join("state/webhook/platform/queue");
    let queued = std::fs::read_dir(&queue).unwrap().filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "msg")).count();
    assert!(queued >= 2, "{queued} messages queued for the platform");
    let killed = daemon.signal_and_wait("KILL");
    assert!(!killed.success());
    // the killed run's port file would name a closed port
    std::fs::remove_file(dir.path().join("state/telemetry.addr")).unwrap();
    let daemon = Daemon::start_logged(&cfg, &dir.path().join("run2.log"));
    let port = telemetry_port(&cfg);

    // 5. the platform comes back: everything the broker got arrives, in order
    platform.restart();
    platform.answer(None);
    std::thread::sleep(Duration::from_secs(3));
    let on_broker: Vec<serde_json::Value> = sub.all().iter().filter(|m| m.topic == ALERTS).map(|m| m.json()).collect();
    let want: BTreeSet<_> = on_broker.iter().map(alert_key).collect();
    wait_until("every alert the broker got, at the platform", || {
        let got: BTreeSet<_> = alerts_at(&platform).iter().map(|p| alert_key(&p.json())).collect();
        want.is_subset(&got)
    });
    let delivered = alerts_at(&platform);
    delivered.iter().for_each(verify);
    // in the order they were raised (device_seq), a repeat only of the very same message
    let (distinct, repeats) = check_alerts_in_order(delivered.iter().map(|p| p.json()));
    let refused = platform.posted().iter().filter(|p| p.status != 200).count();
    println!(
        "platform: {} alerts from the broker's {} delivered ({} repeats after the kill), {} evidence files, {} POSTs refused (503/422), queue now {}",
        distinct,
        want.len(),
        repeats,
        platform.accepted().iter().filter(|p| p.header("x-hawkeye-kind") == Some("evidence")).count(),
        refused,
        metric(port, "hawkeye_webhook_queue{webhook=\"platform\"}")
    );
    wait_until("/healthz ok again", || http_get(port, "/healthz").0 == 200);
    assert!(daemon.signal_and_wait("TERM").success());
}

fn decode_base64(s: &str) -> Vec<u8> {
    let val = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => panic!("not base64: {c}"),
    };
    let bytes: Vec<u8> = s.bytes().filter(|&c| c != b'=').map(val).collect();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for ch in bytes.chunks(4) {
        let n = ch.iter().enumerate().fold(0u32, |acc, (i, &b)| acc | (b as u32) << (18 - 6 * i));
        for i in 0..ch.len().saturating_sub(1) {
            out.push((n >> (16 - 8 * i)) as u8);
        }
    }
    out
}
