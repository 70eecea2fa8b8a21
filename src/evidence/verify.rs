//! `hawkeye verify DIR`: checks an evidence directory end to end and lists *every* finding:
//! - every manifest in `chain.log` exists (or a signed record in `retired.log` retires it), is
//!   signed by the device key, is canonical, links to the one before it, and every file it lists
//!   is there with its recorded size and sha256;
//! - the chain starts at seq 1, or after seqs that are all retired ("manifests 1..k missing"
//!   otherwise), and has no gaps;
//! - segment markers (a damaged tail moved aside, see [`super::chain`]) are signed and continue
//!   from the line before them; the manifests of the damaged tail are looked up on disk and
//!   verified too;
//! - with a head (`--head SEQ:SHA256`, or the newest alert in `--head-from FILE`), the chain
//!   reaches that seq with that hash, so removed newest events and a truncated chain show;
//! - manifest files on disk that the chain does not account for are findings.
//!
//! Trust: "authentic" needs a pinned key (`--pubkey HEX|FILE`, the file outside the state_dir).
//! The key stored beside the evidence (`keys/device.pub`) only shows the store is consistent,
//! as whoever could rewrite the evidence could rewrite that file too.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::chain::{self, ChainLine, SegmentMarker};
use super::keys::{parse_hex32, verify_signature};
use super::seal::{manifest_bytes, sha256_hex, Manifest};

/// Exit code: findings.
pub const EXIT_FINDINGS: u8 = 1;
/// Exit code: bad arguments (unreadable key or head file, malformed `--head`).
pub const EXIT_USAGE: u8 = 2;
/// Exit code: everything consistent, but checked only against the stored key.
pub const EXIT_NOT_AUTHENTICATED: u8 = 3;

/// One thing found wrong, naming the file to blame.
#[derive(Clone, Debug, PartialEq)]
pub struct VerifyFailure {
    pub path: PathBuf,
    pub reason: String,
}

/// The chain head a consumer saw (an alert's or heartbeat's `manifest {seq, sha256}`).
#[derive(Clone, Debug, PartialEq)]
pub struct Head {
    pub seq: u64,
    pub sha256: String,
}

impl Head {
    /// Parses `SEQ:SHA256`.
    pub fn parse(s: &str) -> Result<Head, String> {
        let (seq, hash) = s.split_once(':').ok_or_else(|| format!("--head {s}: expected SEQ:SHA256"))?;
        let seq = seq.trim().parse().map_err(|_| format!("--head {s}: SEQ is not a number"))?;
        let hash = hash.trim().to_ascii_lowercase();
        if hash.len() != 64 || !hash.bytes().all(|c| c.is_ascii_hexdigit()) {
            return Err(format!("--head {s}: SHA256 is not 64 hex digits"));
        }
        Ok(Head { seq, sha256: hash })
    }

    /// The highest `manifest {seq, sha256}` (or `chain_head {…}`, top level or under
    /// `evidence`) among the JSON lines of a file saved by a subscriber; other lines are skipped.
    pub fn from_json_lines(text: &str) -> Option<Head> {
        let mut best: Option<Head> = None;
        for v in text.lines().filter_map(|l| serde_json::from_str::<serde_json::Value>(l.trim()).ok()) {
            for h in [&v["manifest"], &v["chain_head"], &v["evidence"]["chain_head"]] {
                let (Some(seq), Some(hash)) = (h["seq"].as_u64(), h["sha256"].as_str()) else { continue };
                if best.as_ref().is_none_or(|b| seq > b.seq) {
                    best = Head::parse(&format!("{seq}:{hash}")).ok();
                }
            }
        }
        best
    }
}

/// What to verify against.
#[derive(Clone, Debug, Default)]
pub struct VerifyOptions {
    /// Pinned public key: 64 hex digits, or a file holding them.
    pub pubkey: Option<String>,
    /// The newest chain head a consumer saw.
    pub head: Option<Head>,
}

/// Outcome of a verification.
#[derive(Clone, Debug, Default)]
pub struct VerifyReport {
    pub manifests_ok: usize,
    pub files_ok: usize,
    /// Manifests whose evidence retention deleted (signed records in `retired.log`).
    pub retired: usize,
    /// Every finding, in the order found.
    pub failures: Vec<VerifyFailure>,
    /// Explanations (segments, what was and was not checked).
    pub notes: Vec<String>,
    pub warnings: Vec<String>,
    /// Checked against a pinned key.
    pub authenticated: bool,
    /// A head was given and checked.
    pub head_checked: bool,
    /// The newest manifest of the chain (seq, sha256).
    pub chain_head: Option<(u64, String)>,
}

impl VerifyReport {
    /// The first finding.
    pub fn first_failure(&self) -> Option<&VerifyFailure> {
        self.failures.first()
    }

    /// 0 only when everything checked holds and the key was pinned.
    pub fn exit_code(&self) -> u8 {
        match (self.failures.is_empty(), self.authenticated) {
            (false, _) => EXIT_FINDINGS,
            (true, false) => EXIT_NOT_AUTHENTICATED,
            (true, true) => 0,
        }
    }

    fn fail(&mut self, path: impl Into<PathBuf>, reason: impl Into<String>) {
        self.failures.push(VerifyFailure { path: path.into(), reason: reason.into() });
    }
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for n in &self.notes {
            writeln!(f, "note: {n}")?;
        }
        for w in &self.warnings {
            writeln!(f, "warning: {w}")?;
        }
        for fail in &self.failures {
            writeln!(f, "FAILED: {}: {}", fail.path.display(), fail.reason)?;
        }
        let head = self.chain_head.as_ref().map_or("none".to_string(), |(s, h)| format!("seq {s} sha256 {h}"));
        writeln!(f, "chain head: {head}")?;
        if self.retired > 0 {
            writeln!(f, "{} manifests retired by evidence retention (signed records in retired.log)", self.retired)?;
        }
        if !self.failures.is_empty() {
            return writeln!(f, "FAILED: {} findings ({} manifests and {} evidence files verified)", self.failures.len(), self.manifests_ok, self.files_ok);
        }
        let what = format!("{} manifests (signatures and chain) and {} evidence files", self.manifests_ok, self.files_ok);
        if self.authenticated {
            writeln!(f, "OK: {what} verified: authentic (pinned key)")
        } else {
            writeln!(f, "consistent, NOT authenticated: {what} verified against the key stored beside the evidence; pass --pubkey HEX|FILE (the device key recorded at installation, or from the retained …/pubkey topic)")
        }
    }
}

/// Where the stored public key is: `<dir>/../keys/device.pub`.
pub fn default_public_key(evidence_dir: &Path) -> Option<String> {
    let p = evidence_dir.parent()?.join("keys/device.pub");
    fs::read_to_string(p).ok().map(|s| s.trim().to_string())
}

/// Resolves the key to check against: a given key (hex, or a file outside the state_dir) is
/// pinned and sets `r.authenticated`; otherwise the stored key. Findings go to `r`.
fn resolve_key(evidence_dir: &Path, given: Option<&str>, r: &mut VerifyReport) -> Option<String> {
    let stored = default_public_key(evidence_dir);
    let stored_path = evidence_dir.join("../keys/device.pub");
    let pinned = match given {
        None => None,
        Some(g) if parse_hex32(g.trim()).is_some() => Some(g.trim().to_ascii_lowercase()),
        Some(g) => {
            let p = Path::new(g);
            let Ok(text) = fs::read_to_string(p) else {
                r.fail(p, "--pubkey: neither 64 hex digits nor a readable key file");
                return None;
            };
            let Some(key) = parse_hex32(text.trim()).map(hex::encode) else {
                r.fail(p, "--pubkey file does not hold 64 hex digits");
                return None;
            };
            let state_dir = evidence_dir.parent().and_then(|s| s.canonicalize().ok());
            if state_dir.zip(p.canonicalize().ok()).is_some_and(|(s, k)| k.starts_with(s)) {
                // a key that lives with the evidence can be replaced with it
                r.warnings.push(format!("{} lies inside the state_dir, beside the evidence: not a pinned key", p.display()));
                r.notes.push(format!("checked against {key} from {}: consistency only", p.display()));
                return Some(key);
            }
            Some(key)
        }
    };
    if let Some(k) = pinned {
        r.authenticated = true;
        if let Some(s) = stored.filter(|s| !s.eq_ignore_ascii_case(&k)) {
            r.fail(&stored_path, format!("the stored public key {s} is not the pinned key {k}"));
        }
        return Some(k);
    }
    if let Some(s) = stored {
        r.notes.push(format!("checked against the stored key {s} ({}): consistency only", stored_path.display()));
        return Some(s);
    }
    r.fail(&stored_path, "no public key: pass --pubkey HEX|FILE");
    None
}

/// Reads `retired.log`: seq → (event id, manifest sha256) of every validly signed record.
fn read_retired(evidence_dir: &Path, pk: &str, r: &mut VerifyReport) -> BTreeMap<u64, (String, String)> {
    let mut retired = BTreeMap::new();
    let rlog = evidence_dir.join("retired.log");
    for (n, line) in fs::read_to_string(&rlog).unwrap_or_default().lines().enumerate() {
        let ok = super::retention::parse_retired_line(line).filter(|(seq, ev, hash, at, reason, sig)| {
            verify_signature(pk, super::retention::retired_statement(*seq, ev, hash, at, reason).as_bytes(), sig).is_ok()
        });
        match ok {
            Some((seq, ev, hash, ..)) => {
                retired.insert(seq, (ev, hash));
            }
            None => r.fail(&rlog, format!("line {} is not a retirement record signed by the device key", n + 1)),
        }
    }
    retired
}

/// The walk over the chain.
struct Walk<'a> {
    dir: &'a Path,
    log: PathBuf,
    pk: &'a str,
    retired: BTreeMap<u64, (String, String)>,
    disk: BTreeMap<u64, PathBuf>,
    /// seq → sha256 of every manifest the chain accounts for (present, retired, or recovered
    /// from a damaged tail).
    known: BTreeMap<u64, String>,
    covered: HashSet<PathBuf>,
}

impl Walk<'_> {
    /// Checks one manifest file; `logged` is its sha256 in `chain.log` (none for one from a
    /// damaged tail), `prev` the link it must carry (`None`: not checkable). Returns the file's
    /// sha256 when it could be read.
    fn manifest(&mut self, r: &mut VerifyReport, mpath: &Path, seq: u64, event_id: &str, logged: Option<&str>, prev: Option<Option<&str>>) -> Option<String> {
        let bytes = fs::read(mpath).ok()?;
        let spath = mpath.with_extension("sig");
        self.covered.insert(mpath.to_path_buf());
        self.covered.insert(spath.clone());
        let sig = fs::read_to_string(&spath).unwrap_or_default();
        let sig_ok = verify_signature(self.pk, &bytes, &sig).is_ok();
        let hash = sha256_hex(&bytes);
        match (sig_ok, logged.is_none_or(|l| l == hash)) {
            (true, true) => {}
            // an authentic manifest that the log misdescribes: the log was altered
            (true, false) => {
                r.fail(&self.log, format!("seq {seq}: recorded sha256 does not match the (validly signed) manifest {}", mpath.display()));
                return Some(hash);
            }
            // the manifest is the one the log recorded, so its signature file was altered
            (false, true) if logged.is_some() => {
                r.fail(&spath, "signature does not verify against the device's public key");
                return Some(hash);
            }
            (false, _) => {
                let why = if logged.is_some() { "content changed: sha256 differs from chain.log and the signature does not verify" } else { "the signature does not verify against the device's public key" };
                r.fail(mpath, why);
                return Some(hash);
            }
        }
        let m: Manifest = match serde_json::from_slice(&bytes) {
            Ok(m) if manifest_bytes(&m) == bytes => m,
            _ => {
                r.fail(mpath, "signed, but not a canonical manifest");
                return Some(hash);
            }
        };
        if m.seq != seq || m.event_id != event_id {
            r.fail(mpath, format!("says seq {} / event {}, the chain expects {seq} / {event_id}", m.seq, m.event_id));
            return Some(hash);
        }
        if let Some(prev) = prev.filter(|p| m.prev_manifest_sha256.as_deref() != *p) {
            let why = match prev {
                None => "chain broken: links to a previous manifest, but the chain starts here".to_string(),
                Some(_) if m.prev_manifest_sha256.is_none() => "chain broken: no link to the manifest before it".to_string(),
                Some(_) => "chain broken: prev_manifest_sha256 is not the sha256 of the manifest before it (one was removed or replaced)".to_string(),
            };
            r.fail(mpath, why);
            return Some(hash);
        }
        let event_dir = mpath.parent().unwrap_or(self.dir).to_path_buf();
        let mut files_ok = true;
        for f in &m.files {
            let p = event_dir.join(&f.file);
            match fs::read(&p) {
                Err(_) => {
                    r.fail(&p, format!("missing (listed in {})", mpath.display()));
                    files_ok = false;
                }
                Ok(b) if b.len() as u64 != f.bytes || sha256_hex(&b) != f.sha256 => {
                    r.fail(&p, format!("content changed: sha256/size differ from {}", mpath.display()));
                    files_ok = false;
                }
                Ok(_) => {
                    r.files_ok += 1;
                    self.covered.insert(p);
                }
            }
        }
        if files_ok {
            r.manifests_ok += 1;
        }
        Some(hash)
    }

    /// Seqs `from..to` have no `chain.log` line: fine only if each is retired. Returns the
    /// link the next manifest must carry (`None`: not checkable).
    fn gap(&mut self, r: &mut VerifyReport, from: u64, to: u64, prev: Option<String>) -> Option<Option<String>> {
        let mut link = Some(prev);
        let mut missing = Vec::new();
        for s in from..to {
            match self.retired.get(&s) {
                Some((_, h)) => {
                    r.retired += 1;
                    self.known.insert(s, h.clone());
                    link = Some(Some(h.clone()));
                }
                None => {
                    missing.push(s);
                    link = None;
                }
            }
        }
        for run in runs(&missing) {
            let what = if run.0 == run.1 { format!("manifest {}", run.0) } else { format!("manifests {}..{}", run.0, run.1) };
            let why = if run.0 == 1 { "the chain must start at seq 1, or after seqs that retired.log retires" } else { "no chain.log line and no retirement record" };
            r.fail(&self.log, format!("{what} missing: {why}"));
        }
        link
    }

    /// A segment marker: signed, continuing from the line before it; the manifests of the
    /// damaged tail are looked up on disk and verified.
    fn segment(&mut self, r: &mut VerifyReport, ln: usize, m: &SegmentMarker, last_seq: u64, prev: &Option<String>) {
        if verify_signature(self.pk, m.statement().as_bytes(), &m.signature).is_err() {
            r.fail(&self.log, format!("line {ln}: segment marker not signed by the device key"));
        }
        if m.last_good_seq != last_seq || &m.prev != prev {
            r.fail(&self.log, format!("line {ln}: segment marker says it follows seq {}, but the line before it is seq {last_seq} (or its hash differs)", m.last_good_seq));
        }
        let safe = !m.damaged_file.contains('/') && m.damaged_file.starts_with("chain.log.damaged-");
        let kept = safe && self.dir.join(&m.damaged_file).is_file();
        r.notes.push(format!(
            "segment break after seq {} ({}, {}): the damaged chain.log lines are kept in {}{}; the chain continues at seq {} linked to manifest {}",
            m.last_good_seq,
            m.reason,
            m.at,
            m.damaged_file,
            if kept { "" } else { " (MISSING)" },
            m.next_seq,
            m.last_good_seq
        ));
        if !kept {
            r.warnings.push(format!("{}: the damaged file a segment marker names is not there", m.damaged_file));
        }
        let mut link: Option<Option<String>> = Some(m.prev.clone());
        for s in m.last_good_seq + 1..m.next_seq {
            if let Some(p) = self.disk.get(&s).cloned() {
                let event = p.parent().and_then(|e| e.file_name()).and_then(|e| e.to_str()).unwrap_or_default().to_string();
                let before = r.failures.len();
                let h = self.manifest(r, &p, s, &event, None, link.as_ref().map(|l| l.as_deref()));
                if r.failures.len() == before {
                    r.notes.push(format!("manifest {s} (its line was in the damaged tail) found at {} and verified", p.display()));
                }
                self.known.extend(h.clone().map(|h| (s, h)));
                link = Some(h);
            } else if let Some((_, h)) = self.retired.get(&s).cloned() {
                r.retired += 1;
                self.known.insert(s, h.clone());
                link = Some(Some(h));
            } else {
                r.fail(self.dir.join(&m.damaged_file), format!("manifest {s} was in the damaged tail and is not on disk (nor retired)"));
                link = None;
            }
        }
    }
}

/// Consecutive runs of sorted numbers: [1,2,3,7] → [(1,3),(7,7)].
fn runs(v: &[u64]) -> Vec<(u64, u64)> {
    let mut out: Vec<(u64, u64)> = Vec::new();
    for &x in v {
        match out.last_mut() {
            Some(last) if last.1 + 1 == x => last.1 = x,
            _ => out.push((x, x)),
        }
    }
    out
}

/// Verifies `evidence_dir`; see the module docs.
pub fn verify_dir(evidence_dir: &Path, opts: &VerifyOptions) -> VerifyReport {
    let mut r = VerifyReport::default();
    let Some(pk) = resolve_key(evidence_dir, opts.pubkey.as_deref(), &mut r) else { return r };
    let log = evidence_dir.join("chain.log");
    let bytes = match fs::read(&log) {
        Ok(b) => b,
        Err(e) => {
            r.fail(&log, format!("cannot read: {e}"));
            return r;
        }
    };
    let retired = read_retired(evidence_dir, &pk, &mut r);
    let mut w = Walk { dir: evidence_dir, log: log.clone(), pk: &pk, retired, disk: chain::manifests_on_disk(evidence_dir), known: BTreeMap::new(), covered: HashSet::new() };
    let (lines, torn) = chain::split_lines(&bytes);
    let (mut expected, mut prev, mut last_seq) = (1u64, None::<String>, 0u64);
    // after a line that does not parse, the next one's seq and link cannot be checked
    let mut resync = false;
    for (n, raw) in lines.iter().enumerate() {
        let ln = n + 1;
        let is_torn = torn && ln == lines.len();
        match std::str::from_utf8(raw).ok().and_then(ChainLine::parse).filter(|_| !is_torn) {
            None if is_torn => r.fail(&log, format!("line {ln} is torn (no newline; an append was cut short): the daemon moves it aside at its next start")),
            None => {
                r.fail(&log, format!("line {ln} is not `<seq> <event_id> <sha256>` or a segment marker"));
                resync = true;
            }
            Some(ChainLine::Segment(m)) => {
                w.segment(&mut r, ln, &m, last_seq, &prev);
                (expected, resync) = (m.next_seq, false);
            }
            Some(ChainLine::Manifest { seq, event_id, sha256 }) => {
                let link: Option<Option<String>> = if resync {
                    None
                } else if seq < expected {
                    r.fail(&log, format!("line {ln}: seq {seq} after seq {}: out of order or repeated", expected - 1));
                    None
                } else {
                    w.gap(&mut r, expected, seq, prev.clone())
                };
                if !chain::safe_event_id(&event_id) {
                    r.fail(&log, format!("line {ln}: event id {event_id:?} is not a directory name"));
                } else {
                    let mpath = evidence_dir.join(&event_id).join(format!("manifest-{seq}.json"));
                    if mpath.is_file() {
                        w.manifest(&mut r, &mpath, seq, &event_id, Some(&sha256), link.as_ref().map(|l| l.as_deref()));
                    } else if w.retired.get(&seq) == Some(&(event_id.clone(), sha256.clone())) {
                        r.retired += 1;
                    } else {
                        r.fail(&mpath, format!("missing (chain.log line {ln} names it, and retired.log does not retire it)"));
                    }
                }
                w.known.insert(seq, sha256.clone());
                (expected, prev, last_seq, resync) = (seq + 1, Some(sha256), seq, false);
            }
        }
    }
    r.chain_head = w.known.last_key_value().map(|(s, h)| (*s, h.clone()));
    // manifests on disk the chain does not account for: a truncated or edited chain.log
    for (s, p) in &w.disk {
        if !w.known.contains_key(s) {
            r.fail(p, format!("manifest seq {s} is on disk but not in the chain (chain.log truncated or a line removed)"));
            w.covered.insert(p.clone());
            w.covered.insert(p.with_extension("sig"));
        }
    }
    match &opts.head {
        Some(h) => {
            r.head_checked = true;
            let top = r.chain_head.as_ref().map_or(0, |(s, _)| *s);
            match w.known.get(&h.seq) {
                Some(x) if *x == h.sha256 => r.notes.push(format!("the chain reaches the given head, seq {} sha256 {}", h.seq, h.sha256)),
                Some(x) => r.fail(&log, format!("seq {} has sha256 {x} here, but the head given has {}: the chain was rewritten", h.seq, h.sha256)),
                None if h.seq > top => r.fail(&log, format!("truncated: the chain ends at seq {top}, but seq {} (sha256 {}) was published; manifests {}..{} missing", h.seq, h.sha256, top + 1, h.seq)),
                None => r.fail(&log, format!("seq {} of the given head is not in the chain", h.seq)),
            }
        }
        None => r.warnings.push("no head given: removal of the newest events or a truncated chain cannot be ruled out; pass --head SEQ:SHA256 or --head-from FILE (the `manifest` of the latest alert)".into()),
    }
    // evidence files no manifest vouches for are worth knowing about, but not a failure
    for d in fs::read_dir(evidence_dir).into_iter().flatten().flatten().filter(|d| d.path().is_dir()) {
        for f in fs::read_dir(d.path()).into_iter().flatten().flatten() {
            let p = f.path();
            if !w.covered.contains(&p) {
                r.warnings.push(format!("{} is not covered by any manifest", p.display()));
            }
        }
    }
    r.warnings.sort();
    r
}

/// `hawkeye verify DIR [--pubkey HEX|FILE] [--head SEQ:SHA256 | --head-from FILE]`: prints the
/// report; exit 0 when everything checked holds against a pinned key, 1 with findings, 2 for
/// bad arguments, 3 when consistent but checked only against the stored key.
pub fn verify_command(dir: &Path, pubkey: Option<&str>, head: Option<&str>, head_from: Option<&Path>) -> ExitCode {
    let head = match (head, head_from) {
        (Some(h), _) => match Head::parse(h) {
            Ok(h) => Some(h),
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::from(EXIT_USAGE);
            }
        },
        (None, Some(f)) => match fs::read_to_string(f).map(|t| Head::from_json_lines(&t)) {
            Ok(Some(h)) => Some(h),
            Ok(None) => {
                eprintln!("--head-from {}: no line with a `manifest {{seq, sha256}}` JSON object", f.display());
                return ExitCode::from(EXIT_USAGE);
            }
            Err(e) => {
                eprintln!("--head-from {}: {e}", f.display());
                return ExitCode::from(EXIT_USAGE);
            }
        },
        (None, None) => None,
    };
    let report = verify_dir(dir, &VerifyOptions { pubkey: pubkey.map(str::to_string), head });
    print!("{report}");
    ExitCode::from(report.exit_code())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_parse_from_the_flag_and_from_saved_alerts() {
        let h = "ab".repeat(32);
        assert_eq!(Head::parse(&format!("12:{h}")), Ok(Head { seq: 12, sha256: h.clone() }));
        assert!(Head::parse("12").is_err() && Head::parse(&format!("x:{h}")).is_err() && Head::parse("3:abc").is_err());
        let lines = format!(
            "{{\"state\":\"new\",\"manifest\":{{\"seq\":4,\"sha256\":\"{}\"}}}}\nnot json\n{{\"state\":\"update\",\"manifest\":null}}\n{{\"manifest\":{{\"seq\":9,\"sha256\":\"{h}\"}}}}\n{{\"manifest\":{{\"seq\":7,\"sha256\":\"{}\"}}}}\n",
            "01".repeat(32),
            "02".repeat(32)
        );
        assert_eq!(Head::from_json_lines(&lines), Some(Head { seq: 9, sha256: h.clone() }), "the highest seq wins");
        let hb = format!("{{\"evidence\":{{\"chain_head\":{{\"seq\":20,\"sha256\":\"{h}\"}}}}}}");
        assert_eq!(Head::from_json_lines(&hb).map(|h| h.seq), Some(20));
        assert_eq!(Head::from_json_lines("{\"state\":\"end\"}\n"), None);
    }

    #[test]
    fn runs_group_consecutive_seqs() {
        assert_eq!(runs(&[1, 2, 3, 7, 9, 10]), vec![(1, 3), (7, 7), (9, 10)]);
        assert!(runs(&[]).is_empty());
    }

    #[test]
    fn exit_codes_need_a_pinned_key_and_no_findings() {
        let mut r = VerifyReport::default();
        assert_eq!(r.exit_code(), EXIT_NOT_AUTHENTICATED);
        r.authenticated = true;
        assert_eq!(r.exit_code(), 0);
        r.fail("x", "y");
        assert_eq!(r.exit_code(), EXIT_FINDINGS);
        let text = r.to_string();
        assert!(text.contains("FAILED: x: y") && text.contains("1 findings"), "{text}");
    }
}
