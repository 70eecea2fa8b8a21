//! Recent frames of a camera with dumping zones, kept as JPEG: dumping evidence shows the place
//! just before the object appeared and the person who brought it, both seconds to minutes
//! before the event is confirmed.
//!
//! Memory: one frame every [`HISTORY_EVERY_S`] for the longest dumping dwell plus
//! [`HISTORY_MARGIN_S`], as JPEG (a 768×576 street frame is 60–120 kB, against 1.3 MB raw), and
//! never more than [`HISTORY_BUDGET_BYTES`]: past the budget the oldest frames go first. The
//! history holds its own bytes, never a decoder's buffer, so the appsink's pool is not pinned.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::config::{Camera, ZoneKind};

/// Spacing of the frames a history keeps.
pub const HISTORY_EVERY_S: f64 = 1.0;
/// Kept beyond the longest dwell: the dumper's contact is looked for up to 15 s before the
/// object came to rest.
pub const HISTORY_MARGIN_S: f64 = 20.0;
/// Most bytes of JPEG one camera's history holds.
pub const HISTORY_BUDGET_BYTES: usize = 24 << 20;

/// One kept frame.
#[derive(Clone, Debug)]
pub struct HistoryFrame {
    pub ts: f64,
    pub width: u32,
    pub height: u32,
    pub jpeg: Arc<Vec<u8>>,
}

/// The kept frames, oldest first.
#[derive(Debug)]
pub struct FrameHistory {
    keep_s: f64,
    budget: usize,
    bytes: usize,
    frames: VecDeque<HistoryFrame>,
}

impl FrameHistory {
    /// A history long enough for the camera's dumping zones (None without such zones).
    pub fn for_camera(cam: &Camera) -> Option<Self> {
        let dwell = cam.zones.iter().filter(|z| z.kind == ZoneKind::Dumping).map(|z| z.dwell_s).reduce(f64::max)?;
        Some(FrameHistory::new(dwell + HISTORY_MARGIN_S, HISTORY_BUDGET_BYTES))
    }

    pub fn new(keep_s: f64, budget: usize) -> Self {
        FrameHistory { keep_s, budget, bytes: 0, frames: VecDeque::new() }
    }

    /// True when a frame at `ts` would be kept (encode only then).
    pub fn wants(&self, ts: f64) -> bool {
        self.frames.back().is_none_or(|b| ts >= b.ts + HISTORY_EVERY_S)
    }

    /// Keeps an encoded frame (call when [`FrameHistory::wants`] said so) and drops what is
    /// too old or over the budget.
    pub fn push(&mut self, f: HistoryFrame) {
        self.bytes += f.jpeg.len();
        let now = f.ts;
        self.frames.push_back(f);
        while self.frames.front().is_some_and(|a| a.ts < now - self.keep_s) || (self.bytes > self.budget && self.frames.len() > 1) {
            if let Some(a) = self.frames.pop_front() {
                self.bytes -= a.jpeg.len();
            }
        }
    }

    /// The latest kept frame from before `ts`.
    pub fn before(&self, ts: f64) -> Option<&HistoryFrame> {
        self.frames.iter().rev().find(|f| f.ts < ts - 0.2)
    }

    /// The kept frame nearest to `ts`.
    pub fn nearest(&self, ts: f64) -> Option<&HistoryFrame> {
        self.frames.iter().min_by(|a, b| (a.ts - ts).abs().total_cmp(&(b.ts - ts).abs()))
    }

    /// JPEG bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn len(&self) -> usize {
        self.frames.len()
    }

    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(ts: f64, bytes: usize) -> HistoryFrame {
        HistoryFrame { ts, width: 8, height: 8, jpeg: Arc::new(vec![0; bytes]) }
    }

    fn fill(h: &mut FrameHistory, until: f64, bytes: usize) {
        let mut ts = 0.0;
        while ts <= until {
            if h.wants(ts) {
                h.push(frame(ts, bytes));
            }
            ts += 0.2;
        }
    }

    #[test]
    fn keeps_one_frame_a_second_for_the_window() {
        let mut h = FrameHistory::new(30.0, usize::MAX);
        fill(&mut h, 100.0, 10);
        assert!((30..=32).contains(&h.len()), "{}", h.len());
        assert!(h.before(100.0).unwrap().ts < 99.9);
        assert!((h.nearest(85.3).unwrap().ts - 85.3).abs() <= 0.5);
    }

    #[test]
    fn the_byte_budget_bounds_memory_whatever_the_window() {
        // a 10-minute dwell of 100 kB frames would be 60 MB; the budget keeps 2 MB
        let mut h = FrameHistory::new(620.0, 2 << 20);
        fill(&mut h, 700.0, 100_000);
        assert!(h.bytes() <= 2 << 20, "{}", h.bytes());
        assert_eq!(h.len(), (2 << 20) / 100_000);
        // the newest are the ones kept
        assert!(h.nearest(700.0).unwrap().ts > 699.0);
    }
}
