//! Sealing: each published evidence set gets a manifest (who, where, when, what, which model,
//! which files with their sha256), signed with the device key and linked to the previous
//! manifest by its sha256, so the manifests of a device form one hash chain.
//!
//! On disk, under the evidence directory:
//! - `<event_id>/manifest-<seq>.json`: the manifest, exactly the bytes that were signed;
//! - `<event_id>/manifest-<seq>.sig`: the Ed25519 signature, 128 hex digits;
//! - `chain.log`: one line per manifest, `<seq> <event_id> <manifest sha256>`, in order, and
//!   signed segment markers where a damaged tail was moved aside (see [`super::chain`]).

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::chain::{self, ChainLine};
use super::keys::{verify_signature, DeviceKey};
use crate::config::Location;

/// Manifest format identifier.
pub const MANIFEST_SCHEMA: &str = "hawkeye-evidence-manifest/1";

/// Sealing and verification errors, one line each.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SealError {
    #[error("evidence I/O: {0}")]
    Io(String),
    #[error("device key file {0} is damaged (expected 64 hex digits); restore it from a backup — a new key would not match the published public key")]
    BadKey(String),
    #[error("chain log: {0}")]
    Chain(String),
}

/// What a manifest says about one published evidence set.
#[derive(Clone, Debug)]
pub struct ManifestInput {
    pub event_id: String,
    pub state: String,
    pub kind: String,
    pub violation: String,
    pub device_id: String,
    pub camera_id: String,
    pub zone_id: String,
    pub location: Location,
    pub time: DateTime<Utc>,
    pub model_name: String,
    pub model_sha256: String,
    /// Highest score among the objects involved.
    pub confidence: f32,
    pub dwell_s: f64,
    /// Evidence files (name, path); paths must lie in the event's directory.
    pub files: Vec<(String, PathBuf)>,
}

/// One file as listed in a manifest.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ManifestFile {
    pub name: String,
    /// File name inside the event's directory.
    pub file: String,
    pub sha256: String,
    pub bytes: u64,
}

/// The signed manifest. Field order is the serialisation order (part of the format).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    pub schema: String,
    pub seq: u64,
    pub event_id: String,
    pub state: String,
    pub event_code: String,
    pub violation: String,
    pub device_id: String,
    pub camera_id: String,
    pub zone_id: String,
    pub location: Location,
    pub time: String,
    pub model: ManifestModel,
    pub confidence: f32,
    pub dwell_s: f64,
    pub files: Vec<ManifestFile>,
    pub prev_manifest_sha256: Option<String>,
    pub public_key: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ManifestModel {
    pub name: String,
    pub sha256: String,
}

/// The result of sealing one evidence set.
#[derive(Clone, Debug)]
pub struct Sealed {
    pub seq: u64,
    pub manifest_path: PathBuf,
    pub manifest_sha256: String,
    pub prev_manifest_sha256: Option<String>,
    pub signature_hex: String,
}

/// The device's manifest chain.
pub struct Sealer {
    dir: PathBuf,
    key: DeviceKey,
    /// The newest manifest in the chain (seq, sha256).
    last: Option<(u64, String)>,
    /// Seq of the next manifest (after a segment marker it may skip seqs of the damaged tail).
    next_seq: u64,
    repair: Option<chain::ChainRepair>,
}

/// sha256 of bytes as hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The exact bytes a manifest is signed and stored as.
pub fn manifest_bytes(m: &Manifest) -> Vec<u8> {
    let mut b = serde_json::to_vec_pretty(m).expect("manifest serialises");
    b.push(b'\n');
    b
}

/// One `chain.log` line: `<seq> <event_id> <sha256>`.
pub fn parse_chain_line(line: &str) -> Option<(u64, String, String)> {
    let mut it = line.split(' ');
    let seq = it.next()?.parse().ok()?;
    let event = it.next().filter(|e| !e.is_empty())?.to_string();
    let hash = it.next().filter(|h| h.len() == 64 && h.bytes().all(|c| c.is_ascii_hexdigit()))?.to_string();
    it.next().is_none().then_some((seq, event, hash))
}

impl Sealer {
    /// Opens the chain in `evidence_dir`, continuing after its last manifest. A damaged tail of
    /// `chain.log` (see [`super::chain`]) does not stop the daemon: it is moved aside, logged
    /// at ERROR, and the chain continues as a new signed segment ([`Sealer::repair`]).
    pub fn open(evidence_dir: &Path, key: DeviceKey) -> Result<Sealer, SealError> {
        let io = |p: &Path, e: std::io::Error| SealError::Io(format!("{}: {e}", p.display()));
        fs::create_dir_all(evidence_dir).map_err(|e| io(evidence_dir, e))?;
        let log = evidence_dir.join("chain.log");
        let bytes = match fs::read(&log) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(io(&log, e)),
        };
        let retired = fs::read_to_string(evidence_dir.join("retired.log")).unwrap_or_default();
        let public = key.public_key_hex();
        let (lines, torn) = chain::split_lines(&bytes);
        let tail = chain::damaged_tail_start(&lines, torn, |l| {
            match std::str::from_utf8(l).ok().and_then(ChainLine::parse) {
                Some(ChainLine::Manifest { seq, event_id, sha256 }) => chain::manifest_line_holds(evidence_dir, seq, &event_id, &sha256, &retired),
                Some(ChainLine::Segment(m)) => verify_signature(&public, m.statement().as_bytes(), &m.signature).is_ok(),
                None => false,
            }
        });
        let (mut last, mut next_seq) = (None, 1);
        for l in &lines[..tail] {
            // lines before the tail that do not parse are left for `verify` to report
            match std::str::from_utf8(l).ok().and_then(ChainLine::parse) {
                Some(ChainLine::Manifest { seq, sha256, .. }) => {
                    next_seq = next_seq.max(seq + 1);
                    last = Some((seq, sha256));
                }
                Some(ChainLine::Segment(m)) => next_seq = next_seq.max(m.next_seq),
                None => {}
            }
        }
        let mut sealer = Sealer { dir: evidence_dir.to_path_buf(), key, last, next_seq, repair: None };
        if tail < lines.len() {
            sealer.repair_tail(&bytes, &lines, tail)?;
        }
        Ok(sealer)
    }

    /// Moves the damaged lines `lines[tail..]` to `chain.log.damaged-<stamp>` and rewrites
    /// `chain.log` as the good lines plus a signed segment marker.
    fn repair_tail(&mut self, bytes: &[u8], lines: &[&[u8]], tail: usize) -> Result<(), SealError> {
        let io = |p: &Path, e: std::io::Error| SealError::Io(format!("{}: {e}", p.display()));
        let good_len: usize = lines[..tail].iter().map(|l| l.len() + 1).sum();
        let now = chrono::Utc::now();
        let name = chain::damaged_file_name(&self.dir, now);
        let damaged = self.dir.join(&name);
        // the damaged bytes are kept first: a crash before the rewrite just repeats the repair
        crate::durable::write_file(&damaged, &bytes[good_len..]).map_err(|e| io(&damaged, e))?;
        // seqs already used by manifests written before the damage (a torn append leaves its
        // manifest behind) are never reused: alerts may have carried them
        let last_good_seq = self.last.as_ref().map_or(0, |(s, _)| *s);
        let on_disk = chain::manifests_on_disk(&self.dir).keys().next_back().copied().unwrap_or(0);
        self.next_seq = self.next_seq.max(on_disk + 1);
        let mut marker = chain::SegmentMarker {
            next_seq: self.next_seq,
            prev: self.last.as_ref().map(|(_, h)| h.clone()),
            last_good_seq,
            reason: chain::DAMAGED_TAIL.into(),
            damaged_file: name,
            at: crate::publish::rfc3339(now),
            signature: String::new(),
        };
        marker.signature = hex::encode(self.key.sign(marker.statement().as_bytes()));
        let mut text = bytes[..good_len].to_vec();
        text.extend_from_slice(marker.line().as_bytes());
        let log = self.dir.join("chain.log");
        crate::durable::write_file(&log, &text).map_err(|e| io(&log, e))?;
        tracing::error!(
            file = %damaged.display(),
            last_good_seq,
            next_seq = self.next_seq,
            damaged_lines = lines.len() - tail,
            "evidence chain.log had a damaged tail: moved it aside and started a new signed segment (`hawkeye verify` explains it)"
        );
        self.repair = Some(chain::ChainRepair { damaged_file: damaged, last_good_seq, next_seq: self.next_seq, damaged_lines: lines.len() - tail });
        Ok(())
    }

    /// The chain head: seq and sha256 of the newest manifest (for the heartbeat).
    pub fn head(&self) -> Option<(u64, String)> {
        self.last.clone()
    }

    /// The repair made at open, if `chain.log` had a damaged tail (for the heartbeat).
    pub fn repair(&self) -> Option<&chain::ChainRepair> {
        self.repair.as_ref()
    }

    pub fn public_key_hex(&self) -> String {
        self.key.public_key_hex()
    }

    /// The evidence directory the chain lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Signs with the device key (retirement records).
    pub(crate) fn sign(&self, msg: &[u8]) -> [u8; 64] {
        self.key.sign(msg)
    }

    /// Hashes the files, writes and signs the manifest, and appends it to the chain.
    pub fn seal(&mut self, m: ManifestInput) -> Result<Sealed, SealError> {
        let io = |p: &Path, e: std::io::Error| SealError::Io(format!("{}: {e}", p.display()));
        let event_dir = self.dir.join(&m.event_id);
        fs::create_dir_all(&event_dir).map_err(|e| io(&event_dir, e))?;
        let mut files = Vec::new();
        for (name, path) in &m.files {
            let bytes = fs::read(path).map_err(|e| io(path, e))?;
            let file = path.file_name().and_then(|f| f.to_str()).unwrap_or_default().to_string();
            files.push(ManifestFile { name: name.clone(), file, sha256: sha256_hex(&bytes), bytes: bytes.len() as u64 });
        }
        let seq = self.next_seq;
        let prev = self.last.as_ref().map(|(_, h)| h.clone());
        let manifest = Manifest {
            schema: MANIFEST_SCHEMA.into(),
            seq,
            event_id: m.event_id.clone(),
            state: m.state,
            event_code: m.kind,
            violation: m.violation,
            device_id: m.device_id,
            camera_id: m.camera_id,
            zone_id: m.zone_id,
            location: m.location,
            time: crate::publish::rfc3339(m.time),
            model: ManifestModel { name: m.model_name, sha256: m.model_sha256 },
            confidence: (m.confidence * 1000.0).round() / 1000.0,
            dwell_s: (m.dwell_s * 10.0).round() / 10.0,
            files,
            prev_manifest_sha256: prev.clone(),
            public_key: self.key.public_key_hex(),
        };
        let bytes = manifest_bytes(&manifest);
        let hash = sha256_hex(&bytes);
        let signature_hex = hex::encode(self.key.sign(&bytes));
        let manifest_path = event_dir.join(format!("manifest-{seq}.json"));
        crate::durable::write_file(&manifest_path, &bytes).map_err(|e| io(&manifest_path, e))?;
        let sig_path = manifest_path.with_extension("sig");
        crate::durable::write_file(&sig_path, format!("{signature_hex}\n").as_bytes()).map_err(|e| io(&sig_path, e))?;
        let log = self.dir.join("chain.log");
        let mut f = fs::OpenOptions::new().create(true).append(true).open(&log).map_err(|e| io(&log, e))?;
        f.write_all(format!("{seq} {} {hash}\n", m.event_id).as_bytes()).and_then(|()| f.sync_all()).map_err(|e| io(&log, e))?;
        self.last = Some((seq, hash.clone()));
        self.next_seq = seq + 1;
        Ok(Sealed { seq, manifest_path, manifest_sha256: hash, prev_manifest_sha256: prev, signature_hex })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_lines_parse_strictly() {
        let h = "a".repeat(64);
        assert_eq!(parse_chain_line(&format!("3 ev-1 {h}")), Some((3, "ev-1".into(), h.clone())));
        assert_eq!(parse_chain_line(&format!("x ev-1 {h}")), None);
        assert_eq!(parse_chain_line(&format!("3 ev-1 {}", &h[1..])), None);
        assert_eq!(parse_chain_line(&format!("3 ev-1 {h} extra")), None);
        assert_eq!(parse_chain_line(&format!("3  {h}")), None);
    }

    #[test]
    fn manifest_bytes_are_stable_and_round_trip() {
        let m = Manifest {
            schema: MANIFEST_SCHEMA.into(),
            seq: 1,
            event_id: "e".into(),
            state: "new".into(),
            event_code: "dumping".into(),
            violation: "v".into(),
            device_id: "d".into(),
            camera_id: "c".into(),
            zone_id: "z".into(),
            location: Location { lat: Some(1.5), lon: Some(2.5), address: "a".into() },
            time: "2026-01-01T00:00:00.000Z".into(),
            model: ManifestModel { name: "m".into(), sha256: "0".repeat(64) },
            confidence: 0.5,
            dwell_s: 3.0,
            files: vec![ManifestFile { name: "clean".into(), file: "clean.jpg".into(), sha256: "1".repeat(64), bytes: 9 }],
            prev_manifest_sha256: None,
            public_key: "2".repeat(64),
        };
        let a = manifest_bytes(&m);
        assert_eq!(a, manifest_bytes(&m.clone()));
        let back: Manifest = serde_json::from_slice(&a).unwrap();
        assert_eq!(back, m);
        assert_eq!(manifest_bytes(&back), a, "parse and re-serialise gives the signed bytes again");
    }

    fn sealed(dir: &Path, n: usize) -> Sealer {
        let key = DeviceKey::load_or_create(&dir.join("keys")).unwrap();
        let mut s = Sealer::open(&dir.join("evidence"), key).unwrap();
        for i in 0..n {
            let id = format!("ev-{i}");
            let f = dir.join("evidence").join(&id).join("clean.jpg");
            fs::create_dir_all(f.parent().unwrap()).unwrap();
            fs::write(&f, format!("jpeg {i}")).unwrap();
            let mut input = sealed_input(&id);
            input.files = vec![("clean".into(), f)];
            s.seal(input).unwrap();
        }
        s
    }

    fn reopen(dir: &Path) -> Sealer {
        Sealer::open(&dir.join("evidence"), DeviceKey::load_or_create(&dir.join("keys")).unwrap()).unwrap()
    }

    #[test]
    fn a_torn_last_line_is_moved_aside_and_its_seq_is_not_reused() {
        let dir = tempfile::tempdir().unwrap();
        let s = sealed(dir.path(), 3);
        let (seq3, _) = s.head().unwrap();
        assert_eq!(seq3, 3);
        let log = dir.path().join("evidence/chain.log");
        let mut b = fs::read(&log).unwrap();
        let n = b.len();
        b[n - 1] ^= 0x01; // the newline of line 3
        fs::write(&log, &b).unwrap();
        let mut s = reopen(dir.path());
        let rep = s.repair().expect("repaired").clone();
        assert_eq!((rep.last_good_seq, rep.next_seq, rep.damaged_lines), (2, 4, 1));
        assert_eq!(fs::read(&rep.damaged_file).unwrap(), b[b.iter().take(n - 1).rposition(|c| *c == b'\n').unwrap() + 1..].to_vec());
        assert_eq!(s.head().unwrap().0, 2, "the head is the last good manifest");
        let text = fs::read_to_string(&log).unwrap();
        let marker = chain::SegmentMarker::parse(text.lines().last().unwrap()).expect("a marker ends the log");
        assert!(verify_signature(&s.public_key_hex(), marker.statement().as_bytes(), &marker.signature).is_ok());
        assert_eq!(marker.prev, s.head().map(|h| h.1));
        // the next manifest continues after the torn one's seq, linked to the last good manifest
        let prev = s.head().unwrap().1;
        let f = dir.path().join("evidence/ev-9/clean.jpg");
        fs::create_dir_all(f.parent().unwrap()).unwrap();
        fs::write(&f, "x").unwrap();
        let mut input = sealed_input("ev-9");
        input.files = vec![("clean".into(), f)];
        let out = s.seal(input).unwrap();
        assert_eq!((out.seq, out.prev_manifest_sha256), (4, Some(prev)));
        // and a clean reopen changes nothing
        let again = reopen(dir.path());
        assert!(again.repair().is_none());
        assert_eq!(again.head().unwrap().0, 4);
    }

    #[test]
    fn garbage_and_a_misdescribed_manifest_are_damage_but_damage_before_a_good_line_is_not_a_tail() {
        let dir = tempfile::tempdir().unwrap();
        sealed(dir.path(), 2);
        let log = dir.path().join("evidence/chain.log");
        let good = fs::read_to_string(&log).unwrap();
        fs::write(&log, format!("{good}\x00\x00garbage\nmore garbage\n")).unwrap();
        let s = reopen(dir.path());
        assert_eq!(s.repair().map(|r| (r.last_good_seq, r.next_seq, r.damaged_lines)), Some((2, 3, 2)));
        assert!(fs::read_to_string(&log).unwrap().starts_with(&good));

        // a last line whose hash is not its manifest's
        let dir = tempfile::tempdir().unwrap();
        sealed(dir.path(), 2);
        let text = fs::read_to_string(log_of(dir.path())).unwrap();
        let bad = format!("{}{}\n", &text[..text.len() - 2], if text.ends_with("0\n") { "1" } else { "0" });
        fs::write(log_of(dir.path()), &bad).unwrap();
        let s = reopen(dir.path());
        assert_eq!(s.repair().map(|r| (r.last_good_seq, r.next_seq)), Some((1, 3)));

        // a bad first line under a good last line: no repair (verify reports it)
        let dir = tempfile::tempdir().unwrap();
        sealed(dir.path(), 2);
        let text = fs::read_to_string(log_of(dir.path())).unwrap();
        fs::write(log_of(dir.path()), text.replacen("1 ev-0", "1 ev-X", 1)).unwrap();
        let s = reopen(dir.path());
        assert!(s.repair().is_none());
        assert_eq!(s.head().unwrap().0, 2);
    }

    fn log_of(dir: &Path) -> PathBuf {
        dir.join("evidence/chain.log")
    }

    fn sealed_input(id: &str) -> ManifestInput {
        ManifestInput {
            event_id: id.into(),
            state: "new".into(),
            kind: "dumping".into(),
            violation: "v".into(),
            device_id: "d".into(),
            camera_id: "c".into(),
            zone_id: "z".into(),
            location: Location::default(),
            time: Utc::now(),
            model_name: "m".into(),
            model_sha256: "0".repeat(64),
            confidence: 0.5,
            dwell_s: 1.0,
            files: vec![],
        }
    }
}
