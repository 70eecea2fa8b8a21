//! The real daemon and a damaged `chain.log`: two runs raise alerts; the last byte of chain.log
//! is damaged (a torn write), the daemon restarts anyway and raises new alerts; garbage is
//! appended, and again. `hawkeye verify --pubkey … --head-from <saved alerts>` explains both
//! segment breaks and verifies everything. Then the oldest event deleted, the newest manifest
//! deleted, and chain.log truncated are each reported with exit code 1.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::daemon::Daemon;
use common::mqtt::Subscriber;

const ALERTS: &str = "hawkeye/test-box/alerts";

/// Runs the daemon until `n` more `new` alerts arrived, then stops it; returns its log.
fn run_for_alerts(config: &Path, sub: &Subscriber, n: usize, log: &Path) -> String {
    let mark = sub.count();
    let daemon = Daemon::start_logged(config, log);
    for k in 0..n {
        let seen = sub.count();
        sub.wait_for_after(seen.max(mark), &format!("new alert {} of {n}", k + 1), Duration::from_secs(120), |m| m.topic == ALERTS && m.json()["state"] == "new");
    }
    assert!(daemon.signal_and_wait("TERM").success());
    fs::read_to_string(log).unwrap()
}

fn verify(evidence: &Path, args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_hawkeye")).arg("verify").arg(evidence).args(args).output().unwrap();
    (out.status.code(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap().flatten() {
        let dst = to.join(e.file_name());
        if e.path().is_dir() {
            copy_dir(&e.path(), &dst);
        } else {
            fs::copy(e.path(), dst).unwrap();
        }
    }
}

/// A copy of the state directory to damage.
fn state_copy(state: &Path) -> (tempfile::TempDir, PathBuf) {
    let t = tempfile::tempdir().unwrap();
    copy_dir(state, &t.path().join("state"));
    let ev = t.path().join("state/evidence");
    (t, ev)
}

#[test]
fn a_damaged_chain_tail_does_not_keep_the_daemon_down_and_verify_explains_it() {
    let Some(model) = common::model::yolox_nano("a_damaged_chain_tail_does_not_keep_the_daemon_down") else { return };
    let broker = common::broker::mosquitto();
    let dir = tempfile::tempdir().unwrap();
    let camera = format!("{}{}", common::config::vtest_camera("cam-dmg"), common::config::walkway_zone(1.0, 2.0, 300.0));
    let config = common::config::write(dir.path(), broker.port, &model, &camera);
    let sub = Subscriber::new(broker.port, "hawkeye/test-box/#");
    let state = dir.path().join("state");
    let evidence = state.join("evidence");
    let chain = evidence.join("chain.log");

    // two runs (one long event each on this footage): the chain continues across a restart
    run_for_alerts(&config, &sub, 1, &dir.path().join("run1.log"));
    run_for_alerts(&config, &sub, 1, &dir.path().join("run1b.log"));
    let before = fs::read_to_string(&chain).unwrap();
    assert!(before.lines().count() >= 2, "{before}");

    // a torn write: the last byte (the newline) damaged
    let mut b = fs::read(&chain).unwrap();
    *b.last_mut().unwrap() ^= 0x01;
    fs::write(&chain, &b).unwrap();
    let log2 = run_for_alerts(&config, &sub, 1, &dir.path().join("run2.log"));
    assert!(log2.contains("ERROR") && log2.contains("damaged tail") && log2.contains("chain.log.damaged-"), "{log2}");

    // garbage appended
    let mut b = fs::read(&chain).unwrap();
    b.extend_from_slice(b"\x00\xffnot a chain line\n12 x\n");
    fs::write(&chain, &b).unwrap();
    let log3 = run_for_alerts(&config, &sub, 1, &dir.path().join("run3.log"));
    assert!(log3.contains("damaged tail"), "{log3}");

    // what a consumer saved: every alert, one JSON per line
    let alerts: Vec<serde_json::Value> = sub.all().iter().filter(|m| m.topic == ALERTS).map(|m| m.json()).collect();
    let saved = dir.path().join("alerts.jsonl");
    fs::write(&saved, alerts.iter().map(|a| format!("{a}\n")).collect::<String>()).unwrap();
    let newest = alerts.iter().filter_map(|a| a["manifest"]["seq"].as_u64()).max().unwrap();
    let key = fs::read_to_string(state.join("keys/device.pub")).unwrap().trim().to_string();

    let (code, text) = verify(&evidence, &["--pubkey", &key, "--head-from", saved.to_str().unwrap()]);
    eprintln!("{text}");
    assert_eq!(code, Some(0), "{text}");
    assert_eq!(text.matches("note: segment break after seq").count(), 2, "{text}");
    assert!(text.contains("its line was in the damaged tail") && text.contains("authentic (pinned key)"), "{text}");
    assert!(text.contains(&format!("the chain reaches the given head, seq {newest}")), "{text}");
    // every alert's manifest is in the chain with the hash the alert carried
    for a in alerts.iter().filter(|a| a["manifest"].is_object()) {
        let h = format!("{}:{}", a["manifest"]["seq"], a["manifest"]["sha256"].as_str().unwrap());
        let (code, text) = verify(&evidence, &["--pubkey", &key, "--head", &h]);
        assert_eq!(code, Some(0), "{h}: {text}");
    }

    // the oldest event deleted by hand
    let (_t, ev) = state_copy(&state);
    let first = fs::read_to_string(ev.join("chain.log")).unwrap().lines().next().unwrap().split(' ').nth(1).unwrap().to_string();
    fs::remove_dir_all(ev.join(&first)).unwrap();
    let (code, text) = verify(&ev, &["--pubkey", &key, "--head-from", saved.to_str().unwrap()]);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains(&format!("{first}/manifest-1.json: missing")), "{text}");

    // the newest manifest deleted: named, and with its chain.log line gone too the head shows it
    let (_t, ev) = state_copy(&state);
    let text = fs::read_to_string(ev.join("chain.log")).unwrap();
    let last = text.lines().last().unwrap().to_string();
    let newest_event = last.split(' ').nth(1).unwrap();
    fs::remove_file(ev.join(newest_event).join(format!("manifest-{newest}.json"))).unwrap();
    let (code, out) = verify(&ev, &["--pubkey", &key]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains(&format!("manifest-{newest}.json: missing")), "{out}");
    fs::write(ev.join("chain.log"), text.strip_suffix(&format!("{last}\n")).unwrap()).unwrap();
    let (code, out) = verify(&ev, &["--pubkey", &key, "--head-from", saved.to_str().unwrap()]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains(&format!("truncated: the chain ends at seq {}", newest - 1)), "{out}");

    // chain.log truncated in the middle of a line
    let (_t, ev) = state_copy(&state);
    let b = fs::read(ev.join("chain.log")).unwrap();
    fs::write(ev.join("chain.log"), &b[..b.len() / 2]).unwrap();
    let (code, out) = verify(&ev, &["--pubkey", &key, "--head-from", saved.to_str().unwrap()]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("truncated") && out.contains("not in the chain"), "{out}");
}
