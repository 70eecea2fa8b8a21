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
//!   can tell a retired manifest from a removed one;
//! - age is measured on a clock anchored at start and advanced by the monotonic clock
//!   ([`super::clock`]); while the wall clock stands more than 10 minutes away from it (a
//!   step), nothing is deleted for its age (the jump is logged once at ERROR and counted), and
//!   deletion over the cap picks the oldest events by their manifest seq, which no clock moves.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio_util::sync::CancellationToken;

use super::clock::{describe_offset, ClockGuard, ClockReading};
use super::seal::{parse_chain_line, sha256_hex, SealError, Sealer};

/// One event directory in the store.
#[derive(Clone, Debug, PartialEq)]
pub struct EventDir {
    pub event_id: String,
    /// The newest file in it (the event's last evidence).
    pub newest: SystemTime,
    pub bytes: u64,
    /// Highest manifest seq in it: the event's place in time, whatever the clocks did.
    pub newest_seq: Option<u64>,
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

/// The time retention measures age against.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SweepClock {
    /// Now, on the anchored clock.
    pub now: SystemTime,
    /// False while the wall clock stands away from the anchored one: nothing is deleted for
    /// its age (file times may have been written on either clock).
    pub age_deletion: bool,
}

impl SweepClock {
    /// The system's wall clock, trusted (one-off sweeps, tests).
    pub fn wall() -> SweepClock {
        SweepClock { now: SystemTime::now(), age_deletion: true }
    }
}

/// Decides what to delete. Pure: the clock, the directories, and the events with messages
/// still waiting for the broker. Over the cap, the oldest go first by manifest seq (events
/// without a manifest last), so a stepped clock cannot reorder them.
pub fn plan(dirs: &[EventDir], pending: &HashSet<String>, clock: SweepClock, retain: Duration, max_bytes: u64) -> Plan {
    let mut sorted: Vec<&EventDir> = dirs.iter().collect();
    sorted.sort_by_key(|d| (d.newest_seq.unwrap_or(u64::MAX), d.newest));
    // a file time ahead of `now` (written while the wall clock was ahead) is age zero
    let expired = |d: &EventDir| clock.age_deletion && clock.now.duration_since(d.newest).unwrap_or_default() >= retain;
    let mut p = Plan::default();
    let mut total: u64 = dirs.iter().map(|d| d.bytes).sum();
    for d in &sorted {
        if !pending.contains(&d.event_id) && expired(d) {
            p.expired.push(d.event_id.clone());
            total -= d.bytes;
        }
    }
    for d in &sorted {
        if total <= max_bytes {
            break;
        }
        if !pending.contains(&d.event_id) && !expired(d) {
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
        let (mut newest, mut bytes, mut newest_seq) = (SystemTime::UNIX_EPOCH, 0u64, None);
        for f in fs::read_dir(&path).into_iter().flatten().flatten() {
            if let Ok(m) = f.metadata() {
                bytes += m.len();
                newest = newest.max(m.modified().unwrap_or(SystemTime::UNIX_EPOCH));
            }
            if let Some(seq) = manifest_seq(&f.file_name().to_string_lossy()) {
                newest_seq = newest_seq.max(Some(seq));
            }
        }
        out.push(EventDir { event_id: d.file_name().to_string_lossy().into_owned(), newest, bytes, newest_seq });
    }
    out
}

/// `manifest-<seq>.json` → seq.
fn manifest_seq(name: &str) -> Option<u64> {
    name.strip_prefix("manifest-")?.strip_suffix(".json")?.parse().ok()
}

/// Counters of the retention sweeps, for the heartbeat and `/metrics`.
#[derive(Debug, Default)]
pub struct RetentionStats {
    pub expired: AtomicU64,
    pub early: AtomicU64,
    pub kept_undelivered: AtomicU64,
    pub store_bytes: AtomicU64,
    pub over_cap_bytes: AtomicU64,
    /// Wall-clock jumps seen (each logged once at ERROR).
    pub clock_jumps: AtomicU64,
    /// wall − anchored clock (s) while a jump is in force (age-based deletion paused), else 0.
    pub clock_offset_s: AtomicI64,
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
        let mut record = |seq: u64, hash: &str| {
            let sig = hex::encode(self.sign(retired_statement(seq, event_id, hash, &at, reason).as_bytes()));
            lines.push_str(&format!("{seq} {event_id} {hash} {at} {reason} {sig}\n"));
        };
        let mut seen = HashSet::new();
        for (seq, ev, hash) in text.lines().filter_map(parse_chain_line) {
            if ev == event_id {
                record(seq, &hash);
                seen.insert(seq);
            }
        }
        // manifests whose chain.log lines were in a damaged tail (moved aside at a repair) are
        // retired with the hash of their file
        let dir: PathBuf = self.dir().join(event_id);
        for f in fs::read_dir(&dir).into_iter().flatten().flatten() {
            if let Some(seq) = manifest_seq(&f.file_name().to_string_lossy()).filter(|s| !seen.contains(s)) {
                if let Ok(bytes) = fs::read(f.path()) {
                    record(seq, &sha256_hex(&bytes));
                }
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
        fs::remove_dir_all(&dir).map_err(|e| io(&dir, e))?;
        Ok(lines.lines().count())
    }
}

/// One sweep on the system's wall clock, trusted; see [`sweep_with`].
pub fn sweep(sealer: &Mutex<Sealer>, pending: &HashSet<String>, retain: Duration, max_bytes: u64, stats: &RetentionStats) -> Plan {
    sweep_with(sealer, pending, retain, max_bytes, stats, SweepClock::wall())
}

/// One sweep: scan, plan, retire; counts and logs everything.
pub fn sweep_with(sealer: &Mutex<Sealer>, pending: &HashSet<String>, retain: Duration, max_bytes: u64, stats: &RetentionStats, clock: SweepClock) -> Plan {
    let dir = sealer.lock().unwrap().dir().to_path_buf();
    let dirs = scan(&dir);
    let p = plan(&dirs, pending, clock, retain, max_bytes);
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

/// Logs and counts what a clock reading says; returns the clock a sweep may use.
pub fn clock_for_sweep(r: &ClockReading, stats: &RetentionStats) -> SweepClock {
    if r.new_jump {
        stats.clock_jumps.fetch_add(1, Ordering::Relaxed);
        tracing::error!(
            offset_s = r.offset_s.round() as i64,
            jumps = stats.clock_jumps.load(Ordering::Relaxed),
            "wall clock jumped {} away from the monotonic clock; evidence retention deletes nothing for its age until the clocks agree again (if the new time is right, restart hawkeye)",
            describe_offset(r.offset_s)
        );
    }
    if r.recovered {
        tracing::warn!("wall clock agrees with the monotonic clock again; evidence retention by age resumes");
    }
    stats.clock_offset_s.store(if r.jumped { r.offset_s.round() as i64 } else { 0 }, Ordering::Relaxed);
    SweepClock { now: r.now, age_deletion: !r.jumped }
}

/// The daemon's retention task: sweeps every `sweep_s` (the first after at most 10 s) until
/// `stop`; `pending` names the events with messages still in the outbox. Age is measured on a
/// [`ClockGuard`] anchored when this starts.
pub async fn run(cfg: crate::config::EvidenceCfg, sealer: Arc<Mutex<Sealer>>, pending: impl Fn() -> HashSet<String>, stats: Arc<RetentionStats>, stop: CancellationToken) {
    let retain = Duration::from_secs_f64(cfg.retain_days * 86400.0);
    let max_bytes = cfg.max_mb << 20;
    let mut guard = ClockGuard::system();
    let mut next = tokio::time::Instant::now() + Duration::from_secs(10).min(Duration::from_secs_f64(cfg.sweep_s));
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep_until(next) => {}
        }
        next = tokio::time::Instant::now() + Duration::from_secs_f64(cfg.sweep_s);
        let clock = clock_for_sweep(&guard.read(), &stats);
        let pending = pending();
        let (sealer, stats) = (sealer.clone(), stats.clone());
        let _ = tokio::task::spawn_blocking(move || sweep_with(&sealer, &pending, retain, max_bytes, &stats, clock)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(id: &str, days_ago: u64, bytes: u64, now: SystemTime) -> EventDir {
        // seqs follow age: the older, the lower
        EventDir { event_id: id.into(), newest: now - Duration::from_secs(days_ago * 86400), bytes, newest_seq: Some(1000 - days_ago) }
    }

    fn at(now: SystemTime) -> SweepClock {
        SweepClock { now, age_deletion: true }
    }

    #[test]
    fn expired_delivered_events_go_undelivered_ones_never() {
        let now = SystemTime::now();
        let dirs = vec![d("old", 40, 10, now), d("old-unsent", 45, 10, now), d("young", 3, 10, now)];
        let pending: HashSet<String> = ["old-unsent".to_string()].into();
        let p = plan(&dirs, &pending, at(now), Duration::from_secs(30 * 86400), 1000);
        assert_eq!(p, Plan { expired: vec!["old".into()], early: vec![], over_cap_bytes: 0 });
    }

    #[test]
    fn over_the_cap_the_oldest_delivered_go_early_and_undelivered_stay() {
        let now = SystemTime::now();
        let dirs = vec![d("a", 10, 100, now), d("b", 5, 100, now), d("c", 1, 100, now), d("unsent", 20, 100, now)];
        let pending: HashSet<String> = ["unsent".to_string()].into();
        let p = plan(&dirs, &pending, at(now), Duration::from_secs(30 * 86400), 250);
        assert_eq!(p.early, vec!["a".to_string(), "b".to_string()], "oldest first, until under the cap");
        assert_eq!(p.over_cap_bytes, 0);
        let all_unsent: HashSet<String> = ["a", "b", "c", "unsent"].iter().map(|s| s.to_string()).collect();
        let p = plan(&dirs, &all_unsent, at(now), Duration::from_secs(30 * 86400), 250);
        assert!(p.early.is_empty() && p.expired.is_empty());
        assert_eq!(p.over_cap_bytes, 150, "reported, not deleted");
    }

    #[test]
    fn a_jumped_clock_deletes_nothing_for_age_and_the_cap_goes_by_seq() {
        let now = SystemTime::now();
        let dirs = vec![d("old", 40, 10, now), d("young", 1, 10, now)];
        let none = HashSet::new();
        let jumped = SweepClock { now, age_deletion: false };
        assert_eq!(plan(&dirs, &none, jumped, Duration::from_secs(30 * 86400), 1000), Plan::default());
        // the cap still holds, oldest by seq even where a backward step gave the newer event
        // the older file time; events without a manifest (still being sealed) go last
        let mut stepped = vec![d("first", 1, 100, now), d("second", 3, 100, now), d("unsealed", 9, 100, now)];
        stepped[0].newest_seq = Some(5);
        stepped[1].newest_seq = Some(6);
        stepped[2].newest_seq = None;
        let p = plan(&stepped, &none, jumped, Duration::from_secs(30 * 86400), 150);
        assert_eq!(p.early, vec!["first".to_string(), "second".to_string()]);
        // file times ahead of the anchored clock (written while the wall clock was ahead) are age 0
        let ahead = vec![EventDir { event_id: "ahead".into(), newest: now + Duration::from_secs(40 * 86400), bytes: 1, newest_seq: Some(1) }];
        assert!(plan(&ahead, &none, at(now), Duration::from_secs(86400), 1000).expired.is_empty());
    }

    #[test]
    fn a_jump_is_counted_once_and_pauses_age_deletion() {
        use std::time::Instant;
        let stats = RetentionStats::default();
        let (w0, m0) = (SystemTime::now(), Instant::now());
        let mut g = ClockGuard::new(w0, m0, crate::evidence::clock::JUMP_BOUND);
        let c = clock_for_sweep(&g.check(w0 + Duration::from_secs(60), m0 + Duration::from_secs(60)), &stats);
        assert!(c.age_deletion);
        for k in 0..3 {
            let c = clock_for_sweep(&g.check(w0 + Duration::from_secs(40 * 86400 + 120 + k), m0 + Duration::from_secs(120 + k)), &stats);
            assert!(!c.age_deletion);
            assert_eq!(c.now, w0 + Duration::from_secs(120 + k), "age on the anchored clock");
        }
        assert_eq!(stats.clock_jumps.load(Ordering::Relaxed), 1);
        assert_eq!(stats.clock_offset_s.load(Ordering::Relaxed), 40 * 86400);
        let c = clock_for_sweep(&g.check(w0 + Duration::from_secs(200), m0 + Duration::from_secs(200)), &stats);
        assert!(c.age_deletion);
        assert_eq!(stats.clock_offset_s.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn retired_lines_parse() {
        let l = "7 ev-1 abcd 2026-12-01T00:00:00.000Z expired 00ff";
        assert_eq!(parse_retired_line(l).unwrap().0, 7);
        assert!(parse_retired_line("7 ev-1 abcd").is_none());
    }
}
