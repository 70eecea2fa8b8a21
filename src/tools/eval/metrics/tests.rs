//! Unit tests of the eval metrics on hand-made truths and outputs.

use super::*;
use crate::tools::synth::truth::{FloodTimeline, FrameTruth, TruthBox, TruthEvent, CLASSES};

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
fn a_partly_labelled_class_is_scored_for_recall_only() {
    // two detected persons, one of them composited (boxed), one the video's own (no box)
    let mut t = truth(vec![vec![("person", 1, [0.0, 0.0, 10.0, 30.0])], vec![("person", 1, [0.0, 0.0, 10.0, 30.0])]]);
    t.labelled = Some(vec!["person".into()]);
    let d = dframes(vec![vec![det("person", 0.9, [0.0, 0.0, 10.0, 30.0], None), det("person", 0.8, [50.0, 0.0, 60.0, 30.0], None)], vec![]]);
    let full = detection_report(&t, &d, 0.5, 0.3);
    assert_eq!((class(&full, "person").tp, class(&full, "person").fp, class(&full, "person").fn_), (1, 1, 1));
    t.partial = vec!["person".into()];
    let partial = detection_report(&t, &d, 0.5, 0.3);
    let p = class(&partial, "person");
    assert_eq!((p.tp, p.fp, p.fn_, p.recall), (1, 0, 1, 0.5));
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
    let f = dframes(vec![vec![det("vehicle", 0.9, A, None), det("car", 0.6, B, None), det("chair", 0.7, A, None)]]);
    let r = detection_report(&t, &f, 0.5, 0.3);
    let p = class(&r, "person");
    assert_eq!((p.gt, p.tp, p.fn_, p.ap), (1, 0, 1, Some(0.0)));
    // COCO's car is scored as hawkeye's vehicle
    let v = class(&r, "vehicle");
    assert_eq!((v.gt, v.dets, v.fp, v.ap), (0, 2, 2, None));
    assert_eq!(v.precision, 0.0);
    // a class no truth class maps to is not scored, only counted
    assert!(r.classes.iter().all(|c| c.class != "car" && c.class != "chair"));
    assert_eq!(r.unscored_dets, 1);
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
