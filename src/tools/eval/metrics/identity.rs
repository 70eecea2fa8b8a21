//! Tracker identity: ID switches per truth object and class.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::tools::synth::truth::{Truth, CLASSES};

use super::*;

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
            if d.track_id.is_some() && truth_class(&d.class) == Some(b.class.as_str()) {
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

pub(super) fn ids_from_classes(iou: f32, classes: Vec<ClassIds>) -> IdReport {
    IdReport {
        iou,
        switches: classes.iter().map(|c| c.switches).sum(),
        objects: classes.iter().map(|c| c.objects).sum(),
        matched_objects: classes.iter().map(|c| c.matched_objects).sum(),
        classes,
    }
}
