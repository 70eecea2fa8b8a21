//! Durable outbox: every alert and evidence message is written to disk *before* it is published
//! and deleted only when the broker's PubAck for it arrives. Survives broker outages and daemon
//! restarts; replay keeps the original order.
//!
//! Storage: one file per message, `<seq>.msg` (20-digit sequence number) in the format of
//! [`record`] (CRC32 over header and payload), written to a temp file, fsync'd, renamed and the
//! directory fsync'd, so a crash leaves either the whole message or none of it. RAM holds only an
//! index (seq → topic, length, retain, kind, event id); payloads are read back from disk when the
//! link sends them. A file that fails its CRC or length is moved aside as `.bad`, counted and
//! logged at ERROR, never delivered.
//!
//! Concurrency: `&self` methods, shared as `Arc<Outbox>`. The index lock is held only for
//! bookkeeping; file writes, fsyncs, reads and deletions happen outside it, so the MQTT link
//! (which takes the index lock to find what to send and to ack) never waits on a producer's disk.
//!
//! Size is bounded (`max_bytes`, payload bytes). When a new message would exceed it, the oldest
//! *evidence* messages are evicted first, then other messages (command replies, snapshots), and
//! only when nothing else is left the oldest alerts. Every eviction is counted and logged (alerts
//! at ERROR: that is data loss an operator must know about). Evicted evidence stays on disk in
//! the evidence store; only its delivery over MQTT is given up.
//!
//! A disk that refuses writes (read-only, full, I/O errors): the message is kept in memory (still
//! sendable, in sequence order) up to `max_memory` bytes, written once the disk accepts again
//! (retried on every push and by [`Outbox::maintain`]). ERROR once per failure episode, a line on
//! recovery; [`Outbox::health`] tells telemetry. Beyond the memory bound the oldest held evidence
//! goes first, alerts last (ERROR, counted).

pub mod blob;
mod ledger;
pub mod record;

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

pub use blob::{push_blob, BlobRef};
pub use ledger::{Ledger, PublishId};
use record::{Header, Kind};

/// One message waiting for its PubAck (an owned copy, read back from disk).
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub seq: u64,
    pub topic: String,
    pub payload: Vec<u8>,
    pub retain: bool,
}

/// Default bound on the outbox: 256 MiB of payload.
pub const DEFAULT_MAX_BYTES: u64 = 256 << 20;
/// Default bound on messages held in memory while the disk refuses writes: 32 MiB.
pub const DEFAULT_MAX_MEMORY: u64 = 32 << 20;

/// The index entry of one message.
#[derive(Debug)]
struct Slot {
    header: Header,
    /// The payload while the disk refuses to take it; `None` once it is on disk.
    held: Option<Arc<Vec<u8>>>,
}

impl Slot {
    fn len(&self) -> u64 {
        self.header.payload_len as u64
    }
}

#[derive(Debug, Default)]
struct Index {
    next_seq: u64,
    slots: BTreeMap<u64, Slot>,
    /// Payload bytes of every slot plus writes under way.
    bytes: u64,
    held_bytes: u64,
    corrupt: u64,
    evicted_evidence: u64,
    evicted_alerts: u64,
    evicted_other: u64,
    /// Messages lost because the disk refused them and memory was full.
    lost_in_memory: u64,
    disk_ok: bool,
    disk_errors: u64,
    last_disk_error: Option<String>,
    /// Deletions since the directory was last fsync'd.
    unsynced_deletes: u64,
}

/// What telemetry shows about the outbox.
#[derive(Clone, Debug, PartialEq)]
pub struct OutboxHealth {
    /// False while the disk refuses writes (messages are held in memory).
    pub disk_ok: bool,
    /// Failed writes since start.
    pub disk_errors: u64,
    /// The last write error, while the disk refuses writes.
    pub disk_error: Option<String>,
    /// Messages held in memory, not yet on disk.
    pub in_memory: usize,
    pub in_memory_bytes: u64,
    /// Messages lost because the disk refused them and the memory bound was reached.
    pub lost_in_memory: u64,
    /// Records set aside as `.bad` (CRC, length).
    pub corrupt: u64,
}

/// The on-disk queue.
#[derive(Debug)]
pub struct Outbox {
    dir: PathBuf,
    max_bytes: u64,
    max_memory: u64,
    index: Mutex<Index>,
    /// One writer of held messages at a time (push and maintain may both try).
    flushing: Mutex<()>,
}

impl Outbox {
    /// Opens (creating) the outbox in `dir` with the default bounds.
    pub fn open(dir: &Path) -> io::Result<Outbox> {
        Self::open_bounded(dir, DEFAULT_MAX_BYTES)
    }

    /// Opens (creating) the outbox in `dir` and indexes what an earlier run left unsent.
    pub fn open_bounded(dir: &Path, max_bytes: u64) -> io::Result<Outbox> {
        Self::open_with(dir, max_bytes, DEFAULT_MAX_MEMORY)
    }

    /// Like [`Outbox::open_bounded`], also bounding what is held in memory while the disk refuses
    /// writes to `max_memory` bytes.
    pub fn open_with(dir: &Path, max_bytes: u64, max_memory: u64) -> io::Result<Outbox> {
        fs::create_dir_all(dir)?;
        let mut ix = Index { disk_ok: true, ..Default::default() };
        let mut names: Vec<(u64, PathBuf)> = Vec::new();
        for de in fs::read_dir(dir)? {
            let path = de?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if name.ends_with(".tmp") {
                // an interrupted write never became a message
                let _ = fs::remove_file(&path);
                continue;
            }
            if let Some(seq) = name.strip_suffix(".msg").and_then(|s| s.parse::<u64>().ok()) {
                names.push((seq, path));
            }
        }
        for (seq, path) in names {
            match read_header(&path) {
                Some(header) => {
                    ix.bytes += header.payload_len as u64;
                    ix.slots.insert(seq, Slot { header, held: None });
                }
                None => {
                    ix.corrupt += 1;
                    set_aside(&path);
                }
            }
        }
        ix.next_seq = ix.slots.keys().next_back().map_or(1, |s| s + 1);
        Ok(Outbox { dir: dir.to_path_buf(), max_bytes, max_memory, index: Mutex::new(ix), flushing: Mutex::new(()) })
    }

    /// Persists a message and returns its sequence number. Normally the message is on disk when
    /// this returns; when the disk refuses it, it is held in memory (and sent from there) until
    /// the disk takes it. Errors: larger than the whole outbox, or refused by the disk with no
    /// room left in memory.
    pub fn push(&self, topic: &str, payload: Vec<u8>, retain: bool) -> io::Result<u64> {
        let size = payload.len() as u64;
        if size > self.max_bytes || size > u32::MAX as u64 {
            return Err(io::Error::other(format!("message of {size} bytes is larger than the whole outbox ({} bytes)", self.max_bytes)));
        }
        let (kind, event_id) = record::classify(topic, &payload);
        let header = Header { topic: topic.to_string(), retain, kind, event_id, payload_len: size as u32 };
        let (seq, victims) = {
            let mut ix = self.index.lock().unwrap();
            let mut victims = Vec::new();
            while ix.bytes + size > self.max_bytes {
                match evict_one(&mut ix, |_| true) {
                    Some(v) => victims.extend(v),
                    // only writes under way are left: they will land, the bound is briefly exceeded
                    None => break,
                }
            }
            ix.bytes += size;
            let seq = ix.next_seq;
            ix.next_seq += 1;
            (seq, victims)
        };
        self.remove_files(&victims);
        // held messages go to disk first, so the files keep their order
        self.flush_held();
        // while earlier messages are held, this one waits behind them (order on disk and on the
        // wire stays the sequence order; the disk was just tried by flush_held)
        let must_hold = self.index.lock().unwrap().held_bytes > 0;
        let written = (!must_hold).then(|| {
            let (head, crc) = record::encode_v2(&header, &payload);
            crate::durable::write_parts(&self.path(seq), &[&head, &payload, &crc])
        });
        let mut ix = self.index.lock().unwrap();
        let refused = match written {
            Some(Ok(())) => {
                ix.slots.insert(seq, Slot { header, held: None });
                self.recovered(&mut ix, 1);
                return Ok(seq);
            }
            Some(Err(e)) => {
                self.disk_refused(&mut ix, &e);
                e.to_string()
            }
            None => ix.last_disk_error.clone().unwrap_or_else(|| "earlier messages are still held".into()),
        };
        ix.held_bytes += size;
        ix.slots.insert(seq, Slot { header, held: Some(Arc::new(payload)) });
        let mut lost_self = false;
        while ix.held_bytes > self.max_memory {
            let Some(victim) = evict_held(&mut ix) else { break };
            lost_self |= victim == seq;
        }
        if lost_self {
            return Err(io::Error::other(format!("the disk refuses writes ({refused}) and the message does not fit in memory")));
        }
        Ok(seq)
    }

    /// Marks the end of a refusal episode once nothing is held any more.
    fn recovered(&self, ix: &mut Index, written: usize) {
        if !ix.disk_ok && ix.held_bytes == 0 {
            ix.disk_ok = true;
            ix.last_disk_error = None;
            tracing::warn!(dir = %self.dir.display(), written, "outbox: the disk accepts writes again; held messages are on disk");
        }
    }

    /// Periodic upkeep (every few seconds, off the link's task): writes held messages once the
    /// disk accepts again and makes deletions durable.
    pub fn maintain(&self) {
        self.flush_held();
        let pending = std::mem::take(&mut self.index.lock().unwrap().unsynced_deletes);
        if pending > 0 && crate::durable::sync_dir(&self.dir).is_err() {
            // retried next time; a lost deletion only means a duplicate delivery after a crash
            self.index.lock().unwrap().unsynced_deletes += pending;
        }
    }

    /// Writes held messages to disk, oldest first, stopping at the first refusal.
    fn flush_held(&self) {
        let Ok(_one) = self.flushing.try_lock() else { return };
        let todo: Vec<(u64, Header, Arc<Vec<u8>>)> = {
            let ix = self.index.lock().unwrap();
            if ix.held_bytes == 0 && ix.disk_ok {
                return;
            }
            ix.slots.iter().filter_map(|(s, slot)| Some((*s, slot.header.clone(), slot.held.clone()?))).collect()
        };
        if todo.is_empty() {
            // everything held was delivered from memory: check the disk with a scratch file
            let scratch = self.dir.join("disk-check.tmp");
            match crate::durable::write_file(&scratch, b"ok") {
                Ok(()) => {
                    let _ = fs::remove_file(&scratch);
                    self.recovered(&mut self.index.lock().unwrap(), 0);
                }
                Err(e) => self.disk_refused(&mut self.index.lock().unwrap(), &e),
            }
            return;
        }
        let mut written = 0usize;
        for (seq, header, payload) in todo {
            let (head, crc) = record::encode_v2(&header, &payload);
            let path = self.path(seq);
            if let Err(e) = crate::durable::write_parts(&path, &[&head, &payload, &crc]) {
                self.disk_refused(&mut self.index.lock().unwrap(), &e);
                return;
            }
            let mut ix = self.index.lock().unwrap();
            match ix.slots.get_mut(&seq) {
                Some(slot) if slot.held.is_some() => {
                    slot.held = None;
                    ix.held_bytes -= payload.len() as u64;
                    written += 1;
                }
                // acked or evicted while it was being written
                _ => {
                    drop(ix);
                    let _ = fs::remove_file(&path);
                }
            }
        }
        self.recovered(&mut self.index.lock().unwrap(), written);
    }

    /// Records a refused write: ERROR once per episode, counted every time.
    fn disk_refused(&self, ix: &mut Index, e: &io::Error) {
        ix.disk_errors += 1;
        if ix.disk_ok {
            tracing::error!(
                dir = %self.dir.display(),
                "outbox: cannot write messages to disk: {e}; holding them in memory (up to {} MB) and retrying; check the disk",
                self.max_memory >> 20
            );
        }
        ix.disk_ok = false;
        ix.last_disk_error = Some(e.to_string());
    }

    /// Evidence, other and alert messages evicted since the outbox was opened: (evidence, alerts).
    pub fn evicted(&self) -> (u64, u64) {
        let ix = self.index.lock().unwrap();
        (ix.evicted_evidence, ix.evicted_alerts)
    }

    /// Command replies, snapshots and other non-event messages evicted.
    pub fn evicted_other(&self) -> u64 {
        self.index.lock().unwrap().evicted_other
    }

    /// Payload bytes waiting.
    pub fn bytes(&self) -> u64 {
        self.index.lock().unwrap().bytes
    }

    /// Payload bytes held in memory (only while the disk refuses writes; else 0).
    pub fn memory_bytes(&self) -> u64 {
        self.index.lock().unwrap().held_bytes
    }

    /// Removes a message after the broker acknowledged it. The deletion is made durable by the
    /// next [`Outbox::maintain`] (a deletion lost in a crash only means a duplicate delivery).
    pub fn ack(&self, seq: u64) -> io::Result<()> {
        let on_disk = {
            let mut ix = self.index.lock().unwrap();
            let Some(slot) = ix.slots.remove(&seq) else { return Ok(()) };
            ix.bytes -= slot.len();
            if slot.held.is_some() {
                ix.held_bytes -= slot.len();
                false
            } else {
                ix.unsynced_deletes += 1;
                true
            }
        };
        if on_disk {
            match fs::remove_file(self.path(seq)) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        Ok(())
    }

    /// The message `seq` (from memory while held, else read from disk and checked). `None` when
    /// it is gone (acked, evicted) or its file fails the check (then it is set aside as `.bad`,
    /// counted and logged at ERROR).
    pub fn get(&self, seq: u64) -> Option<Entry> {
        {
            let ix = self.index.lock().unwrap();
            let slot = ix.slots.get(&seq)?;
            if let Some(p) = &slot.held {
                return Some(Entry { seq, topic: slot.header.topic.clone(), payload: p.to_vec(), retain: slot.header.retain });
            }
        }
        let path = self.path(seq);
        let checked = fs::read(&path).ok().and_then(|b| record::decode(&b));
        let mut ix = self.index.lock().unwrap();
        let expected = ix.slots.get(&seq)?;
        match checked {
            Some((h, payload)) if h.topic == expected.header.topic && h.payload_len == expected.header.payload_len => {
                Some(Entry { seq, topic: h.topic, payload, retain: h.retain })
            }
            _ => {
                let slot = ix.slots.remove(&seq)?;
                ix.bytes -= slot.len();
                ix.corrupt += 1;
                drop(ix);
                set_aside(&path);
                None
            }
        }
    }

    /// Sequence numbers of all waiting messages, oldest first.
    pub fn seqs(&self) -> Vec<u64> {
        self.index.lock().unwrap().slots.keys().copied().collect()
    }

    /// Events with a message still waiting (evidence and alerts name their event).
    pub fn pending_events(&self) -> HashSet<String> {
        self.index.lock().unwrap().slots.values().filter_map(|s| s.header.event_id.clone()).collect()
    }

    /// Messages waiting.
    pub fn len(&self) -> usize {
        self.index.lock().unwrap().slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Files found damaged (at start-up or when read) and set aside as `.bad`.
    pub fn corrupt(&self) -> u64 {
        self.index.lock().unwrap().corrupt
    }

    /// Disk state and counters for telemetry.
    pub fn health(&self) -> OutboxHealth {
        let ix = self.index.lock().unwrap();
        OutboxHealth {
            disk_ok: ix.disk_ok,
            disk_errors: ix.disk_errors,
            disk_error: ix.last_disk_error.clone(),
            in_memory: ix.slots.values().filter(|s| s.held.is_some()).count(),
            in_memory_bytes: ix.held_bytes,
            lost_in_memory: ix.lost_in_memory,
            corrupt: ix.corrupt,
        }
    }

    /// The directory the outbox lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, seq: u64) -> PathBuf {
        self.dir.join(format!("{seq:020}.msg"))
    }

    fn remove_files(&self, seqs: &[u64]) {
        for seq in seqs {
            let _ = fs::remove_file(self.path(*seq));
        }
    }
}

impl Drop for Outbox {
    fn drop(&mut self) {
        let ix = self.index.get_mut().unwrap();
        if ix.held_bytes > 0 {
            tracing::error!(
                waiting = ix.slots.values().filter(|s| s.held.is_some()).count(),
                "outbox: messages the disk refused are lost at exit"
            );
        }
        if ix.unsynced_deletes > 0 {
            let _ = crate::durable::sync_dir(&self.dir);
        }
    }
}

/// Evicts one message by the policy (oldest evidence, then oldest other, then oldest alert) among
/// those `eligible`; returns the seq of its file to delete (`None` inside: it was held in memory),
/// or `None` when nothing is left.
fn evict_one(ix: &mut Index, eligible: impl Fn(&Slot) -> bool) -> Option<Option<u64>> {
    let pick = |kind: Kind| ix.slots.iter().find(|(_, s)| s.header.kind == kind && eligible(s)).map(|(seq, _)| *seq);
    let seq = pick(Kind::Evidence).or_else(|| pick(Kind::Other)).or_else(|| pick(Kind::Alert))?;
    let slot = ix.slots.remove(&seq)?;
    ix.bytes -= slot.len();
    let held = slot.held.is_some();
    if held {
        ix.held_bytes -= slot.len();
        ix.lost_in_memory += 1;
    } else {
        ix.unsynced_deletes += 1;
    }
    let (topic, bytes) = (&slot.header.topic, slot.len());
    let why = if held { "the disk refuses writes and the memory bound is reached" } else { "outbox full" };
    match slot.header.kind {
        Kind::Evidence => {
            ix.evicted_evidence += 1;
            if held {
                tracing::error!(seq, %topic, bytes, "{why}: evidence message lost before delivery");
            } else {
                tracing::warn!(seq, %topic, bytes, "{why}: evidence message evicted (the file stays in the evidence store)");
            }
        }
        Kind::Other => {
            ix.evicted_other += 1;
            tracing::warn!(seq, %topic, bytes, "{why}: message evicted before delivery");
        }
        Kind::Alert => {
            ix.evicted_alerts += 1;
            tracing::error!(seq, %topic, bytes, "{why}: ALERT evicted before delivery");
        }
    }
    Some((!held).then_some(seq))
}

/// Evicts one message held in memory; returns its seq.
fn evict_held(ix: &mut Index) -> Option<u64> {
    let seq = {
        let pick = |kind: Kind| ix.slots.iter().find(|(_, s)| s.header.kind == kind && s.held.is_some()).map(|(seq, _)| *seq);
        pick(Kind::Evidence).or_else(|| pick(Kind::Other)).or_else(|| pick(Kind::Alert))?
    };
    evict_one(ix, |s| s.held.is_some()).map(|_| seq)
}

/// Moves a damaged record aside as `.bad` (kept for inspection, never delivered).
fn set_aside(path: &Path) {
    tracing::error!(file = %path.display(), "outbox: damaged message (CRC or length) moved aside as .bad; it will not be delivered");
    let _ = fs::rename(path, path.with_extension("bad"));
}

/// The index fields of a message file, reading only its head (an `HKO1` file is read whole).
/// `None` when the file is damaged: bad magic, header, or a length that does not match.
fn read_header(path: &Path) -> Option<Header> {
    let mut f = fs::File::open(path).ok()?;
    let len = f.metadata().ok()?.len();
    let mut head = vec![0u8; record::HEADER_V2];
    f.read_exact(&mut head).ok()?;
    if head[..4] == record::MAGIC_V1[..] {
        return fs::read(path).ok().and_then(|b| record::decode(&b)).map(|(h, _)| h);
    }
    let tl = u16::from_le_bytes([head[5], head[6]]) as usize;
    let el = u16::from_le_bytes([head[7], head[8]]) as usize;
    head.resize(record::HEADER_V2 + tl + el, 0);
    f.read_exact(&mut head[record::HEADER_V2..]).ok()?;
    let h = record::decode_header_v2(&head)?;
    (h.record_len() == len).then_some(h)
}

/// Reads one outbox message file (read-only; for tools and tests that inspect an outbox).
/// `None` when it is not a message file or fails its check.
pub fn read_message_file(path: &Path) -> Option<Entry> {
    let name = path.file_name()?.to_str()?;
    let seq = name.strip_suffix(".msg")?.parse::<u64>().ok()?;
    let (h, payload) = record::decode(&fs::read(path).ok()?)?;
    Some(Entry { seq, topic: h.topic, payload, retain: h.retain })
}

#[cfg(test)]
mod tests;
