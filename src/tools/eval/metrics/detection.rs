//! Detection scores: VOC AP, precision and recall per class at an IoU threshold, pooled over
//! scenarios.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::tools::synth::truth::{Truth, CLASSES};

use super::*;

/// What AP needs of one class, kept so that reports of several scenarios can be pooled: the
/// number of truth boxes and every detection's score with whether it matched.
#[derive(Clone, Debug, Default, PartialEq)]
pub(super) struct ClassSamples {
    pub(super) n_gt: usize,
    pub(super) scored: Vec<(f32, bool)>,
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
    /// Detections (in paired frames, any score) whose model class maps to no truth class
    /// ([`truth_class`]): not scored.
    #[serde(default)]
    pub unscored_dets: usize,
    #[serde(skip)]
    pub(super) samples: BTreeMap<String, ClassSamples>,
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
/// matches a truth box of the class its model class maps to ([`truth_class`]) with IoU ≥ `iou`
/// (greedy, see `greedy_match`); rows are truth classes. Detections of a class the truth does
/// not label (`Truth::labelled`) are not scored either, and those of a partly labelled class
/// (`Truth::partial`) only when they match a box (recall only).
/// Precision / recall are those of the detections scoring at least `score_thr`.
pub fn detection_report_multi(runs: &[(&Truth, &[DetFrame])], iou: f32, score_thr: f32) -> DetectionReport {
    let mut samples: BTreeMap<String, ClassSamples> = BTreeMap::new();
    let (mut matched, mut skipped, mut unscored) = (0, 0, 0);
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
            let labelled = |c: &str| truth.labelled.as_ref().is_none_or(|l| l.iter().any(|x| x == c));
            let scored: Vec<(&str, f32, [f32; 4])> =
                df.dets.iter().filter_map(|d| truth_class(&d.class).filter(|c| labelled(c)).map(|c| (c, d.score, d.bbox))).collect();
            unscored += df.dets.len() - scored.len();
            let classes: BTreeSet<&str> = ft.boxes.iter().map(|b| b.class.as_str()).chain(scored.iter().map(|d| d.0)).collect();
            for c in classes {
                let gts: Vec<[f32; 4]> = ft.boxes.iter().filter(|b| b.class == c).map(|b| b.bbox).collect();
                let dets: Vec<(f32, [f32; 4])> = scored.iter().filter(|d| d.0 == c).map(|d| (d.1, d.2)).collect();
                let m = greedy_match(&gts, &dets, iou);
                let s = samples.entry(c.to_string()).or_default();
                s.n_gt += gts.len();
                // a partly labelled class: a detection of an unlabelled object is no mistake
                let partial = truth.partial.iter().any(|p| p == c);
                s.scored.extend(dets.iter().zip(&m).filter(|(_, g)| !partial || g.is_some()).map(|(d, g)| (d.0, g.is_some())));
            }
        }
    }
    build_detection(samples, iou, score_thr, matched, skipped, unscored)
}

pub(super) fn build_detection(
    samples: BTreeMap<String, ClassSamples>,
    iou: f32,
    score_thr: f32,
    frames_matched: usize,
    frames_skipped: usize,
    unscored_dets: usize,
) -> DetectionReport {
    let names = ordered_names(&CLASSES, samples.keys().map(String::as_str));
    let empty = ClassSamples::default();
    let classes: Vec<ClassDetection> =
        names.iter().map(|c| class_detection(c, samples.get(c).unwrap_or(&empty), score_thr)).collect();
    let aps: Vec<f64> = classes.iter().filter_map(|c| c.ap).collect();
    let map = (!aps.is_empty()).then(|| aps.iter().sum::<f64>() / aps.len() as f64);
    DetectionReport { iou, score_thr, frames_matched, frames_skipped, classes, map, unscored_dets, samples }
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
