//! Evidence retention: events are kept at least `retain_days` (public-space camera rules ask
//! for 30 days or more) and the store is kept under `max_mb`. Deleting never loses anything
//! silently:
//! - an event whose messages are still waiting in the outbox is never deleted;
//! - an event older than `retain_days` is deleted (logged at INFO, counted);
//! - over the cap, the oldest delivered events go even before `retain_days`; each such early
//!   deletion is logged at ERROR (retention fell short of the rule) and counted;
//! - if the store stays over the cap because of undelivered evidence, that is logged at ERROR
//!   and reported in the heartbeat;
//! - every deleted event is *retired* in the hash chain: `retired.log` gets one line per
//!   manifest, signed with the device key, so `hawkeye verify` still verifies the chain and
//!   can tell a retired manifest from a removed one.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use super::seal::{parse_chain_line, SealError, Sealer};

/// One event directory in the store.
#[derive(Clone, Debug, PartialEq)]
pub struct EventDir {
    pub event_id: String,
    /// The newest file in it (the event's last evidence).
    pub newest: SystemTime,
    pub bytes: u64,
}

/// What a sweep will delete.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Plan {
    /// Older than the retention period, delivered.
    pub expired: Vec<String>,
    /// Younger than the retention period, deleted to get under the cap.
    pub early: Vec<String>,
    /// Bytes still over the cap after the plan (only undelivered or kept evidence left).
    pub over_cap_bytes: u64,
}

/// Decides what to delete. Pure: `now`, the directories, and the events with messages still
/// waiting for the broker.
pub fn plan(dirs: &[EventDir], pending: &HashSet<String>, now: SystemTime, retain: Duration, max_bytes: u64) -> Plan {
    let mut sorted: Vec<&EventDir> = dirs.iter().collect();
    sorted.sort_by_key(|d| d.newest);
    let age = |d: &EventDir| now.duration_since(d.newest).unwrap_or_default();
    let mut p = Plan::default();
    let mut total: u64 = dirs.iter().map(|d| d.bytes).sum();
    for d in &sorted {
        if !pending.contains(&d.event_id) && age(d) >= retain {
            p.expired.push(d.event_id.clone());
            total -= d.bytes;
        }
    }
    for d in &sorted {
        if total <= max_bytes {
            break;
        }
        if !pending.contains(&d.event_id) && age(d) < retain {
            p.early.push(d.event_id.clone());
            total -= d.bytes;
        }
    }
    p.over_cap_bytes = total.saturating_sub(max_bytes);
    p
}

/// The event directories of an evidence store (ids are directory names).
pub fn scan(dir: &Path) -> Vec<EventDir> {
    let mut out = Vec::new();
    for d in fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = d.path();
        if !path.is_dir() {
            continue;
        }
        let (mut newest, mut bytes) = (SystemTime::UNIX_EPOCH, 0u64);
        for f in fs::read_dir(&path).into_iter().flatten().flatten() {
            if let Ok(m) = f.metadata() {
                bytes += m.len();
                newest = newest.max(m.modified().unwrap_or(SystemTime::UNIX_EPOCH));
            }
        }
        out.push(EventDir { event_id: d.file_name().to_string_lossy().into_owned(), newest, bytes });
    }
    out
}

/// Counters of the retention sweeps, for the heartbeat and `/metrics`.
#[derive(Debug, Default)]
pub struct RetentionStats {
    pub expired: AtomicU64,
    pub early: AtomicU64,
    pub kept_undelivered: AtomicU64,
    pub store_bytes: AtomicU64,
    pub over_cap_bytes: AtomicU64,
}

/// The signed statement that a manifest's evidence was deleted on purpose.
pub fn retired_statement(seq: u64, event_id: &str, sha256: &str, at: &str, reason: &str) -> String {
    format!("retired {seq} {event_id} {sha256} {at} {reason}")
}

/// Parses a `retired.log` line: `<seq> <event_id> <sha256> <at> <reason> <signature>`.
pub fn parse_retired_line(line: &str) -> Option<(u64, String, String, String, String, String)> {
    let p: Vec<&str> = line.split(' ').collect();
    if p.len() != 6 {
        return None;
    }
    Some((p[0].parse().ok()?, p[1].into(), p[2].into(), p[3].into(), p[4].into(), p[5].into()))
}

impl Sealer {
    /// Deletes an event's directory and records each of its manifests in `retired.log`,
    /// signed, so the chain still verifies. `reason` is `expired` or `disk_cap`.
    pub fn retire(&self, event_id: &str, reason: &str) -> Result<usize, SealError> {
        let io = |p: &Path, e: std::io::Error| SealError::Io(format!("{}: {e}", p.display()));
        let log = self.dir().join("chain.log");
        let text = fs::read_to_string(&log).unwrap_or_default();
        let at = crate::publish::rfc3339(chrono::Utc::now());
        let mut lines = String::new();
        for (seq, ev, hash) in text.lines().filter_map(parse_chain_line) {
            if ev == event_id {
                let sig = hex::encode(self.sign(retired_statement(seq, &ev, &hash, &at, reason).as_bytes()));
                lines.push_str(&format!("{seq} {ev} {hash} {at} {reason} {sig}\n"));
            }
        }
        // the record first: a crash between the two leaves a retired-but-present event, which
        // verify accepts, never a missing-but-unrecorded one
        let retired = self.dir().join("retired.log");
        if !lines.is_empty() {
            use std::io::Write;
            let mut f = fs::OpenOptions::new().create(true).append(true).open(&retired).map_err(|e| io(&retired, e))?;
            f.write_all(lines.as_bytes()).and_then(|()| f.sync_all()).map_err(|e| io(&retired, e))?;
        }
        let dir: PathBuf = self.dir().join(event_id);
        fs::remove_dir_all(&dir).map_err(|e| io(&dir, e))?;
        Ok(lines.lines().count())
    }
}

/// One sweep: scan, plan, retire; counts and logs everything.
pub fn sweep(sealer: &std::sync::Mutex<Sealer>, pending: &HashSet<String>, retain: Duration, max_bytes: u64, stats: &RetentionStats) -> Plan {
    let dir = sealer.lock().unwrap().dir().to_path_buf();
    let dirs = scan(&dir);
    let p = plan(&dirs, pending, SystemTime::now(), retain, max_bytes);
    let days = retain.as_secs_f64() / 86400.0;
    // what stays: everything scanned less what was retired (a failed retirement still counts)
    let mut remaining: u64 = dirs.iter().map(|d| d.bytes).sum();
    let bytes_of = |id: &str| dirs.iter().find(|d| d.event_id == id).map_or(0, |d| d.bytes);
    for (ids, reason) in [(&p.expired, "expired"), (&p.early, "disk_cap")] {
        for id in ids.iter() {
            let retired = sealer.lock().unwrap().retire(id, reason);
            if retired.is_ok() {
                remaining -= bytes_of(id);
            }
            match retired {
                Ok(_) if reason == "expired" => {
                    stats.expired.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(event = %id, "evidence retention: deleted after {days} days");
                }
                Ok(_) => {
                    stats.early.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(event = %id, "evidence store over its cap: deleted before {days} days (retention rule not met; add disk or raise evidence.max_mb)");
                }
                Err(e) => tracing::error!(event = %id, "evidence retention: cannot delete: {e}"),
            }
        }
    }
    let kept: Vec<&EventDir> = dirs.iter().filter(|d| pending.contains(&d.event_id)).collect();
    stats.kept_undelivered.store(kept.len() as u64, Ordering::Relaxed);
    stats.store_bytes.store(remaining, Ordering::Relaxed);
    stats.over_cap_bytes.store(p.over_cap_bytes, Ordering::Relaxed);
    if p.over_cap_bytes > 0 {
        tracing::error!(over_bytes = p.over_cap_bytes, undelivered_events = kept.len(), "evidence store over its cap with evidence not yet delivered; nothing undelivered is deleted");
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(id: &str, days_ago: u64, bytes: u64, now: SystemTime) -> EventDir {
        EventDir { event_id: id.into(), newest: now - Duration::from_secs(days_ago * 86400), bytes }
    }

    #[test]
    fn expired_delivered_events_go_undelivered_ones_never() {
        let now = SystemTime::now();
        let dirs = vec![d("old", 40, 10, now), d("old-unsent", 45, 10, now), d("young", 3, 10, now)];
        let pending: HashSet<String> = ["old-unsent".to_string()].into();
        let p = plan(&dirs, &pending, now, Duration::from_secs(30 * 86400), 1000);
        assert_eq!(p, Plan { expired: vec!["old".into()], early: vec![], over_cap_bytes: 0 });
    }

    #[test]
    fn over_the_cap_the_oldest_delivered_go_early_and_undelivered_stay() {
        let now = SystemTime::now();
        let dirs = vec![d("a", 10, 100, now), d("b", 5, 100, now), d("c", 1, 100, now), d("unsent", 20, 100, now)];
        let pending: HashSet<String> = ["unsent".to_string()].into();
        let p = plan(&dirs, &pending, now, Duration::from_secs(30 * 86400), 250);
        assert_eq!(p.early, vec!["a".to_string(), "b".to_string()], "oldest first, until under the cap");
        assert_eq!(p.over_cap_bytes, 0);
        let all_unsent: HashSet<String> = ["a", "b", "c", "unsent"].iter().map(|s| s.to_string()).collect();
        let p = plan(&dirs, &all_unsent, now, Duration::from_secs(30 * 86400), 250);
        assert!(p.early.is_empty() && p.expired.is_empty());
        assert_eq!(p.over_cap_bytes, 150, "reported, not deleted");
    }

    #[test]
    fn retired_lines_parse() {
        let l = "7 ev-1 abcd 2026-12-01T00:00:00.000Z expired 00ff";
        assert_eq!(parse_retired_line(l).unwrap().0, 7);
        assert!(parse_retired_line("7 ev-1 abcd").is_none());
    }
}
