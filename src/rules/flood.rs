//! Road flooding: the share of a road segment covered by water (the water model's mask, or
//! without one the water-class boxes), smoothed over time, graded green / yellow / red with
//! hysteresis and a minimum duration before a level changes. Pure logic.

use serde::Serialize;

use super::polygon::Polygon;
use crate::detect::BBox;

/// Flood level of a road segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FloodLevel {
    Green,
    Yellow,
    Red,
}

impl FloodLevel {
    pub fn as_str(&self) -> &'static str {
        match self {
            FloodLevel::Green => "green",
            FloodLevel::Yellow => "yellow",
            FloodLevel::Red => "red",
        }
    }
}

/// Grading settings of one segment.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FloodParams {
    /// Smoothed coverage at which the level rises to yellow / red.
    pub yellow_at: f64,
    pub red_at: f64,
    /// The level falls only when coverage is this much below the threshold it rose at.
    pub hysteresis: f64,
    /// A new level must hold this long before it is reported.
    pub min_duration_s: f64,
    /// Time constant of the exponential smoothing of coverage.
    pub smooth_s: f64,
    /// Coverage comes from the water segmentation model's mask (a `[water]` model is
    /// configured) instead of water-class boxes.
    pub from_mask: bool,
}

/// Samples per side of the grid that measures coverage.
const GRID: usize = 48;

/// Fraction of `polygon` (normalised) covered by the union of `boxes` (pixels of a `w`×`h`
/// frame), measured on a grid of sample points inside the polygon.
pub fn coverage(polygon: &Polygon, boxes: &[BBox], w: u32, h: u32) -> f64 {
    coverage_where(polygon, |x, y| {
        let (px, py) = ((x * w as f64) as f32, (y * h as f64) as f32);
        boxes.iter().any(|b| px >= b.x1 && px <= b.x2 && py >= b.y1 && py <= b.y2)
    })
}

/// Share of the sample points inside `polygon` where `is_wet(x, y)` (normalised coordinates)
/// holds: a `GRID`×`GRID` grid over the polygon's bounding box, points outside the polygon
/// left out. Boxes and water masks are measured on the same points, so their coverages agree
/// where they cover the same ground.
pub fn coverage_where(polygon: &Polygon, is_wet: impl Fn(f64, f64) -> bool) -> f64 {
    let pts = polygon.points();
    let (mut x0, mut y0, mut x1, mut y1) = (f64::MAX, f64::MAX, f64::MIN, f64::MIN);
    for &(x, y) in pts {
        (x0, y0, x1, y1) = (x0.min(x), y0.min(y), x1.max(x), y1.max(y));
    }
    let (mut inside, mut wet) = (0usize, 0usize);
    for j in 0..GRID {
        for i in 0..GRID {
            let x = x0 + (x1 - x0) * (i as f64 + 0.5) / GRID as f64;
            let y = y0 + (y1 - y0) * (j as f64 + 0.5) / GRID as f64;
            if !polygon.contains(x, y) {
                continue;
            }
            inside += 1;
            if is_wet(x, y) {
                wet += 1;
            }
        }
    }
    if inside == 0 {
        0.0
    } else {
        wet as f64 / inside as f64
    }
}

/// The grading state of one segment.
#[derive(Clone, Debug)]
pub struct Flood {
    p: FloodParams,
    smoothed: Option<f64>,
    last_ts: f64,
    level: FloodLevel,
    /// A different level the smoothed coverage points to, and since when.
    candidate: Option<(FloodLevel, f64)>,
}

impl Flood {
    pub fn new(p: FloodParams) -> Self {
        Flood { p, smoothed: None, last_ts: 0.0, level: FloodLevel::Green, candidate: None }
    }

    pub fn level(&self) -> FloodLevel {
        self.level
    }

    /// Smoothed coverage so far (0 before the first observation).
    pub fn coverage(&self) -> f64 {
        self.smoothed.unwrap_or(0.0)
    }

    /// The level the smoothed coverage points to, given the current level (hysteresis).
    fn target(&self, c: f64) -> FloodLevel {
        let p = &self.p;
        let up = if c >= p.red_at {
            FloodLevel::Red
        } else if c >= p.yellow_at {
            FloodLevel::Yellow
        } else {
            FloodLevel::Green
        };
        if up >= self.level {
            return up;
        }
        // falling: each threshold must be undercut by the hysteresis margin
        if self.level == FloodLevel::Red && c >= p.red_at - p.hysteresis {
            FloodLevel::Red
        } else if self.level >= FloodLevel::Yellow && c >= p.yellow_at - p.hysteresis {
            FloodLevel::Yellow
        } else {
            FloodLevel::Green
        }
    }

    /// Feeds the coverage measured at stream time `ts`; returns `(from, to)` when the level
    /// changes.
    pub fn observe(&mut self, c: f64, ts: f64) -> Option<(FloodLevel, FloodLevel)> {
        let s = match self.smoothed {
            None => c,
            Some(prev) => {
                let dt = (ts - self.last_ts).max(0.0);
                let a = if self.p.smooth_s > 0.0 { 1.0 - (-dt / self.p.smooth_s).exp() } else { 1.0 };
                prev + a * (c - prev)
            }
        };
        self.smoothed = Some(s);
        self.last_ts = ts;
        let target = self.target(s);
        if target == self.level {
            self.candidate = None;
            return None;
        }
        let since = match self.candidate {
            Some((lvl, since)) if lvl == target => since,
            _ => {
                self.candidate = Some((target, ts));
                ts
            }
        };
        if ts - since >= self.p.min_duration_s {
            let from = self.level;
            self.level = target;
            self.candidate = None;
            return Some((from, target));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: FloodParams = FloodParams { yellow_at: 0.2, red_at: 0.5, hysteresis: 0.05, min_duration_s: 3.0, smooth_s: 0.0, from_mask: false };

    #[test]
    fn coverage_of_a_segment() {
        let road = Polygon::new(&[[0.0, 0.5], [1.0, 0.5], [1.0, 1.0], [0.0, 1.0]]);
        // a box over the left half of the road (frame 100×100 px)
        let c = coverage(&road, &[BBox::new(0.0, 50.0, 50.0, 100.0)], 100, 100);
        assert!((c - 0.5).abs() < 0.03, "{c}");
        // water outside the segment does not count; overlapping boxes count once
        assert_eq!(coverage(&road, &[BBox::new(0.0, 0.0, 100.0, 40.0)], 100, 100), 0.0);
        let c2 = coverage(&road, &[BBox::new(0.0, 50.0, 50.0, 100.0), BBox::new(25.0, 50.0, 50.0, 100.0)], 100, 100);
        assert!((c2 - c).abs() < 1e-9);
    }

    /// Feeds `cov(t)` at 1 Hz and returns the level changes with their times.
    fn run(f: &mut Flood, until: usize, cov: impl Fn(f64) -> f64) -> Vec<(f64, FloodLevel, FloodLevel)> {
        (0..until).filter_map(|i| f.observe(cov(i as f64), i as f64).map(|(a, b)| (i as f64, a, b))).collect()
    }

    #[test]
    fn levels_rise_after_min_duration_and_fall_with_hysteresis() {
        let mut f = Flood::new(P);
        let cov = |t: f64| match t as u32 {
            0..=9 => 0.0,
            10..=29 => 0.3,  // yellow
            30..=49 => 0.7,  // red
            50..=69 => 0.47, // within the hysteresis band of red: stays red
            70..=89 => 0.1,  // below yellow - hysteresis: green
            _ => 0.0,
        };
        let changes = run(&mut f, 100, cov);
        let levels: Vec<(f64, FloodLevel)> = changes.iter().map(|c| (c.0, c.2)).collect();
        assert_eq!(levels, vec![(13.0, FloodLevel::Yellow), (33.0, FloodLevel::Red), (73.0, FloodLevel::Green)]);
    }

    #[test]
    fn a_brief_splash_is_not_a_flood() {
        let mut f = Flood::new(P);
        assert!(run(&mut f, 30, |t| if (10.0..12.0).contains(&t) { 0.9 } else { 0.0 }).is_empty());
    }

    #[test]
    fn smoothing_delays_the_rise() {
        let mut f = Flood::new(FloodParams { smooth_s: 5.0, min_duration_s: 0.0, ..P });
        let changes = run(&mut f, 30, |t| if t >= 1.0 { 0.6 } else { 0.0 });
        // smoothed coverage crosses 0.2 after ~2 s and 0.5 after ~9 s
        assert_eq!(changes[0].2, FloodLevel::Yellow);
        assert!((2.0..=4.0).contains(&changes[0].0), "{changes:?}");
        assert_eq!(changes[1].2, FloodLevel::Red);
        assert!((8.0..=11.0).contains(&changes[1].0), "{changes:?}");
    }
}
