//! Sealing and `hawkeye verify` on real files: three sealed evidence sets verify; one flipped
//! byte in any kind of file (JPEG, manifest, signature, chain log) makes verify fail naming that
//! file; a removed manifest breaks the chain; a restarted sealer continues the chain.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use hawkeye::config::Location;
use hawkeye::evidence::{verify_dir, DeviceKey, EvidenceStore, ManifestInput, Sealer};

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
    let ok = verify_dir(&evidence, None);
    assert!(ok.first_failure.is_none(), "{ok}");
    assert_eq!((ok.manifests_ok, ok.files_ok), (3, 6));
    assert!(ok.warnings.is_empty(), "{:?}", ok.warnings);

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
        let r = verify_dir(&ev, None);
        let f = r.first_failure.unwrap_or_else(|| panic!("a flipped byte in {rel} went unnoticed"));
        assert_eq!(f.path, victim, "flipped {rel}, blamed {}: {}", f.path.display(), f.reason);
    }
}

#[test]
fn a_removed_manifest_breaks_the_chain_and_a_restart_continues_it() {
    let state = tempfile::tempdir().unwrap();
    sealed_events(state.path(), 2);
    // a restarted daemon (new Sealer, same key) continues the same chain
    let evidence = sealed_events(state.path(), 2);
    let r = verify_dir(&evidence, None);
    assert!(r.first_failure.is_none(), "{r}");
    assert_eq!(r.manifests_ok, 4);

    let gone = evidence.join("box-cam-zone-1/manifest-2.json");
    fs::remove_file(&gone).unwrap();
    let r = verify_dir(&evidence, None);
    assert_eq!(r.first_failure.unwrap().path, gone);

    // the CLI says the same, with exit code 1
    let out = Command::new(env!("CARGO_BIN_EXE_hawkeye")).args(["verify", evidence.to_str().unwrap()]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("FAILED") && text.contains("manifest-2.json"), "{text}");
}

#[test]
fn a_foreign_public_key_fails_verification() {
    let state = tempfile::tempdir().unwrap();
    let evidence = sealed_events(state.path(), 1);
    let other = tempfile::tempdir().unwrap();
    let foreign = DeviceKey::load_or_create(other.path()).unwrap().public_key_hex();
    let r = verify_dir(&evidence, Some(&foreign));
    assert!(r.first_failure.is_some(), "{r}");
}
