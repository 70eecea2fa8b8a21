//! The dwell state machine shared by zone rules: presence must last `dwell_s` (gaps shorter than
//! `grace_s` forgiven) before an event starts; an active event updates at most every `update_s`
//! and ends once the zone has been clear for `clear_s`; then the zone rests for `cooldown_s`.
//! Time is stream time in seconds. Pure logic.

/// Timing of one zone.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DwellParams {
    pub dwell_s: f64,
    pub grace_s: f64,
    pub clear_s: f64,
    pub cooldown_s: f64,
    pub update_s: f64,
}

/// What one observation did to the zone.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum DwellStep {
    /// Nothing to report.
    Quiet,
    /// Presence has lasted `dwell_s`: the event starts. `since` is when presence began.
    Start { since: f64 },
    /// The event is still active and `update_s` has passed since the last report.
    Update,
    /// The zone has been clear for `clear_s`: the event is over.
    End,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum State {
    Idle { rest_until: f64 },
    Pending { since: f64, last_seen: f64 },
    Active { since: f64, last_seen: f64, last_report: f64 },
}

/// Dwell tracking for one zone.
#[derive(Clone, Debug)]
pub struct Dwell {
    p: DwellParams,
    state: State,
}

impl Dwell {
    pub fn new(p: DwellParams) -> Self {
        Dwell { p, state: State::Idle { rest_until: f64::NEG_INFINITY } }
    }

    /// True while an event is active.
    pub fn is_active(&self) -> bool {
        matches!(self.state, State::Active { .. })
    }

    /// Start of the current presence (pending or active), if any.
    pub fn since(&self) -> Option<f64> {
        match self.state {
            State::Idle { .. } => None,
            State::Pending { since, .. } | State::Active { since, .. } => Some(since),
        }
    }

    /// Feeds one observation at stream time `ts`.
    pub fn observe(&mut self, present: bool, ts: f64) -> DwellStep {
        let p = self.p;
        match self.state {
            State::Idle { rest_until } => {
                if present && ts >= rest_until {
                    self.state = State::Pending { since: ts, last_seen: ts };
                    return self.promote(ts);
                }
                DwellStep::Quiet
            }
            State::Pending { since, last_seen } => {
                if present && ts - last_seen > p.grace_s {
                    // seen again only after a gap longer than the grace: the dwell starts over
                    self.state = State::Pending { since: ts, last_seen: ts };
                    self.promote(ts)
                } else if present {
                    self.state = State::Pending { since, last_seen: ts };
                    self.promote(ts)
                } else {
                    if ts - last_seen > p.grace_s {
                        self.state = State::Idle { rest_until: f64::NEG_INFINITY };
                    }
                    DwellStep::Quiet
                }
            }
            State::Active { since, last_seen, last_report } => {
                if ts - last_seen >= p.clear_s {
                    // No presence for `clear_s` (or no observations at all: the camera was down).
                    // The event is over even if something is present again now; that presence
                    // starts a new dwell once the cooldown allows.
                    self.state = State::Idle { rest_until: ts + p.cooldown_s };
                    if present && p.cooldown_s <= 0.0 {
                        self.state = State::Pending { since: ts, last_seen: ts };
                    }
                    DwellStep::End
                } else if present {
                    if ts - last_report >= p.update_s {
                        self.state = State::Active { since, last_seen: ts, last_report: ts };
                        DwellStep::Update
                    } else {
                        self.state = State::Active { since, last_seen: ts, last_report };
                        DwellStep::Quiet
                    }
                } else {
                    DwellStep::Quiet
                }
            }
        }
    }

    fn promote(&mut self, ts: f64) -> DwellStep {
        if let State::Pending { since, last_seen } = self.state {
            if ts - since >= self.p.dwell_s {
                self.state = State::Active { since, last_seen, last_report: ts };
                return DwellStep::Start { since };
            }
        }
        DwellStep::Quiet
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: DwellParams = DwellParams { dwell_s: 5.0, grace_s: 1.0, clear_s: 3.0, cooldown_s: 10.0, update_s: 4.0 };

    /// Runs presence samples at 10 Hz and returns (time, step) for every non-quiet step.
    fn run(d: &mut Dwell, from: f64, to: f64, present: impl Fn(f64) -> bool) -> Vec<(f64, DwellStep)> {
        let mut out = Vec::new();
        let mut i = (from * 10.0).round() as i64;
        while (i as f64) / 10.0 < to {
            let t = i as f64 / 10.0;
            let s = d.observe(present(t), t);
            if s != DwellStep::Quiet {
                out.push((t, s));
            }
            i += 1;
        }
        out
    }

    #[test]
    fn starts_after_dwell_updates_and_ends_after_clear() {
        let mut d = Dwell::new(P);
        let steps = run(&mut d, 0.0, 20.0, |t| (1.0..12.0).contains(&t));
        assert_eq!(steps[0], (6.0, DwellStep::Start { since: 1.0 }));
        assert_eq!(steps[1], (10.0, DwellStep::Update));
        // last seen at 11.9, clear for 3 s → 14.9
        assert_eq!(steps[2].1, DwellStep::End);
        assert!((steps[2].0 - 14.9).abs() < 1e-9);
        assert_eq!(steps.len(), 3);
    }

    #[test]
    fn short_gaps_are_forgiven_long_ones_reset() {
        let mut d = Dwell::new(P);
        // a 0.5 s gap at 3 s does not reset the dwell
        let s = run(&mut d, 0.0, 6.0, |t| !(3.0..3.5).contains(&t));
        assert_eq!(s, vec![(5.0, DwellStep::Start { since: 0.0 })]);
        let mut d = Dwell::new(P);
        // a 2 s gap does: presence restarts at 5 s, so the start comes at 10 s
        let s = run(&mut d, 0.0, 12.0, |t| !(3.0..5.0).contains(&t));
        assert_eq!(s, vec![(10.0, DwellStep::Start { since: 5.0 })]);
    }

    #[test]
    fn brief_presence_never_alerts() {
        let mut d = Dwell::new(P);
        assert!(run(&mut d, 0.0, 30.0, |t| (t % 6.0) < 4.0).is_empty());
    }

    #[test]
    fn cooldown_holds_off_the_next_event() {
        let mut d = Dwell::new(P);
        let steps = run(&mut d, 0.0, 60.0, |t| !(10.0..14.0).contains(&t));
        // first event 0→5 start, ends at 13 (last seen 9.9 + 3.0 ≈ 12.9), cooldown until ~22.9,
        // so presence counts again from ~22.9 and the next start is at ~27.9
        let starts: Vec<f64> = steps.iter().filter(|s| matches!(s.1, DwellStep::Start { .. })).map(|s| s.0).collect();
        assert_eq!(starts.len(), 2);
        assert!((starts[1] - 27.9).abs() < 0.11, "{starts:?}");
    }

    #[test]
    fn an_observation_gap_longer_than_clear_ends_the_event() {
        // a camera outage: no frames between 7 and 20 s, the object is there before and after
        let mut d = Dwell::new(DwellParams { cooldown_s: 0.0, ..P });
        let mut steps = run(&mut d, 0.0, 7.0, |_| true);
        steps.extend(run(&mut d, 20.0, 26.0, |_| true));
        let kinds: Vec<(f64, DwellStep)> = steps;
        assert_eq!(kinds[0], (5.0, DwellStep::Start { since: 0.0 }));
        assert_eq!(kinds[1], (20.0, DwellStep::End));
        assert_eq!(kinds[2], (25.0, DwellStep::Start { since: 20.0 }));
    }

    #[test]
    fn zero_dwell_starts_immediately() {
        let mut d = Dwell::new(DwellParams { dwell_s: 0.0, ..P });
        assert_eq!(d.observe(true, 3.0), DwellStep::Start { since: 3.0 });
        assert!(d.is_active());
    }
}
