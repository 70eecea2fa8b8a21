//! `hawkeye verify DIR`: checks an evidence directory end to end — every manifest in
//! `chain.log` exists, is signed by the device key, links to the one before it, and every file
//! it lists is there with its recorded size and sha256. Stops at the first failure and names the
//! file to blame. A manifest deleted by retention must have a signed line in `retired.log`
//! with the hash `chain.log` recorded; the chain then continues through that hash.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::keys::verify_signature;
use super::seal::{manifest_bytes, parse_chain_line, sha256_hex, Manifest};

/// The first thing found wrong.
#[derive(Clone, Debug, PartialEq)]
pub struct VerifyFailure {
    pub path: PathBuf,
    pub reason: String,
}

/// Outcome of a verification.
#[derive(Clone, Debug, Default)]
pub struct VerifyReport {
    pub manifests_ok: usize,
    pub files_ok: usize,
    /// Manifests whose evidence retention deleted (signed records in `retired.log`).
    pub retired: usize,
    pub first_failure: Option<VerifyFailure>,
    pub warnings: Vec<String>,
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for w in &self.warnings {
            writeln!(f, "warning: {w}")?;
        }
        match &self.first_failure {
            None => {
                writeln!(f, "OK: {} manifests (signatures and chain) and {} evidence files verified", self.manifests_ok, self.files_ok)?;
                if self.retired > 0 {
                    writeln!(f, "    {} manifests retired by evidence retention (signed records in retired.log)", self.retired)?;
                }
                Ok(())
            }
            Some(fail) => {
                writeln!(f, "FAILED: {}: {}", fail.path.display(), fail.reason)?;
                writeln!(f, "(verified before it: {} manifests, {} files)", self.manifests_ok, self.files_ok)
            }
        }
    }
}

/// Where the public key is looked for when none is given: `<dir>/../keys/device.pub`.
pub fn default_public_key(evidence_dir: &Path) -> Option<String> {
    let p = evidence_dir.parent()?.join("keys/device.pub");
    fs::read_to_string(p).ok().map(|s| s.trim().to_string())
}

/// Verifies `evidence_dir` against `public_key_hex` (default: [`default_public_key`]).
pub fn verify_dir(evidence_dir: &Path, public_key_hex: Option<&str>) -> VerifyReport {
    let mut r = VerifyReport::default();
    let fail = |r: &mut VerifyReport, path: PathBuf, reason: String| {
        r.first_failure = Some(VerifyFailure { path, reason });
    };
    let log = evidence_dir.join("chain.log");
    let Some(pk) = public_key_hex.map(str::to_string).or_else(|| default_public_key(evidence_dir)) else {
        fail(&mut r, evidence_dir.join("../keys/device.pub"), "no public key (give --pubkey HEX)".into());
        return r;
    };
    let text = match fs::read(&log) {
        Ok(b) => b,
        Err(e) => {
            fail(&mut r, log, format!("cannot read: {e}"));
            return r;
        }
    };
    let Ok(text) = String::from_utf8(text) else {
        fail(&mut r, log, "not text".into());
        return r;
    };
    // seq → (event id, manifest sha256) of every validly signed retirement record
    let mut retired: HashMap<u64, (String, String)> = HashMap::new();
    let rlog = evidence_dir.join("retired.log");
    for (n, line) in fs::read_to_string(&rlog).unwrap_or_default().lines().enumerate() {
        let ok = super::retention::parse_retired_line(line).filter(|(seq, ev, hash, at, reason, sig)| {
            verify_signature(&pk, super::retention::retired_statement(*seq, ev, hash, at, reason).as_bytes(), sig).is_ok()
        });
        match ok {
            Some((seq, ev, hash, ..)) => {
                retired.insert(seq, (ev, hash));
            }
            None => {
                fail(&mut r, rlog, format!("line {} is not a retirement record signed by the device key", n + 1));
                return r;
            }
        }
    }
    let mut prev: Option<String> = None;
    let mut covered: HashSet<PathBuf> = HashSet::new();
    for (n, line) in text.lines().enumerate() {
        let Some((seq, event_id, logged_hash)) = parse_chain_line(line) else {
            fail(&mut r, log, format!("line {} is not `<seq> <event_id> <sha256>`", n + 1));
            return r;
        };
        let event_dir = evidence_dir.join(&event_id);
        let mpath = event_dir.join(format!("manifest-{seq}.json"));
        let spath = mpath.with_extension("sig");
        let Ok(bytes) = fs::read(&mpath) else {
            if retired.get(&seq) == Some(&(event_id.clone(), logged_hash.clone())) {
                r.retired += 1;
                prev = Some(logged_hash);
                continue;
            }
            fail(&mut r, mpath, format!("missing (chain.log line {} names it, and retired.log does not retire it)", n + 1));
            return r;
        };
        let sig = fs::read_to_string(&spath).unwrap_or_default();
        let sig_ok = verify_signature(&pk, &bytes, &sig).is_ok();
        let hash = sha256_hex(&bytes);
        match (sig_ok, hash == logged_hash) {
            (true, true) => {}
            // an authentic manifest that the log misdescribes: the log was altered
            (true, false) => {
                fail(&mut r, log, format!("line {}: recorded sha256 does not match the (validly signed) manifest {}", n + 1, mpath.display()));
                return r;
            }
            // the manifest is the one the log recorded, so its signature file was altered
            (false, true) => {
                fail(&mut r, spath, "signature does not verify against the device's public key".into());
                return r;
            }
            (false, false) => {
                fail(&mut r, mpath, "content changed: sha256 differs from chain.log and the signature does not verify".into());
                return r;
            }
        }
        let m: Manifest = match serde_json::from_slice(&bytes) {
            Ok(m) if manifest_bytes(&m) == bytes => m,
            _ => {
                fail(&mut r, mpath, "signed, but not a canonical manifest".into());
                return r;
            }
        };
        if m.seq != seq || m.event_id != event_id {
            fail(&mut r, mpath, format!("says seq {} / event {}, chain.log line {} says {seq} / {event_id}", m.seq, m.event_id, n + 1));
            return r;
        }
        if m.prev_manifest_sha256 != prev && !(n == 0 && prev.is_none()) {
            fail(&mut r, mpath, "chain broken: prev_manifest_sha256 is not the sha256 of the manifest before it (one was removed or replaced)".into());
            return r;
        }
        if n > 0 && m.prev_manifest_sha256.is_none() {
            fail(&mut r, mpath, "chain broken: no link to the manifest before it".into());
            return r;
        }
        covered.insert(mpath.clone());
        covered.insert(spath);
        for f in &m.files {
            let p = event_dir.join(&f.file);
            match fs::read(&p) {
                Err(_) => {
                    fail(&mut r, p, format!("missing (listed in {})", mpath.display()));
                    return r;
                }
                Ok(b) if b.len() as u64 != f.bytes || sha256_hex(&b) != f.sha256 => {
                    fail(&mut r, p, format!("content changed: sha256/size differ from {}", mpath.display()));
                    return r;
                }
                Ok(_) => {
                    r.files_ok += 1;
                    covered.insert(p);
                }
            }
        }
        r.manifests_ok += 1;
        prev = Some(hash);
    }
    // evidence files no manifest vouches for are worth knowing about, but not a failure
    if let Ok(rd) = fs::read_dir(evidence_dir) {
        for d in rd.flatten().filter(|d| d.path().is_dir()) {
            for f in fs::read_dir(d.path()).into_iter().flatten().flatten() {
                let p = f.path();
                if !covered.contains(&p) {
                    r.warnings.push(format!("{} is not covered by any manifest", p.display()));
                }
            }
        }
    }
    r.warnings.sort();
    r
}

/// `hawkeye verify DIR [--pubkey HEX]`: prints the report; exit 0 when everything verifies.
pub fn verify_command(dir: &Path, pubkey: Option<&str>) -> ExitCode {
    let report = verify_dir(dir, pubkey);
    print!("{report}");
    if report.first_failure.is_none() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
