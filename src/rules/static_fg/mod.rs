//! Unknown left-behind objects from background subtraction (pure Rust, no OpenCV).
//!
//! Dual-background method over a downscaled grey image: a long-term background (slow running
//! average, time constant `long_tau_s`, minutes) and a short-term background (fast,
//! `short_tau_s`), both updated with stream-time rates `alpha = 1 − exp(−dt/tau)`. A pixel is
//! *static foreground* when it differs from the long-term background by more than the threshold
//! (`diff_thr` plus a margin from the frame's measured noise) but matches the short-term one:
//! something new that has stopped moving. A pixel must stay static foreground continuously for
//! `min_static_s` before it counts; 8-connected components of counting pixels with at least
//! `min_area` (downscaled) pixels are reported as blobs, with boxes in full-frame pixels.
//!
//! Robustness:
//! - global lighting: the median gain between frame and long-term background is measured every
//!   frame; beyond ±3 % both backgrounds are rescaled by it, so a scene that turns uniformly
//!   brighter or darker creates no foreground;
//! - when more than `max_changed_fraction` of the pixels still differ from the long-term
//!   background (camera moved, scene cut, day/night switch) both backgrounds are re-seeded;
//! - ghosts: an object that was part of the background and is taken away leaves a "static"
//!   region too. Its contour has weaker edges in the frame than in the background (a real object
//!   adds edges, a removed one takes them away); such a component is not reported and the
//!   backgrounds are reset to the frame there;
//! - start-up: both backgrounds are seeded from the first frame, and for the first
//!   `3 × short_tau_s` seconds after a (re-)seed the long-term background learns at the
//!   short-term rate and nothing is reported, so whatever is in the scene then is reference.
//!
//! A static object is absorbed by the long-term background eventually: a blob of contrast `c`
//! fades after about `long_tau_s · ln(c / thr)` seconds (≈ 2–3 minutes with the defaults).
//!
//! Buffers are sized once per frame geometry and reused; the per-frame path allocates only the
//! returned vector.

use crate::detect::BBox;

/// Settings of the static-foreground detector.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StaticFgParams {
    /// Width of the downscaled grey image (the height follows the frame's aspect ratio).
    pub width: u32,
    /// Time constant (s) of the long-term background.
    pub long_tau_s: f64,
    /// Time constant (s) of the short-term background.
    pub short_tau_s: f64,
    /// Grey-level difference (0..255) that counts as "different".
    pub diff_thr: u8,
    /// A pixel must be static foreground this long (s) before it counts.
    pub min_static_s: f64,
    /// Smallest blob, in downscaled pixels.
    pub min_area: u32,
    /// Re-seed the backgrounds when more than this share of the pixels changes at once.
    pub max_changed_fraction: f32,
}

impl Default for StaticFgParams {
    fn default() -> Self {
        StaticFgParams {
            width: 160,
            long_tau_s: 120.0,
            short_tau_s: 1.0,
            diff_thr: 25,
            min_static_s: 5.0,
            min_area: 10,
            max_changed_fraction: 0.5,
        }
    }
}

/// Histogram of log2(frame / background) for the gain estimate: `GAIN_BINS` bins over
/// ±`GAIN_RANGE` octaves.
const GAIN_BINS: usize = 512;
const GAIN_RANGE: f32 = 2.0;
/// Gains closer to 1 than this are noise: the backgrounds are left alone.
const GAIN_DEAD_BAND: f32 = 0.03;
/// Pixels darker than this (frame or background) say nothing about the gain.
const GAIN_MIN_GREY: f32 = 8.0;
/// Noise margin added to `diff_thr`: this many times the median absolute difference between
/// frame and long-term background (≈ 3σ for Gaussian noise).
const NOISE_K: f32 = 4.5;
/// Warm-up after a (re-)seed, in multiples of `short_tau_s`.
const WARMUP_TAUS: f64 = 3.0;
/// `since` value of a pixel that is not static foreground.
const NOT_STATIC: f64 = f64::INFINITY;

/// Static-foreground (left-behind object) detector for one camera.
pub struct StaticForeground {
    p: StaticFgParams,
    /// Source frame geometry the buffers are built for.
    src_w: u32,
    src_h: u32,
    /// Downscaled size.
    w: usize,
    h: usize,
    /// Source column / row → downscaled column / row.
    xmap: Vec<u32>,
    ymap: Vec<u32>,
    /// First source column / row of each downscaled column / row (one extra entry: the size).
    col_start: Vec<u32>,
    row_start: Vec<u32>,
    /// Row accumulator of luma sums (luma × 256).
    acc: Vec<u64>,
    grey: Vec<f32>,
    long: Vec<f32>,
    short: Vec<f32>,
    /// Stream time since which each pixel has been static foreground (`NOT_STATIC` if not).
    since: Vec<f64>,
    /// 0: not counting, 1: counting, 2: already put into a component.
    mask: Vec<u8>,
    stack: Vec<u32>,
    comp: Vec<u32>,
    gain_hist: Vec<u32>,
    diff_hist: Vec<u32>,
    last_ts: Option<f64>,
    /// Stream time of the latest (re-)seed.
    seeded_ts: f64,
}

impl StaticForeground {
    pub fn new(p: StaticFgParams) -> Self {
        StaticForeground {
            p,
            src_w: 0,
            src_h: 0,
            w: 0,
            h: 0,
            xmap: Vec::new(),
            ymap: Vec::new(),
            col_start: Vec::new(),
            row_start: Vec::new(),
            acc: Vec::new(),
            grey: Vec::new(),
            long: Vec::new(),
            short: Vec::new(),
            since: Vec::new(),
            mask: Vec::new(),
            stack: Vec::new(),
            comp: Vec::new(),
            gain_hist: vec![0; GAIN_BINS],
            diff_hist: vec![0; 256],
            last_ts: None,
            seeded_ts: 0.0,
        }
    }

    /// Size of the downscaled image (0×0 before the first frame).
    pub fn downscaled_size(&self) -> (usize, usize) {
        (self.w, self.h)
    }

    /// Feeds one packed RGB frame (`width`×`height`×3 bytes) at stream time `ts` (s); returns
    /// the confirmed static blobs, boxes in frame pixels. A frame of another size re-seeds; a
    /// buffer too short for the stated size is ignored. Time going backwards re-seeds.
    pub fn observe(&mut self, rgb: &[u8], width: u32, height: u32, ts: f64) -> Vec<BBox> {
        let need = width as usize * height as usize * 3;
        if width == 0 || height == 0 || rgb.len() < need || !ts.is_finite() {
            return Vec::new();
        }
        if (width, height) != (self.src_w, self.src_h) {
            self.geometry(width, height);
            self.last_ts = None;
        }
        self.downscale(&rgb[..need]);
        let last = match self.last_ts {
            Some(last) if ts >= last => last,
            _ => {
                self.seed(ts);
                return Vec::new();
            }
        };
        self.last_ts = Some(ts);
        let dt = ts - last;

        let gain = self.gain();
        if (gain - 1.0).abs() > GAIN_DEAD_BAND {
            for v in self.long.iter_mut().chain(self.short.iter_mut()) {
                *v = (*v * gain).min(255.0);
            }
        }

        let thr = self.threshold();
        let n = self.grey.len();
        let changed: u32 = self.diff_hist.iter().enumerate().filter(|&(d, _)| d as f32 > thr).map(|(_, c)| *c).sum();
        if changed as f32 > self.p.max_changed_fraction * n as f32 {
            self.seed(ts);
            return Vec::new();
        }

        let warm = ts - self.seeded_ts < WARMUP_TAUS * self.p.short_tau_s;
        let a_long = alpha(dt, if warm { self.p.short_tau_s } else { self.p.long_tau_s });
        let a_short = alpha(dt, self.p.short_tau_s);
        for i in 0..n {
            let g = self.grey[i];
            let dl = (g - self.long[i]).abs();
            let ds = (g - self.short[i]).abs();
            if dl > thr && ds <= thr {
                if self.since[i] == NOT_STATIC {
                    self.since[i] = ts;
                }
            } else {
                self.since[i] = NOT_STATIC;
            }
            self.long[i] += a_long * (g - self.long[i]);
            self.short[i] += a_short * (g - self.short[i]);
        }
        if warm {
            return Vec::new();
        }
        self.blobs(ts, thr)
    }

    /// Builds the downscale maps and buffers for a `sw`×`sh` source.
    fn geometry(&mut self, sw: u32, sh: u32) {
        let w = self.p.width.clamp(1, sw) as usize;
        let h = ((sh as f64 * w as f64 / sw as f64).round() as usize).clamp(1, sh as usize);
        let map = |n_src: u32, n_dst: usize| -> (Vec<u32>, Vec<u32>) {
            let m: Vec<u32> = (0..n_src as u64).map(|s| (s * n_dst as u64 / n_src as u64) as u32).collect();
            let mut start = vec![n_src; n_dst + 1];
            for (s, &d) in m.iter().enumerate().rev() {
                start[d as usize] = s as u32;
            }
            (m, start)
        };
        (self.xmap, self.col_start) = map(sw, w);
        (self.ymap, self.row_start) = map(sh, h);
        self.src_w = sw;
        self.src_h = sh;
        self.w = w;
        self.h = h;
        let n = w * h;
        self.acc = vec![0; w];
        self.grey = vec![0.0; n];
        self.long = vec![0.0; n];
        self.short = vec![0.0; n];
        self.since = vec![NOT_STATIC; n];
        self.mask = vec![0; n];
        self.stack = Vec::with_capacity(n);
        self.comp = Vec::with_capacity(n);
    }

    /// Box-averages the frame's luma into `grey`.
    fn downscale(&mut self, rgb: &[u8]) {
        let sw = self.src_w as usize;
        let w = self.w;
        let mut row = 0usize;
        self.acc.fill(0);
        for (sy, line) in rgb.chunks_exact(sw * 3).enumerate() {
            let dy = self.ymap[sy] as usize;
            if dy != row {
                self.flush_row(row);
                row = dy;
            }
            for (px, &dx) in line.chunks_exact(3).zip(self.xmap.iter()) {
                let l = 77 * px[0] as u64 + 150 * px[1] as u64 + 29 * px[2] as u64;
                self.acc[dx as usize] += l;
            }
        }
        self.flush_row(row);
        debug_assert_eq!(self.grey.len(), w * self.h);
    }

    fn flush_row(&mut self, row: usize) {
        let rows = (self.row_start[row + 1] - self.row_start[row]) as u64;
        let out = &mut self.grey[row * self.w..(row + 1) * self.w];
        for (x, (g, a)) in out.iter_mut().zip(self.acc.iter_mut()).enumerate() {
            let cols = (self.col_start[x + 1] - self.col_start[x]) as u64;
            *g = *a as f32 / (256 * rows * cols).max(1) as f32;
            *a = 0;
        }
    }

    /// Sets both backgrounds to the current frame and forgets all static evidence.
    fn seed(&mut self, ts: f64) {
        self.long.copy_from_slice(&self.grey);
        self.short.copy_from_slice(&self.grey);
        self.since.fill(NOT_STATIC);
        self.last_ts = Some(ts);
        self.seeded_ts = ts;
    }

    /// Median gain frame / long-term background (1 when too few pixels are bright enough).
    fn gain(&mut self) -> f32 {
        self.gain_hist.fill(0);
        let mut n = 0u32;
        let scale = GAIN_BINS as f32 / (2.0 * GAIN_RANGE);
        for (&g, &b) in self.grey.iter().zip(self.long.iter()) {
            if g < GAIN_MIN_GREY || b < GAIN_MIN_GREY {
                continue;
            }
            let bin = (((g / b).log2() + GAIN_RANGE) * scale).floor();
            let bin = bin.clamp(0.0, (GAIN_BINS - 1) as f32) as usize;
            self.gain_hist[bin] += 1;
            n += 1;
        }
        if (n as usize) < self.grey.len() / 4 {
            return 1.0;
        }
        let bin = median_bin(&self.gain_hist, n);
        ((bin as f32 + 0.5) / scale - GAIN_RANGE).exp2()
    }

    /// Fills `diff_hist` with |frame − long-term background| and returns the effective
    /// threshold: `diff_thr` plus the noise margin.
    fn threshold(&mut self) -> f32 {
        self.diff_hist.fill(0);
        for (&g, &b) in self.grey.iter().zip(self.long.iter()) {
            let d = ((g - b).abs() as usize).min(255);
            self.diff_hist[d] += 1;
        }
        let mad = median_bin(&self.diff_hist, self.grey.len() as u32) as f32;
        self.p.diff_thr as f32 + NOISE_K * mad
    }

    /// Connected components of the pixels static for `min_static_s`, as frame-pixel boxes
    /// (`thr`: this frame's difference threshold).
    fn blobs(&mut self, ts: f64, thr: f32) -> Vec<BBox> {
        let (w, h) = (self.w, self.h);
        let min_static = self.p.min_static_s;
        for (m, &s) in self.mask.iter_mut().zip(self.since.iter()) {
            *m = (s != NOT_STATIC && ts - s >= min_static) as u8;
        }
        let mut out = Vec::new();
        for start in 0..w * h {
            if self.mask[start] != 1 {
                continue;
            }
            self.comp.clear();
            self.stack.clear();
            self.stack.push(start as u32);
            self.mask[start] = 2;
            let (mut x0, mut y0, mut x1, mut y1) = (usize::MAX, usize::MAX, 0usize, 0usize);
            while let Some(i) = self.stack.pop() {
                let i = i as usize;
                self.comp.push(i as u32);
                let (x, y) = (i % w, i / w);
                x0 = x0.min(x);
                x1 = x1.max(x);
                y0 = y0.min(y);
                y1 = y1.max(y);
                for ny in y.saturating_sub(1)..=(y + 1).min(h - 1) {
                    for nx in x.saturating_sub(1)..=(x + 1).min(w - 1) {
                        let j = ny * w + nx;
                        if self.mask[j] == 1 {
                            self.mask[j] = 2;
                            self.stack.push(j as u32);
                        }
                    }
                }
            }
            if (self.comp.len() as u32) < self.p.min_area {
                continue;
            }
            match self.is_ghost(thr) {
                // still growing: the rest of the change around it has not settled yet
                None => continue,
                Some(true) => {
                    for &i in &self.comp {
                        let i = i as usize;
                        self.long[i] = self.grey[i];
                        self.short[i] = self.grey[i];
                        self.since[i] = NOT_STATIC;
                    }
                    continue;
                }
                Some(false) => {}
            }
            out.push(BBox::new(
                self.col_start[x0] as f32,
                self.row_start[y0] as f32,
                self.col_start[x1 + 1] as f32,
                self.row_start[y1 + 1] as f32,
            ));
        }
        out
    }

    /// Whether the component in `comp` is a ghost (a removed background object): across its
    /// contour to the background around it (pixels that match the long-term background) the
    /// frame has weaker edges than the long-term background. `None` while the component is
    /// not a ghost and more than a quarter of its contour borders on pixels that differ from
    /// the background but are not counting yet (parts of the same change that settle later,
    /// e.g. where the object contrasts less): reported then, its box would be too small.
    fn is_ghost(&self, thr: f32) -> Option<bool> {
        let (w, h) = (self.w, self.h);
        let (mut frame_edges, mut bg_edges, mut n, mut pending) = (0.0f32, 0.0f32, 0u32, 0u32);
        for &i in &self.comp {
            let i = i as usize;
            let (x, y) = (i % w, i / w);
            let mut outside = |j: usize| {
                if self.mask[j] != 0 {
                    // inside this component
                } else if (self.grey[j] - self.long[j]).abs() <= thr {
                    frame_edges += (self.grey[i] - self.grey[j]).abs();
                    bg_edges += (self.long[i] - self.long[j]).abs();
                    n += 1;
                } else {
                    pending += 1;
                }
            };
            if x > 0 {
                outside(i - 1);
            }
            if x + 1 < w {
                outside(i + 1);
            }
            if y > 0 {
                outside(i - w);
            }
            if y + 1 < h {
                outside(i + w);
            }
        }
        if n > 0 && frame_edges < bg_edges {
            Some(true)
        } else if n == 0 || pending * 3 > n {
            None
        } else {
            Some(false)
        }
    }
}

/// Running-average rate for a time step `dt` and time constant `tau`.
fn alpha(dt: f64, tau: f64) -> f32 {
    if dt <= 0.0 {
        0.0
    } else if tau <= 0.0 {
        1.0
    } else {
        (1.0 - (-dt / tau).exp()) as f32
    }
}

/// Index of the bin holding the median of `n` counted values.
fn median_bin(hist: &[u32], n: u32) -> usize {
    let half = n.div_ceil(2);
    let mut acc = 0u32;
    for (i, &c) in hist.iter().enumerate() {
        acc += c;
        if acc >= half && acc > 0 {
            return i;
        }
    }
    0
}

#[cfg(test)]
mod tests;
