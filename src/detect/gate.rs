//! Motion gating: skip inference on frames where nothing has changed since the camera's last
//! inference, while a minimum detection rate keeps static objects (stalls, dumped bags, water)
//! seen.
//!
//! The measure is a tiny grey copy of the frame (block means, [`TINY_COLS`] columns) compared
//! with the tiny copy of the frame that was last *inferred*, not with the previous frame: the
//! detections handed on for a skipped frame are that inference's, so what matters is whether the
//! picture still matches the one they were computed on. A slow change (a person creeping, light
//! drifting) accumulates against that reference until it counts, which a frame-to-frame
//! difference would miss. Block means wash out sensor noise and compression flicker; a tiny
//! pixel counts as changed when it moved by more than `threshold` grey levels, and the frame as
//! moving when at least [`MIN_CHANGED`] tiny pixels changed (a far pedestrian covers 2–4 of
//! them).

use super::types::Detection;
use crate::frame::Frame;

/// Columns of the tiny grey copy (rows follow the frame's aspect ratio).
pub const TINY_COLS: u32 = 96;
/// Changed tiny pixels that make a frame count as moving.
pub const MIN_CHANGED: usize = 2;

/// Per-camera gate settings, compiled from the camera's config.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GateParams {
    /// Gating on (false: every frame is inferred).
    pub enabled: bool,
    /// Inference at least this often (per second of stream time), moving or not.
    pub min_fps: f64,
    /// Grey-level change (0–255) of a tiny pixel that counts as change.
    pub threshold: u8,
}

impl Default for GateParams {
    fn default() -> Self {
        GateParams { enabled: true, min_fps: 1.0, threshold: 10 }
    }
}

/// What the gate decided for one frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GateDecision {
    /// Run the detector: the picture changed, the minimum rate is due, or there is no
    /// reference yet.
    Infer,
    /// Reuse the last inference's detections.
    Skip,
}

/// One camera's gate state.
#[derive(Debug, Clone)]
pub struct MotionGate {
    params: GateParams,
    /// Tiny grey copy of the last inferred frame, its size and stream time.
    reference: Vec<u8>,
    ref_dims: (u32, u32),
    ref_ts: f64,
    /// Scratch for the current frame's tiny copy.
    scratch: Vec<u8>,
    inferred: u64,
    skipped: u64,
}

impl MotionGate {
    /// A gate with no reference (its first frame is inferred).
    pub fn new(params: GateParams) -> Self {
        MotionGate { params, reference: Vec::new(), ref_dims: (0, 0), ref_ts: f64::NEG_INFINITY, scratch: Vec::new(), inferred: 0, skipped: 0 }
    }

    /// The settings this gate runs with.
    pub fn params(&self) -> GateParams {
        self.params
    }

    /// Decides for `frame`; an `Infer` decision makes this frame the new reference, so call it
    /// once per frame and run the detector when it says so.
    pub fn decide(&mut self, frame: &Frame) -> GateDecision {
        self.decide_rgb(&frame.rgb, frame.width, frame.height, frame.ts)
    }

    /// [`MotionGate::decide`] on a packed RGB buffer at stream time `ts`.
    pub fn decide_rgb(&mut self, rgb: &[u8], width: u32, height: u32, ts: f64) -> GateDecision {
        if !self.params.enabled {
            self.inferred += 1;
            return GateDecision::Infer;
        }
        let dims = tiny_grey(rgb, width, height, &mut self.scratch);
        // a stream that went backwards (reconnect) or a new size is a new scene
        let stale = dims != self.ref_dims || ts < self.ref_ts;
        let due = self.params.min_fps > 0.0 && ts - self.ref_ts >= 1.0 / self.params.min_fps - 1e-6;
        let moving = stale || changed_pixels(&self.scratch, &self.reference, self.params.threshold) >= MIN_CHANGED;
        if moving || due {
            std::mem::swap(&mut self.reference, &mut self.scratch);
            self.ref_dims = dims;
            self.ref_ts = ts;
            self.inferred += 1;
            GateDecision::Infer
        } else {
            self.skipped += 1;
            GateDecision::Skip
        }
    }

    /// Frames inferred and skipped so far.
    pub fn counts(&self) -> (u64, u64) {
        (self.inferred, self.skipped)
    }
}

/// A camera's gate together with the detections of its last inference: what the daemon's
/// detector thread and `eval` both run, so the suites score exactly what the daemon does.
#[derive(Debug, Clone)]
pub struct GatedDetector {
    gate: MotionGate,
    last: Vec<Detection>,
}

impl GatedDetector {
    /// A gate with no reference and no detections yet.
    pub fn new(params: GateParams) -> Self {
        GatedDetector { gate: MotionGate::new(params), last: Vec::new() }
    }

    /// The frame's detections: `infer`'s when the gate says so (kept as the new last ones), else
    /// the last inference's. The flag is true when the frame was skipped. A failed inference
    /// keeps the previous detections for later skipped frames.
    pub fn detect<E>(&mut self, frame: &Frame, infer: impl FnOnce() -> Result<Vec<Detection>, E>) -> Result<(Vec<Detection>, bool), E> {
        match self.gate.decide(frame) {
            GateDecision::Skip => Ok((self.last.clone(), true)),
            GateDecision::Infer => {
                let d = infer()?;
                self.last.clone_from(&d);
                Ok((d, false))
            }
        }
    }

    /// The gate's settings.
    pub fn params(&self) -> GateParams {
        self.gate.params()
    }

    /// Frames inferred and skipped so far.
    pub fn counts(&self) -> (u64, u64) {
        self.gate.counts()
    }
}

/// Writes the tiny grey copy of a packed RGB frame into `out` (block means over every other
/// pixel of every other row: enough to average noise, a quarter of the reads); returns its
/// (columns, rows).
pub fn tiny_grey(rgb: &[u8], width: u32, height: u32, out: &mut Vec<u8>) -> (u32, u32) {
    let (w, h) = (width as usize, height as usize);
    if w == 0 || h == 0 || rgb.len() < w * h * 3 {
        out.clear();
        return (0, 0);
    }
    let cols = (TINY_COLS as usize).min(w);
    let rows = ((h * cols + w / 2) / w).clamp(1, h);
    let mut sums = vec![0u32; cols * rows];
    let mut counts = vec![0u32; cols * rows];
    // column of every sampled x, computed once
    // every other pixel and row when a block is at least 2 wide / tall
    let sx = if w >= 2 * cols { 2 } else { 1 };
    let sy = if h >= 2 * rows { 2 } else { 1 };
    let col_of: Vec<usize> = (0..w).step_by(sx).map(|x| x * cols / w).collect();
    for y in (0..h).step_by(sy) {
        let r = y * rows / h;
        let row = &rgb[y * w * 3..(y + 1) * w * 3];
        let base = r * cols;
        for (i, c) in col_of.iter().enumerate() {
            let p = &row[i * sx * 3..i * sx * 3 + 3];
            // integer luma (BT.601 weights ×256)
            sums[base + c] += (77 * p[0] as u32 + 150 * p[1] as u32 + 29 * p[2] as u32) >> 8;
            counts[base + c] += 1;
        }
    }
    out.clear();
    out.extend(sums.iter().zip(&counts).map(|(s, n)| if *n == 0 { 0 } else { (s / n) as u8 }));
    (cols as u32, rows as u32)
}

/// Tiny pixels that differ by more than `threshold` between two copies of the same size.
pub fn changed_pixels(a: &[u8], b: &[u8], threshold: u8) -> usize {
    if a.len() != b.len() {
        return usize::MAX;
    }
    a.iter().zip(b).filter(|(x, y)| x.abs_diff(**y) > threshold).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(w: u32, h: u32, fill: u8) -> Vec<u8> {
        vec![fill; (w * h * 3) as usize]
    }

    fn paint(rgb: &mut [u8], w: u32, x0: u32, y0: u32, x1: u32, y1: u32, v: u8) {
        for y in y0..y1 {
            for x in x0..x1 {
                let i = ((y * w + x) * 3) as usize;
                rgb[i..i + 3].fill(v);
            }
        }
    }

    #[test]
    fn still_frames_are_skipped_until_the_minimum_rate_is_due() {
        let mut g = MotionGate::new(GateParams { enabled: true, min_fps: 1.0, threshold: 10 });
        let f = frame(640, 360, 90);
        let decisions: Vec<_> = (0..11).map(|i| g.decide_rgb(&f, 640, 360, i as f64 * 0.2)).collect();
        use GateDecision::*;
        // t = 0 (no reference), 1.0 and 2.0 (minimum rate) are inferred
        assert_eq!(decisions, vec![Infer, Skip, Skip, Skip, Skip, Infer, Skip, Skip, Skip, Skip, Infer]);
        assert_eq!(g.counts(), (3, 8));
    }

    #[test]
    fn a_small_moving_object_is_inferred_and_noise_is_not() {
        let (w, h) = (640, 360);
        let mut g = MotionGate::new(GateParams { enabled: true, min_fps: 0.0, threshold: 10 });
        let base = frame(w, h, 100);
        assert_eq!(g.decide_rgb(&base, w, h, 0.0), GateDecision::Infer);
        // ±6 grey-level noise on every pixel: averaged away
        let mut noisy = base.clone();
        for (i, v) in noisy.iter_mut().enumerate() {
            *v = (*v as i32 + ((i * 7919) % 13) as i32 - 6) as u8;
        }
        assert_eq!(g.decide_rgb(&noisy, w, h, 0.2), GateDecision::Skip);
        // a far pedestrian, 12×30 px, dark on the grey street
        let mut walker = base.clone();
        paint(&mut walker, w, 300, 200, 312, 230, 20);
        assert_eq!(g.decide_rgb(&walker, w, h, 0.4), GateDecision::Infer);
        // it stays: the reference now holds it, so the next identical frame is skipped
        assert_eq!(g.decide_rgb(&walker, w, h, 0.6), GateDecision::Skip);
    }

    #[test]
    fn slow_change_accumulates_against_the_inferred_reference() {
        let (w, h) = (320, 180);
        let mut g = MotionGate::new(GateParams { enabled: true, min_fps: 0.0, threshold: 10 });
        let mut decisions = Vec::new();
        // a block brightening by 3 levels a frame: never 10 between neighbours
        for i in 0..8u32 {
            let mut f = frame(w, h, 100);
            paint(&mut f, w, 100, 60, 140, 100, 100 + 3 * i as u8);
            decisions.push(g.decide_rgb(&f, w, h, i as f64));
        }
        use GateDecision::*;
        assert_eq!(decisions, vec![Infer, Skip, Skip, Skip, Infer, Skip, Skip, Skip]);
    }

    #[test]
    fn disabled_or_new_size_or_time_going_back_infers() {
        let mut off = MotionGate::new(GateParams { enabled: false, ..GateParams::default() });
        let f = frame(64, 48, 10);
        assert!((0..5).all(|i| off.decide_rgb(&f, 64, 48, i as f64) == GateDecision::Infer));
        let mut g = MotionGate::new(GateParams::default());
        assert_eq!(g.decide_rgb(&f, 64, 48, 5.0), GateDecision::Infer);
        assert_eq!(g.decide_rgb(&f, 64, 48, 5.1), GateDecision::Skip);
        assert_eq!(g.decide_rgb(&f, 64, 48, 1.0), GateDecision::Infer, "stream restarted");
        let g2 = frame(32, 24, 10);
        assert_eq!(g.decide_rgb(&g2, 32, 24, 1.1), GateDecision::Infer, "new size");
    }

    #[test]
    fn tiny_copy_keeps_the_aspect_ratio_and_the_mean() {
        let mut out = Vec::new();
        assert_eq!(tiny_grey(&frame(640, 360, 200), 640, 360, &mut out), (96, 54));
        assert!(out.iter().all(|v| *v == 199 || *v == 200), "luma of grey 200");
        assert_eq!(tiny_grey(&frame(40, 30, 7), 40, 30, &mut out), (40, 30));
        assert!(out.iter().all(|v| *v == 6 || *v == 7), "every block sampled");
        assert_eq!(tiny_grey(&[], 0, 0, &mut out), (0, 0));
    }
}
