//! The `chain.log` format, and what the sealer does when its tail is damaged.
//!
//! `chain.log` holds one line per manifest, `<seq> <event_id> <sha256>`, and, after a repair,
//! a signed *segment marker*:
//!
//! ```text
//! segment <next_seq> <prev_sha256|none> <last_good_seq> <reason> <damaged_file> <at> <signature>
//! ```
//!
//! It says: the lines after seq `last_good_seq` were damaged and moved to `damaged_file`
//! (beside `chain.log`); the chain continues at `next_seq`, its next manifest linking to
//! `prev_sha256` (the last good manifest). The signature (Ed25519, device key) covers
//! [`SegmentMarker::statement`], so a marker cannot be forged to hide removed manifests.
//!
//! A line is *damaged* when it does not parse, or when the manifest file it names is missing
//! (and not retired) or has another sha256. Only a damaged *tail* is repaired: a crash or a bad
//! sector at the end must not keep the cameras dark. Damage before good lines is left for
//! `hawkeye verify` to report.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use super::seal::{parse_chain_line, sha256_hex};

/// Why a segment started (the only reason today).
pub const DAMAGED_TAIL: &str = "damaged_tail";

/// A signed `segment` line of `chain.log`.
#[derive(Clone, Debug, PartialEq)]
pub struct SegmentMarker {
    /// Seq of the first manifest of the new segment.
    pub next_seq: u64,
    /// sha256 of the last good manifest (`None`: no good line was left).
    pub prev: Option<String>,
    /// Seq of the last good manifest line (0: none).
    pub last_good_seq: u64,
    pub reason: String,
    /// File name (beside `chain.log`) holding the damaged lines.
    pub damaged_file: String,
    /// UTC time of the repair (RFC 3339).
    pub at: String,
    /// Ed25519 signature of [`SegmentMarker::statement`], 128 hex digits.
    pub signature: String,
}

impl SegmentMarker {
    /// The signed statement.
    pub fn statement(&self) -> String {
        format!(
            "hawkeye-chain-segment {} {} {} {} {} {}",
            self.next_seq,
            self.prev.as_deref().unwrap_or("none"),
            self.last_good_seq,
            self.reason,
            self.damaged_file,
            self.at
        )
    }

    /// The `chain.log` line, with its newline.
    pub fn line(&self) -> String {
        format!(
            "segment {} {} {} {} {} {} {}\n",
            self.next_seq,
            self.prev.as_deref().unwrap_or("none"),
            self.last_good_seq,
            self.reason,
            self.damaged_file,
            self.at,
            self.signature
        )
    }

    /// Parses a `segment …` line (signature not checked).
    pub fn parse(line: &str) -> Option<SegmentMarker> {
        let p: Vec<&str> = line.split(' ').collect();
        if p.len() != 8 || p[0] != "segment" || p.iter().any(|t| t.is_empty()) {
            return None;
        }
        let prev = match p[2] {
            "none" => None,
            h if is_sha256(h) => Some(h.to_string()),
            _ => return None,
        };
        Some(SegmentMarker {
            next_seq: p[1].parse().ok()?,
            prev,
            last_good_seq: p[3].parse().ok()?,
            reason: p[4].into(),
            damaged_file: p[5].into(),
            at: p[6].into(),
            signature: p[7].into(),
        })
    }
}

fn is_sha256(h: &str) -> bool {
    h.len() == 64 && h.bytes().all(|c| c.is_ascii_hexdigit())
}

/// One line of `chain.log`.
#[derive(Clone, Debug, PartialEq)]
pub enum ChainLine {
    Manifest { seq: u64, event_id: String, sha256: String },
    Segment(SegmentMarker),
}

impl ChainLine {
    /// Parses a line (without its newline); `None` for anything else.
    pub fn parse(line: &str) -> Option<ChainLine> {
        if line.starts_with("segment ") {
            return SegmentMarker::parse(line).map(ChainLine::Segment);
        }
        let (seq, event_id, sha256) = parse_chain_line(line)?;
        Some(ChainLine::Manifest { seq, event_id, sha256 })
    }
}

/// Splits `chain.log` bytes into lines. The second value is true when the last line had no
/// newline (a torn append).
pub fn split_lines(bytes: &[u8]) -> (Vec<&[u8]>, bool) {
    if bytes.is_empty() {
        return (Vec::new(), false);
    }
    let torn = !bytes.ends_with(b"\n");
    let body = if torn { bytes } else { &bytes[..bytes.len() - 1] };
    (body.split(|b| *b == b'\n').collect(), torn)
}

/// Index of the first line of the damaged tail: every line from there on is damaged, the one
/// before it is good. `lines.len()` when the last line is good (or there are none). A torn last
/// line counts as damaged whatever it says. Pure: `is_good` judges one complete line.
pub fn damaged_tail_start(lines: &[&[u8]], torn: bool, mut is_good: impl FnMut(&[u8]) -> bool) -> usize {
    let mut start = lines.len();
    for (i, line) in lines.iter().enumerate().rev() {
        let last_and_torn = torn && i + 1 == lines.len();
        if !last_and_torn && is_good(line) {
            break;
        }
        start = i;
    }
    start
}

/// An event id that is safe to join to the evidence directory.
pub fn safe_event_id(id: &str) -> bool {
    !id.is_empty() && id != "." && id != ".." && !id.contains('/')
}

/// Whether a manifest line is consistent with the store: its manifest file has the recorded
/// sha256, or it is gone and `retired` (the text of `retired.log`) retires exactly this line.
pub fn manifest_line_holds(dir: &Path, seq: u64, event_id: &str, sha256: &str, retired: &str) -> bool {
    if !safe_event_id(event_id) {
        return false;
    }
    match fs::read(dir.join(event_id).join(format!("manifest-{seq}.json"))) {
        Ok(bytes) => sha256_hex(&bytes) == sha256,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let prefix = format!("{seq} {event_id} {sha256} ");
            retired.lines().any(|l| l.starts_with(&prefix))
        }
        Err(_) => false,
    }
}

/// Every `<event_id>/manifest-<seq>.json` in an evidence directory, by seq.
pub fn manifests_on_disk(dir: &Path) -> BTreeMap<u64, PathBuf> {
    let mut out = BTreeMap::new();
    for d in fs::read_dir(dir).into_iter().flatten().flatten() {
        if !d.path().is_dir() {
            continue;
        }
        for f in fs::read_dir(d.path()).into_iter().flatten().flatten() {
            let name = f.file_name();
            let seq = name.to_str().and_then(|n| n.strip_prefix("manifest-")?.strip_suffix(".json")?.parse::<u64>().ok());
            if let Some(seq) = seq {
                out.insert(seq, f.path());
            }
        }
    }
    out
}

/// A repair made when the sealer opened the chain; reported in the log and the heartbeat.
#[derive(Clone, Debug, PartialEq)]
pub struct ChainRepair {
    /// Where the damaged lines were moved.
    pub damaged_file: PathBuf,
    /// Seq of the last good manifest (0: none).
    pub last_good_seq: u64,
    /// Seq the new segment starts at.
    pub next_seq: u64,
    /// Number of damaged lines moved aside.
    pub damaged_lines: usize,
}

/// `chain.log.damaged-<UTC stamp>` beside `log`, not yet taken.
pub fn damaged_file_name(dir: &Path, now: chrono::DateTime<chrono::Utc>) -> String {
    let base = format!("chain.log.damaged-{}", now.format("%Y%m%dT%H%M%SZ"));
    let mut name = base.clone();
    let mut k = 1;
    while dir.join(&name).exists() {
        name = format!("{base}-{k}");
        k += 1;
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    fn marker() -> SegmentMarker {
        SegmentMarker {
            next_seq: 9,
            prev: Some("ab".repeat(32)),
            last_good_seq: 7,
            reason: DAMAGED_TAIL.into(),
            damaged_file: "chain.log.damaged-20261203T100000Z".into(),
            at: "2026-12-03T10:00:00.000Z".into(),
            signature: "00".repeat(64),
        }
    }

    #[test]
    fn segment_markers_round_trip_and_parse_strictly() {
        let m = marker();
        let line = m.line();
        assert_eq!(SegmentMarker::parse(line.trim_end()), Some(m.clone()));
        assert_eq!(ChainLine::parse(line.trim_end()), Some(ChainLine::Segment(m.clone())));
        let none = SegmentMarker { prev: None, last_good_seq: 0, ..m.clone() };
        assert_eq!(SegmentMarker::parse(none.line().trim_end()), Some(none));
        assert!(SegmentMarker::parse(&line.trim_end().replace(" 7 ", " x ")).is_none());
        assert!(SegmentMarker::parse(&format!("{} extra", line.trim_end())).is_none());
        assert!(SegmentMarker::parse(&line.trim_end().replace(&"ab".repeat(32), "abc")).is_none());
        assert!(m.statement().contains(" 9 ") && m.statement().contains(&m.damaged_file), "the statement binds where and why");
    }

    #[test]
    fn lines_split_and_a_torn_last_line_is_seen() {
        assert_eq!(split_lines(b""), (vec![], false));
        assert_eq!(split_lines(b"a\nb\n"), (vec![&b"a"[..], &b"b"[..]], false));
        assert_eq!(split_lines(b"a\nb"), (vec![&b"a"[..], &b"b"[..]], true));
        assert_eq!(split_lines(b"a\n\x0b"), (vec![&b"a"[..], &b"\x0b"[..]], true));
    }

    #[test]
    fn the_damaged_tail_is_the_run_of_bad_lines_at_the_end() {
        let good = |l: &[u8]| l.starts_with(b"ok");
        let lines: Vec<&[u8]> = vec![b"ok1", b"ok2", b"bad", b"bad"];
        assert_eq!(damaged_tail_start(&lines, false, good), 2);
        let lines: Vec<&[u8]> = vec![b"ok1", b"bad", b"ok3"];
        assert_eq!(damaged_tail_start(&lines, false, good), 3, "damage before a good line is not a tail");
        // a torn last line is damaged even if what is there looks right
        assert_eq!(damaged_tail_start(&lines, true, good), 1);
        let lines: Vec<&[u8]> = vec![b"bad", b"bad"];
        assert_eq!(damaged_tail_start(&lines, false, good), 0);
        assert_eq!(damaged_tail_start(&[], false, good), 0);
    }

    #[test]
    fn a_line_holds_only_against_its_manifest_or_a_retirement() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("ev")).unwrap();
        fs::write(dir.path().join("ev/manifest-3.json"), b"{}\n").unwrap();
        let h = sha256_hex(b"{}\n");
        assert!(manifest_line_holds(dir.path(), 3, "ev", &h, ""));
        assert!(!manifest_line_holds(dir.path(), 3, "ev", &"0".repeat(64), ""), "hash differs");
        assert!(!manifest_line_holds(dir.path(), 4, "ev", &h, ""), "seq names no file");
        assert!(!manifest_line_holds(dir.path(), 3, "../ev", &h, ""));
        let gone = "1".repeat(64);
        assert!(manifest_line_holds(dir.path(), 5, "old", &gone, &format!("5 old {gone} 2026-01-01T00:00:00.000Z expired sig\n")));
        assert_eq!(manifests_on_disk(dir.path()).keys().copied().collect::<Vec<_>>(), vec![3]);
    }
}
