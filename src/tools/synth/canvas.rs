//! A small software rasteriser for synthetic scenes: filled rectangles, ellipses, polygons and
//! thick lines on a packed RGB buffer, with an object-id layer so ground truth knows which
//! object each pixel shows (for visibility under occlusion).

/// Upper end of random phases (radians). Not `TAU`: the committed model's training set and the
/// suite's videos were rendered with this value, and seeded renders must stay identical.
#[allow(clippy::approx_constant)]
pub const PHASE_MAX: f32 = 6.28;

/// Deterministic pseudo-random numbers (SplitMix64): the same seed renders the same video.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub fn f32(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }
    /// Uniform in [lo, hi).
    pub fn range(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * self.f32()
    }
    /// Uniform integer in [0, n).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
    pub fn chance(&mut self, p: f32) -> bool {
        self.f32() < p
    }
    /// One of `choices` at random, jittered by up to `spread`.
    pub fn jitter_pick(&mut self, choices: &[[u8; 3]], spread: f32) -> [u8; 3] {
        let base = choices[self.below(choices.len())];
        self.jitter(base, spread)
    }

    /// A colour near `base`, each channel moved by up to `spread`.
    pub fn jitter(&mut self, base: [u8; 3], spread: f32) -> [u8; 3] {
        let mut c = base;
        for v in &mut c {
            *v = (*v as f32 + self.range(-spread, spread)).clamp(0.0, 255.0) as u8;
        }
        c
    }
}

/// Id written for pixels that belong to no object (ground, buildings).
pub const NO_OBJECT: u32 = 0;

/// RGB image plus the id of the object drawn last at each pixel.
pub struct Canvas {
    pub width: u32,
    pub height: u32,
    pub rgb: Vec<u8>,
    pub ids: Vec<u32>,
    /// Id stamped by the fill calls (`NO_OBJECT` while painting the background).
    pub pen: u32,
}

impl Canvas {
    pub fn new(width: u32, height: u32) -> Self {
        let n = (width * height) as usize;
        Canvas { width, height, rgb: vec![0; n * 3], ids: vec![NO_OBJECT; n], pen: NO_OBJECT }
    }

    /// Copies pixels and ids from `other` (same size).
    pub fn copy_from(&mut self, other: &Canvas) {
        self.rgb.copy_from_slice(&other.rgb);
        self.ids.copy_from_slice(&other.ids);
    }

    #[inline]
    fn put(&mut self, x: i32, y: i32, c: [u8; 3]) {
        if x < 0 || y < 0 || x >= self.width as i32 || y >= self.height as i32 {
            return;
        }
        let i = (y as u32 * self.width + x as u32) as usize;
        self.rgb[i * 3..i * 3 + 3].copy_from_slice(&c);
        self.ids[i] = self.pen;
    }

    #[inline]
    fn blend(&mut self, x: i32, y: i32, c: [u8; 3], a: f32) {
        if x < 0 || y < 0 || x >= self.width as i32 || y >= self.height as i32 {
            return;
        }
        let i = (y as u32 * self.width + x as u32) as usize * 3;
        for (v, target) in self.rgb[i..i + 3].iter_mut().zip(c) {
            let cur = *v as f32;
            *v = (cur + (target as f32 - cur) * a).round().clamp(0.0, 255.0) as u8;
        }
    }

    /// Pixel rows `[y0, y1)` and columns `[x0, x1)` of a float rectangle, clipped to the canvas.
    fn span(&self, x0: f32, y0: f32, x1: f32, y1: f32) -> (i32, i32, i32, i32) {
        let cx = |v: f32| (v.round() as i32).clamp(0, self.width as i32);
        let cy = |v: f32| (v.round() as i32).clamp(0, self.height as i32);
        (cx(x0.min(x1)), cy(y0.min(y1)), cx(x0.max(x1)), cy(y0.max(y1)))
    }

    pub fn rect(&mut self, x0: f32, y0: f32, x1: f32, y1: f32, c: [u8; 3]) {
        let (a, b, e, f) = self.span(x0, y0, x1, y1);
        for y in b..f {
            for x in a..e {
                self.put(x, y, c);
            }
        }
    }

    /// A rectangle whose colour changes linearly from `top` to `bottom`.
    pub fn vgradient(&mut self, x0: f32, y0: f32, x1: f32, y1: f32, top: [u8; 3], bottom: [u8; 3]) {
        let (a, b, e, f) = self.span(x0, y0, x1, y1);
        for y in b..f {
            let t = if f - b > 1 { (y - b) as f32 / (f - b - 1) as f32 } else { 0.0 };
            let c = mix(top, bottom, t);
            for x in a..e {
                self.put(x, y, c);
            }
        }
    }

    /// Blends `c` with opacity `a` over a rectangle (does not change ids).
    pub fn rect_alpha(&mut self, x0: f32, y0: f32, x1: f32, y1: f32, c: [u8; 3], a: f32) {
        let (p, q, r, s) = self.span(x0, y0, x1, y1);
        for y in q..s {
            for x in p..r {
                self.blend(x, y, c, a);
            }
        }
    }

    /// Axis-aligned filled ellipse centred at (cx, cy) with radii (rx, ry).
    pub fn ellipse(&mut self, cx: f32, cy: f32, rx: f32, ry: f32, c: [u8; 3]) {
        let (a, b, e, f) = self.span(cx - rx, cy - ry, cx + rx, cy + ry);
        let (rx2, ry2) = ((rx * rx).max(0.25), (ry * ry).max(0.25));
        for y in b..f {
            let dy = y as f32 + 0.5 - cy;
            for x in a..e {
                let dx = x as f32 + 0.5 - cx;
                if dx * dx / rx2 + dy * dy / ry2 <= 1.0 {
                    self.put(x, y, c);
                }
            }
        }
    }

    /// Ring between radius `r` and `r - thick` (wheels).
    pub fn ring(&mut self, cx: f32, cy: f32, r: f32, thick: f32, c: [u8; 3]) {
        let (a, b, e, f) = self.span(cx - r, cy - r, cx + r, cy + r);
        let (ro, ri) = (r * r, (r - thick).max(0.0).powi(2));
        for y in b..f {
            let dy = y as f32 + 0.5 - cy;
            for x in a..e {
                let dx = x as f32 + 0.5 - cx;
                let d = dx * dx + dy * dy;
                if d <= ro && d >= ri {
                    self.put(x, y, c);
                }
            }
        }
    }

    /// Filled polygon (even-odd rule, scanline).
    pub fn polygon(&mut self, pts: &[(f32, f32)], c: [u8; 3]) {
        self.polygon_with(pts, |cv, x, y| cv.put(x, y, c));
    }

    /// Polygon blended with opacity `a` (does not change ids).
    pub fn polygon_alpha(&mut self, pts: &[(f32, f32)], c: [u8; 3], a: f32) {
        self.polygon_with(pts, |cv, x, y| cv.blend(x, y, c, a));
    }

    /// Multiplies the pixels inside the polygon by `gain` (shadows).
    pub fn polygon_shade(&mut self, pts: &[(f32, f32)], gain: f32) {
        self.polygon_with(pts, |cv, x, y| {
            let i = (y as u32 * cv.width + x as u32) as usize * 3;
            for k in 0..3 {
                cv.rgb[i + k] = (cv.rgb[i + k] as f32 * gain).clamp(0.0, 255.0) as u8;
            }
        });
    }

    fn polygon_with(&mut self, pts: &[(f32, f32)], mut f: impl FnMut(&mut Canvas, i32, i32)) {
        if pts.len() < 3 {
            return;
        }
        let ymin = pts.iter().map(|p| p.1).fold(f32::MAX, f32::min).floor().max(0.0) as i32;
        let ymax = pts.iter().map(|p| p.1).fold(f32::MIN, f32::max).ceil().min(self.height as f32) as i32;
        let mut xs: Vec<f32> = Vec::with_capacity(8);
        for y in ymin..ymax {
            let yc = y as f32 + 0.5;
            xs.clear();
            for i in 0..pts.len() {
                let (a, b) = (pts[i], pts[(i + 1) % pts.len()]);
                if (a.1 <= yc && b.1 > yc) || (b.1 <= yc && a.1 > yc) {
                    xs.push(a.0 + (yc - a.1) / (b.1 - a.1) * (b.0 - a.0));
                }
            }
            xs.sort_by(|a, b| a.total_cmp(b));
            for pair in xs.chunks_exact(2) {
                let x0 = (pair[0] - 0.5).ceil().max(0.0) as i32;
                let x1 = ((pair[1] - 0.5).floor() as i32).min(self.width as i32 - 1);
                for x in x0..=x1 {
                    f(self, x, y);
                }
            }
        }
    }

    /// Line of width `w` from (x0, y0) to (x1, y1) (stamped discs).
    pub fn line(&mut self, x0: f32, y0: f32, x1: f32, y1: f32, w: f32, c: [u8; 3]) {
        let len = ((x1 - x0).powi(2) + (y1 - y0).powi(2)).sqrt();
        let steps = (len / (w * 0.5).max(0.5)).ceil().max(1.0) as i32;
        let r = (w * 0.5).max(0.5);
        for i in 0..=steps {
            let t = i as f32 / steps as f32;
            self.ellipse(x0 + (x1 - x0) * t, y0 + (y1 - y0) * t, r, r, c);
        }
    }

    /// Pixels currently showing object `id` inside the box (for visibility).
    pub fn count_id(&self, id: u32, b: [f32; 4]) -> u32 {
        let (a, q, e, f) = self.span(b[0], b[1], b[2], b[3]);
        let mut n = 0;
        for y in q..f {
            let row = (y as u32 * self.width) as usize;
            n += self.ids[row + a as usize..row + e as usize].iter().filter(|v| **v == id).count() as u32;
        }
        n
    }
}

/// Linear mix of two colours (`t` = 0 gives `a`).
pub fn mix(a: [u8; 3], b: [u8; 3], t: f32) -> [u8; 3] {
    let t = t.clamp(0.0, 1.0);
    [0, 1, 2].map(|k| (a[k] as f32 + (b[k] as f32 - a[k] as f32) * t).round() as u8)
}

/// `c` scaled by `g` (brightness).
pub fn shade(c: [u8; 3], g: f32) -> [u8; 3] {
    c.map(|v| (v as f32 * g).clamp(0.0, 255.0) as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rng_is_deterministic_and_uniform_enough() {
        let (mut a, mut b) = (Rng::new(7), Rng::new(7));
        let xs: Vec<f32> = (0..1000).map(|_| a.f32()).collect();
        let ys: Vec<f32> = (0..1000).map(|_| b.f32()).collect();
        assert_eq!(xs, ys);
        let mean = xs.iter().sum::<f32>() / 1000.0;
        assert!((mean - 0.5).abs() < 0.05, "{mean}");
        assert!(xs.iter().all(|v| (0.0..1.0).contains(v)));
    }

    #[test]
    fn shapes_fill_the_expected_pixels_and_ids() {
        let mut c = Canvas::new(40, 30);
        c.pen = 5;
        c.rect(10.0, 10.0, 20.0, 15.0, [255, 0, 0]);
        assert_eq!(c.count_id(5, [0.0, 0.0, 40.0, 30.0]), 50);
        c.pen = 6;
        c.ellipse(15.0, 12.5, 3.0, 3.0, [0, 255, 0]);
        let covered = c.count_id(6, [0.0, 0.0, 40.0, 30.0]);
        assert!((20..=36).contains(&covered), "{covered}");
        assert_eq!(c.count_id(5, [0.0, 0.0, 40.0, 30.0]) + c.count_id(6, [10.0, 10.0, 20.0, 15.0]), 50);
        c.pen = 7;
        c.polygon(&[(0.0, 0.0), (10.0, 0.0), (10.0, 10.0), (0.0, 10.0)], [0, 0, 255]);
        assert_eq!(c.count_id(7, [0.0, 0.0, 40.0, 30.0]), 100);
    }
}
