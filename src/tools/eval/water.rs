//! Water in `hawkeye eval`: the water model runs on the pipeline's frames as the daemon runs
//! it (at the `[water]` rate, only where flooding zones take their coverage from masks; those
//! masks reach the zone rules), and additionally on every frame that has a true water mask
//! (`Truth.water_masks`), where its mask is scored: IoU at probability 0.5, pooled over the
//! frames of a scenario (water pixels in both / in either) and over the whole run, plus the mean
//! of the per-frame IoUs of the frames that show water in the truth or the prediction.

use std::fmt::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::detect::{Segmenter, WaterMask, WaterSchedule};
use crate::frame::Frame;
use crate::tools::synth::truth::Truth;

/// A truth frame and a decoded frame are the same picture when their times are this close.
const SAME_FRAME_S: f64 = 0.01;

/// The water model's part of one pipeline run.
pub struct WaterRun<'a> {
    seg: &'a mut Segmenter,
    /// When the rules get their next mask (never, when no zone is mask-driven).
    schedule: WaterSchedule,
    /// True masks not yet reached: stream time and file, in time order.
    truth: Vec<(f64, PathBuf)>,
    next_truth: usize,
    /// The scores so far.
    pub score: WaterScore,
}

impl<'a> WaterRun<'a> {
    /// `rules_fps`: masks per second for the zone rules (0: the rules take none); `truth`:
    /// the scenario's truth (its masks' files relative to `truth_dir`), if any.
    pub fn new(seg: &'a mut Segmenter, rules_fps: f64, truth: Option<(&Truth, &Path)>) -> WaterRun<'a> {
        let mut masks: Vec<(f64, PathBuf)> = truth.map(|(t, dir)| t.water_masks.iter().map(|m| (m.t, dir.join(&m.file))).collect()).unwrap_or_default();
        masks.sort_by(|a, b| a.0.total_cmp(&b.0));
        let score = WaterScore { truth_masks: masks.len() as u64, ..WaterScore::default() };
        WaterRun { seg, schedule: WaterSchedule::new(rules_fps), truth: masks, next_truth: 0, score }
    }

    /// Runs the model on `f` when the rules are due a mask or a true mask exists for it;
    /// scores it against the truth; returns the mask when it is the rules'.
    pub fn on_frame(&mut self, f: &Frame) -> anyhow::Result<Option<WaterMask>> {
        // true masks of frames the source skipped are left unscored
        while self.truth.get(self.next_truth).is_some_and(|(t, _)| *t < f.ts - SAME_FRAME_S) {
            self.next_truth += 1;
        }
        let truth = self.truth.get(self.next_truth).filter(|(t, _)| (t - f.ts).abs() <= SAME_FRAME_S).map(|(_, p)| p.clone());
        let for_rules = self.schedule.due(f.ts);
        if !for_rules && truth.is_none() {
            return Ok(None);
        }
        let mask = self.seg.segment(&f.rgb, f.width, f.height)?;
        self.score.masks_run += 1;
        if let Some(p) = truth {
            self.next_truth += 1;
            let want = WaterMask::read_png(&p)?;
            let (both, either) = mask.overlap(&want).ok_or_else(|| anyhow::anyhow!("{}: {}x{} but the video is {}x{}", p.display(), want.width, want.height, mask.width, mask.height))?;
            self.score.add(both, either);
        }
        Ok(for_rules.then_some(mask))
    }
}

/// Mask IoU of the water model against the true masks.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct WaterScore {
    pub scenario: String,
    /// True masks in the truth, and how many of them were scored (decoded frames at their time).
    pub truth_masks: u64,
    pub scored: u64,
    /// Times the model ran (for the rules and for scoring).
    pub masks_run: u64,
    /// Water pixels in both masks, and in either, summed over the scored frames.
    pub intersection: u64,
    pub union: u64,
    /// `intersection / union` (None when neither mask ever showed water).
    pub iou: Option<f64>,
    /// Mean IoU of the scored frames that show water in either mask.
    pub mean_frame_iou: Option<f64>,
    /// Scored frames that show water in either mask.
    pub frames_with_water: u64,
    /// Sum of their IoUs (behind `mean_frame_iou`).
    #[serde(skip)]
    frame_iou_sum: f64,
}

impl WaterScore {
    fn add(&mut self, both: u64, either: u64) {
        self.scored += 1;
        self.intersection += both;
        self.union += either;
        if either > 0 {
            self.frame_iou_sum += both as f64 / either as f64;
            self.frames_with_water += 1;
        }
        self.finish();
    }

    fn finish(&mut self) {
        self.iou = (self.union > 0).then(|| self.intersection as f64 / self.union as f64);
        self.mean_frame_iou = (self.frames_with_water > 0).then(|| self.frame_iou_sum / self.frames_with_water as f64);
    }

    /// The scores of several scenarios pooled (pixels summed, frames together).
    pub fn merge(all: &[WaterScore]) -> WaterScore {
        let mut m = WaterScore { scenario: "total".into(), ..WaterScore::default() };
        for s in all {
            m.truth_masks += s.truth_masks;
            m.scored += s.scored;
            m.masks_run += s.masks_run;
            m.intersection += s.intersection;
            m.union += s.union;
            m.frame_iou_sum += s.frame_iou_sum;
            m.frames_with_water += s.frames_with_water;
        }
        m.finish();
        m
    }

    /// One line for the printed report.
    pub fn print_line(&self) -> String {
        let mut s = String::new();
        let f = |v: Option<f64>| v.map_or("n/a".to_string(), |v| format!("{v:.3}"));
        let _ = writeln!(
            s,
            "water mask ({}): IoU@0.5 {} pooled, {} mean over {} frames with water; {}/{} true masks scored, {} masks run",
            self.scenario,
            f(self.iou),
            f(self.mean_frame_iou),
            self.frames_with_water,
            self.scored,
            self.truth_masks,
            self.masks_run
        );
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_pool_pixels_and_average_frames() {
        let mut a = WaterScore { scenario: "a".into(), truth_masks: 3, ..Default::default() };
        a.add(50, 100); // IoU 0.5
        a.add(0, 0); // dry in both: scored, not in the mean
        a.add(30, 40); // IoU 0.75
        assert_eq!(a.scored, 3);
        assert!((a.iou.unwrap() - 80.0 / 140.0).abs() < 1e-12);
        assert!((a.mean_frame_iou.unwrap() - 0.625).abs() < 1e-12);
        let mut b = WaterScore { scenario: "b".into(), truth_masks: 1, ..Default::default() };
        b.add(0, 60); // water missed entirely
        let t = WaterScore::merge(&[a, b]);
        assert_eq!((t.scored, t.truth_masks, t.intersection, t.union), (4, 4, 80, 200));
        assert!((t.iou.unwrap() - 0.4).abs() < 1e-12);
        assert!((t.mean_frame_iou.unwrap() - 1.25 / 3.0).abs() < 1e-12);
        assert!(t.print_line().contains("IoU@0.5 0.400"), "{}", t.print_line());
        assert_eq!(WaterScore::default().iou, None);
    }
}
