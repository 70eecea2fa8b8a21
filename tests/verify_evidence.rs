//! Sealing and `hawkeye verify` on real files: three sealed evidence sets verify; one flipped
//! byte in any kind of file (JPEG, manifest, signature, chain log) makes verify fail naming that
//! file; a removed manifest breaks the chain; a restarted sealer continues the chain; removed
//! oldest and newest events and a truncated chain are found; a damaged chain tail is moved
//! aside and the new segment verifies; "authentic" only with a pinned key (the real binary's
//! exit codes).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use hawkeye::config::Location;
use hawkeye::evidence::{verify_dir, DeviceKey, EvidenceStore, Head, ManifestInput, Sealer, VerifyOptions, VerifyReport};

/// Seals `n` events with real JPEGs under `state/evidence`; returns the evidence dir.
fn sealed_events(state: &Path, n: usize) -> PathBuf {
    let evidence = state.join("evidence");
    let store = EvidenceStore::new(&evidence);
    let mut sealer = Sealer::open(&evidence, DeviceKey::load_or_create(&state.join("keys")).unwrap()).unwrap();
    let existing = fs::read_to_string(evidence.join("chain.log")).map(|t| t.lines().count()).unwrap_or(0);
    for i in existing..existing + n {
        let id = format!("box-cam-zone-{i}");
        let rgb: Vec<u8> = (0..64 * 48 * 3).map(|k| ((k * (i + 3)) % 251) as u8).collect();
        let clean = store.save_jpeg(&id, "clean", &rgb, 64, 48).unwrap();
        let annotated = store.save_jpeg(&id, "annotated", &rgb.iter().map(|v| 255 - v).collect::<Vec<_>>(), 64, 48).unwrap();
        sealer
            .seal(ManifestInput {
                event_id: id,
                state: "new".into(),
                kind: "dumping".into(),
                violation: "illegal dumping".into(),
                device_id: "box".into(),
                camera_id: "cam".into(),
                zone_id: "zone".into(),
                location: Location { lat: Some(29.8), lon: Some(121.5), address: "street".into() },
                time: chrono::Utc::now(),
                model_name: "m".into(),
                model_sha256: "0".repeat(64),
                confidence: 0.8,
                dwell_s: 12.0,
                files: vec![("clean".into(), clean.path), ("annotated".into(), annotated.path)],
            })
            .unwrap();
    }
    evidence
}

/// Verifies against the stored key (consistency), no head.
fn check(evidence: &Path) -> VerifyReport {
    verify_dir(evidence, &VerifyOptions::default())
}

/// Verifies against the pinned key, optionally with a head.
fn pinned(evidence: &Path, head: Option<Head>) -> VerifyReport {
    let key = fs::read_to_string(evidence.join("../keys/device.pub")).unwrap().trim().to_string();
    verify_dir(evidence, &VerifyOptions { pubkey: Some(key), head })
}

/// The head of `chain.log` as a consumer saw it: the last manifest line.
fn head_of(evidence: &Path) -> Head {
    let text = fs::read_to_string(evidence.join("chain.log")).unwrap();
    let l = text.lines().rev().find(|l| !l.starts_with("segment")).unwrap();
    let p: Vec<&str> = l.split(' ').collect();
    Head { seq: p[0].parse().unwrap(), sha256: p[2].into() }
}

fn hawkeye_verify(args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_hawkeye")).arg("verify").args(args).output().unwrap();
    (out.status.code(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dst = to.join(e.file_name());
        if e.path().is_dir() {
            copy_dir(&e.path(), &dst);
        } else {
            fs::copy(e.path(), dst).unwrap();
        }
    }
}

fn flip_byte(path: &Path, at: usize) {
    let mut b = fs::read(path).unwrap();
    let i = at.min(b.len() - 1);
    b[i] ^= 0x01;
    fs::write(path, b).unwrap();
}

#[test]
fn sealed_evidence_verifies_and_every_flipped_byte_is_named() {
    let state = tempfile::tempdir().unwrap();
    let evidence = sealed_events(state.path(), 3);
    let ok = check(&evidence);
    assert!(ok.failures.is_empty(), "{ok}");
    assert_eq!((ok.manifests_ok, ok.files_ok), (3, 6));
    assert!(ok.warnings.iter().all(|w| w.starts_with("no head given")), "{:?}", ok.warnings);

    let targets = [
        "box-cam-zone-1/clean.jpg",
        "box-cam-zone-2/annotated.jpg",
        "box-cam-zone-0/manifest-1.json",
        "box-cam-zone-1/manifest-2.json",
        "box-cam-zone-2/manifest-3.sig",
        "chain.log",
    ];
    for (k, rel) in targets.iter().enumerate() {
        let copy = tempfile::tempdir().unwrap();
        copy_dir(state.path(), copy.path());
        let ev = copy.path().join("evidence");
        let victim = ev.join(rel);
        // somewhere in the middle of the file (for chain.log: inside the second line's hash)
        let at = if *rel == "chain.log" { fs::read_to_string(&victim).unwrap().lines().next().unwrap().len() + 30 } else { 40 + 7 * k };
        flip_byte(&victim, at);
        let r = check(&ev);
        let f = r.first_failure().unwrap_or_else(|| panic!("a flipped byte in {rel} went unnoticed"));
        assert_eq!(f.path, victim, "flipped {rel}, blamed {}: {}", f.path.display(), f.reason);
    }
}

#[test]
fn a_removed_manifest_breaks_the_chain_and_a_restart_continues_it() {
    let state = tempfile::tempdir().unwrap();
    sealed_events(state.path(), 2);
    // a restarted daemon (new Sealer, same key) continues the same chain
    let evidence = sealed_events(state.path(), 2);
    let r = check(&evidence);
    assert!(r.failures.is_empty(), "{r}");
    assert_eq!(r.manifests_ok, 4);

    let gone = evidence.join("box-cam-zone-1/manifest-2.json");
    fs::remove_file(&gone).unwrap();
    let r = check(&evidence);
    assert_eq!(r.first_failure().unwrap().path, gone);

    // the CLI says the same, with exit code 1
    let (code, text) = hawkeye_verify(&[evidence.to_str().unwrap()]);
    assert_eq!(code, Some(1));
    assert!(text.contains("FAILED") && text.contains("manifest-2.json"), "{text}");
}

#[test]
fn a_foreign_public_key_fails_verification() {
    let state = tempfile::tempdir().unwrap();
    let evidence = sealed_events(state.path(), 1);
    let other = tempfile::tempdir().unwrap();
    let foreign = DeviceKey::load_or_create(other.path()).unwrap().public_key_hex();
    let r = verify_dir(&evidence, &VerifyOptions { pubkey: Some(foreign), head: None });
    assert!(!r.failures.is_empty(), "{r}");
    assert!(r.failures.iter().any(|f| f.path.ends_with("keys/device.pub") && f.reason.contains("not the pinned key")), "{r}");
}

#[test]
fn removed_oldest_and_newest_events_and_a_truncated_chain_are_found() {
    let state = tempfile::tempdir().unwrap();
    let evidence = sealed_events(state.path(), 4);
    let head = head_of(&evidence);
    let r = pinned(&evidence, Some(head.clone()));
    assert!(r.failures.is_empty() && r.authenticated && r.head_checked, "{r}");
    assert_eq!(r.chain_head, Some((4, head.sha256.clone())));

    // the oldest event deleted by hand
    let copy = tempfile::tempdir().unwrap();
    copy_dir(state.path(), copy.path());
    let ev = copy.path().join("evidence");
    fs::remove_dir_all(ev.join("box-cam-zone-0")).unwrap();
    let r = pinned(&ev, Some(head.clone()));
    assert!(r.failures.iter().any(|f| f.path.ends_with("box-cam-zone-0/manifest-1.json") && f.reason.contains("does not retire it")), "{r}");
    // ... and its chain.log line with it: the chain no longer starts at seq 1
    let log = ev.join("chain.log");
    let text = fs::read_to_string(&log).unwrap();
    fs::write(&log, text.lines().skip(1).map(|l| format!("{l}\n")).collect::<String>()).unwrap();
    let r = pinned(&ev, Some(head.clone()));
    assert!(r.failures.iter().any(|f| f.path == log && f.reason.contains("manifest 1 missing") && f.reason.contains("start at seq 1")), "{r}");

    // the newest event and its chain.log line removed: only the head shows it
    let copy = tempfile::tempdir().unwrap();
    copy_dir(state.path(), copy.path());
    let ev = copy.path().join("evidence");
    fs::remove_dir_all(ev.join("box-cam-zone-3")).unwrap();
    let log = ev.join("chain.log");
    let text = fs::read_to_string(&log).unwrap();
    fs::write(&log, text.lines().take(3).map(|l| format!("{l}\n")).collect::<String>()).unwrap();
    let r = pinned(&ev, None);
    assert!(r.failures.is_empty(), "without a head this cannot be seen: {r}");
    assert!(r.warnings.iter().any(|w| w.contains("cannot be ruled out")), "{r}");
    let r = pinned(&ev, Some(head.clone()));
    assert!(r.failures.iter().any(|f| f.reason.contains("truncated: the chain ends at seq 3") && f.reason.contains("manifests 4..4")), "{r}");
    // the binary: --head and --head-from a saved alert
    let key = fs::read_to_string(ev.join("../keys/device.pub")).unwrap();
    let (code, text) = hawkeye_verify(&[ev.to_str().unwrap(), "--pubkey", key.trim(), "--head", &format!("{}:{}", head.seq, head.sha256)]);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("truncated"), "{text}");
    let alerts = copy.path().join("alerts.jsonl");
    fs::write(&alerts, format!("{{\"state\":\"new\",\"manifest\":{{\"seq\":{},\"sha256\":\"{}\"}}}}\n{{\"state\":\"end\",\"manifest\":null}}\n", head.seq, head.sha256)).unwrap();
    let (code, text) = hawkeye_verify(&[ev.to_str().unwrap(), "--pubkey", key.trim(), "--head-from", alerts.to_str().unwrap()]);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("truncated"), "{text}");

    // chain.log truncated, the newest manifests still on disk: found even without a head
    let copy = tempfile::tempdir().unwrap();
    copy_dir(state.path(), copy.path());
    let ev = copy.path().join("evidence");
    let log = ev.join("chain.log");
    let text = fs::read_to_string(&log).unwrap();
    fs::write(&log, text.lines().take(2).map(|l| format!("{l}\n")).collect::<String>()).unwrap();
    let r = pinned(&ev, None);
    for seq in [3, 4] {
        assert!(r.failures.iter().any(|f| f.path.ends_with(format!("manifest-{seq}.json")) && f.reason.contains("not in the chain")), "{r}");
    }
}

#[test]
fn a_chain_may_start_after_retired_seqs_only() {
    let state = tempfile::tempdir().unwrap();
    let evidence = sealed_events(state.path(), 3);
    let sealer = Sealer::open(&evidence, DeviceKey::load_or_create(&state.path().join("keys")).unwrap()).unwrap();
    assert_eq!(sealer.retire("box-cam-zone-0", "expired").unwrap(), 1);
    // a chain.log compacted past the retired seq still accounts for seq 1
    let log = evidence.join("chain.log");
    let text = fs::read_to_string(&log).unwrap();
    fs::write(&log, text.lines().skip(1).map(|l| format!("{l}\n")).collect::<String>()).unwrap();
    let r = pinned(&evidence, Some(head_of(&evidence)));
    assert!(r.failures.is_empty(), "{r}");
    assert_eq!((r.retired, r.manifests_ok), (1, 2));
    // without the retirement record the same chain is missing its start
    fs::remove_file(evidence.join("retired.log")).unwrap();
    let r = pinned(&evidence, None);
    assert!(r.failures.iter().any(|f| f.reason.starts_with("manifest 1 missing")), "{r}");
}

#[test]
fn a_damaged_tail_is_moved_aside_and_verify_explains_the_segment() {
    let state = tempfile::tempdir().unwrap();
    let evidence = sealed_events(state.path(), 3);
    let head = head_of(&evidence);
    let log = evidence.join("chain.log");
    // the last byte (the newline) damaged, as a torn write leaves it
    flip_byte(&log, usize::MAX);
    let r = pinned(&evidence, None);
    assert!(r.failures.iter().any(|f| f.path == log && f.reason.contains("torn")), "verify sees the damage before a restart: {r}");
    // a restarted sealer repairs and continues; then garbage appended, and again
    sealed_events(state.path(), 1);
    let text = fs::read_to_string(&log).unwrap();
    fs::write(&log, format!("{text}\u{1}garbage that is no chain line\n")).unwrap();
    let evidence = sealed_events(state.path(), 1);
    let damaged: Vec<_> = fs::read_dir(&evidence).unwrap().flatten().filter(|e| e.file_name().to_string_lossy().starts_with("chain.log.damaged-")).collect();
    assert_eq!(damaged.len(), 2, "each damaged tail kept");
    let r = pinned(&evidence, Some(head_of(&evidence)));
    assert!(r.failures.is_empty(), "{r}");
    assert_eq!(r.manifests_ok, 5, "3 before, 1 between and 1 after the breaks, all verified: {r}");
    let breaks: Vec<&String> = r.notes.iter().filter(|n| n.starts_with("segment break")).collect();
    assert_eq!(breaks.len(), 2, "{r}");
    assert!(breaks[0].contains("after seq 2") && breaks[0].contains("continues at seq 4"), "{r}");
    assert!(r.notes.iter().any(|n| n.contains("manifest 3 (its line was in the damaged tail)")), "{r}");
    // the head the consumers saw before the damage is still in the chain
    assert!(pinned(&evidence, Some(head)).failures.is_empty());

    // retention retires a recovered manifest too (its chain.log line is in the damaged file)
    let sealer = Sealer::open(&evidence, DeviceKey::load_or_create(&state.path().join("keys")).unwrap()).unwrap();
    assert!(sealer.repair().is_none(), "a repaired chain opens clean");
    assert_eq!(sealer.retire("box-cam-zone-2", "expired").unwrap(), 1);
    let r = pinned(&evidence, None);
    assert!(r.failures.is_empty() && r.retired == 1 && r.manifests_ok == 4, "{r}");

    // a forged marker (say, to hide manifests) does not verify
    let text = fs::read_to_string(&log).unwrap();
    let forged = text.replacen(" 2 damaged_tail ", " 1 damaged_tail ", 1);
    assert_ne!(forged, text);
    fs::write(&log, forged).unwrap();
    let r = pinned(&evidence, None);
    assert!(r.failures.iter().any(|f| f.reason.contains("segment marker not signed")), "{r}");
}

#[test]
fn authentic_only_with_a_pinned_key_and_the_exit_codes_say_so() {
    let state = tempfile::tempdir().unwrap();
    let evidence = sealed_events(state.path(), 2);
    let dir = evidence.to_str().unwrap();
    let (code, text) = hawkeye_verify(&[dir]);
    assert_eq!(code, Some(3), "{text}");
    assert!(text.contains("consistent, NOT authenticated") && text.contains("--pubkey"), "{text}");
    let key = fs::read_to_string(state.path().join("keys/device.pub")).unwrap();
    let (code, text) = hawkeye_verify(&[dir, "--pubkey", key.trim()]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("authentic (pinned key)") && text.contains("cannot be ruled out"), "{text}");
    // a key file outside the state_dir pins; the one inside it does not
    let outside = tempfile::tempdir().unwrap();
    let pin = outside.path().join("box.pub");
    fs::write(&pin, &key).unwrap();
    assert_eq!(hawkeye_verify(&[dir, "--pubkey", pin.to_str().unwrap()]).0, Some(0));
    let inside = state.path().join("keys/device.pub");
    let (code, text) = hawkeye_verify(&[dir, "--pubkey", inside.to_str().unwrap()]);
    assert_eq!(code, Some(3), "{text}");
    // the stored key replaced (with the evidence re-signed or not): a mismatch with the pin
    let other = tempfile::tempdir().unwrap();
    let foreign = DeviceKey::load_or_create(other.path()).unwrap().public_key_hex();
    fs::write(&inside, format!("{foreign}\n")).unwrap();
    let (code, text) = hawkeye_verify(&[dir, "--pubkey", pin.to_str().unwrap()]);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("is not the pinned key"), "{text}");
    // bad arguments
    assert_eq!(hawkeye_verify(&[dir, "--head", "7"]).0, Some(2));
    assert_eq!(hawkeye_verify(&[dir, "--head-from", "/nonexistent/alerts.jsonl"]).0, Some(2));
}
