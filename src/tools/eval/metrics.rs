//! Scores for `hawkeye eval`: detection AP / precision / recall per class, tracker ID switches,
//! alert events against the truth intervals, and flood-level agreement. Pure: the pipeline's
//! outputs and a scenario's [`Truth`] go in, serialisable reports come out.
//!
//! Conventions shared by every ratio here: precision with no positives (0/0) is 1.0 (nothing
//! was claimed, so nothing was claimed wrongly) and recall with nothing to find is 1.0.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::tools::synth::truth::{Truth, TruthEvent, CLASSES};

/// The alert kinds the rules raise, in report order; other kinds seen are appended.
pub const EVENT_KINDS: [&str; 4] = ["out_of_store", "dumping", "flooding", "occupancy"];

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

// ---------------------------------------------------------------------------------------------
// Detection

/// What AP needs of one class, kept so that reports of several scenarios can be pooled: the
/// number of truth boxes and every detection's score with whether it matched.
#[derive(Clone, Debug, Default, PartialEq)]
struct ClassSamples {
    n_gt: usize,
    scored: Vec<(f32, bool)>,
}

/// Detection quality of one class.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct ClassDetection {
    pub class: String,
    /// Truth boxes in the evaluated frames.
    pub gt: usize,
    /// Detections of this class at any score.
    pub dets: usize,
    /// At the operating threshold: matched detections, unmatched detections, missed truth boxes.
    pub tp: usize,
    pub fp: usize,
    #[serde(rename = "fn")]
    pub fn_: usize,
    pub precision: f64,
    pub recall: f64,
    /// AP at the report's IoU (VOC all-point interpolation); `None` for a class without truth.
    pub ap: Option<f64>,
}

/// Detection quality over all classes.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct DetectionReport {
    pub iou: f32,
    pub score_thr: f32,
    /// Detector frames paired with a truth frame, and those that were not.
    pub frames_matched: usize,
    pub frames_skipped: usize,
    /// [`CLASSES`] in model order, then other class names seen in truth or detections.
    pub classes: Vec<ClassDetection>,
    /// Mean AP over the classes that have truth boxes.
    pub map: Option<f64>,
    #[serde(skip)]
    samples: BTreeMap<String, ClassSamples>,
}

/// VOC all-point interpolated average precision of `(score, matched)` detections sorted by
/// descending score, against `n_gt` truth boxes: the area under the precision envelope (the
/// running maximum of precision from the right) over recall. 0 when `n_gt` is 0.
pub fn voc_ap(sorted: &[(f32, bool)], n_gt: usize) -> f64 {
    if n_gt == 0 {
        return 0.0;
    }
    let mut rec = Vec::with_capacity(sorted.len() + 2);
    let mut prec = Vec::with_capacity(sorted.len() + 2);
    rec.push(0.0);
    prec.push(0.0);
    let mut tp = 0usize;
    for (i, &(_, hit)) in sorted.iter().enumerate() {
        tp += usize::from(hit);
        rec.push(tp as f64 / n_gt as f64);
        prec.push(tp as f64 / (i + 1) as f64);
    }
    rec.push(1.0);
    prec.push(0.0);
    for i in (0..prec.len() - 1).rev() {
        prec[i] = prec[i].max(prec[i + 1]);
    }
    (1..rec.len()).filter(|&i| rec[i] != rec[i - 1]).map(|i| (rec[i] - rec[i - 1]) * prec[i]).sum()
}

/// Detection report of one scenario. See [`detection_report_multi`].
pub fn detection_report(truth: &Truth, frames: &[DetFrame], iou: f32, score_thr: f32) -> DetectionReport {
    detection_report_multi(&[(truth, frames)], iou, score_thr)
}

/// Detection report pooled over several scenarios: detections of all of them are ranked together
/// for AP. Each detector frame is paired with the nearest truth frame within half a frame period
/// (others are skipped, and only paired frames' truth boxes count); within a frame a detection
/// matches a truth box of the same class with IoU ≥ `iou` (greedy, see `greedy_match`).
/// Precision / recall are those of the detections scoring at least `score_thr`.
pub fn detection_report_multi(runs: &[(&Truth, &[DetFrame])], iou: f32, score_thr: f32) -> DetectionReport {
    let mut samples: BTreeMap<String, ClassSamples> = BTreeMap::new();
    let (mut matched, mut skipped) = (0, 0);
    for &(truth, frames) in runs {
        // every class present in the truth gets a row, evaluated frames or not
        for b in truth.frames.iter().flat_map(|f| &f.boxes) {
            if !samples.contains_key(&b.class) {
                samples.insert(b.class.clone(), ClassSamples::default());
            }
        }
        let (pairs, sk) = pair_frames(truth, frames);
        matched += pairs.len();
        skipped += sk;
        for (ti, di) in pairs {
            let (ft, df) = (&truth.frames[ti], &frames[di]);
            let classes: BTreeSet<&str> =
                ft.boxes.iter().map(|b| b.class.as_str()).chain(df.dets.iter().map(|d| d.class.as_str())).collect();
            for c in classes {
                let gts: Vec<[f32; 4]> = ft.boxes.iter().filter(|b| b.class == c).map(|b| b.bbox).collect();
                let dets: Vec<(f32, [f32; 4])> =
                    df.dets.iter().filter(|d| d.class == c).map(|d| (d.score, d.bbox)).collect();
                let m = greedy_match(&gts, &dets, iou);
                let s = samples.entry(c.to_string()).or_default();
                s.n_gt += gts.len();
                s.scored.extend(dets.iter().zip(&m).map(|(d, g)| (d.0, g.is_some())));
            }
        }
    }
    build_detection(samples, iou, score_thr, matched, skipped)
}

fn build_detection(
    samples: BTreeMap<String, ClassSamples>,
    iou: f32,
    score_thr: f32,
    frames_matched: usize,
    frames_skipped: usize,
) -> DetectionReport {
    let names = ordered_names(&CLASSES, samples.keys().map(String::as_str));
    let empty = ClassSamples::default();
    let classes: Vec<ClassDetection> =
        names.iter().map(|c| class_detection(c, samples.get(c).unwrap_or(&empty), score_thr)).collect();
    let aps: Vec<f64> = classes.iter().filter_map(|c| c.ap).collect();
    let map = (!aps.is_empty()).then(|| aps.iter().sum::<f64>() / aps.len() as f64);
    DetectionReport { iou, score_thr, frames_matched, frames_skipped, classes, map, samples }
}

fn class_detection(class: &str, s: &ClassSamples, score_thr: f32) -> ClassDetection {
    let mut sorted = s.scored.clone();
    // stable: equal scores keep the order they were seen in
    sorted.sort_by(|a, b| b.0.total_cmp(&a.0));
    let kept = sorted.iter().take_while(|(score, _)| *score >= score_thr);
    let (mut tp, mut fp) = (0, 0);
    for &(_, hit) in kept {
        if hit {
            tp += 1;
        } else {
            fp += 1;
        }
    }
    ClassDetection {
        class: class.to_string(),
        gt: s.n_gt,
        dets: sorted.len(),
        tp,
        fp,
        fn_: s.n_gt - tp,
        precision: ratio(tp, tp + fp),
        recall: ratio(tp, s.n_gt),
        ap: (s.n_gt > 0).then(|| voc_ap(&sorted, s.n_gt)),
    }
}

// ---------------------------------------------------------------------------------------------
// Identity

/// Tracker identity errors of one class.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct ClassIds {
    pub class: String,
    pub switches: usize,
    /// Truth objects seen in the evaluated frames, and those matched to a track at least once.
    pub objects: usize,
    pub matched_objects: usize,
}

/// Tracker identity errors (CLEAR-MOT ID switches).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct IdReport {
    pub iou: f32,
    pub switches: usize,
    pub objects: usize,
    pub matched_objects: usize,
    /// Classes with truth objects, in [`CLASSES`] order then others.
    pub classes: Vec<ClassIds>,
}

/// Counts ID switches CLEAR-MOT style: in every paired frame (as in [`detection_report`]) each
/// truth object is matched to a tracked detection (one with a `track_id`) of its class with IoU
/// ≥ `iou`; an object keeps its previous track if that track still overlaps it enough, the rest
/// is matched greedily by highest IoU. A switch is counted whenever an object's matched track
/// differs from the last track it was matched to, gaps in between or not.
pub fn id_switches(truth: &Truth, frames: &[DetFrame], iou_thr: f32) -> IdReport {
    struct Obj {
        class: String,
        last: Option<u64>,
        switches: usize,
    }
    let mut objs: BTreeMap<u32, Obj> = BTreeMap::new();
    let (pairs, _) = pair_frames(truth, frames);
    for (ti, di) in pairs {
        let (boxes, dets) = (&truth.frames[ti].boxes, &frames[di].dets);
        for b in boxes {
            objs.entry(b.id).or_insert_with(|| Obj { class: b.class.clone(), last: None, switches: 0 });
        }
        let overlap = |g: usize, k: usize| {
            let (b, d) = (&boxes[g], &dets[k]);
            if d.track_id.is_some() && d.class == b.class {
                Some(iou(&d.bbox, &b.bbox)).filter(|&v| v >= iou_thr)
            } else {
                None
            }
        };
        let mut det_used = vec![false; dets.len()];
        let mut gt_track: Vec<Option<u64>> = vec![None; boxes.len()];
        // continuing correspondences first
        for (g, b) in boxes.iter().enumerate() {
            let Some(prev) = objs[&b.id].last else { continue };
            let keep =
                (0..dets.len()).find(|&k| !det_used[k] && dets[k].track_id == Some(prev) && overlap(g, k).is_some());
            if let Some(k) = keep {
                det_used[k] = true;
                gt_track[g] = Some(prev);
            }
        }
        let mut cands: Vec<(f32, usize, usize)> = Vec::new();
        for g in (0..boxes.len()).filter(|&g| gt_track[g].is_none()) {
            for k in (0..dets.len()).filter(|&k| !det_used[k]) {
                if let Some(v) = overlap(g, k) {
                    cands.push((v, g, k));
                }
            }
        }
        cands.sort_by(|a, b| b.0.total_cmp(&a.0));
        for (_, g, k) in cands {
            if gt_track[g].is_none() && !det_used[k] {
                det_used[k] = true;
                gt_track[g] = dets[k].track_id;
            }
        }
        for (b, tid) in boxes.iter().zip(gt_track) {
            let Some(tid) = tid else { continue };
            let o = objs.get_mut(&b.id).expect("registered above");
            if o.last.is_some_and(|l| l != tid) {
                o.switches += 1;
            }
            o.last = Some(tid);
        }
    }
    let mut per: BTreeMap<&str, ClassIds> = BTreeMap::new();
    for o in objs.values() {
        let c =
            per.entry(o.class.as_str()).or_insert_with(|| ClassIds { class: o.class.clone(), ..Default::default() });
        c.objects += 1;
        c.matched_objects += usize::from(o.last.is_some());
        c.switches += o.switches;
    }
    let names = ordered_names(&CLASSES, per.keys().copied());
    let classes: Vec<ClassIds> = names.iter().filter_map(|n| per.remove(n.as_str())).collect();
    ids_from_classes(iou_thr, classes)
}

fn ids_from_classes(iou: f32, classes: Vec<ClassIds>) -> IdReport {
    IdReport {
        iou,
        switches: classes.iter().map(|c| c.switches).sum(),
        objects: classes.iter().map(|c| c.objects).sum(),
        matched_objects: classes.iter().map(|c| c.matched_objects).sum(),
        classes,
    }
}

// ---------------------------------------------------------------------------------------------
// Events

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

fn build_events(
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

// ---------------------------------------------------------------------------------------------
// Flood levels

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

// ---------------------------------------------------------------------------------------------
// Report

/// Everything `hawkeye eval` says about one scenario (or, merged, about several).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Report {
    pub scenario: String,
    pub detection: DetectionReport,
    pub ids: IdReport,
    pub events: EventReport,
    pub flood: Vec<FloodAgreement>,
}

impl Report {
    /// Scores one scenario; flood agreement is sampled at the detector frames' times.
    pub fn compute(truth: &Truth, frames: &[DetFrame], alerts: &[AlertRec], params: &EvalParams) -> Report {
        let times: Vec<f64> = frames.iter().map(|f| f.t).collect();
        Report {
            scenario: truth.name.clone(),
            detection: detection_report(truth, frames, params.iou, params.score_thr),
            ids: id_switches(truth, frames, params.iou),
            events: event_report(truth, alerts, params.onset_tolerance_s),
            flood: flood_agreement(truth, alerts, &times),
        }
    }

    /// Pools several scenarios' reports: AP is recomputed over all their detections ranked
    /// together, counts are summed, onset errors pooled, and flood agreement pooled over all
    /// frames into one entry (zone `all`). Thresholds are taken from the first report.
    /// The per-detection samples AP needs are not serialised, so merge reports computed in this
    /// process, not ones read back from JSON.
    pub fn merge(reports: &[Report]) -> Report {
        let Some(first) = reports.first() else { return Report::default() };
        let mut samples: BTreeMap<String, ClassSamples> = BTreeMap::new();
        let (mut fm, mut fs) = (0, 0);
        let mut ids: BTreeMap<String, ClassIds> = BTreeMap::new();
        let (mut matches, mut false_alarms, mut missed) = (Vec::new(), Vec::new(), Vec::new());
        let mut kind_names: Vec<&str> = Vec::new();
        let mut flood = FloodAgreement { zone: "all".into(), ..Default::default() };
        for r in reports {
            for (c, s) in &r.detection.samples {
                let e = samples.entry(c.clone()).or_default();
                e.n_gt += s.n_gt;
                e.scored.extend_from_slice(&s.scored);
            }
            fm += r.detection.frames_matched;
            fs += r.detection.frames_skipped;
            for c in &r.ids.classes {
                let e = ids
                    .entry(c.class.clone())
                    .or_insert_with(|| ClassIds { class: c.class.clone(), ..Default::default() });
                e.switches += c.switches;
                e.objects += c.objects;
                e.matched_objects += c.matched_objects;
            }
            matches.extend_from_slice(&r.events.matches);
            false_alarms.extend_from_slice(&r.events.false_alarms);
            missed.extend_from_slice(&r.events.missed);
            kind_names.extend(r.events.kinds.iter().map(|k| k.kind.as_str()));
            for f in &r.flood {
                flood.frames += f.frames;
                flood.agree += f.agree;
                for (tr, row) in &f.confusion {
                    for (pr, n) in row {
                        *flood.confusion.entry(tr.clone()).or_default().entry(pr.clone()).or_default() += n;
                    }
                }
            }
        }
        flood.agreement_pct = (flood.frames > 0).then(|| 100.0 * flood.agree as f64 / flood.frames as f64);
        let id_names = ordered_names(&CLASSES, ids.keys().map(String::as_str));
        let id_classes = id_names.iter().filter_map(|n| ids.remove(n)).collect();
        let kinds = ordered_names(&EVENT_KINDS, kind_names.into_iter());
        Report {
            scenario: format!("all ({} scenarios)", reports.len()),
            detection: build_detection(samples, first.detection.iou, first.detection.score_thr, fm, fs),
            ids: ids_from_classes(first.ids.iou, id_classes),
            events: build_events(first.events.onset_tolerance_s, &kinds, matches, false_alarms, missed),
            flood: if reports.iter().any(|r| !r.flood.is_empty()) { vec![flood] } else { Vec::new() },
        }
    }

    /// A fixed-width text summary: detection per class, events per kind, flood agreement per
    /// zone and ID switches.
    pub fn print_table(&self) -> String {
        let mut s = String::new();
        let d = &self.detection;
        let _ = writeln!(s, "== {} ==", self.scenario);
        let _ = writeln!(
            s,
            "detection: IoU >= {:.2}, P/R at score >= {:.2}; {} frames evaluated, {} skipped",
            d.iou, d.score_thr, d.frames_matched, d.frames_skipped
        );
        let _ = writeln!(
            s,
            "  {:<14} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7}",
            "class", "GT", "dets", "TP", "FP", "FN", "P", "R", "AP"
        );
        for c in &d.classes {
            // the 0/0 conventions read as perfect scores; the table shows them as "-"
            let p = if c.tp + c.fp == 0 { "-".to_string() } else { format!("{:.3}", c.precision) };
            let r = if c.gt == 0 { "-".to_string() } else { format!("{:.3}", c.recall) };
            let _ = writeln!(
                s,
                "  {:<14} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7}",
                c.class,
                c.gt,
                c.dets,
                c.tp,
                c.fp,
                c.fn_,
                p,
                r,
                opt(c.ap, 3, "")
            );
        }
        let _ = writeln!(s, "  mAP {}", opt(d.map, 3, ""));
        let _ = writeln!(s, "events: alert onset within [start, end + {:.1} s]", self.events.onset_tolerance_s);
        let _ = writeln!(
            s,
            "  {:<14} {:>5} {:>6} {:>4} {:>4} {:>4} {:>6} {:>6} {:>9} {:>9} {:>9}",
            "kind", "truth", "alerts", "TP", "FP", "FN", "P", "R", "onset", "|onset|", "max|ons|"
        );
        for k in &self.events.kinds {
            let _ = writeln!(
                s,
                "  {:<14} {:>5} {:>6} {:>4} {:>4} {:>4} {:>6.3} {:>6.3} {:>9} {:>9} {:>9}",
                k.kind,
                k.truth,
                k.alerts,
                k.tp,
                k.fp,
                k.fn_,
                k.precision,
                k.recall,
                opt_signed(k.onset_mean_s),
                opt(k.onset_mean_abs_s, 2, "s"),
                opt(k.onset_max_abs_s, 2, "s")
            );
        }
        if !self.flood.is_empty() {
            let _ = writeln!(s, "flood level agreement (rows: true level, columns: alerted level)");
            let _ = writeln!(
                s,
                "  {:<14} {:>7} {:>7}   {:<8} {:>7} {:>7} {:>7}",
                "zone", "frames", "agree", "true", "green", "yellow", "red"
            );
            for f in &self.flood {
                let pct = f.agreement_pct.map_or("-".to_string(), |p| format!("{p:.1}%"));
                let mut levels: Vec<&str> = FLOOD_LEVELS.to_vec();
                levels.extend(f.confusion.keys().map(String::as_str).filter(|l| !FLOOD_LEVELS.contains(l)));
                for (i, tr) in levels.iter().enumerate() {
                    let row = f.confusion.get(*tr);
                    let n = |p: &str| row.and_then(|r| r.get(p)).copied().unwrap_or(0);
                    let head = if i == 0 {
                        format!("  {:<14} {:>7} {:>7}", f.zone, f.frames, pct)
                    } else {
                        format!("  {:<14} {:>7} {:>7}", "", "", "")
                    };
                    let other: usize = row.map_or(0, |r| {
                        r.iter().filter(|(p, _)| !FLOOD_LEVELS.contains(&p.as_str())).map(|(_, n)| n).sum()
                    });
                    let extra = if other > 0 { format!("  (+{other} other)") } else { String::new() };
                    let _ =
                        writeln!(s, "{head}   {:<8} {:>7} {:>7} {:>7}{extra}", tr, n("green"), n("yellow"), n("red"));
                }
            }
        }
        let per: Vec<String> =
            self.ids.classes.iter().filter(|c| c.switches > 0).map(|c| format!("{} {}", c.class, c.switches)).collect();
        let _ = writeln!(
            s,
            "ID switches: {} over {} truth objects ({} matched to a track){}",
            self.ids.switches,
            self.ids.objects,
            self.ids.matched_objects,
            if per.is_empty() { String::new() } else { format!(": {}", per.join(", ")) }
        );
        s
    }
}

fn opt(v: Option<f64>, prec: usize, unit: &str) -> String {
    v.map_or("-".to_string(), |x| format!("{x:.prec$}{unit}"))
}

fn opt_signed(v: Option<f64>) -> String {
    v.map_or("-".to_string(), |x| format!("{x:+.2}s"))
}

// ---------------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tools::synth::truth::{FloodTimeline, FrameTruth, TruthBox};

    const EPS: f64 = 1e-9;

    /// A 10 fps truth with one frame per entry at `0.1 * index` seconds.
    fn truth(frames: Vec<Vec<(&str, u32, [f32; 4])>>) -> Truth {
        Truth {
            name: "t".into(),
            width: 640,
            height: 480,
            fps: 10.0,
            duration_s: frames.len() as f64 / 10.0,
            frames: frames
                .into_iter()
                .enumerate()
                .map(|(i, boxes)| FrameTruth {
                    t: i as f64 * 0.1,
                    boxes: boxes.into_iter().map(|(c, id, bbox)| TruthBox { class: c.into(), id, bbox }).collect(),
                })
                .collect(),
            ..Default::default()
        }
    }

    fn det(class: &str, score: f32, bbox: [f32; 4], track: Option<u64>) -> Det {
        Det { class: class.into(), score, bbox, track_id: track }
    }

    /// Detector frames aligned with `truth`'s frames.
    fn dframes(frames: Vec<Vec<Det>>) -> Vec<DetFrame> {
        frames.into_iter().enumerate().map(|(i, dets)| DetFrame { t: i as f64 * 0.1, dets }).collect()
    }

    fn class<'a>(r: &'a DetectionReport, c: &str) -> &'a ClassDetection {
        r.classes.iter().find(|x| x.class == c).unwrap()
    }

    const A: [f32; 4] = [10.0, 10.0, 50.0, 90.0];
    const B: [f32; 4] = [200.0, 100.0, 260.0, 160.0];
    const FAR: [f32; 4] = [400.0, 300.0, 440.0, 340.0];

    #[test]
    fn iou_basics() {
        assert!((iou(&A, &A) - 1.0).abs() < 1e-6);
        assert_eq!(iou(&A, &B), 0.0);
        // half-overlapping 10x10 squares: 50 / 150
        assert!((iou(&[0.0, 0.0, 10.0, 10.0], &[5.0, 0.0, 15.0, 10.0]) - 1.0 / 3.0).abs() < 1e-6);
        assert_eq!(iou(&[0.0, 0.0, 0.0, 0.0], &[0.0, 0.0, 0.0, 0.0]), 0.0);
    }

    #[test]
    fn perfect_detector_has_ap_one() {
        let t = truth(vec![vec![("person", 1, A), ("vehicle", 2, B)], vec![("person", 1, A)]]);
        let f = dframes(vec![
            vec![det("person", 0.9, A, None), det("vehicle", 0.8, B, None)],
            vec![det("person", 0.7, A, None)],
        ]);
        let r = detection_report(&t, &f, 0.5, 0.3);
        let p = class(&r, "person");
        assert_eq!((p.gt, p.dets, p.tp, p.fp, p.fn_), (2, 2, 2, 0, 0));
        assert_eq!(p.ap, Some(1.0));
        assert_eq!((p.precision, p.recall), (1.0, 1.0));
        assert_eq!(class(&r, "vehicle").ap, Some(1.0));
        assert_eq!(class(&r, "garbage").ap, None);
        assert_eq!(r.map, Some(1.0));
        assert_eq!((r.frames_matched, r.frames_skipped), (2, 0));
        // model classes first, in model order
        let names: Vec<&str> = r.classes.iter().map(|c| c.class.as_str()).collect();
        assert_eq!(names, CLASSES.to_vec());
    }

    #[test]
    fn fp_above_the_only_tp_halves_precision() {
        // ranked: FP (0.9) then TP (0.8); recall reaches 1 at precision 1/2 -> AP = 0.5
        let t = truth(vec![vec![("person", 1, A)]]);
        let f = dframes(vec![vec![det("person", 0.8, A, None), det("person", 0.9, FAR, None)]]);
        let r = detection_report(&t, &f, 0.5, 0.5);
        let p = class(&r, "person");
        assert!((p.ap.unwrap() - 0.5).abs() < EPS);
        assert_eq!((p.tp, p.fp, p.fn_), (1, 1, 0));
        assert!((p.precision - 0.5).abs() < EPS);
        assert_eq!(p.recall, 1.0);
        // operating point above the TP: only the FP is kept
        let r = detection_report(&t, &f, 0.5, 0.85);
        let p = class(&r, "person");
        assert_eq!((p.tp, p.fp, p.fn_), (0, 1, 1));
        assert_eq!((p.precision, p.recall), (0.0, 0.0));
        assert!((p.ap.unwrap() - 0.5).abs() < EPS, "AP does not depend on the operating point");
    }

    #[test]
    fn missing_detection_halves_recall() {
        let t = truth(vec![vec![("person", 1, A), ("person", 2, B)]]);
        let f = dframes(vec![vec![det("person", 0.9, A, None)]]);
        let p = class(&detection_report(&t, &f, 0.5, 0.3), "person").clone();
        assert!((p.ap.unwrap() - 0.5).abs() < EPS);
        assert_eq!((p.tp, p.fp, p.fn_), (1, 0, 1));
        assert_eq!((p.precision, p.recall), (1.0, 0.5));
    }

    #[test]
    fn voc_ap_interpolates_the_precision_envelope() {
        // TP 0.9, FP 0.8, TP 0.7 over 2 truth boxes: recall 0.5 at P 1, recall 1 at P 2/3
        // -> AP = 0.5 * 1 + 0.5 * 2/3
        let t = truth(vec![vec![("person", 1, A)], vec![("person", 1, B)]]);
        let f = dframes(vec![
            vec![det("person", 0.9, A, None), det("person", 0.8, FAR, None)],
            vec![det("person", 0.7, B, None)],
        ]);
        let p = class(&detection_report(&t, &f, 0.5, 0.0), "person").clone();
        assert!((p.ap.unwrap() - (0.5 + 0.5 * 2.0 / 3.0)).abs() < EPS);
        // the envelope lifts the dip: FP, TP, FP, TP over 2 -> 0.5*(1/2) + 0.5*(2/4)
        let s = [(0.9, false), (0.8, true), (0.7, false), (0.6, true)];
        assert!((voc_ap(&s, 2) - 0.5).abs() < EPS);
        // a later, better precision lifts an earlier point: T F F T T over 3
        // recalls 1/3 @1, 2/3 @ 2/4 -> lifted to 3/5, 1 @ 3/5
        let s = [(0.9, true), (0.8, false), (0.7, false), (0.6, true), (0.5, true)];
        assert!((voc_ap(&s, 3) - (1.0 / 3.0 + 2.0 / 3.0 * 0.6)).abs() < EPS);
        assert_eq!(voc_ap(&[], 2), 0.0);
    }

    #[test]
    fn low_iou_is_fp_and_fn() {
        let t = truth(vec![vec![("person", 1, [0.0, 0.0, 10.0, 10.0])]]);
        let f = dframes(vec![vec![det("person", 0.9, [5.0, 0.0, 15.0, 10.0], None)]]);
        let p = class(&detection_report(&t, &f, 0.5, 0.3), "person").clone();
        assert_eq!((p.tp, p.fp, p.fn_), (0, 1, 1));
        assert_eq!(p.ap, Some(0.0));
        // at a looser IoU the same box is a hit
        let p = class(&detection_report(&t, &f, 0.3, 0.3), "person").clone();
        assert_eq!((p.tp, p.fp, p.fn_), (1, 0, 0));
    }

    #[test]
    fn class_mismatch_is_fn_for_one_and_fp_for_the_other() {
        let t = truth(vec![vec![("person", 1, A)]]);
        let f = dframes(vec![vec![det("vehicle", 0.9, A, None), det("car", 0.6, B, None)]]);
        let r = detection_report(&t, &f, 0.5, 0.3);
        let p = class(&r, "person");
        assert_eq!((p.gt, p.tp, p.fn_, p.ap), (1, 0, 1, Some(0.0)));
        let v = class(&r, "vehicle");
        assert_eq!((v.gt, v.dets, v.fp, v.ap), (0, 1, 1, None));
        assert_eq!(v.precision, 0.0);
        // a class name outside the model's set still shows up, after the model classes
        let c = class(&r, "car");
        assert_eq!((c.fp, c.ap), (1, None));
        assert_eq!(r.classes.last().unwrap().class, "car");
        // mAP only over classes with truth
        assert_eq!(r.map, Some(0.0));
        let json = serde_json::to_value(&r).unwrap();
        assert!(json["classes"][5]["ap"].is_null());
        assert_eq!(json["classes"][0]["fn"], 1);
    }

    #[test]
    fn duplicate_detection_is_fp() {
        let t = truth(vec![vec![("person", 1, A)]]);
        let near = [12.0, 10.0, 52.0, 90.0];
        let f = dframes(vec![vec![det("person", 0.6, A, None), det("person", 0.9, near, None)]]);
        let p = class(&detection_report(&t, &f, 0.5, 0.0), "person").clone();
        // the higher score takes the box, the exact one comes second and is a duplicate
        assert_eq!((p.tp, p.fp), (1, 1));
        assert!((p.ap.unwrap() - 1.0).abs() < EPS);
    }

    #[test]
    fn greedy_takes_the_highest_iou_unmatched_box() {
        let g1 = [0.0, 0.0, 10.0, 10.0];
        let g2 = [2.0, 0.0, 12.0, 10.0];
        // first detection overlaps g2 best, second only g1 well enough
        let m = greedy_match(&[g1, g2], &[(0.9, [2.0, 0.0, 12.0, 10.0]), (0.8, [0.0, 0.0, 10.0, 10.0])], 0.5);
        assert_eq!(m, vec![Some(1), Some(0)]);
        let m = greedy_match(&[g1], &[(0.5, g1), (0.9, g2)], 0.5);
        assert_eq!(m, vec![None, Some(0)]);
    }

    #[test]
    fn frames_pair_within_half_a_period() {
        let t = truth(vec![vec![("person", 1, A)], vec![("person", 1, A)], vec![("person", 1, A)]]);
        let f = vec![
            DetFrame { t: 0.04, dets: vec![det("person", 0.9, A, None)] }, // -> frame 0
            DetFrame { t: 0.045, dets: vec![] },                           // farther duplicate of frame 0: skipped
            DetFrame { t: 0.26, dets: vec![det("person", 0.9, A, None)] }, // nearest 0.3 is past the end; 0.2 is 0.06 away
            DetFrame { t: 5.0, dets: vec![det("person", 0.9, A, None)] },  // no truth frame near
        ];
        let r = detection_report(&t, &f, 0.5, 0.3);
        assert_eq!((r.frames_matched, r.frames_skipped), (1, 3));
        let p = class(&r, "person");
        // only paired frames' truth counts
        assert_eq!((p.gt, p.dets, p.tp), (1, 1, 1));
        let f2 =
            vec![DetFrame { t: 0.03, dets: vec![] }, DetFrame { t: 0.01, dets: vec![det("person", 0.9, A, None)] }];
        let r = detection_report(&t, &f2, 0.5, 0.3);
        assert_eq!(class(&r, "person").tp, 1, "the nearer of two detector frames wins");
    }

    #[test]
    fn pooled_ap_ranks_all_scenarios_together() {
        let t1 = truth(vec![vec![("person", 1, A)]]);
        let f1 = dframes(vec![vec![det("person", 0.8, A, None)]]);
        let t2 = truth(vec![vec![("person", 1, A)]]);
        let f2 = dframes(vec![vec![det("person", 0.9, FAR, None)]]);
        let r1 = detection_report(&t1, &f1, 0.5, 0.3);
        let r2 = detection_report(&t2, &f2, 0.5, 0.3);
        assert_eq!((class(&r1, "person").ap, class(&r2, "person").ap), (Some(1.0), Some(0.0)));
        // pooled ranking FP 0.9, TP 0.8 over 2 truth boxes: recall 1/2 at precision 1/2
        let pooled = detection_report_multi(&[(&t1, &f1), (&t2, &f2)], 0.5, 0.3);
        assert!((class(&pooled, "person").ap.unwrap() - 0.25).abs() < EPS);
        let p = EvalParams::default();
        let m = Report::merge(&[Report::compute(&t1, &f1, &[], &p), Report::compute(&t2, &f2, &[], &p)]);
        assert_eq!(m.detection.classes, pooled.classes);
        assert_eq!(m.detection.map, pooled.map);
        assert_eq!(m.detection.frames_matched, 2);
    }

    // --- ID switches

    /// One person (id 7) at `A` per frame, with detections given per frame as track ids.
    fn id_case(tracks: &[Option<u64>]) -> IdReport {
        let t = truth(tracks.iter().map(|_| vec![("person", 7, A)]).collect());
        let f = dframes(
            tracks.iter().map(|tr| tr.map(|id| vec![det("person", 0.9, A, Some(id))]).unwrap_or_default()).collect(),
        );
        id_switches(&t, &f, 0.5)
    }

    #[test]
    fn id_switch_counting() {
        let r = id_case(&[Some(1), Some(1), Some(2), Some(2)]);
        assert_eq!((r.switches, r.objects, r.matched_objects), (1, 1, 1));
        assert_eq!(r.classes, vec![ClassIds { class: "person".into(), switches: 1, objects: 1, matched_objects: 1 }]);
        assert_eq!(id_case(&[Some(1), None, Some(1)]).switches, 0);
        assert_eq!(id_case(&[Some(1), None, Some(2)]).switches, 1);
        assert_eq!(id_case(&[Some(1), Some(2), Some(1)]).switches, 2);
        let r = id_case(&[None, None]);
        assert_eq!((r.switches, r.objects, r.matched_objects), (0, 1, 0));
    }

    #[test]
    fn id_matching_needs_track_class_and_overlap() {
        let t = truth(vec![vec![("person", 7, A)]; 3]);
        let f = dframes(vec![
            vec![det("person", 0.9, A, Some(1))],
            vec![det("person", 0.9, A, None), det("vehicle", 0.9, A, Some(2)), det("person", 0.9, FAR, Some(3))],
            vec![det("person", 0.9, A, Some(1))],
        ]);
        assert_eq!(id_switches(&t, &f, 0.5).switches, 0);
    }

    #[test]
    fn id_keeps_a_continuing_track_over_a_better_overlap() {
        let near = [12.0, 10.0, 52.0, 90.0];
        let t = truth(vec![vec![("person", 7, near)], vec![("person", 7, A)]]);
        let f = dframes(vec![
            vec![det("person", 0.9, near, Some(1))],
            vec![det("person", 0.9, near, Some(1)), det("person", 0.9, A, Some(2))],
        ]);
        assert_eq!(id_switches(&t, &f, 0.5).switches, 0);
    }

    #[test]
    fn id_switches_per_class() {
        let t = truth(vec![vec![("person", 1, A), ("vehicle", 2, B)]; 2]);
        let f = dframes(vec![
            vec![det("person", 0.9, A, Some(10)), det("vehicle", 0.9, B, Some(20))],
            vec![det("person", 0.9, A, Some(11)), det("vehicle", 0.9, B, Some(20))],
        ]);
        let r = id_switches(&t, &f, 0.5);
        assert_eq!((r.switches, r.objects, r.matched_objects), (1, 2, 2));
        let names: Vec<(&str, usize)> = r.classes.iter().map(|c| (c.class.as_str(), c.switches)).collect();
        assert_eq!(names, vec![("person", 1), ("vehicle", 0)]);
    }

    // --- events

    fn tev(kind: &str, zone: &str, start: f64, end: f64, dwell_s: f64) -> TruthEvent {
        TruthEvent { kind: kind.into(), zone: zone.into(), start, end, dwell_s }
    }

    fn alert(kind: &str, zone: &str, id: &str, state: &str, t: f64, level: Option<&str>) -> AlertRec {
        AlertRec {
            kind: kind.into(),
            zone: zone.into(),
            event_id: id.into(),
            state: state.into(),
            t,
            started_t: t,
            level: level.map(String::from),
        }
    }

    fn kind<'a>(r: &'a EventReport, k: &str) -> &'a KindEvents {
        r.kinds.iter().find(|x| x.kind == k).unwrap()
    }

    fn with_events(events: Vec<TruthEvent>) -> Truth {
        Truth { name: "ev".into(), fps: 10.0, duration_s: 120.0, events, ..Default::default() }
    }

    #[test]
    fn late_onset_is_a_tp_with_signed_error() {
        let t = with_events(vec![tev("out_of_store", "shop1", 10.0, 60.0, 20.0)]);
        let a = vec![
            alert("out_of_store", "shop1", "e1", "new", 33.0, None),
            alert("out_of_store", "shop1", "e1", "end", 61.0, None),
        ];
        let r = event_report(&t, &a, 5.0);
        let k = kind(&r, "out_of_store");
        assert_eq!((k.truth, k.alerts, k.tp, k.fp, k.fn_), (1, 1, 1, 0, 0));
        assert_eq!((k.precision, k.recall), (1.0, 1.0));
        assert!((r.matches[0].onset_error_s - 3.0).abs() < EPS);
        assert_eq!(r.matches[0].due_t, 30.0);
        assert_eq!((k.onset_mean_s, k.onset_mean_abs_s, k.onset_max_abs_s), (Some(3.0), Some(3.0), Some(3.0)));
        // kinds without anything are perfect by convention
        let d = kind(&r, "dumping");
        assert_eq!((d.tp, d.fp, d.fn_, d.precision, d.recall, d.onset_mean_s), (0, 0, 0, 1.0, 1.0, None));
        let names: Vec<&str> = r.kinds.iter().map(|k| k.kind.as_str()).collect();
        assert_eq!(names, EVENT_KINDS.to_vec());
    }

    #[test]
    fn fp_alerts_and_missed_events() {
        let t = with_events(vec![tev("dumping", "lot", 10.0, 40.0, 10.0), tev("occupancy", "racks", 5.0, 50.0, 0.0)]);
        let a = vec![
            alert("dumping", "lot", "d1", "new", 8.0, None), // before the truth started
            alert("dumping", "lot", "d2", "new", 46.0, None), // after end + tolerance
            alert("dumping", "other", "d3", "new", 20.0, None), // wrong zone
            alert("occupancy", "lot", "o1", "new", 20.0, None), // wrong zone for occupancy
            alert("out_of_store", "x", "s1", "new", 1.0, None), // nothing to catch
            alert("weird_kind", "x", "w1", "new", 1.0, None),
        ];
        let r = event_report(&t, &a, 5.0);
        let d = kind(&r, "dumping");
        assert_eq!((d.tp, d.fp, d.fn_, d.precision, d.recall), (0, 3, 1, 0.0, 0.0));
        let o = kind(&r, "occupancy");
        assert_eq!((o.tp, o.fp, o.fn_), (0, 1, 1));
        assert_eq!((kind(&r, "out_of_store").fp, kind(&r, "weird_kind").fp), (1, 1));
        assert_eq!(r.kinds.last().unwrap().kind, "weird_kind");
        assert_eq!(r.missed.len(), 2);
        assert_eq!(r.false_alarms.len(), 6);
        // an alert just after the end but within the tolerance still matches
        let a = vec![alert("dumping", "lot", "d1", "new", 44.0, None)];
        let k = kind(&event_report(&t, &a, 5.0), "dumping").clone();
        assert_eq!((k.tp, k.fp, k.fn_), (1, 0, 0));
        assert_eq!(k.onset_mean_s, Some(24.0));
    }

    #[test]
    fn two_events_in_one_zone() {
        let t = with_events(vec![tev("dumping", "lot", 10.0, 30.0, 5.0), tev("dumping", "lot", 50.0, 80.0, 5.0)]);
        let a = vec![alert("dumping", "lot", "b", "new", 56.0, None), alert("dumping", "lot", "a", "new", 16.0, None)];
        let r = event_report(&t, &a, 5.0);
        let k = kind(&r, "dumping");
        assert_eq!((k.tp, k.fp, k.fn_), (2, 0, 0));
        assert_eq!(r.matches.iter().map(|m| m.event_id.as_str()).collect::<Vec<_>>(), vec!["a", "b"]);
        assert_eq!(r.matches[1].truth_start, 50.0);
        assert!((k.onset_mean_abs_s.unwrap() - 1.0).abs() < EPS);
        // one alert only, after the second event began: it belongs to the second event
        let a = vec![alert("dumping", "lot", "b", "new", 52.0, None)];
        let r = event_report(&t, &a, 5.0);
        assert_eq!(r.matches[0].truth_start, 50.0);
        assert_eq!(r.missed[0].start, 10.0);
        // two alerts for one event: the second is a false alarm
        let a = vec![alert("dumping", "lot", "a", "new", 16.0, None), alert("dumping", "lot", "a2", "new", 20.0, None)];
        let k = kind(&event_report(&t, &a, 5.0), "dumping").clone();
        assert_eq!((k.tp, k.fp, k.fn_), (1, 1, 1));
        // onset errors: early and late, mean signed / abs / max
        let a = vec![alert("dumping", "lot", "a", "new", 13.0, None), alert("dumping", "lot", "b", "new", 59.0, None)];
        let k = kind(&event_report(&t, &a, 5.0), "dumping").clone();
        assert_eq!((k.onset_mean_s, k.onset_mean_abs_s, k.onset_max_abs_s), (Some(1.0), Some(3.0), Some(4.0)));
    }

    #[test]
    fn flood_level_changes_are_one_event() {
        let t = with_events(vec![tev("flooding", "underpass", 10.0, 60.0, 3.0)]);
        let a = vec![
            alert("flooding", "underpass", "f1", "new", 14.0, Some("yellow")),
            alert("flooding", "underpass", "f1", "update", 30.0, Some("red")),
            alert("flooding", "underpass", "f1", "update", 45.0, Some("yellow")),
            alert("flooding", "underpass", "f1", "end", 62.0, Some("green")),
        ];
        let r = event_report(&t, &a, 5.0);
        let k = kind(&r, "flooding");
        assert_eq!((k.alerts, k.tp, k.fp, k.fn_), (1, 1, 0, 0));
        assert!((r.matches[0].onset_error_s - 1.0).abs() < EPS);
        let ev = alert_events(&a);
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0].end_t, Some(62.0));
        assert_eq!(ev[0].levels.iter().map(|(_, l)| l.as_str()).collect::<Vec<_>>(), vec!["yellow", "red", "yellow"]);
    }

    #[test]
    fn no_truth_and_no_alerts_is_perfect() {
        let r = event_report(&with_events(vec![]), &[], 5.0);
        assert!(r.kinds.iter().all(|k| k.precision == 1.0 && k.recall == 1.0 && k.tp + k.fp + k.fn_ == 0));
    }

    // --- flood agreement

    #[test]
    fn flood_agreement_against_a_hand_built_timeline() {
        let lv = |v: &[(f64, &str)]| v.iter().map(|(t, l)| (*t, l.to_string())).collect::<Vec<_>>();
        let t = Truth {
            name: "flood".into(),
            fps: 1.0,
            duration_s: 40.0,
            flood: vec![
                FloodTimeline { zone: "z".into(), levels: lv(&[(10.0, "yellow"), (20.0, "red"), (30.0, "green")]), latency_s: 0.0 },
                FloodTimeline { zone: "dry".into(), levels: vec![], latency_s: 0.0 },
            ],
            ..Default::default()
        };
        let a = vec![
            alert("flooding", "z", "f1", "new", 12.0, Some("yellow")),
            alert("flooding", "z", "f1", "update", 23.0, Some("red")),
            alert("flooding", "z", "f1", "end", 31.0, None),
            alert("flooding", "elsewhere", "f2", "new", 0.0, Some("red")),
        ];
        let times: Vec<f64> = (0..=40).map(f64::from).collect();
        let r = flood_agreement(&t, &a, &times);
        assert_eq!(r.len(), 2);
        let z = &r[0];
        // disagreements: 10, 11 (true yellow, alerted green); 20-22 (red vs yellow); 30 (green vs red)
        assert_eq!((z.frames, z.agree), (41, 35));
        assert!((z.agreement_pct.unwrap() - 100.0 * 35.0 / 41.0).abs() < EPS);
        let c = |tr: &str, pr: &str| z.confusion[tr].get(pr).copied().unwrap_or(0);
        assert_eq!((c("green", "green"), c("green", "red"), c("green", "yellow")), (20, 1, 0));
        assert_eq!((c("yellow", "green"), c("yellow", "yellow")), (2, 8));
        assert_eq!((c("red", "yellow"), c("red", "red")), (3, 7));
        assert_eq!((r[1].zone.as_str(), r[1].agree, r[1].frames), ("dry", 41, 41));
        assert_eq!(flood_agreement(&t, &a, &[])[0].agreement_pct, None);
        // with the rule's latency of 3 s, the alerted level may lag the truth by that much:
        // 10, 11, 20-22 and 30 all fall in the window
        let mut late = t.clone();
        late.flood[0].latency_s = 3.0;
        let z = &flood_agreement(&late, &a, &times)[0];
        assert_eq!((z.frames, z.agree), (41, 41));
        late.flood[0].latency_s = 1.0;
        let z = &flood_agreement(&late, &a, &times)[0];
        // with 1 s: 10, 20 and 30 are within the window, 11, 21 and 22 are not
        assert_eq!((z.frames, z.agree), (41, 38));
        // a level-less new means at least yellow; a level-less update keeps the level
        let a = vec![alert("flooding", "z", "f", "new", 1.0, None), alert("flooding", "z", "f", "update", 2.0, None)];
        let steps = predicted_flood_levels(&a, "z");
        assert_eq!(
            (level_at(&steps, 0.5), level_at(&steps, 1.0), level_at(&steps, 5.0)),
            ("green", "yellow", "yellow")
        );
    }

    // --- report

    #[test]
    fn report_table_and_merge() {
        let mut t = truth(vec![vec![("person", 1, A)], vec![("person", 1, A)]]);
        t.name = "street".into();
        t.events = vec![tev("occupancy", "racks", 0.0, 0.2, 0.1)];
        t.flood = vec![FloodTimeline { zone: "dip".into(), levels: vec![(0.1, "red".into())], latency_s: 0.0 }];
        let f = dframes(vec![vec![det("person", 0.9, A, Some(1))], vec![det("person", 0.9, A, Some(2))]]);
        let a = vec![
            alert("occupancy", "racks", "o", "new", 0.1, None),
            alert("flooding", "dip", "f", "new", 0.1, Some("red")),
        ];
        let r = Report::compute(&t, &f, &a, &EvalParams::default());
        assert_eq!(r.scenario, "street");
        assert_eq!(r.ids.switches, 1);
        assert_eq!(kind(&r.events, "occupancy").tp, 1);
        assert_eq!(kind(&r.events, "flooding").fp, 1, "flooding had no truth event");
        assert_eq!((r.flood[0].frames, r.flood[0].agree), (2, 2));
        let table = r.print_table();
        for needle in
            ["== street ==", "person", "mAP 1.000", "occupancy", "dip", "100.0%", "ID switches: 1", "person 1"]
        {
            assert!(table.contains(needle), "missing {needle:?} in\n{table}");
        }
        let m = Report::merge(&[r.clone(), r.clone()]);
        assert_eq!(m.scenario, "all (2 scenarios)");
        assert_eq!(m.ids.switches, 2);
        assert_eq!(kind(&m.events, "occupancy").tp, 2);
        assert_eq!(m.events.matches.len(), 2);
        assert_eq!((m.flood.len(), m.flood[0].zone.as_str(), m.flood[0].frames), (1, "all", 4));
        assert_eq!(class(&m.detection, "person").gt, 4);
        assert_eq!(m.detection.map, Some(1.0));
        assert!(m.print_table().contains("all (2 scenarios)"));
        assert_eq!(Report::merge(&[]), Report::default());
        // JSON round trip of everything but the pooling samples
        let back: Report = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
        assert_eq!(back.events, r.events);
        assert_eq!(back.detection.classes, r.detection.classes);
    }
}
