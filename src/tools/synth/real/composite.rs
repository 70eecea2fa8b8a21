//! Compositing onto real frames: objects scaled by the ground plane, hidden by real people in
//! front of them, shadowed and colour-matched; standing water and wet patches.

use super::super::canvas::Canvas;
use super::super::scene::{self, Puddle};
use super::GroundPlane;

/// A person's height relative to which objects are sized (the renderer's person is 0.42 units
/// tall; its goods and items keep their proportions to it).
const RENDER_PERSON_H: f32 = 0.42;
/// Side of the canvas an object is drawn on before it is scaled down into the scene.
const CUT_SIDE: u32 = 480;
/// Foreground threshold: summed |frame − median| over the three channels.
pub(super) const FG_THRESHOLD: i32 = 70;

/// For every pixel of `frame`: 0 where it shows the background, else one past the lowest row
/// of the foreground run it belongs to in its column (short gaps bridged). A foreground pixel
/// whose run reaches below an object's base belongs to something in front of the object.
/// `diff` gets the summed difference from the median (saturated at 255).
pub(super) fn foreground_runs(frame: &[u8], median: &[u8], w: u32, h: u32, out: &mut Vec<u16>, diff: &mut Vec<u8>) {
    let (w, h) = (w as usize, h as usize);
    out.clear();
    out.resize(w * h, 0);
    diff.clear();
    diff.resize(w * h, 0);
    for x in 0..w {
        let mut bottom: Option<usize> = None;
        let mut gap = 0;
        for y in (0..h).rev() {
            let i = y * w + x;
            let d: i32 = (0..3).map(|c| (frame[i * 3 + c] as i32 - median[i * 3 + c] as i32).abs()).sum();
            diff[i] = d.min(255) as u8;
            if d > FG_THRESHOLD {
                let b = *bottom.get_or_insert(y + 1);
                out[i] = b as u16;
                gap = 0;
            } else if bottom.is_some() {
                gap += 1;
                if gap > 3 {
                    bottom = None;
                }
            }
        }
    }
}

/// An object scaled into the scene at its place: premultiplied colour and alpha over a box
/// whose top-left pixel is `(x0, y0)`; `base` is the row it stands on.
pub(super) struct Layer {
    pub(super) id: u32,
    pub(super) class: &'static str,
    x0: i32,
    y0: i32,
    w: i32,
    h: i32,
    pub(super) base: f32,
    /// Premultiplied RGB and alpha, row-major.
    px: Vec<[f32; 4]>,
    /// Mean of the median background around the object (for per-frame light matching).
    ref_mean: f32,
}

/// Draws one object with the renderer's drawing code on a large canvas and cuts it out:
/// RGBA (alpha from the id layer) and the height in pixels of a person standing there.
pub(super) fn cut_out(draw: impl FnOnce(&mut Canvas, f32, f32)) -> (u32, u32, Vec<[f32; 4]>, f32) {
    let mut c = Canvas::new(CUT_SIDE, CUT_SIDE);
    let (fx, fy) = (CUT_SIDE as f32 * 0.5, CUT_SIDE as f32 * 0.92);
    c.pen = 1;
    draw(&mut c, fx, fy);
    let (mut x0, mut y0, mut x1, mut y1) = (CUT_SIDE, CUT_SIDE, 0, 0);
    for (i, id) in c.ids.iter().enumerate() {
        if *id == 1 {
            let (x, y) = (i as u32 % CUT_SIDE, i as u32 / CUT_SIDE);
            (x0, y0, x1, y1) = (x0.min(x), y0.min(y), x1.max(x + 1), y1.max(y + 1));
        }
    }
    // the ground point stays at the bottom centre of the cut-out
    let (x0, x1, y1) = (x0.min((fx as u32).saturating_sub(1)), x1.max(fx as u32 + 1), y1.max(fy as u32));
    let (w, h) = (x1 - x0, y1 - y0);
    let mut px = Vec::with_capacity((w * h) as usize);
    for y in y0..y1 {
        for x in x0..x1 {
            let i = (y * CUT_SIDE + x) as usize;
            let a = if c.ids[i] == 1 { 1.0 } else { 0.0 };
            px.push([c.rgb[i * 3] as f32 * a, c.rgb[i * 3 + 1] as f32 * a, c.rgb[i * 3 + 2] as f32 * a, a]);
        }
    }
    let person = RENDER_PERSON_H * CUT_SIDE as f32 * scene::depth_scale(0.92);
    (w, h, px, person)
}

/// Luma of an RGB triple.
fn luma(p: [f32; 3]) -> f32 {
    0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2]
}

/// Mean colour of `rgb` over the box `[x0, y0, x1, y1)` (clipped).
pub(super) fn mean_rgb(rgb: &[u8], w: u32, h: u32, b: [i32; 4]) -> [f32; 3] {
    let (x0, y0) = (b[0].clamp(0, w as i32), b[1].clamp(0, h as i32));
    let (x1, y1) = (b[2].clamp(0, w as i32), b[3].clamp(0, h as i32));
    let mut s = [0f64; 3];
    let mut n = 0f64;
    for y in y0..y1 {
        for x in x0..x1 {
            let i = ((y as u32 * w + x as u32) * 3) as usize;
            for (k, v) in s.iter_mut().enumerate() {
                *v += rgb[i + k] as f64;
            }
            n += 1.0;
        }
    }
    if n == 0.0 {
        return [128.0; 3];
    }
    s.map(|v| (v / n) as f32)
}

impl Layer {
    /// The cut-out scaled to a person's height at ground point `(fx, fy)` (pixels), area
    /// averaged, blurred 3×3, its colours matched to the background there.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn place(id: u32, class: &'static str, cut: &(u32, u32, Vec<[f32; 4]>, f32), fx: f32, fy: f32, ground: &GroundPlane, median: &[u8], w: u32, h: u32) -> Layer {
        let (cw, ch, src, person) = cut;
        let s = ground.person_px(fy, h) / person;
        let (bw, bh, oh, mut px) = scaled(*cw, *ch, src, s);
        let x0 = (fx - (bw as f32) * 0.5).round() as i32;
        let y0 = (fy - (oh + 1) as f32).round() as i32;
        // colour matching: somewhat less saturated than the renderer's cartoon colours, lit as
        // brightly as the ground around it (its mean against a mid grey; the object's own
        // brightness is kept, so a white bag stays white on grey concrete), and the scene's
        // colour cast
        let around = [x0 - bw / 2, y0, x0 + bw + bw / 2, y0 + bh + bh / 4];
        let bg = mean_rgb(median, w, h, around);
        let bg_l = luma(bg).max(1.0);
        let gain = (bg_l / 128.0).powf(0.5).clamp(0.75, 1.3);
        let cast = bg.map(|v| (v / bg_l).powf(0.3));
        for (j, p) in px.iter_mut().enumerate() {
            let l = luma([p[0], p[1], p[2]]);
            // overcast light falls from above: tops a little brighter than the sides near the
            // ground, which the object itself shades
            let v = (j as i32 / bw) as f32 / bh as f32;
            let shade = 1.08 - 0.22 * v;
            for k in 0..3 {
                p[k] = ((l + (p[k] - l) * 0.8) * gain * cast[k] * shade).max(0.0);
            }
        }
        Layer { id, class, x0, y0, w: bw, h: bh, base: fy, px, ref_mean: luma(bg) }
    }

    /// A real person's cut-out (premultiplied RGBA, feet at its bottom centre, `person_h` the
    /// person's height in it) scaled to a person's height at ground point `(fx, fy)`, mirrored
    /// when `flip`. Its colours are the video's own and stay; only the frame's light is matched.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn person(id: u32, cut: &super::people::Cutout, flip: bool, fx: f32, fy: f32, ground: &GroundPlane, median: &[u8], w: u32, h: u32) -> Layer {
        let s = ground.person_px(fy, h) / cut.person_h;
        let src: Vec<[f32; 4]> = if flip {
            (0..cut.h).flat_map(|y| (0..cut.w).rev().map(move |x| (x, y))).map(|(x, y)| cut.px[(y * cut.w + x) as usize]).collect()
        } else {
            cut.px.clone()
        };
        let (bw, bh, oh, px) = scaled(cut.w, cut.h, &src, s);
        let x0 = (fx - (bw as f32) * 0.5).round() as i32;
        let y0 = (fy - (oh + 1) as f32).round() as i32;
        let bg = mean_rgb(median, w, h, [x0 - bw / 2, y0, x0 + bw + bw / 2, y0 + bh + bh / 4]);
        Layer { id, class: "person", x0, y0, w: bw, h: bh, base: fy, px, ref_mean: luma(bg) }
    }

    /// Composites the layer and its contact shadow onto `rgb`, hidden where a real person in
    /// front covers it; marks its visible pixels in `ids`. Returns the drawn box and its drawn
    /// and visible pixel counts.
    pub(super) fn draw(&self, rgb: &mut [u8], ids: &mut [u32], fg: &[u16], w: u32, h: u32) -> ([f32; 4], u32, u32) {
        let (wi, hi) = (w as i32, h as i32);
        let in_front = |i: usize| fg[i] as f32 > self.base + 2.0;
        // light of this frame against the median's around the object (people excluded)
        let (mut now, mut n) = (0f32, 0f32);
        for y in (self.y0 + self.h).max(0)..(self.y0 + self.h + 6).min(hi) {
            for x in self.x0.max(0)..(self.x0 + self.w).min(wi) {
                let i = (y * wi + x) as usize;
                if fg[i] == 0 {
                    now += luma([rgb[i * 3] as f32, rgb[i * 3 + 1] as f32, rgb[i * 3 + 2] as f32]);
                    n += 1.0;
                }
            }
        }
        let light = if n > 10.0 { (now / n / self.ref_mean.max(1.0)).clamp(0.7, 1.3) } else { 1.0 };
        // contact shadow: a soft dark ellipse on the ground under the object
        let (cx, rx, ry) = (self.x0 as f32 + self.w as f32 * 0.5, self.w as f32 * 0.55, (self.w as f32 * 0.12).max(2.0));
        for y in (self.base - ry).floor() as i32..(self.base + ry).ceil() as i32 {
            for x in (cx - rx).floor() as i32..(cx + rx).ceil() as i32 {
                if x < 0 || y < 0 || x >= wi || y >= hi {
                    continue;
                }
                let (dx, dy) = ((x as f32 + 0.5 - cx) / rx, (y as f32 + 0.5 - self.base) / ry);
                let d = dx * dx + dy * dy;
                let i = (y * wi + x) as usize;
                if d < 1.0 && !in_front(i) {
                    let g = 1.0 - 0.45 * (1.0 - d).powf(1.5);
                    for k in 0..3 {
                        rgb[i * 3 + k] = (rgb[i * 3 + k] as f32 * g) as u8;
                    }
                }
            }
        }
        let (mut drawn, mut visible) = (0, 0);
        let (mut b0, mut b1, mut b2, mut b3) = (f32::MAX, f32::MAX, f32::MIN, f32::MIN);
        for ly in 0..self.h {
            for lx in 0..self.w {
                let p = self.px[(ly * self.w + lx) as usize];
                let (x, y) = (self.x0 + lx, self.y0 + ly);
                if p[3] < 0.02 || x < 0 || y < 0 || x >= wi || y >= hi {
                    continue;
                }
                let i = (y * wi + x) as usize;
                let solid = p[3] >= 0.5;
                if solid {
                    drawn += 1;
                    (b0, b1, b2, b3) = (b0.min(x as f32), b1.min(y as f32), b2.max(x as f32 + 1.0), b3.max(y as f32 + 1.0));
                }
                if in_front(i) {
                    continue;
                }
                for k in 0..3 {
                    let v = rgb[i * 3 + k] as f32 * (1.0 - p[3]) + p[k] * light;
                    rgb[i * 3 + k] = v.clamp(0.0, 255.0) as u8;
                }
                if solid {
                    ids[i] = self.id;
                    visible += 1;
                }
            }
        }
        let _ = visible;
        ([b0, b1, b2, b3], drawn, visible)
    }
}

/// A cut-out (`cw`×`ch` premultiplied RGBA) scaled by `s` (area averaged when shrinking,
/// bilinear when enlarging), blurred 3×3 to the video's softness, with one pixel of margin: its width, height, unpadded height and pixels.
fn scaled(cw: u32, ch: u32, src: &[[f32; 4]], s: f32) -> (i32, i32, i32, Vec<[f32; 4]>) {
    let (ow, oh) = (((cw as f32 * s).ceil() as i32).max(1), ((ch as f32 * s).ceil() as i32).max(1));
    // one pixel of margin on each side for the blur
    let (bw, bh) = (ow + 2, oh + 2);
    let mut acc = vec![[0f32; 4]; (bw * bh) as usize];
    let mut cnt = vec![0f32; (bw * bh) as usize];
    if s > 1.0 {
        // enlarging (a real person cut out further away than where it stands): bilinear
        let at = |x: i32, y: i32| src[(y.clamp(0, ch as i32 - 1) as u32 * cw + x.clamp(0, cw as i32 - 1) as u32) as usize];
        for oy in 0..oh {
            for ox in 0..ow {
                let (sx, sy) = ((ox as f32 + 0.5) / s - 0.5, (oy as f32 + 0.5) / s - 0.5);
                let (x0, y0) = (sx.floor() as i32, sy.floor() as i32);
                let (fx, fy) = (sx - x0 as f32, sy - y0 as f32);
                let o = ((oy + 1) * bw + ox + 1) as usize;
                let (a, b, c, d) = (at(x0, y0), at(x0 + 1, y0), at(x0, y0 + 1), at(x0 + 1, y0 + 1));
                for (k, v) in acc[o].iter_mut().enumerate() {
                    let top = a[k] * (1.0 - fx) + b[k] * fx;
                    let bottom = c[k] * (1.0 - fx) + d[k] * fx;
                    *v = top * (1.0 - fy) + bottom * fy;
                }
                cnt[o] = 1.0;
            }
        }
    } else {
        for y in 0..ch {
            let oy = ((y as f32 * s) as i32).min(oh - 1) + 1;
            for x in 0..cw {
                let ox = ((x as f32 * s) as i32).min(ow - 1) + 1;
                let o = (oy * bw + ox) as usize;
                let p = src[(y * cw + x) as usize];
                for k in 0..4 {
                    acc[o][k] += p[k];
                }
                cnt[o] += 1.0;
            }
        }
    }
    for (a, n) in acc.iter_mut().zip(&cnt) {
        if *n > 0.0 {
            *a = a.map(|v| v / n);
        }
    }
    let mut px = vec![[0f32; 4]; acc.len()];
    for y in 0..bh {
        for x in 0..bw {
            let mut sum = [0f32; 4];
            for (dy, wy) in [(-1, 1.0), (0, 2.0), (1, 1.0)] {
                for (dx, wx) in [(-1, 1.0), (0, 2.0), (1, 1.0)] {
                    let (sx, sy) = (x + dx, y + dy);
                    if sx >= 0 && sy >= 0 && sx < bw && sy < bh {
                        let p = acc[(sy * bw + sx) as usize];
                        for k in 0..4 {
                            sum[k] += p[k] * wx * wy / 16.0;
                        }
                    }
                }
            }
            px[(y * bw + x) as usize] = sum;
        }
    }
    (bw, bh, oh, px)
}

/// Soft mask (0..1) of a puddle over its box, and the box's top-left pixel and size.
fn puddle_mask(p: &Puddle, w: u32, h: u32) -> (i32, i32, i32, i32, Vec<f32>) {
    let b = p.bbox();
    let (x0, y0) = ((b[0].floor() as i32 - 3).max(0), (b[1].floor() as i32 - 3).max(0));
    let (x1, y1) = ((b[2].ceil() as i32 + 3).min(w as i32), (b[3].ceil() as i32 + 3).min(h as i32));
    let (bw, bh) = ((x1 - x0).max(1), (y1 - y0).max(1));
    let mut c = Canvas::new(bw as u32, bh as u32);
    c.pen = 1;
    let pts: Vec<(f32, f32)> = p.outline().iter().map(|(x, y)| (x - x0 as f32, y - y0 as f32)).collect();
    c.polygon(&pts, [0, 0, 0]);
    // soften the edge: a 5×5 box average of the hard mask
    let hard: Vec<f32> = c.ids.iter().map(|v| if *v == 1 { 1.0 } else { 0.0 }).collect();
    let mut soft = vec![0f32; hard.len()];
    for y in 0..bh {
        for x in 0..bw {
            let mut s = 0.0;
            for dy in -2..=2 {
                for dx in -2..=2 {
                    let (sx, sy) = (x + dx, y + dy);
                    if sx >= 0 && sy >= 0 && sx < bw && sy < bh {
                        s += hard[(sy * bw + sx) as usize];
                    }
                }
            }
            soft[(y * bw + x) as usize] = s / 25.0;
        }
    }
    (x0, y0, bw, bh, soft)
}

/// Draws standing water (`mirror`) or a wet patch (no reflection) onto `rgb`, reading the
/// unchanged frame `src`; marks true water pixels (visible, mask ≥ 0.5) in `water`. Where the
/// frame differs strongly from the background (`diff`: a real person standing in the water)
/// the frame shows through; weak differences (shadows, compression) are covered.
#[allow(clippy::too_many_arguments)]
pub(super) fn draw_wet(p: &Puddle, mirror: bool, t: f32, src: &[u8], smooth: &[u8], diff: &[u8], rgb: &mut [u8], water: &mut [u8], w: u32, h: u32) {
    let (x0, y0, bw, bh, mask) = puddle_mask(p, w, h);
    let (wi, hi) = (w as i32, h as i32);
    let top = p.cy - p.hh;
    for ly in 0..bh {
        for lx in 0..bw {
            let (x, y) = (x0 + lx, y0 + ly);
            if x >= wi || y >= hi {
                continue;
            }
            let i = (y * wi + x) as usize;
            // real people stand in the water, never under it
            let person = ((diff[i] as f32 - 90.0) / 80.0).clamp(0.0, 1.0);
            let a = mask[(ly * bw + lx) as usize] * (1.0 - person);
            if a <= 0.0 {
                continue;
            }
            let ground = [0, 1, 2].map(|k| smooth[i * 3 + k] as f32);
            let look: [f32; 3] = if mirror {
                // the scene above the puddle, mirrored about its far edge and stretched (a
                // reflection shows more of what stands behind), displaced by moving ripples
                let (xf, yf) = (x as f32, y as f32);
                let rx = xf + 1.6 * (0.35 * yf + 2.6 * t).sin();
                let ry = top - (yf - top) * 1.3 + 1.2 * (0.23 * xf + 1.9 * t).sin();
                let sample = |yy: f32| {
                    let (sx, sy) = ((rx.round() as i32).clamp(0, wi - 1), (yy.round() as i32).clamp(0, hi - 1));
                    let j = ((sy * wi + sx) * 3) as usize;
                    [src[j] as f32, src[j + 1] as f32, src[j + 2] as f32]
                };
                let (r0, r1) = (sample(ry), sample(ry - 2.0));
                let sky = [176.0, 184.0, 194.0];
                let tint = [0.95, 0.98, 1.04];
                [0, 1, 2].map(|k| {
                    let refl = 0.5 * (r0[k] + r1[k]) * 0.75 + sky[k] * 0.25;
                    (0.45 * ground[k] * 0.6 + 0.55 * refl * 0.72) * tint[k]
                })
            } else {
                // wet ground: darker and a little smoother, nothing reflected
                [0, 1, 2].map(|k| (0.5 * ground[k] + 0.5 * src[i * 3 + k] as f32) * 0.68)
            };
            for k in 0..3 {
                let v = rgb[i * 3 + k] as f32 * (1.0 - a) + look[k] * a;
                rgb[i * 3 + k] = v.clamp(0.0, 255.0) as u8;
            }
            if mirror && a >= 0.5 {
                water[i] = 255;
            }
        }
    }
}

