//! Sealing: each published evidence set gets a manifest (who, where, when, what, which model,
//! which files with their sha256), signed with the device key and linked to the previous
//! manifest by its sha256, so the manifests of a device form one hash chain.
//!
//! On disk, under the evidence directory:
//! - `<event_id>/manifest-<seq>.json`: the manifest, exactly the bytes that were signed;
//! - `<event_id>/manifest-<seq>.sig`: the Ed25519 signature, 128 hex digits;
//! - `chain.log`: one line per manifest, `<seq> <event_id> <manifest sha256>`, in order.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::keys::DeviceKey;
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
    last: Option<(u64, String)>,
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
    /// Opens the chain in `evidence_dir`, continuing after its last manifest.
    pub fn open(evidence_dir: &Path, key: DeviceKey) -> Result<Sealer, SealError> {
        fs::create_dir_all(evidence_dir).map_err(|e| SealError::Io(format!("{}: {e}", evidence_dir.display())))?;
        let log = evidence_dir.join("chain.log");
        let mut last = None;
        if let Ok(text) = fs::read_to_string(&log) {
            let complete = match text.rfind('\n') {
                Some(i) => &text[..=i],
                None => "",
            };
            if complete.len() != text.len() {
                // a crash in the middle of an append: drop the partial line
                tracing::warn!(file = %log.display(), "chain log ended in a partial line; removing it");
                fs::write(&log, complete).map_err(|e| SealError::Io(format!("{}: {e}", log.display())))?;
            }
            if let Some(l) = complete.lines().last() {
                let (seq, _, hash) = parse_chain_line(l).ok_or_else(|| SealError::Chain(format!("{}: last line is not `<seq> <event_id> <sha256>`", log.display())))?;
                last = Some((seq, hash));
            }
        }
        Ok(Sealer { dir: evidence_dir.to_path_buf(), key, last })
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
        let seq = self.last.as_ref().map_or(1, |(s, _)| s + 1);
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
}
