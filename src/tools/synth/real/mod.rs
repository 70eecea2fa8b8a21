//! Real-background scenarios: the actors of a scenario composited onto the decoded frames of a
//! real video (`[background] video = "vtest"`) instead of the drawn street.
//!
//! The background plays frames `start_frame..=end_frame` forwards and backwards in turn, so the
//! real people in it never jump. Only things the real scene lacks are drawn: goods set out
//! (vendors), bags and boxes (dumpers, pick-ups), standing water and wet patches, and cars that
//! drive in, stop and drive off (parked cars, queues; see `cars.rs`). Persons are
//! not drawn: the video holds real people, and the renderer's cartoon persons would teach the
//! suite nothing about real ones. The rules need no person either (out-of-store counts goods in
//! its zone; dumping counts a waste object that stays; its dumper is optional), so a vendor's or
//! dumper's objects simply appear at `arrive`/`drop` and go at `leave`/`removed`.
//!
//! Compositing ([`composite`]), so the objects belong to the scene rather than float on it:
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

mod cars;
mod composite;
mod people;

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

use super::canvas::{Canvas, Rng, NO_OBJECT};
use super::crowd::{self, Member};
use super::render::{self, Effects};
use super::scenario::{Actor, Background, Scenario};
use super::scene::{self, GoodsLook, ItemLook, Puddle};
use super::truth::{FrameTruth, Truth, TruthBox, WaterMaskTruth};
use super::Rendered;
use composite::{cut_out, draw_wet, foreground_runs, Layer};
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
        bail!("video {name:?}: {} not found (vtest and tree are Debian's opencv-doc samples: run scripts/setup.sh)", p.display());
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
    let objects = s.actors.iter().any(|a| matches!(a, Actor::Vendor { .. } | Actor::Dumper { .. } | Actor::Pickup { .. } | Actor::Litter { .. } | Actor::Bin { .. } | Actor::ParkedCar { .. } | Actor::Queue { .. } | Actor::Crowd { .. } | Actor::Walkers { .. }));
    if objects && GroundPlane::of(b).is_none() {
        e.push(format!("background.ground: {:?} has no measured ground plane; give ground = [k, c] (person height in frame heights = k * y + c)", b.video));
    }
    if s.scene.rain.is_some() {
        e.push("scene.rain: rain is drawn for the drawn street only".into());
    }
    if s.scene.shake_px > 0.0 {
        e.push("scene.shake_px: a real background is not shaken (its water masks would not follow)".into());
    }
    for (i, a) in s.actors.iter().enumerate() {
        if crowd::members(a).len() > 60 {
            e.push(format!("actor[{i}].count: at most 60 people per actor"));
        }
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
        let path = find_video(&b.video).map_err(|e| anyhow::anyhow!("[background] {e}"))?;
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
pub fn render(s: &Scenario, name: &str, out: &Path, model: &Path, water_model: Option<&Path>) -> anyhow::Result<Rendered> {
    let b = s.background.as_ref().context("a real-background scenario needs [background]")?;
    let (w, h) = (s.width, s.height);
    let zones = s.parsed_zones().map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
    let plate = Plate::load(b, w, h)?;
    let ground = GroundPlane::of(b);
    let px = |p: [f32; 2]| (p[0] * w as f32, p[1] * h as f32);
    let mut rng = Rng::new(s.seed);
    let mut objects = Vec::new();
    let mut wet = Vec::new();
    let mut cars = Vec::new();
    for (i, a) in s.actors.iter().enumerate() {
        let (goods, item) = (GoodsLook::random(&mut rng, None), ItemLook::random(&mut rng));
        let mut placed = match a {
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
            Actor::ParkedCar { .. } | Actor::Queue { .. } => {
                ground.context("cars need a ground plane")?;
                cars.extend(cars::of_actor(s, i, a));
                None
            }
            Actor::WetShadow { center, size } => {
                let (cx, cy) = px(*center);
                wet.push(Wet::Patch(Puddle { cx, cy, hw: size[0] * w as f32 * 0.5, hh: size[1] * h as f32 * 0.5, seed: s.seed ^ (i as u64 * 77) }));
                None
            }
            _ => None,
        }
        .into_iter()
        .collect::<Vec<_>>();
        match a {
            Actor::Litter { at, appear, removed } => {
                for (k, p) in at.iter().enumerate() {
                    let look = render::litter_look(s.seed, i, k);
                    let until = removed.get(k).copied().unwrap_or(f64::INFINITY);
                    placed.push((render::object_id(i, 4 + k), "garbage", cut_out(|c, x, y| {
                        scene::item(c, x, y, &look);
                    }), *p, appear[k], until));
                }
            }
            Actor::Bin { at, look } => placed.push((render::object_id(i, 1), render::SCENERY, cut_out(|c, x, y| {
                scene::bin(c, x, y, *look);
            }), *at, f64::NEG_INFINITY, f64::INFINITY)),
            _ => {}
        }
        for (id, class, cut, at, from, until) in placed {
            let g = ground.context("objects need a ground plane")?;
            let (fx, fy) = px(at);
            objects.push(Placed { layer: Layer::place(id, class, &cut, fx, fy, &g, &plate.median, w, h), from, until });
        }
    }
    objects.sort_by(|a, b| a.layer.base.total_cmp(&b.layer.base));
    // real people (crowds, walkers): each a cut-out of a training frame, re-placed every frame
    // where its path has it
    let mut people: Vec<Person> = Vec::new();
    for (i, a) in s.actors.iter().enumerate() {
        for (k, m) in crowd::members(a).into_iter().enumerate() {
            people.push(Person { id: render::object_id(i, k), cut: 0, flip: false, path: m });
        }
    }
    let bank = if people.is_empty() {
        Vec::new()
    } else {
        let g = ground.context("people need a ground plane")?;
        people::person_bank(&find_video(&b.video)?, w, h, &g)?
    };
    for p in people.iter_mut() {
        p.cut = rng.below(bank.len());
        p.flip = rng.chance(0.5);
    }
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
        let standing: Vec<Layer> = match ground {
            Some(g) => people
                .iter()
                .filter_map(|p| p.path.at(t).map(|at| (p, at)))
                .map(|(p, at)| Layer::person(p.id, &bank[p.cut], p.flip, at[0] * w as f32, at[1] * h as f32, &g, &plate.median, w, h))
                .collect(),
            None => Vec::new(),
        };
        // cars move: placed anew each frame where they are
        let car_layers: Vec<Layer> = match ground {
            Some(g) => cars.iter().filter_map(|c| c.layer_at(t, &g, &plate.median, w, h)).collect(),
            None => Vec::new(),
        };
        // farthest first: whatever stands nearer the camera is drawn over it
        let mut layers: Vec<&Layer> = objects.iter().filter(|o| t >= o.from && t < o.until).map(|o| &o.layer).chain(&standing).chain(&car_layers).collect();
        layers.sort_by(|a, b| a.base.total_cmp(&b.base));
        let mut drawn = Vec::new();
        for l in layers {
            let (bbox, n, _) = l.draw(rgb, &mut ids, &fg, w, h);
            drawn.push((l.id, l.class, bbox, n));
        }
        // an object nearer the camera drawn later may hide one further away
        let boxes: Vec<TruthBox> = drawn
            .into_iter()
            .filter(|(_, class, _, _)| *class != render::SCENERY)
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
    // persons have boxes only where people were composited: the video's own have none. With drawn
    // cars, vehicle detections are scored too, so that the drawn cars' recall shows; the precision
    // is understated: vtest's own van and car parked at the top right have no truth boxes
    let mut labelled: Vec<String> = vec!["goods".into(), "garbage".into()];
    if !cars.is_empty() {
        labelled.push("vehicle".into());
    }
    let partial: Vec<String> = if people.is_empty() { Vec::new() } else { vec!["person".into()] };
    labelled.extend(partial.iter().cloned());
    let truth = Truth { name: name.to_string(), width: w, height: h, fps: s.fps as f64, duration_s: n_frames as f64 / s.fps as f64, frames, events, flood, water_masks, labelled: Some(labelled), partial };
    let truth_path = out.join("truth.json");
    std::fs::write(&truth_path, serde_json::to_vec(&truth)?)?;
    let config = out.join("config.toml");
    std::fs::write(&config, super::camera_config(s, name, &video, model, water_model, out)?)?;
    Ok(Rendered { video, truth_path, config, truth })
}

/// A real person of a crowd or a file of walkers: which cut-out, mirrored or not, and its path.
struct Person {
    id: u32,
    cut: usize,
    flip: bool,
    path: Member,
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

    #[test]
    fn the_real_suite_keeps_to_the_evaluation_footage() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let seeds_of = |dir: &str| -> Vec<(std::path::PathBuf, Scenario)> {
            let mut v: Vec<_> = std::fs::read_dir(root.join(dir)).unwrap().map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|x| x == "toml")).collect();
            v.sort();
            v.into_iter().map(|p| (p.clone(), Scenario::load(&p).unwrap_or_else(|e| panic!("{e}")))).collect()
        };
        let real = seeds_of("tests/scenarios_real");
        let drawn: Vec<u64> = seeds_of("tests/scenarios").iter().map(|(_, s)| s.seed).collect();
        let (mut oos, mut dumping, mut parking, mut crowd) = (0, 0, 0, 0);
        let mut seeds = std::collections::BTreeSet::new();
        for (p, s) in &real {
            let b = s.background.as_ref().unwrap_or_else(|| panic!("{}: no [background]", p.display()));
            // vtest.avi frames 0–399 are training backgrounds; tree.avi has no ground
            assert_eq!(b.video, "vtest", "{}", p.display());
            assert!(b.start_frame >= 400 && b.end_frame <= 794, "{}", p.display());
            assert!((40.0..=90.0).contains(&s.duration_s), "{}", p.display());
            assert!(seeds.insert(s.seed) && !drawn.contains(&s.seed), "{}: seed {} used before", p.display(), s.seed);
            let times: Vec<f64> = (0..(s.duration_s * s.fps as f64) as usize).map(|i| i as f64 / s.fps as f64).collect();
            for e in super::super::actor_events(s, &s.parsed_zones().unwrap(), &times).iter().filter(|e| e.end - e.start >= e.dwell_s) {
                match e.kind.as_str() {
                    "out_of_store" => oos += 1,
                    "dumping" => dumping += 1,
                    "parking" => parking += 1,
                    "crowd" => crowd += 1,
                    _ => {}
                }
            }
        }
        assert!(real.len() >= 10, "{} scenarios", real.len());
        assert!(oos >= 10 && dumping >= 10 && parking >= 10 && crowd >= 10, "{oos} out-of-store, {dumping} dumping, {parking} parking and {crowd} crowd events");
    }
}
