//! A wall clock that cannot be stepped under retention's feet.
//!
//! Retention deletes evidence by age, and an NTP step, a wrong RTC or an operator's `date -s`
//! can move the wall clock by days at once. So age is measured on an *anchored* clock: the wall
//! time read once at start, advanced by the monotonic clock (which no one steps). When the wall
//! clock moves more than [`JUMP_BOUND`] away from the anchored one, the guard reports a jump
//! (once per jump, with its size) and age-based deletion pauses until the two agree again or
//! the daemon restarts (after a restart the anchor is the new wall time: if the new time is
//! the right one, restarting is the operator's way to accept it).

use std::time::{Duration, Instant, SystemTime};

/// How far the wall clock may drift from the anchored clock before it counts as a jump.
pub const JUMP_BOUND: Duration = Duration::from_secs(600);

/// The anchored clock and the jump in force, if any.
#[derive(Clone, Debug)]
pub struct ClockGuard {
    anchor_wall: SystemTime,
    anchor_mono: Instant,
    bound: Duration,
    /// wall − anchored (s) of the jump in force; `None` while the clocks agree.
    jumped: Option<f64>,
    jumps: u64,
}

/// One reading of the guard.
#[derive(Clone, Debug, PartialEq)]
pub struct ClockReading {
    /// The anchored time: the age reference for retention.
    pub now: SystemTime,
    /// wall − anchored, in seconds (positive: the wall clock is ahead).
    pub offset_s: f64,
    /// The clocks disagree by more than the bound: no age-based deletion.
    pub jumped: bool,
    /// This reading found a new jump (log and count it).
    pub new_jump: bool,
    /// This reading found the clocks agreeing again after a jump.
    pub recovered: bool,
}

impl ClockGuard {
    /// Anchors at (`wall`, `mono`), read together at start.
    pub fn new(wall: SystemTime, mono: Instant, bound: Duration) -> ClockGuard {
        ClockGuard { anchor_wall: wall, anchor_mono: mono, bound, jumped: None, jumps: 0 }
    }

    /// Anchors at the system's clocks now, with [`JUMP_BOUND`].
    pub fn system() -> ClockGuard {
        ClockGuard::new(SystemTime::now(), Instant::now(), JUMP_BOUND)
    }

    /// Reads the system's clocks.
    pub fn read(&mut self) -> ClockReading {
        self.check(SystemTime::now(), Instant::now())
    }

    /// Jumps seen so far.
    pub fn jumps(&self) -> u64 {
        self.jumps
    }

    /// Compares a wall reading with the anchored clock at `mono`. Pure apart from the guard.
    pub fn check(&mut self, wall: SystemTime, mono: Instant) -> ClockReading {
        let now = self.anchor_wall + mono.saturating_duration_since(self.anchor_mono);
        let offset_s = match wall.duration_since(now) {
            Ok(ahead) => ahead.as_secs_f64(),
            Err(e) => -e.duration().as_secs_f64(),
        };
        let bound = self.bound.as_secs_f64();
        let jumped = offset_s.abs() > bound;
        // a second step while already off (e.g. +40 d, then −3 d) is a new jump too
        let new_jump = jumped && self.jumped.is_none_or(|prev| (offset_s - prev).abs() > bound);
        let recovered = !jumped && self.jumped.is_some();
        if new_jump {
            self.jumps += 1;
        }
        if jumped {
            if new_jump {
                self.jumped = Some(offset_s);
            }
        } else {
            self.jumped = None;
        }
        ClockReading { now, offset_s, jumped, new_jump, recovered }
    }
}

/// "+40d 0h 0m" style size of an offset, for the log.
pub fn describe_offset(offset_s: f64) -> String {
    let sign = if offset_s < 0.0 { '-' } else { '+' };
    let s = offset_s.abs().round() as u64;
    format!("{sign}{}d {}h {}m {}s", s / 86400, s % 86400 / 3600, s % 3600 / 60, s % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: u64 = 86400;

    #[test]
    fn age_follows_the_monotonic_clock_and_a_step_is_one_jump() {
        let (w0, m0) = (SystemTime::UNIX_EPOCH + Duration::from_secs(20_000 * DAY), Instant::now());
        let mut g = ClockGuard::new(w0, m0, JUMP_BOUND);
        // an hour later, the clocks agree (a few seconds of drift are fine)
        let r = g.check(w0 + Duration::from_secs(3600 + 5), m0 + Duration::from_secs(3600));
        assert_eq!((r.now, r.jumped, r.new_jump), (w0 + Duration::from_secs(3600), false, false));
        // the wall clock steps +40 days: reported once, the anchored time stays right
        let r = g.check(w0 + Duration::from_secs(40 * DAY + 3700), m0 + Duration::from_secs(3700));
        assert!(r.jumped && r.new_jump);
        assert_eq!(r.now, w0 + Duration::from_secs(3700));
        assert_eq!(r.offset_s, (40 * DAY) as f64);
        let r = g.check(w0 + Duration::from_secs(40 * DAY + 3800), m0 + Duration::from_secs(3800));
        assert!(r.jumped && !r.new_jump, "the same jump is not counted again");
        assert_eq!(g.jumps(), 1);
        // a second step while off counts again
        let r = g.check(w0 + Duration::from_secs(37 * DAY + 3900), m0 + Duration::from_secs(3900));
        assert!(r.jumped && r.new_jump);
        assert_eq!(g.jumps(), 2);
        // stepped back: the clocks agree again
        let r = g.check(w0 + Duration::from_secs(4000), m0 + Duration::from_secs(4000));
        assert!(!r.jumped && r.recovered);
        let r = g.check(w0 + Duration::from_secs(4100), m0 + Duration::from_secs(4100));
        assert!(!r.jumped && !r.recovered);
    }

    #[test]
    fn a_backward_step_is_a_jump_and_small_drift_is_not() {
        let (w0, m0) = (SystemTime::UNIX_EPOCH + Duration::from_secs(20_000 * DAY), Instant::now());
        let mut g = ClockGuard::new(w0, m0, JUMP_BOUND);
        let r = g.check(w0 + Duration::from_secs(100) - Duration::from_secs(599), m0 + Duration::from_secs(100));
        assert!(!r.jumped, "within the bound");
        let r = g.check(w0 + Duration::from_secs(200) - Duration::from_secs(30 * DAY), m0 + Duration::from_secs(200));
        assert!(r.jumped && r.new_jump && r.offset_s < 0.0);
        assert_eq!(r.now, w0 + Duration::from_secs(200));
        assert_eq!(describe_offset(r.offset_s), "-30d 0h 0m 0s");
        assert_eq!(describe_offset(40.0 * DAY as f64 + 61.0), "+40d 0h 1m 1s");
    }
}
