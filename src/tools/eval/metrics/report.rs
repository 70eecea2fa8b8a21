//! The evaluation report of one or more scenarios, and its text rendering.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::tools::synth::truth::{Truth, CLASSES};

use super::*;

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
        let (mut fm, mut fs, mut un) = (0, 0, 0);
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
            un += r.detection.unscored_dets;
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
            detection: build_detection(samples, first.detection.iou, first.detection.score_thr, fm, fs, un),
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
            "detection: IoU >= {:.2}, P/R at score >= {:.2}; {} frames evaluated, {} skipped; rows are truth classes (vehicle = car, bus, truck), {} detections of other classes not scored",
            d.iou, d.score_thr, d.frames_matched, d.frames_skipped, d.unscored_dets
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
