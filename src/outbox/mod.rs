//! Durable outbox: every alert and evidence message is written to disk *before* it is published
//! and deleted only when the broker's PubAck for it arrives. Survives broker outages and daemon
//! restarts; replay keeps the original order.
//!
//! Storage: one file per message, `<seq>.msg` (20-digit sequence number), written to a temp file,
//! fsync'd, then renamed, so a crash leaves either the whole message or none of it. A file that
//! cannot be parsed is moved aside as `.bad` and counted, never silently dropped.
//!
//! Size is bounded (`max_bytes`, payload bytes). When a new message would exceed it, the oldest
//! *evidence* messages (topics containing `/evidence/`) are evicted first; only when no evidence
//! is left are the oldest alerts evicted. Every eviction is counted and logged (alerts at ERROR:
//! that is data loss an operator must know about). Evicted evidence stays on disk in the
//! evidence store; only its delivery over MQTT is given up.

mod ledger;

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

pub use ledger::{Ledger, PublishId};

const MAGIC: &[u8; 4] = b"HKO1";

/// One message waiting for its PubAck.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub seq: u64,
    pub topic: String,
    pub payload: Vec<u8>,
    pub retain: bool,
}

/// The on-disk queue.
pub struct Outbox {
    dir: PathBuf,
    next_seq: u64,
    entries: BTreeMap<u64, Entry>,
    corrupt: u64,
    bytes: u64,
    max_bytes: u64,
    evicted_evidence: u64,
    evicted_alerts: u64,
}

/// Default bound on the outbox: 256 MiB of payload.
pub const DEFAULT_MAX_BYTES: u64 = 256 << 20;

fn is_evidence(topic: &str) -> bool {
    topic.contains("/evidence/")
}

impl Outbox {
    /// Opens (creating) the outbox in `dir` with the default size bound.
    pub fn open(dir: &Path) -> io::Result<Outbox> {
        Self::open_bounded(dir, DEFAULT_MAX_BYTES)
    }

    /// Opens (creating) the outbox in `dir` and loads what an earlier run left unsent.
    pub fn open_bounded(dir: &Path, max_bytes: u64) -> io::Result<Outbox> {
        fs::create_dir_all(dir)?;
        let mut entries = BTreeMap::new();
        let mut corrupt = 0;
        for de in fs::read_dir(dir)? {
            let path = de?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if name.ends_with(".tmp") {
                // an interrupted write never became a message
                let _ = fs::remove_file(&path);
                continue;
            }
            let Some(seq) = name.strip_suffix(".msg").and_then(|s| s.parse::<u64>().ok()) else { continue };
            match read_message_file(&path) {
                Some(e) => {
                    entries.insert(seq, e);
                }
                None => {
                    corrupt += 1;
                    tracing::error!(file = %path.display(), "outbox: unreadable message moved aside as .bad");
                    let _ = fs::rename(&path, path.with_extension("bad"));
                }
            }
        }
        let next_seq = entries.keys().next_back().map_or(1, |s| s + 1);
        let bytes = entries.values().map(|e: &Entry| e.payload.len() as u64).sum();
        Ok(Outbox {
            dir: dir.to_path_buf(),
            next_seq,
            entries,
            corrupt,
            bytes,
            max_bytes,
            evicted_evidence: 0,
            evicted_alerts: 0,
        })
    }

    /// Persists a message; returns its sequence number once it is safely on disk.
    pub fn push(&mut self, topic: &str, payload: Vec<u8>, retain: bool) -> io::Result<u64> {
        let size = payload.len() as u64;
        if size > self.max_bytes {
            return Err(io::Error::other(format!(
                "message of {size} bytes is larger than the whole outbox ({} bytes)",
                self.max_bytes
            )));
        }
        while self.bytes + size > self.max_bytes {
            self.evict_one()?;
        }
        let seq = self.next_seq;
        let e = Entry { seq, topic: topic.to_string(), payload, retain };
        crate::durable::write_file(&self.path(seq), &encode(&e))?;
        self.next_seq += 1;
        self.bytes += size;
        self.entries.insert(seq, e);
        Ok(seq)
    }

    /// Evicts the oldest evidence message, or the oldest message when no evidence is left.
    fn evict_one(&mut self) -> io::Result<()> {
        let victim = self
            .entries
            .values()
            .find(|e| is_evidence(&e.topic))
            .or_else(|| self.entries.values().next())
            .map(|e| (e.seq, e.topic.clone(), e.payload.len()));
        let Some((seq, topic, len)) = victim else { return Ok(()) };
        if is_evidence(&topic) {
            self.evicted_evidence += 1;
            tracing::warn!(seq, %topic, bytes = len, "outbox full: evidence message evicted (the file stays in the evidence store)");
        } else {
            self.evicted_alerts += 1;
            tracing::error!(seq, %topic, bytes = len, "outbox full: ALERT evicted before delivery");
        }
        self.ack(seq)
    }

    /// Evidence and alert messages evicted since the outbox was opened.
    pub fn evicted(&self) -> (u64, u64) {
        (self.evicted_evidence, self.evicted_alerts)
    }

    /// Payload bytes waiting.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Removes a message after the broker acknowledged it.
    pub fn ack(&mut self, seq: u64) -> io::Result<()> {
        if let Some(e) = self.entries.remove(&seq) {
            self.bytes -= e.payload.len() as u64;
            match fs::remove_file(self.path(seq)) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        Ok(())
    }

    pub fn get(&self, seq: u64) -> Option<&Entry> {
        self.entries.get(&seq)
    }

    /// Sequence numbers of all waiting messages, oldest first.
    /// Events with a message still waiting: evidence topics `…/evidence/{event_id}/…` and
    /// alerts (whose JSON names the event).
    pub fn pending_events(&self) -> std::collections::HashSet<String> {
        let mut out = std::collections::HashSet::new();
        for e in self.entries.values() {
            if let Some(rest) = e.topic.split_once("/evidence/").map(|(_, r)| r) {
                out.insert(rest.split('/').next().unwrap_or_default().to_string());
            } else if e.topic.ends_with("/alerts") {
                if let Some(id) = serde_json::from_slice::<serde_json::Value>(&e.payload).ok().and_then(|v| v["event_id"].as_str().map(str::to_string)) {
                    out.insert(id);
                }
            }
        }
        out
    }

    pub fn seqs(&self) -> Vec<u64> {
        self.entries.keys().copied().collect()
    }

    /// Messages waiting.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Files found unreadable when the outbox was opened.
    pub fn corrupt(&self) -> u64 {
        self.corrupt
    }

    fn path(&self, seq: u64) -> PathBuf {
        self.dir.join(format!("{seq:020}.msg"))
    }
}

/// Reads one outbox message file (read-only; for tools and tests that inspect an outbox).
pub fn read_message_file(path: &Path) -> Option<Entry> {
    let name = path.file_name()?.to_str()?;
    let seq = name.strip_suffix(".msg")?.parse::<u64>().ok()?;
    decode(seq, &fs::read(path).ok()?)
}

// Layout: MAGIC, retain u8, topic_len u32 LE, topic, payload_len u32 LE, payload.
fn encode(e: &Entry) -> Vec<u8> {
    let mut b = Vec::with_capacity(13 + e.topic.len() + e.payload.len());
    b.extend_from_slice(MAGIC);
    b.push(e.retain as u8);
    b.extend_from_slice(&(e.topic.len() as u32).to_le_bytes());
    b.extend_from_slice(e.topic.as_bytes());
    b.extend_from_slice(&(e.payload.len() as u32).to_le_bytes());
    b.extend_from_slice(&e.payload);
    b
}

fn decode(seq: u64, b: &[u8]) -> Option<Entry> {
    if b.len() < 13 || &b[..4] != MAGIC {
        return None;
    }
    let retain = b[4] != 0;
    let tl = u32::from_le_bytes(b[5..9].try_into().ok()?) as usize;
    let topic = std::str::from_utf8(b.get(9..9 + tl)?).ok()?.to_string();
    let p0 = 9 + tl;
    let pl = u32::from_le_bytes(b.get(p0..p0 + 4)?.try_into().ok()?) as usize;
    let payload = b.get(p0 + 4..p0 + 4 + pl)?.to_vec();
    if p0 + 4 + pl != b.len() {
        return None;
    }
    Some(Entry { seq, topic, payload, retain })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_survive_reopen_in_order_until_acked() {
        let dir = tempfile::tempdir().unwrap();
        let mut ob = Outbox::open(dir.path()).unwrap();
        let a = ob.push("t/a", b"one".to_vec(), false).unwrap();
        let b = ob.push("t/b", vec![0, 1, 2, 255], true).unwrap();
        let c = ob.push("t/c", Vec::new(), false).unwrap();
        ob.ack(b).unwrap();
        drop(ob);
        let mut ob = Outbox::open(dir.path()).unwrap();
        assert_eq!(ob.seqs(), vec![a, c]);
        assert_eq!(ob.get(a).unwrap().payload, b"one");
        assert_eq!(ob.get(c).unwrap().topic, "t/c");
        let d = ob.push("t/d", b"x".to_vec(), false).unwrap();
        assert!(d > c, "sequence numbers keep growing after a restart");
    }

    #[test]
    fn a_full_outbox_evicts_evidence_before_alerts() {
        let dir = tempfile::tempdir().unwrap();
        let mut ob = Outbox::open_bounded(dir.path(), 100).unwrap();
        let a1 = ob.push("h/d/alerts", vec![1; 20], false).unwrap();
        let e1 = ob.push("h/d/evidence/ev1/clean", vec![2; 40], false).unwrap();
        let a2 = ob.push("h/d/alerts", vec![3; 20], false).unwrap();
        let e2 = ob.push("h/d/evidence/ev2/clean", vec![4; 20], false).unwrap();
        assert_eq!(ob.bytes(), 100);
        // 30 more bytes: the oldest evidence (40 bytes) goes, the alerts stay
        let a3 = ob.push("h/d/alerts", vec![5; 30], false).unwrap();
        assert_eq!(ob.seqs(), vec![a1, a2, e2, a3]);
        assert_eq!(ob.evicted(), (1, 0));
        // 45 more: the remaining evidence (20) is not enough, so the oldest alert goes too
        let a4 = ob.push("h/d/alerts", vec![6; 45], false).unwrap();
        assert_eq!(ob.seqs(), vec![a2, a3, a4]);
        assert_eq!(ob.evicted(), (2, 1));
        assert!(!dir.path().join(format!("{e1:020}.msg")).exists());
        assert!(ob.push("h/d/alerts", vec![0; 101], false).is_err(), "larger than the whole outbox");
        drop(ob);
        assert_eq!(Outbox::open_bounded(dir.path(), 100).unwrap().bytes(), 95);
    }

    #[test]
    fn a_damaged_file_is_set_aside_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let mut ob = Outbox::open(dir.path()).unwrap();
        let a = ob.push("t", b"good".to_vec(), false).unwrap();
        let b = ob.push("t", b"will be cut".to_vec(), false).unwrap();
        drop(ob);
        let p = dir.path().join(format!("{b:020}.msg"));
        let bytes = fs::read(&p).unwrap();
        fs::write(&p, &bytes[..bytes.len() - 3]).unwrap();
        fs::write(dir.path().join("00000000000000000099.tmp"), b"half").unwrap();
        let ob = Outbox::open(dir.path()).unwrap();
        assert_eq!(ob.seqs(), vec![a]);
        assert_eq!(ob.corrupt(), 1);
        assert!(p.with_extension("bad").exists());
        assert!(!dir.path().join("00000000000000000099.tmp").exists());
    }
}
