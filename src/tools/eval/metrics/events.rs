//! Alert events against the truth intervals: matches, misses, false alarms, onset delays.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::tools::synth::truth::{Truth, TruthEvent};

use super::*;

/// The alert transitions of one `event_id` taken together.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct AlertEvent {
    pub kind: String,
    pub zone: String,
    pub event_id: String,
    /// Time of the first `new` (the earliest transition if the event has no `new`).
    pub onset_t: f64,
    /// Time of the first `end`, if the event ended.
    pub end_t: Option<f64>,
    /// `(t, level)` after each non-`end` transition that carried a level (flooding).
    pub levels: Vec<(f64, String)>,
}

/// Groups alert transitions into events by `event_id`, sorted by onset.
pub fn alert_events(alerts: &[AlertRec]) -> Vec<AlertEvent> {
    let mut sorted: Vec<&AlertRec> = alerts.iter().collect();
    sorted.sort_by(|a, b| a.t.total_cmp(&b.t));
    let mut index: HashMap<&str, usize> = HashMap::new();
    let mut events: Vec<(AlertEvent, bool)> = Vec::new();
    for a in sorted {
        let i = *index.entry(a.event_id.as_str()).or_insert_with(|| {
            let ev = AlertEvent {
                kind: a.kind.clone(),
                zone: a.zone.clone(),
                event_id: a.event_id.clone(),
                onset_t: a.t,
                end_t: None,
                levels: Vec::new(),
            };
            events.push((ev, false));
            events.len() - 1
        });
        let (ev, seen_new) = &mut events[i];
        match a.state.as_str() {
            "new" if !*seen_new => {
                *seen_new = true;
                ev.onset_t = a.t;
            }
            "end" => {
                ev.end_t.get_or_insert(a.t);
            }
            _ => {}
        }
        if a.state != "end" {
            if let Some(l) = &a.level {
                ev.levels.push((a.t, l.clone()));
            }
        }
    }
    let mut out: Vec<AlertEvent> = events.into_iter().map(|(e, _)| e).collect();
    out.sort_by(|a, b| a.onset_t.total_cmp(&b.onset_t));
    out
}

/// A truth event and the alert event that caught it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct EventMatch {
    pub kind: String,
    pub zone: String,
    pub event_id: String,
    pub truth_start: f64,
    pub truth_end: f64,
    /// When a correct alert was due: `truth_start + dwell_s`.
    pub due_t: f64,
    pub alert_t: f64,
    /// `alert_t - due_t`: positive when late.
    pub onset_error_s: f64,
}

/// An alert event that matched no truth event.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct FalseAlarm {
    pub kind: String,
    pub zone: String,
    pub event_id: String,
    pub t: f64,
}

/// Alert quality of one kind.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct KindEvents {
    pub kind: String,
    /// Truth events and alert events of this kind.
    pub truth: usize,
    pub alerts: usize,
    pub tp: usize,
    pub fp: usize,
    #[serde(rename = "fn")]
    pub fn_: usize,
    pub precision: f64,
    pub recall: f64,
    /// Over the matches: mean signed onset error, mean and max absolute onset error (seconds).
    pub onset_mean_s: Option<f64>,
    pub onset_mean_abs_s: Option<f64>,
    pub onset_max_abs_s: Option<f64>,
}

/// Alert events scored against the truth events.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct EventReport {
    pub onset_tolerance_s: f64,
    /// [`EVENT_KINDS`], then other kinds seen.
    pub kinds: Vec<KindEvents>,
    pub matches: Vec<EventMatch>,
    pub false_alarms: Vec<FalseAlarm>,
    pub missed: Vec<TruthEvent>,
}

/// Matches alert events (grouped by `event_id`, see [`alert_events`]) to truth events of the same
/// kind and zone. An alert event matches a truth event when its onset lies in
/// `[start, end + onset_tolerance_s]`; alert events are taken in onset order, each to the
/// unmatched candidate that started last (the violation most recently begun), and each truth
/// event takes at most one alert event. Level changes of a flood are `update`s of one event and
/// so never count twice.
pub fn event_report(truth: &Truth, alerts: &[AlertRec], onset_tolerance_s: f64) -> EventReport {
    let events = alert_events(alerts);
    let kinds = ordered_names(
        &EVENT_KINDS,
        truth.events.iter().map(|e| e.kind.as_str()).chain(events.iter().map(|e| e.kind.as_str())),
    );
    let (mut matches, mut false_alarms, mut missed) = (Vec::new(), Vec::new(), Vec::new());
    for kind in &kinds {
        let mut truths: Vec<&TruthEvent> = truth.events.iter().filter(|e| &e.kind == kind).collect();
        truths.sort_by(|a, b| a.start.total_cmp(&b.start));
        let mut used = vec![false; truths.len()];
        for ev in events.iter().filter(|e| &e.kind == kind) {
            let found = truths
                .iter()
                .enumerate()
                .filter(|(i, te)| {
                    !used[*i]
                        && te.zone == ev.zone
                        && ev.onset_t >= te.start
                        && ev.onset_t <= te.end + onset_tolerance_s
                })
                .max_by(|a, b| a.1.start.total_cmp(&b.1.start));
            match found {
                Some((i, te)) => {
                    used[i] = true;
                    let due_t = te.start + te.dwell_s;
                    matches.push(EventMatch {
                        kind: kind.clone(),
                        zone: ev.zone.clone(),
                        event_id: ev.event_id.clone(),
                        truth_start: te.start,
                        truth_end: te.end,
                        due_t,
                        alert_t: ev.onset_t,
                        onset_error_s: ev.onset_t - due_t,
                    });
                }
                None => false_alarms.push(FalseAlarm {
                    kind: kind.clone(),
                    zone: ev.zone.clone(),
                    event_id: ev.event_id.clone(),
                    t: ev.onset_t,
                }),
            }
        }
        missed.extend(truths.iter().zip(&used).filter(|(_, u)| !**u).map(|(te, _)| (*te).clone()));
    }
    build_events(onset_tolerance_s, &kinds, matches, false_alarms, missed)
}

pub(super) fn build_events(
    onset_tolerance_s: f64,
    kinds: &[String],
    matches: Vec<EventMatch>,
    false_alarms: Vec<FalseAlarm>,
    missed: Vec<TruthEvent>,
) -> EventReport {
    let kinds = kinds
        .iter()
        .map(|kind| {
            let errs: Vec<f64> = matches.iter().filter(|m| &m.kind == kind).map(|m| m.onset_error_s).collect();
            let tp = errs.len();
            let fp = false_alarms.iter().filter(|f| &f.kind == kind).count();
            let fn_ = missed.iter().filter(|m| &m.kind == kind).count();
            let n = errs.len() as f64;
            let nonempty = !errs.is_empty();
            KindEvents {
                kind: kind.clone(),
                truth: tp + fn_,
                alerts: tp + fp,
                tp,
                fp,
                fn_,
                precision: ratio(tp, tp + fp),
                recall: ratio(tp, tp + fn_),
                onset_mean_s: nonempty.then(|| errs.iter().sum::<f64>() / n),
                onset_mean_abs_s: nonempty.then(|| errs.iter().map(|e| e.abs()).sum::<f64>() / n),
                onset_max_abs_s: nonempty.then(|| errs.iter().map(|e| e.abs()).fold(0.0, f64::max)),
            }
        })
        .collect();
    EventReport { onset_tolerance_s, kinds, matches, false_alarms, missed }
}
