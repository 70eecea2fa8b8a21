//! Flood levels: the predicted level over time against the truth's timeline.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::tools::synth::truth::Truth;

use super::*;

/// Agreement of the alerted flood level with the true one in one zone, frame by frame.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct FloodAgreement {
    pub zone: String,
    pub frames: usize,
    pub agree: usize,
    /// `100 * agree / frames`; `None` without frames.
    pub agreement_pct: Option<f64>,
    /// Frames by true level, then by predicted level.
    pub confusion: BTreeMap<String, BTreeMap<String, usize>>,
}

/// The flood level the alerts of `zone` claim over time, as `(t, level)` steps sorted by `t`:
/// each `flooding` transition sets its `level`, an `end` sets `green`, and it is `green` before
/// the first step. A transition without a level keeps the current one (a `new` without one
/// means at least `yellow`).
pub fn predicted_flood_levels(alerts: &[AlertRec], zone: &str) -> Vec<(f64, String)> {
    let mut mine: Vec<&AlertRec> = alerts.iter().filter(|a| a.kind == "flooding" && a.zone == zone).collect();
    mine.sort_by(|a, b| a.t.total_cmp(&b.t));
    let mut cur = "green".to_string();
    let mut steps = Vec::with_capacity(mine.len());
    for a in mine {
        cur = match (a.state.as_str(), &a.level) {
            ("end", _) => "green".to_string(),
            (_, Some(l)) => l.clone(),
            (_, None) if cur == "green" => "yellow".to_string(),
            (_, None) => cur,
        };
        steps.push((a.t, cur.clone()));
    }
    steps
}

/// The level of `(t, level)` steps at `t`: the last step at or before `t`, `green` before any.
pub fn level_at(steps: &[(f64, String)], t: f64) -> &str {
    let n = steps.partition_point(|(s, _)| *s <= t);
    if n == 0 {
        "green"
    } else {
        &steps[n - 1].1
    }
}

/// Per flooding zone of the truth: at each of `frame_times`, the level the zone's alerts claim
/// (see [`predicted_flood_levels`]) against `FloodTimeline::level_at`.
pub fn flood_agreement(truth: &Truth, alerts: &[AlertRec], frame_times: &[f64]) -> Vec<FloodAgreement> {
    truth
        .flood
        .iter()
        .map(|tl| {
            let pred = predicted_flood_levels(alerts, &tl.zone);
            let mut out = FloodAgreement { zone: tl.zone.clone(), ..Default::default() };
            for &t in frame_times {
                let (tr, pr) = (tl.level_at(t), level_at(&pred, t));
                *out.confusion.entry(tr.to_string()).or_default().entry(pr.to_string()).or_default() += 1;
                out.frames += 1;
                // the rule waits latency_s before it reports a change: the truth of that long
                // ago still counts
                out.agree += usize::from(tr == pr || tl.levels_within_latency(t).contains(&pr));
            }
            out.agreement_pct = (out.frames > 0).then(|| 100.0 * out.agree as f64 / out.frames as f64);
            out
        })
        .collect()
}
