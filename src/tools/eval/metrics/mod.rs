//! Scores for `hawkeye eval`: detection AP / precision / recall per class, tracker ID switches,
//! alert events against the truth intervals, and flood-level agreement. Pure: the pipeline's
//! outputs and a scenario's [`Truth`] go in, serialisable reports come out.
//!
//! Conventions shared by every ratio here: precision with no positives (0/0) is 1.0 (nothing
//! was claimed, so nothing was claimed wrongly) and recall with nothing to find is 1.0.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::tools::synth::truth::Truth;

mod classes;
mod detection;
mod events;
mod flood;
mod identity;
mod report;

pub use classes::*;
pub use detection::*;
pub use events::*;
pub use flood::*;
pub use identity::*;
pub use report::*;

/// The alert kinds the rules raise, in report order; other kinds seen are appended.
pub const EVENT_KINDS: [&str; 7] = ["out_of_store", "dumping", "flooding", "occupancy", "bin_overflow", "parking", "crowd"];

/// Flood levels from dry to worst.
pub const FLOOD_LEVELS: [&str; 3] = ["green", "yellow", "red"];

// ---------------------------------------------------------------------------------------------
// Inputs

/// One detected frame: stream time and the detector's output (after NMS) with track ids.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct DetFrame {
    pub t: f64,
    pub dets: Vec<Det>,
}

/// One detection: class name, confidence, box in frame pixels `[x1, y1, x2, y2]` and the id
/// of the track it was assigned to (`None` while unconfirmed).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Det {
    pub class: String,
    pub score: f32,
    pub bbox: [f32; 4],
    #[serde(default)]
    pub track_id: Option<u64>,
}

/// One alert transition as the rules emitted it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct AlertRec {
    pub kind: String,
    pub zone: String,
    pub event_id: String,
    /// `new`, `update` or `end`.
    pub state: String,
    /// Stream time of the transition.
    pub t: f64,
    pub started_t: f64,
    /// Flooding: the level (`green`, `yellow`, `red`) after this transition.
    #[serde(default)]
    pub level: Option<String>,
}

/// Thresholds of one evaluation.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq)]
pub struct EvalParams {
    /// IoU a detection needs with a truth box to count (AP@0.5: 0.5); also used for ID matching.
    pub iou: f32,
    /// Operating score threshold for the reported precision / recall.
    pub score_thr: f32,
    /// How long after a truth interval's end an alert's `new` still matches it.
    pub onset_tolerance_s: f64,
}

impl Default for EvalParams {
    fn default() -> Self {
        EvalParams { iou: 0.5, score_thr: 0.3, onset_tolerance_s: 5.0 }
    }
}

// ---------------------------------------------------------------------------------------------
// Shared helpers

/// Intersection over union of two `[x1, y1, x2, y2]` boxes; 0 for empty or disjoint boxes.
pub fn iou(a: &[f32; 4], b: &[f32; 4]) -> f32 {
    let iw = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let ih = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = iw * ih;
    let area = |r: &[f32; 4]| (r[2] - r[0]).max(0.0) * (r[3] - r[1]).max(0.0);
    let union = area(a) + area(b) - inter;
    if union > 0.0 {
        inter / union
    } else {
        0.0
    }
}

/// `num / den`, with 0/0 read as 1.0 (see the module docs).
fn ratio(num: usize, den: usize) -> f64 {
    if den == 0 {
        1.0
    } else {
        num as f64 / den as f64
    }
}

/// `first` in its order, then the other names seen, sorted and without duplicates.
fn ordered_names<'a>(first: &[&str], seen: impl Iterator<Item = &'a str>) -> Vec<String> {
    let extra: BTreeSet<&str> = seen.filter(|n| !first.contains(n)).collect();
    first.iter().copied().chain(extra).map(String::from).collect()
}

/// Index of the truth frame nearest to `t` and the distance to it (frames are sorted by `t`).
fn nearest_truth_frame(truth: &Truth, t: f64) -> Option<(usize, f64)> {
    if !t.is_finite() {
        return None;
    }
    let i = truth.frames.partition_point(|f| f.t < t);
    let mut best: Option<(usize, f64)> = None;
    for j in [i.wrapping_sub(1), i] {
        if let Some(f) = truth.frames.get(j) {
            let d = (f.t - t).abs();
            if best.is_none_or(|(_, bd)| d < bd) {
                best = Some((j, d));
            }
        }
    }
    best
}

/// Pairs detector frames with truth frames: each detector frame goes to the truth frame nearest
/// in time if that lies within half a frame period; when two detector frames land on one truth
/// frame only the nearer is kept. Returns `(truth index, detector index)` pairs in time order
/// and how many detector frames were left unpaired.
fn pair_frames(truth: &Truth, frames: &[DetFrame]) -> (Vec<(usize, usize)>, usize) {
    let tol = if truth.fps > 0.0 { 0.5 / truth.fps } else { f64::INFINITY } + 1e-9;
    let mut best: BTreeMap<usize, (f64, usize)> = BTreeMap::new();
    for (di, f) in frames.iter().enumerate() {
        if let Some((ti, d)) = nearest_truth_frame(truth, f.t) {
            if d <= tol {
                let e = best.entry(ti).or_insert((d, di));
                if d < e.0 {
                    *e = (d, di);
                }
            }
        }
    }
    let pairs: Vec<(usize, usize)> = best.into_iter().map(|(ti, (_, di))| (ti, di)).collect();
    let skipped = frames.len() - pairs.len();
    (pairs, skipped)
}

/// Greedy matching within one frame and class: detections in descending score order each take
/// the still unmatched truth box with the highest IoU, if that IoU is at least `thr`. Returns
/// the matched truth index per detection, in input order.
fn greedy_match(gts: &[[f32; 4]], dets: &[(f32, [f32; 4])], thr: f32) -> Vec<Option<usize>> {
    let mut order: Vec<usize> = (0..dets.len()).collect();
    order.sort_by(|&a, &b| dets[b].0.total_cmp(&dets[a].0));
    let mut taken = vec![false; gts.len()];
    let mut out = vec![None; dets.len()];
    for k in order {
        let mut best: Option<(usize, f32)> = None;
        for (g, gt) in gts.iter().enumerate() {
            if taken[g] {
                continue;
            }
            let v = iou(&dets[k].1, gt);
            if v >= thr && best.is_none_or(|(_, bv)| v > bv) {
                best = Some((g, v));
            }
        }
        if let Some((g, _)) = best {
            taken[g] = true;
            out[k] = Some(g);
        }
    }
    out
}

#[cfg(test)]
mod tests;
