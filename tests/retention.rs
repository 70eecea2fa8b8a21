//! Evidence retention on real files and the real daemon: old delivered evidence is retired
//! (deleted, with a signed record that keeps `hawkeye verify` passing), the disk cap deletes the
//! oldest delivered evidence early, and evidence still waiting for the broker is never deleted.

mod common;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

use common::daemon::Daemon;
use common::mqtt::Subscriber;
use hawkeye::evidence::retention::{sweep, RetentionStats};
use hawkeye::evidence::{verify_dir, DeviceKey, EvidenceStore, ManifestInput, Sealer, VerifyOptions};

const DAY: u64 = 86400;

/// Seals one event with a real JPEG, as the daemon does.
fn seal_event(store: &EvidenceStore, sealer: &Mutex<Sealer>, id: &str) -> PathBuf {
    let rgb = vec![90u8; 64 * 48 * 3];
    let snap = store.save_jpeg(id, "clean", &rgb, 64, 48).unwrap();
    sealer
        .lock()
        .unwrap()
        .seal(ManifestInput {
            event_id: id.into(),
            state: "new".into(),
            kind: "dumping".into(),
            violation: "illegal dumping".into(),
            device_id: "box".into(),
            camera_id: "cam".into(),
            zone_id: "z".into(),
            location: Default::default(),
            time: chrono::Utc::now(),
            model_name: "m".into(),
            model_sha256: "00".into(),
            confidence: 0.9,
            dwell_s: 10.0,
            files: vec![(snap.name.clone(), snap.path.clone())],
        })
        .unwrap();
    store.dir().join(id)
}

/// Sets every file of an event to `days` ago (the real `touch`).
fn age(dir: &Path, days: u64) {
    for f in std::fs::read_dir(dir).unwrap().flatten() {
        let st = Command::new("touch").arg("-d").arg(format!("{days} days ago")).arg(f.path()).status().unwrap();
        assert!(st.success());
    }
}

#[test]
fn expired_and_over_cap_evidence_is_retired_undelivered_never_and_the_chain_still_verifies() {
    let state = tempfile::tempdir().unwrap();
    let key = DeviceKey::load_or_create(&state.path().join("keys")).unwrap();
    let store = EvidenceStore::new(&state.path().join("evidence"));
    let sealer = Mutex::new(Sealer::open(store.dir(), key).unwrap());
    let old = seal_event(&store, &sealer, "ev-old");
    let old_unsent = seal_event(&store, &sealer, "ev-old-unsent");
    let young_a = seal_event(&store, &sealer, "ev-young-a");
    let young_b = seal_event(&store, &sealer, "ev-young-b");
    age(&old, 40);
    age(&old_unsent, 41);
    age(&young_a, 5);
    age(&young_b, 1);
    let pending: HashSet<String> = ["ev-old-unsent".to_string()].into();
    let stats = RetentionStats::default();
    let retain = Duration::from_secs(30 * DAY);

    let p = sweep(&sealer, &pending, retain, 1 << 30, &stats);
    assert_eq!(p.expired, vec!["ev-old".to_string()]);
    assert!(!old.exists(), "expired and delivered: deleted");
    assert!(old_unsent.exists() && young_a.exists() && young_b.exists());
    let report = verify_dir(store.dir(), &VerifyOptions::default());
    assert!(report.failures.is_empty(), "{report}");
    assert_eq!((report.retired, report.manifests_ok), (1, 3), "{report}");

    // a cap that fits about one event: the oldest delivered young event goes early, the
    // undelivered one stays even though it is the oldest
    let one = std::fs::read_dir(&young_b).unwrap().flatten().map(|f| f.metadata().unwrap().len()).sum::<u64>();
    let p = sweep(&sealer, &pending, retain, one * 2 + one / 2, &stats);
    assert_eq!(p.early, vec!["ev-young-a".to_string()]);
    assert!(!young_a.exists() && young_b.exists() && old_unsent.exists());
    assert_eq!(stats.early.load(std::sync::atomic::Ordering::Relaxed), 1);
    // only undelivered and the newest left, still over a tiny cap: reported, not deleted
    let all: HashSet<String> = ["ev-old-unsent".to_string(), "ev-young-b".to_string()].into();
    let p = sweep(&sealer, &all, retain, 10, &stats);
    assert!(p.early.is_empty() && p.expired.is_empty() && p.over_cap_bytes > 0);
    assert!(young_b.exists() && old_unsent.exists());
    let report = verify_dir(store.dir(), &VerifyOptions::default());
    assert!(report.failures.is_empty(), "{report}");
    assert_eq!(report.retired, 2);

    // deleting evidence by hand is not retirement: verify names the manifest
    std::fs::remove_dir_all(&young_b).unwrap();
    let report = verify_dir(store.dir(), &VerifyOptions::default());
    let f = report.first_failure().expect("a removed event is caught");
    assert!(f.path.starts_with(&young_b) && f.reason.contains("does not retire it"), "{f:?}");

    // and a forged retirement record does not verify
    let rlog = store.dir().join("retired.log");
    let text = std::fs::read_to_string(&rlog).unwrap();
    let chain = std::fs::read_to_string(store.dir().join("chain.log")).unwrap();
    let line = chain.lines().find(|l| l.contains("ev-young-b")).unwrap();
    std::fs::write(&rlog, format!("{text}{line} 2026-12-01T00:00:00.000Z expired {}\n", "00".repeat(64))).unwrap();
    let report = verify_dir(store.dir(), &VerifyOptions::default());
    let f = report.first_failure().expect("forged record caught");
    assert!(f.path.ends_with("retired.log") && f.reason.contains("not a retirement record signed"), "{f:?}");
}

/// The daemon's own sweeps with a retention of a few seconds: delivered evidence is retired and
/// `hawkeye verify` passes; with the broker unreachable the same evidence stays.
#[test]
fn the_daemon_retires_delivered_evidence_and_keeps_undelivered() {
    let Some(model) = common::model::yolox_nano("the_daemon_retires_delivered_evidence") else { return };
    let retention = "\n[evidence]\nretain_days = 0.0001\nsweep_s = 1\n"; // 8.6 s
    let camera = format!("{retention}{}{}", common::config::vtest_camera("cam-ret"), common::config::walkway_zone(1.0, 2.0, 300.0));

    // broker up: alerts delivered, evidence retired after ~9 s
    let broker = common::broker::mosquitto();
    let dir = tempfile::tempdir().unwrap();
    let config = common::config::write(dir.path(), broker.port, &model, &camera);
    let sub = Subscriber::new(broker.port, "hawkeye/#");
    let daemon = Daemon::start(&config);
    let alert = sub.wait_for("an alert", Duration::from_secs(90), |m| m.topic == "hawkeye/test-box/alerts" && m.json()["state"] == "new").json();
    let event_dir = dir.path().join("state/evidence").join(alert["event_id"].as_str().unwrap());
    assert!(event_dir.is_dir());
    let hb = sub.wait_for("a sweep that retired it", Duration::from_secs(60), |m| {
        m.topic == "hawkeye/test-box/heartbeat" && m.json()["evidence"]["deleted_expired"].as_u64() >= Some(1)
    });
    assert!(hb.json()["evidence"]["kept_undelivered"].is_u64());
    assert!(daemon.signal_and_wait("TERM").success());
    let retired = std::fs::read_to_string(dir.path().join("state/evidence/retired.log")).unwrap();
    assert!(retired.contains(alert["event_id"].as_str().unwrap()), "{retired}");
    assert!(!event_dir.exists(), "delivered and older than retain_days: deleted");
    let key = std::fs::read_to_string(dir.path().join("state/keys/device.pub")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_hawkeye")).args(["verify", dir.path().join("state/evidence").to_str().unwrap(), "--pubkey", key.trim()]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    assert!(String::from_utf8_lossy(&out.stdout).contains("retired by evidence retention"));

    // broker unreachable: the alert and its evidence wait in the outbox, and stay on disk
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let dir2 = tempfile::tempdir().unwrap();
    let config2 = common::config::write(dir2.path(), closed, &model, &camera);
    let log = dir2.path().join("daemon.log");
    let daemon = Daemon::start_logged(&config2, &log);
    let evidence = dir2.path().join("state/evidence");
    let mut waited = 0;
    let events = loop {
        let events: Vec<PathBuf> = std::fs::read_dir(&evidence).into_iter().flatten().flatten().map(|d| d.path()).filter(|p| p.is_dir()).collect();
        if !events.is_empty() || waited > 900 {
            break events;
        }
        std::thread::sleep(Duration::from_millis(100));
        waited += 1;
    };
    assert!(!events.is_empty(), "an event was raised offline");
    std::thread::sleep(Duration::from_secs(15)); // well past retain_days, several sweeps
    for e in &events {
        assert!(e.is_dir(), "{} was deleted before delivery", e.display());
    }
    assert!(!std::fs::read_to_string(evidence.join("retired.log")).unwrap_or_default().lines().any(|l| events.iter().any(|e| l.contains(e.file_name().unwrap().to_str().unwrap()))));
    assert!(daemon.signal_and_wait("TERM").success());
}

/// A daemon under libfaketime, whose wall clock the test steps through a timestamp file
/// (`FAKETIME_NO_CACHE=1` rereads it on every call). The monotonic clock and file times stay
/// real (`FAKETIME_DONT_FAKE_MONOTONIC=1`, `NO_FAKE_STAT=1`), as with a real clock step.
struct FakeTimeDaemon(std::process::Child);

const LIBFAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

impl FakeTimeDaemon {
    fn start(config: &Path, offset_file: &Path, log: &Path) -> FakeTimeDaemon {
        assert!(Path::new(LIBFAKETIME).is_file(), "{LIBFAKETIME} missing: scripts/setup.sh installs faketime");
        let child = Command::new(env!("CARGO_BIN_EXE_hawkeye"))
            .args(["run", config.to_str().unwrap()])
            .env("RUST_LOG", "warn,hawkeye=info")
            .env("NO_COLOR", "1")
            .env("LD_PRELOAD", LIBFAKETIME)
            .env("FAKETIME_TIMESTAMP_FILE", offset_file)
            .env("FAKETIME_NO_CACHE", "1")
            .env("FAKETIME_DONT_FAKE_MONOTONIC", "1")
            .env("NO_FAKE_STAT", "1")
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .unwrap();
        FakeTimeDaemon(child)
    }

    fn stop(mut self) -> std::process::ExitStatus {
        assert!(Command::new("kill").args(["-TERM", &self.0.id().to_string()]).status().unwrap().success());
        for _ in 0..200 {
            if let Some(st) = self.0.try_wait().unwrap() {
                return st;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("hawkeye did not stop within 20 s");
    }
}

impl Drop for FakeTimeDaemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The real binary's wall clock stepped +40 days while it runs, with retain_days = 1 and a
/// sweep every second: the delivered events stay (their age is measured on the anchored
/// clock), the jump is logged once at ERROR with its size and counted in the heartbeat.
#[test]
fn a_forward_clock_step_does_not_expire_delivered_evidence() {
    let Some(model) = common::model::yolox_nano("a_forward_clock_step_does_not_expire_delivered_evidence") else { return };
    let camera = format!("\n[evidence]\nretain_days = 1\nsweep_s = 1\n{}{}", common::config::vtest_camera("cam-clock"), common::config::walkway_zone(1.0, 2.0, 300.0));
    let broker = common::broker::mosquitto();
    let dir = tempfile::tempdir().unwrap();
    let config = common::config::write(dir.path(), broker.port, &model, &camera);
    let offset = dir.path().join("faketime.rc");
    std::fs::write(&offset, "+0\n").unwrap();
    let sub = Subscriber::new(broker.port, "hawkeye/test-box/#");
    let log = dir.path().join("daemon.log");
    let daemon = FakeTimeDaemon::start(&config, &offset, &log);
    let alert = sub.wait_for("an alert", Duration::from_secs(120), |m| m.topic == "hawkeye/test-box/alerts" && m.json()["state"] == "new").json();
    let event = alert["event_id"].as_str().unwrap().to_string();
    let evidence = dir.path().join("state/evidence");
    assert!(evidence.join(&event).is_dir());
    // delivered: a sweep well after the alert found nothing waiting in the outbox
    std::thread::sleep(Duration::from_secs(3));
    let mark = sub.count();
    sub.wait_for_after(mark, "a sweep with nothing undelivered", Duration::from_secs(60), |m| {
        m.topic == "hawkeye/test-box/heartbeat" && m.json()["evidence"]["kept_undelivered"] == 0
    });

    std::fs::write(&offset, "+40d\n").unwrap();
    let mark = sub.count();
    let hb = sub.wait_for_after(mark, "the jump counted", Duration::from_secs(30), |m| {
        m.topic == "hawkeye/test-box/heartbeat" && m.json()["evidence"]["clock_jumps"].as_u64() >= Some(1)
    });
    let offset_s = hb.json()["evidence"]["clock_offset_s"].as_i64().unwrap();
    assert!((offset_s - 40 * 86400).abs() < 600, "offset {offset_s}");
    // several more sweeps on the stepped clock
    std::thread::sleep(Duration::from_secs(5));
    let last = sub.all().into_iter().rev().find(|m| m.topic == "hawkeye/test-box/heartbeat").unwrap().json();
    assert_eq!(last["evidence"]["clock_jumps"], 1, "one step, counted once: {last}");
    assert_eq!(last["evidence"]["deleted_expired"], 0, "{last}");
    assert!(daemon.stop().success());

    let mut events: Vec<String> = sub.all().iter().filter(|m| m.topic == "hawkeye/test-box/alerts" && m.json()["state"] == "new").map(|m| m.json()["event_id"].as_str().unwrap().to_string()).collect();
    events.dedup();
    for e in &events {
        assert!(evidence.join(e).is_dir(), "{e} was deleted after the clock step");
    }
    assert!(std::fs::read_to_string(evidence.join("retired.log")).unwrap_or_default().is_empty());
    let text = std::fs::read_to_string(&log).unwrap();
    let jumps: Vec<&str> = text.lines().filter(|l| l.contains("wall clock jumped")).collect();
    assert_eq!(jumps.len(), 1, "logged once: {jumps:?}");
    assert!(jumps[0].contains("ERROR") && jumps[0].contains("+40d"), "{}", jumps[0]);
}
