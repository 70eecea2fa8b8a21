//! Ground truth written next to a rendered scenario (`truth.json`) and read back by
//! `hawkeye eval`: per-frame object boxes with stable object ids, event intervals, and the flood
//! level timeline of every flooding zone.

use serde::{Deserialize, Serialize};

/// The detector classes of hawkeye's own urban model, in model output order.
pub const CLASSES: [&str; 6] = ["person", "goods", "garbage", "water", "bicycle", "vehicle"];

/// Everything known about one rendered scenario.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Truth {
    /// Scenario name (file stem of the scenario file).
    pub name: String,
    pub width: u32,
    pub height: u32,
    pub fps: f64,
    /// Length of the video in seconds.
    pub duration_s: f64,
    /// One entry per video frame, in order; `t` is the frame's stream time in seconds.
    pub frames: Vec<FrameTruth>,
    /// Violations a correct system alerts on, per zone.
    pub events: Vec<TruthEvent>,
    /// Flooding zones: the true level over time (a step function; each point holds until the next).
    pub flood: Vec<FloodTimeline>,
    /// True water masks, one per second of video: what a water segmentation model is scored on.
    #[serde(default)]
    pub water_masks: Vec<WaterMaskTruth>,
    /// The classes the frame boxes label, when not all: on a real background the video's own
    /// people and traffic have no boxes, so detections of them are not scored. `None`: all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labelled: Option<Vec<String>>,
    /// Labelled classes whose boxes cover only some of the objects seen: on a real background
    /// the composited persons have boxes, the video's own do not. Detections of them are scored
    /// for recall only (one that matches no box is not a false positive).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub partial: Vec<String>,
}

/// One true water mask: an 8-bit grey PNG at the video's size, 255 where standing water is
/// visible and 0 elsewhere, for the video frame with index `frame` (stream time `t`). `file` is
/// relative to the folder that holds `truth.json` (e.g. `water/000120.png`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct WaterMaskTruth {
    pub frame: u64,
    pub t: f64,
    pub file: String,
}

/// Objects visible in one frame.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct FrameTruth {
    pub t: f64,
    pub boxes: Vec<TruthBox>,
}

/// One visible object: class name, a per-scenario object id (stable across frames) and its box
/// in frame pixels `[x1, y1, x2, y2]`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct TruthBox {
    pub class: String,
    pub id: u32,
    pub bbox: [f32; 4],
}

/// One violation interval in one zone. `start` is when the violation began (goods set out,
/// bag left, bikes over the limit, water over the yellow threshold); a correct alert comes
/// `dwell_s` later. `end` is when it was cleared.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct TruthEvent {
    /// `out_of_store`, `dumping`, `flooding` or `occupancy`.
    pub kind: String,
    pub zone: String,
    pub start: f64,
    pub end: f64,
    /// The zone's dwell in seconds: the alert is due at `start + dwell_s`.
    pub dwell_s: f64,
}

/// The true flood level of one zone over time.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct FloodTimeline {
    pub zone: String,
    /// `(t, level)` steps, level `green`, `yellow` or `red`, sorted by `t`: the zone's grading
    /// (thresholds and hysteresis) applied to the share of the segment that shows water in the
    /// true water mask (the painted water's pixels, sampled as the rule samples a mask).
    pub levels: Vec<(f64, String)>,
    /// How long the rule is configured to wait before it reports a level (minimum duration
    /// plus smoothing): an alerted level that matches the truth of up to this long ago agrees.
    #[serde(default)]
    pub latency_s: f64,
}

impl FloodTimeline {
    /// The true level at time `t` (`green` before the first step).
    pub fn level_at(&self, t: f64) -> &str {
        self.levels.iter().take_while(|(s, _)| *s <= t).last().map_or("green", |(_, l)| l.as_str())
    }

    /// True levels within `[t - latency_s, t]`.
    pub fn levels_within_latency(&self, t: f64) -> Vec<&str> {
        let mut out = vec![self.level_at(t - self.latency_s.max(0.0))];
        for (s, l) in &self.levels {
            if *s > t - self.latency_s && *s <= t && !out.contains(&l.as_str()) {
                out.push(l.as_str());
            }
        }
        out
    }
}

impl Truth {
    /// Reads a `truth.json` file.
    pub fn load(path: &std::path::Path) -> anyhow::Result<Truth> {
        let text = std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
    }
}
