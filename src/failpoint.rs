//! Test hooks for the failures that cannot be produced from outside at an exact point: the
//! environment variable `HAWKEYE_FAILPOINTS` (comma-separated) arms them in the real binary.
//! Unset (always, in production) they cost one cached lookup.
//!
//! - `crash_after_evidence`: abort the process once an alert's evidence is saved and sealed,
//!   before the alert is queued (the window where a crash used to lose the `new`).
//! - `slow_evidence=<camera_id>:<ms>`: the evidence worker of that camera sleeps `ms` per job.
//! - `fail_water_mask=<camera_id>`: every water mask of that camera fails.

use std::sync::OnceLock;

fn armed() -> &'static [String] {
    static ARMED: OnceLock<Vec<String>> = OnceLock::new();
    ARMED.get_or_init(|| {
        std::env::var("HAWKEYE_FAILPOINTS").map(|v| v.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect()).unwrap_or_default()
    })
}

/// True when the failpoint `name` (without a value) is armed.
pub fn is_armed(name: &str) -> bool {
    armed().iter().any(|a| a == name)
}

/// The value of an armed `name=value` failpoint.
pub fn value(name: &str) -> Option<&'static str> {
    armed().iter().find_map(|a| a.strip_prefix(name).and_then(|r| r.strip_prefix('=')))
}

/// Aborts the process (no unwinding, no destructors: like a power cut) when `name` is armed.
pub fn crash_if_armed(name: &str) {
    if is_armed(name) {
        eprintln!("failpoint {name}: aborting");
        std::process::abort();
    }
}
