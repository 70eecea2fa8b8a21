//! Real-background scenarios: the actors of a scenario composited onto the decoded frames of a
//! real video (`[background] video = "vtest"`) instead of the drawn street.
//!
//! The background plays frames `start_frame..=end_frame` forwards and backwards in turn, so the
//! real people in it never jump. Only things the real scene lacks are drawn: goods set out
//! (vendors), bags and boxes (dumpers, pick-ups), standing water and wet patches. Persons are
//! not drawn: the video holds real people, and the renderer's cartoon persons would teach the
//! suite nothing about real ones. The rules need no person either (out-of-store counts goods in
//! its zone; dumping counts a waste object that stays; its dumper is optional), so a vendor's or
//! dumper's objects simply appear at `arrive`/`drop` and go at `leave`/`removed`.
//!
//! Compositing, so the objects belong to the scene rather than float on it:
//! - scale from where an object stands: the ground plane's size-vs-y law ([`GroundPlane`]);
//! - occlusion: a real person whose feet are nearer the camera than the object's base hides it
//!   (foreground = pixels far from the background's per-pixel median; a column run of
//!   foreground reaching below the object's base is in front of it);
//! - a soft contact shadow; brightness, saturation and colour cast matched to the local
//!   background, re-matched every frame to the frame's light;
//! - area-averaged downscaling and a 3×3 blur to the video's softness, sensor noise, and the
//!   H.264 compression of the written video;
//! - standing water: the ground darkened and smoothed, tinted blue-grey, with the scene above
//!   it mirrored in it (ripples move it), under a soft edge; people stand in it, not under it;
//!   wet patches are darker ground without any reflection (negatives).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

use super::canvas::{Canvas, Rng, NO_OBJECT};
use super::render::{self, Effects};
use super::scenario::{Actor, Background, Scenario};
use super::scene::{self, GoodsLook, ItemLook, Puddle};
use super::truth::{FrameTruth, Truth, TruthBox, WaterMaskTruth};
use super::Rendered;
use crate::config::ZoneKind;
use crate::rules::Polygon;

/// Where Debian's opencv-doc puts its sample videos (`vtest.avi`, `tree.avi`).
pub const DATA_DIR: &str = "/usr/share/doc/opencv-doc/examples/data";

/// Ground plane of vtest.avi: a standing person with feet at normalised height `y` is
/// `0.257 * y + 0.0227` frame heights tall. Measured on the training half of the video (frames
/// 0–399, every 10th): the COCO teacher's person boxes with score ≥ 0.6 whose feet are above
/// y = 570 px (not cut by the bottom edge), 225 boxes; least-squares fit of box height against
/// box bottom in 768×576 pixels gave h = 0.2570 y + 13.10 (residual s.d. 6.1 px; mean heights
/// 58 px at y 150–200, 84 px at y 250–300, 116 px at y 400–450).
pub const VTEST_GROUND: [f32; 2] = [0.257, 13.10 / 576.0];

/// A person's height relative to which objects are sized (the renderer's person is 0.42 units
/// tall; its goods and items keep their proportions to it).
const RENDER_PERSON_H: f32 = 0.42;
/// Side of the canvas an object is drawn on before it is scaled down into the scene.
const CUT_SIDE: u32 = 480;
/// Foreground threshold: summed |frame − median| over the three channels.
const FG_THRESHOLD: i32 = 70;
/// Share of an object's pixels that must remain visible for it to be labelled (as the drawn
/// street's renderer).
const MIN_VISIBLE: f32 = 0.4;

/// The video a background names: `vtest` and `tree` are Debian's samples, anything else a path.
pub fn find_video(name: &str) -> anyhow::Result<PathBuf> {
    let p = match name {
        "vtest" | "tree" => Path::new(DATA_DIR).join(format!("{name}.avi")),
        other => PathBuf::from(other),
    };
    if !p.is_file() {
        bail!("background video {name:?}: {} not found (Debian's samples come with opencv-doc: run scripts/setup.sh)", p.display());
    }
    Ok(p)
}

/// Size of a standing person (frame heights) against where the feet are (normalised y).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GroundPlane {
    pub k: f32,
    pub c: f32,
}

impl GroundPlane {
    /// The background's ground plane: its own `ground` key, or the measured one of vtest.
    pub fn of(b: &Background) -> Option<GroundPlane> {
        let [k, c] = b.ground.or_else(|| (b.video == "vtest").then_some(VTEST_GROUND))?;
        Some(GroundPlane { k, c })
    }

    /// Height in pixels of a person standing at pixel row `y` of a `height`-row frame.
    pub fn person_px(&self, y: f32, height: u32) -> f32 {
        let h = height as f32;
        ((self.k * y / h + self.c) * h).max(2.0)
    }
}

/// Problems of a scenario drawn on a real background, each with its place.
pub fn problems(s: &Scenario, b: &Background) -> Vec<String> {
    let mut e = Vec::new();
    if b.end_frame <= b.start_frame {
        e.push(format!("background.end_frame: {} is not after start_frame {}", b.end_frame, b.start_frame));
    }
    let objects = s.actors.iter().any(|a| matches!(a, Actor::Vendor { .. } | Actor::Dumper { .. } | Actor::Pickup { .. }));
    if objects && GroundPlane::of(b).is_none() {
        e.push(format!("background.ground: {:?} has no measured ground plane; give ground = [k, c] (person height in frame heights = k * y + c)", b.video));
    }
    if s.scene.rain.is_some() {
        e.push("scene.rain: rain is drawn for the drawn street only".into());
    }
    for (i, a) in s.actors.iter().enumerate() {
        let kind = match a {
            Actor::Pedestrian { .. } => "pedestrian",
            Actor::Car { .. } => "car",
            Actor::Bicycles { .. } => "bicycles",
            _ => continue,
        };
        e.push(format!("actor[{i}]: a {kind} is not drawn on a real background (the video has its own people and traffic)"));
    }
    e
}

/// Frame `i` of a ping-pong over `n` frames: 0, 1, …, n−1, n−2, …, 1, 0, 1, …
pub fn pingpong(i: usize, n: usize) -> usize {
    if n <= 1 {
        return 0;
    }
    let period = 2 * n - 2;
    let k = i % period;
    if k < n {
        k
    } else {
        period - k
    }
}

/// Decodes `path` with GStreamer, scaled to `width`×`height` (or its own size when `None`),
/// handing each packed RGB frame with its index to `each` until it returns false or the video
/// ends. Returns the number of frames decoded.
pub fn decode_each(path: &Path, size: Option<(u32, u32)>, mut each: impl FnMut(usize, &[u8], u32, u32) -> bool) -> anyhow::Result<usize> {
    crate::source::init_gstreamer()?;
    let scale = size.map_or(String::new(), |(w, h)| format!(",width={w},height={h},pixel-aspect-ratio=1/1"));
    let launch = format!(
        "filesrc location={loc} ! decodebin ! videoconvert ! videoscale ! video/x-raw,format=RGB{scale} ! appsink name=sink sync=false max-buffers=4",
        loc = crate::source::template::quote(&path.display().to_string()),
    );
    let pipeline = gst::parse::launch(&launch)
        .with_context(|| format!("decode {}", path.display()))?
        .downcast::<gst::Pipeline>()
        .map_err(|_| anyhow::anyhow!("not a pipeline"))?;
    let sink = pipeline.by_name("sink").context("no appsink")?.downcast::<gst_app::AppSink>().map_err(|_| anyhow::anyhow!("not an appsink"))?;
    pipeline.set_state(gst::State::Playing).with_context(|| format!("decode {}", path.display()))?;
    let result = (|| {
        let mut n = 0;
        let mut packed = Vec::new();
        while let Ok(sample) = sink.pull_sample() {
            let caps = sample.caps().context("sample without caps")?;
            let info = gstreamer_video::VideoInfo::from_caps(caps).context("caps are not raw video")?;
            let buffer = sample.buffer().context("sample without buffer")?;
            let map = buffer.map_readable().context("map a decoded frame")?;
            let (w, h, stride) = (info.width(), info.height(), info.stride()[0] as usize);
            packed.clear();
            for row in 0..h as usize {
                packed.extend_from_slice(&map[row * stride..row * stride + w as usize * 3]);
            }
            let go_on = each(n, &packed, w, h);
            n += 1;
            if !go_on {
                return Ok(n);
            }
        }
        // the loop ends at end of stream or on an error; the bus says which
        let bus = pipeline.bus().context("pipeline without bus")?;
        while let Some(msg) = bus.pop() {
            if let gst::MessageView::Error(e) = msg.view() {
                bail!("decode {}: {} ({:?})", path.display(), e.error(), e.debug());
            }
        }
        Ok(n)
    })();
    let _ = pipeline.set_state(gst::State::Null);
    result
}

/// The background frames of a scenario, in memory at the scenario's size, with the per-pixel
/// median (the scene without its moving people) and a blurred copy of it (smooth ground).
struct Plate {
    frames: Vec<Vec<u8>>,
    median: Vec<u8>,
    smooth: Vec<u8>,
}

impl Plate {
    fn load(b: &Background, w: u32, h: u32) -> anyhow::Result<Plate> {
        let path = find_video(&b.video)?;
        let (a, z) = (b.start_frame as usize, b.end_frame as usize);
        let mut frames = Vec::with_capacity(z - a + 1);
        let n = decode_each(&path, Some((w, h)), |i, rgb, _, _| {
            if i >= a {
                frames.push(rgb.to_vec());
            }
            i < z
        })?;
        if n <= z {
            bail!("background {}: frames {a}–{z} wanted, the video decodes to {n} frames", path.display());
        }
        let median = median_of(&frames, 4);
        let smooth = box_blur(&median, w, h, 3);
        Ok(Plate { frames, median, smooth })
    }
}

/// Per-pixel, per-channel median of every `step`-th frame.
fn median_of(frames: &[Vec<u8>], step: usize) -> Vec<u8> {
    let picked: Vec<&Vec<u8>> = frames.iter().step_by(step.max(1)).collect();
    let mut vals = vec![0u8; picked.len()];
    (0..frames[0].len())
        .map(|i| {
            for (v, f) in vals.iter_mut().zip(&picked) {
                *v = f[i];
            }
            let mid = vals.len() / 2;
            *vals.select_nth_unstable(mid).1
        })
        .collect()
}

/// Box blur of radius `r` (separable running sums), edges clamped.
fn box_blur(rgb: &[u8], w: u32, h: u32, r: i32) -> Vec<u8> {
    let (w, h) = (w as i32, h as i32);
    let pass = |src: &[u8], horizontal: bool| -> Vec<u8> {
        let mut out = vec![0u8; src.len()];
        let (outer, inner) = if horizontal { (h, w) } else { (w, h) };
        let idx = |o: i32, k: i32| if horizontal { ((o * w + k) * 3) as usize } else { ((k * w + o) * 3) as usize };
        for o in 0..outer {
            for ch in 0..3 {
                let at = |k: i32| src[idx(o, k.clamp(0, inner - 1)) + ch] as i32;
                let mut sum: i32 = (-r..=r).map(at).sum();
                for k in 0..inner {
                    out[idx(o, k) + ch] = (sum / (2 * r + 1)) as u8;
                    sum += at(k + r + 1) - at(k - r);
                }
            }
        }
        out
    };
    pass(&pass(rgb, true), false)
}

/// For every pixel of `frame`: 0 where it shows the background, else one past the lowest row
/// of the foreground run it belongs to in its column (short gaps bridged). A foreground pixel
/// whose run reaches below an object's base belongs to something in front of the object.
/// `diff` gets the summed difference from the median (saturated at 255).
fn foreground_runs(frame: &[u8], median: &[u8], w: u32, h: u32, out: &mut Vec<u16>, diff: &mut Vec<u8>) {
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
struct Layer {
    id: u32,
    class: &'static str,
    x0: i32,
    y0: i32,
    w: i32,
    h: i32,
    base: f32,
    /// Premultiplied RGB and alpha, row-major.
    px: Vec<[f32; 4]>,
    /// Mean of the median background around the object (for per-frame light matching).
    ref_mean: f32,
}

/// Draws one object with the renderer's drawing code on a large canvas and cuts it out:
/// RGBA (alpha from the id layer) and the height in pixels of a person standing there.
fn cut_out(draw: impl FnOnce(&mut Canvas, f32, f32)) -> (u32, u32, Vec<[f32; 4]>, f32) {
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
fn mean_rgb(rgb: &[u8], w: u32, h: u32, b: [i32; 4]) -> [f32; 3] {
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
    fn place(id: u32, class: &'static str, cut: &(u32, u32, Vec<[f32; 4]>, f32), fx: f32, fy: f32, ground: &GroundPlane, median: &[u8], w: u32, h: u32) -> Layer {
        let (cw, ch, src, person) = cut;
        let s = ground.person_px(fy, h) / person;
        let (ow, oh) = (((*cw as f32 * s).ceil() as i32).max(1), ((*ch as f32 * s).ceil() as i32).max(1));
        // one pixel of margin on each side for the blur
        let (bw, bh) = (ow + 2, oh + 2);
        let mut acc = vec![[0f32; 4]; (bw * bh) as usize];
        let mut cnt = vec![0f32; (bw * bh) as usize];
        for y in 0..*ch {
            let oy = ((y as f32 * s) as i32).min(oh - 1) + 1;
            for x in 0..*cw {
                let ox = ((x as f32 * s) as i32).min(ow - 1) + 1;
                let o = (oy * bw + ox) as usize;
                let p = src[(y * cw + x) as usize];
                for k in 0..4 {
                    acc[o][k] += p[k];
                }
                cnt[o] += 1.0;
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
        let x0 = (fx - (bw as f32) * 0.5).round() as i32;
        let y0 = (fy - (oh + 1) as f32).round() as i32;
        // colour matching: less saturated than the renderer's cartoon colours, brightness moved
        // towards the local background's, and the scene's colour cast
        let around = [x0 - bw / 2, y0, x0 + bw + bw / 2, y0 + bh + bh / 4];
        let bg = mean_rgb(median, w, h, around);
        let (sa, sl) = px.iter().fold((0f32, 0f32), |(sa, sl), p| (sa + p[3], sl + luma([p[0], p[1], p[2]])));
        let obj_l = if sa > 0.0 { sl / sa } else { 128.0 };
        let bg_l = luma(bg).max(1.0);
        let gain = (bg_l / obj_l.max(1.0)).powf(0.4).clamp(0.7, 1.3);
        let cast = bg.map(|v| (v / bg_l).powf(0.3));
        for p in &mut px {
            let l = luma([p[0], p[1], p[2]]);
            for k in 0..3 {
                p[k] = ((l + (p[k] - l) * 0.55) * gain * cast[k]).max(0.0);
            }
        }
        Layer { id, class, x0, y0, w: bw, h: bh, base: fy, px, ref_mean: luma(bg) }
    }

    /// Composites the layer and its contact shadow onto `rgb`, hidden where a real person in
    /// front covers it; marks its visible pixels in `ids`. Returns the drawn box and its drawn
    /// and visible pixel counts.
    fn draw(&self, rgb: &mut [u8], ids: &mut [u32], fg: &[u16], w: u32, h: u32) -> ([f32; 4], u32, u32) {
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
fn draw_wet(p: &Puddle, mirror: bool, t: f32, src: &[u8], smooth: &[u8], diff: &[u8], rgb: &mut [u8], water: &mut [u8], w: u32, h: u32) {
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
                let ry = top - (yf - top) * 1.6 + 1.2 * (0.23 * xf + 1.9 * t).sin();
                let sample = |yy: f32| {
                    let (sx, sy) = ((rx.round() as i32).clamp(0, wi - 1), (yy.round() as i32).clamp(0, hi - 1));
                    let j = ((sy * wi + sx) * 3) as usize;
                    [src[j] as f32, src[j + 1] as f32, src[j + 2] as f32]
                };
                let (r0, r1) = (sample(ry), sample(ry - 2.0));
                let sky = [176.0, 184.0, 194.0];
                let tint = [0.95, 0.98, 1.04];
                [0, 1, 2].map(|k| {
                    let refl = 0.5 * (r0[k] + r1[k]) * 0.8 + sky[k] * 0.2;
                    (0.35 * ground[k] * 0.6 + 0.65 * refl * 0.8) * tint[k]
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

/// An object of the scenario: its layer and when it is there.
struct Placed {
    layer: Layer,
    from: f64,
    until: f64,
}

/// A wet area of the scenario: standing water (coverage keyframes) or a wet patch.
enum Wet {
    Water { center: [f32; 2], size: [f32; 2], coverage: Vec<[f64; 2]>, seed: u64 },
    Patch(Puddle),
}

/// Renders scenario `s` (which has a background) into `out`: `video.mp4`, `truth.json` (object
/// boxes, events, flood levels graded on the true water mask's share of each flooding zone,
/// one water mask PNG per second when the scenario has wet ground) and `config.toml`.
pub fn render(s: &Scenario, name: &str, out: &Path, model: &Path) -> anyhow::Result<Rendered> {
    let b = s.background.as_ref().context("a real-background scenario needs [background]")?;
    let (w, h) = (s.width, s.height);
    let zones = s.parsed_zones().map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
    let plate = Plate::load(b, w, h)?;
    let ground = GroundPlane::of(b);
    let px = |p: [f32; 2]| (p[0] * w as f32, p[1] * h as f32);
    let mut rng = Rng::new(s.seed);
    let mut objects = Vec::new();
    let mut wet = Vec::new();
    for (i, a) in s.actors.iter().enumerate() {
        let (goods, item) = (GoodsLook::random(&mut rng, None), ItemLook::random(&mut rng));
        let placed = match a {
            Actor::Vendor { at, arrive, leave, style } => {
                let style = style.as_deref().map(|st| match st {
                    "crates" => scene::GoodsStyle::Crates,
                    "rack" => scene::GoodsStyle::Rack,
                    _ => scene::GoodsStyle::Table,
                });
                let look = GoodsLook { style: style.unwrap_or(goods.style), ..goods };
                Some((render::object_id(i, 1), "goods", cut_out(|c, x, y| {
                    scene::goods(c, x, y, &look);
                }), *at, *arrive, *leave))
            }
            Actor::Dumper { drop_at, drop: t0, removed, .. } => {
                Some((render::object_id(i, 2), "garbage", cut_out(|c, x, y| {
                    scene::item(c, x, y, &item);
                }), render::set_down_point(*drop_at), *t0, removed.unwrap_or(f64::INFINITY)))
            }
            Actor::Pickup { at, put, pick, .. } => Some((render::object_id(i, 2), "garbage", cut_out(|c, x, y| {
                    scene::item(c, x, y, &item);
                }), render::set_down_point(*at), *put, *pick)),
            Actor::Water { center, size, coverage } => {
                wet.push(Wet::Water { center: *center, size: *size, coverage: coverage.clone(), seed: s.seed ^ i as u64 });
                None
            }
            Actor::WetShadow { center, size } => {
                let (cx, cy) = px(*center);
                wet.push(Wet::Patch(Puddle { cx, cy, hw: size[0] * w as f32 * 0.5, hh: size[1] * h as f32 * 0.5, seed: s.seed ^ (i as u64 * 77) }));
                None
            }
            _ => None,
        };
        if let Some((id, class, cut, at, from, until)) = placed {
            let g = ground.context("objects need a ground plane")?;
            let (fx, fy) = px(at);
            objects.push(Placed { layer: Layer::place(id, class, &cut, fx, fy, &g, &plate.median, w, h), from, until });
        }
    }
    objects.sort_by(|a, b| a.layer.base.total_cmp(&b.layer.base));
    // pixels of each flooding zone, for the true coverage
    let flood_idx: Vec<usize> = zones.iter().enumerate().filter(|(_, z)| z.kind == ZoneKind::Flooding).map(|(i, _)| i).collect();
    let zone_px: Vec<Vec<usize>> = flood_idx
        .iter()
        .map(|zi| {
            let poly = Polygon::new(&zones[*zi].polygon);
            (0..(w * h) as usize).filter(|i| poly.contains_px((i % w as usize) as f32 + 0.5, (i / w as usize) as f32 + 0.5, w, h)).collect()
        })
        .collect();
    let mut coverage: Vec<Vec<f64>> = vec![Vec::new(); flood_idx.len()];
    let masks_dir = out.join("water");
    if !wet.is_empty() {
        std::fs::create_dir_all(&masks_dir).with_context(|| format!("create {}", masks_dir.display()))?;
    }
    let video = out.join("video.mp4");
    let mut writer = super::video::Mp4Writer::create(&video, w, h, s.fps, s.scene.bitrate_kbps)?;
    let mut fx = Effects::new(s.seed);
    let mut canvas = Canvas::new(w, h);
    let (mut fg, mut diff, mut ids, mut water) = (Vec::new(), Vec::new(), vec![NO_OBJECT; (w * h) as usize], vec![0u8; (w * h) as usize]);
    let n_frames = (s.duration_s * s.fps as f64).round() as usize;
    let mut frames = Vec::with_capacity(n_frames);
    let mut water_masks = Vec::new();
    let bar = indicatif::ProgressBar::new(n_frames as u64).with_message(name.to_string());
    for i in 0..n_frames {
        let t = i as f64 / s.fps as f64;
        let bg = &plate.frames[pingpong(i, plate.frames.len())];
        let rgb = &mut canvas.rgb;
        rgb.copy_from_slice(bg);
        foreground_runs(bg, &plate.median, w, h, &mut fg, &mut diff);
        ids.fill(NO_OBJECT);
        water.fill(0);
        for wa in &wet {
            match wa {
                Wet::Water { center, size, coverage, seed } => {
                    if let Some(p) = render::puddle_at(*center, *size, coverage, t, w as f32, h as f32, *seed) {
                        draw_wet(&p, true, t as f32, bg, &plate.smooth, &diff, rgb, &mut water, w, h);
                    }
                }
                Wet::Patch(p) => draw_wet(p, false, t as f32, bg, &plate.smooth, &diff, rgb, &mut water, w, h),
            }
        }
        let mut drawn = Vec::new();
        for o in objects.iter().filter(|o| t >= o.from && t < o.until) {
            let (bbox, n, _) = o.layer.draw(rgb, &mut ids, &fg, w, h);
            drawn.push((o.layer.id, o.layer.class, bbox, n));
        }
        // an object nearer the camera drawn later may hide one further away
        let boxes: Vec<TruthBox> = drawn
            .into_iter()
            .filter_map(|(id, class, bb, n)| {
                let visible = count_id(&ids, w, id, bb);
                let ok = n > 0 && visible as f32 >= MIN_VISIBLE * n as f32 && bb[2] - bb[0] >= 3.0 && bb[3] - bb[1] >= 3.0;
                ok.then(|| TruthBox { class: class.to_string(), id, bbox: bb })
            })
            .collect();
        for (k, idx) in zone_px.iter().enumerate() {
            let wet_px = idx.iter().filter(|j| water[**j] != 0).count();
            coverage[k].push(wet_px as f64 / idx.len().max(1) as f64);
        }
        if !wet.is_empty() && i % s.fps as usize == 0 {
            let file = format!("water/{i:06}.png");
            image::GrayImage::from_raw(w, h, water.clone()).context("mask size")?.save(out.join(&file)).with_context(|| format!("write {file}"))?;
            water_masks.push(WaterMaskTruth { frame: i as u64, t, file });
        }
        for [a, b] in &s.scene.shadows {
            if t >= *a && t < *b {
                fx.cloud_shadow(&mut canvas, ((t - a) / (b - a)) as f32);
            }
        }
        let gain = render::keyframe(&s.scene.light, t, 1.0) as f32;
        fx.light_and_noise(&mut canvas, gain, s.scene.noise);
        writer.push(&canvas.rgb)?;
        frames.push(FrameTruth { t, boxes });
        bar.inc(1);
    }
    bar.finish_and_clear();
    writer.finish()?;
    let times: Vec<f64> = frames.iter().map(|f| f.t).collect();
    let (events, flood) = super::truth_events(s, &zones, &flood_idx, &coverage, &times);
    let truth = Truth { name: name.to_string(), width: w, height: h, fps: s.fps as f64, duration_s: n_frames as f64 / s.fps as f64, frames, events, flood, water_masks };
    let truth_path = out.join("truth.json");
    std::fs::write(&truth_path, serde_json::to_vec(&truth)?)?;
    let config = out.join("config.toml");
    std::fs::write(&config, super::camera_config(s, name, &video, model, out)?)?;
    Ok(Rendered { video, truth_path, config, truth })
}

/// Pixels of `ids` showing object `id` inside box `b`.
fn count_id(ids: &[u32], w: u32, id: u32, b: [f32; 4]) -> usize {
    let h = ids.len() as u32 / w;
    let (x0, y0) = ((b[0].max(0.0) as u32).min(w), (b[1].max(0.0) as u32).min(h));
    let (x1, y1) = ((b[2].max(0.0) as u32).min(w), (b[3].max(0.0) as u32).min(h));
    (y0..y1).map(|y| ids[(y * w + x0) as usize..(y * w + x1) as usize].iter().filter(|v| **v == id).count()).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pingpong_turns_at_both_ends() {
        let seq: Vec<usize> = (0..9).map(|i| pingpong(i, 4)).collect();
        assert_eq!(seq, [0, 1, 2, 3, 2, 1, 0, 1, 2]);
        assert_eq!(pingpong(5, 1), 0);
    }

    #[test]
    fn vtest_ground_plane_matches_measured_people() {
        let g = GroundPlane { k: VTEST_GROUND[0], c: VTEST_GROUND[1] };
        // measured means at 768×576 (see VTEST_GROUND): 72 px at y 200–250, 106 px at y 350–400
        assert!((g.person_px(225.0, 576) - 72.0).abs() < 4.0, "{}", g.person_px(225.0, 576));
        assert!((g.person_px(375.0, 576) - 106.0).abs() < 4.0, "{}", g.person_px(375.0, 576));
        // the law scales with the frame: half the size at half the resolution
        assert!((g.person_px(187.5, 288) * 2.0 - g.person_px(375.0, 576)).abs() < 0.01);
    }

    #[test]
    fn foreground_runs_end_at_the_feet() {
        let (w, h) = (2u32, 10u32);
        let median = vec![100u8; (w * h * 3) as usize];
        let mut frame = median.clone();
        // column 0: a "person" from row 2 to row 7 with a one-row gap at row 4
        for y in [2, 3, 5, 6, 7] {
            let i = (y * w) as usize * 3;
            frame[i..i + 3].copy_from_slice(&[200, 200, 200]);
        }
        let (mut out, mut diff) = (Vec::new(), Vec::new());
        foreground_runs(&frame, &median, w, h, &mut out, &mut diff);
        let col0: Vec<u16> = (0..h).map(|y| out[(y * w) as usize]).collect();
        assert_eq!(col0, [0, 0, 8, 8, 0, 8, 8, 8, 0, 0]);
        assert!((0..h).all(|y| out[(y * w + 1) as usize] == 0));
    }

    #[test]
    fn real_background_refuses_what_it_cannot_draw() {
        let text = "seed = 1\nduration_s = 5\n[background]\nvideo = \"tree\"\nstart_frame = 40\nend_frame = 30\n[[actor]]\nkind = \"car\"\ny = 0.5\nstart = 0\ncross_s = 3\n[[actor]]\nkind = \"dumper\"\nfrom = [0.1, 0.5]\ndrop_at = [0.3, 0.5]\ndrop = 1\nto = [0.6, 0.5]\n";
        let s: Scenario = toml::from_str(text).unwrap();
        let p = s.problems();
        assert!(p.iter().any(|m| m.starts_with("background.end_frame")), "{p:?}");
        assert!(p.iter().any(|m| m.starts_with("background.ground")), "{p:?}");
        assert!(p.iter().any(|m| m.starts_with("actor[0]")), "{p:?}");
        assert!(find_video("/no/such/video.avi").unwrap_err().to_string().contains("not found"));
    }
}
