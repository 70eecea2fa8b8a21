//! `hawkeye synth --dataset N`: randomised street pictures with YOLO-format labels, drawn by the
//! same code as the scenario videos, for training hawkeye's own detector.
//!
//! Layout: `images/{train,val}/NNNNNN.jpg`, `labels/{train,val}/NNNNNN.txt` (one
//! `class cx cy w h` line per object, normalised), `masks/{train,val}/NNNNNN.png` (the visible
//! standing water, 255 = water, from the object-id layer), `classes.txt`. Every tenth picture
//! is `val`.

use std::io::Write;
use std::path::Path;

use anyhow::Context;

use super::canvas::Rng;
use super::render::{bike_color, Effects, Ground, Painter, Shape, Sprite};
use super::scene::{self, CarLook, GoodsLook, ItemLook, PersonLook, Puddle, Street};
use super::truth::{TruthBox, CLASSES};

/// One random picture: ground layers and objects placed anywhere they plausibly stand.
fn random_scene(rng: &mut Rng, w: f32, h: f32, ground: &mut Vec<Ground>, sprites: &mut Vec<Sprite>) {
    let mut next_id = 1u32;
    let mut id = || {
        next_id += 1;
        next_id
    };
    let sidewalk = |rng: &mut Rng| rng.range(scene::STORE_LINE + 0.02, scene::CURB - 0.005);
    let road = |rng: &mut Rng| rng.range(scene::ROAD_TOP + 0.04, 0.99);
    // standing water, mostly on the road, sometimes several puddles
    let puddles = if rng.chance(0.5) { 1 + rng.below(3) } else { 0 };
    for _ in 0..puddles {
        let on_walk = rng.chance(0.12);
        let cy = if on_walk { sidewalk(rng) } else { road(rng) };
        let (hw, hh) = (rng.range(0.04, 0.35) * w, rng.range(0.02, 0.12) * h * if on_walk { 0.5 } else { 1.0 });
        ground.push(Ground::Water { id: id(), puddle: Puddle { cx: rng.range(-0.1, 1.1) * w, cy: cy * h, hw, hh, seed: rng.next_u64() } });
    }
    if rng.chance(0.3) {
        let p = Puddle { cx: rng.range(0.0, 1.0) * w, cy: road(rng) * h, hw: rng.range(0.05, 0.25) * w, hh: rng.range(0.02, 0.1) * h, seed: rng.next_u64() };
        ground.push(Ground::WetShadow(p));
    }
    // pedestrians, some carrying a bag
    for _ in 0..rng.below(6) {
        let y = if rng.chance(0.8) { sidewalk(rng) } else { road(rng) };
        let carrying = rng.chance(0.3);
        let look = PersonLook::random(rng);
        let (fx, fy) = (rng.range(-0.03, 1.03) * w, y * h);
        let phase = if rng.chance(0.3) { 0.0 } else { rng.range(0.0, super::canvas::PHASE_MAX) };
        sprites.push(Sprite { id: id(), fx, fy, shape: Shape::Person { look, phase, arm_out: carrying } });
        if carrying {
            let (cx, cy) = scene::carry_point(h as u32, fx, fy, &look);
            sprites.push(Sprite { id: id(), fx: cx, fy: cy, shape: Shape::Item(ItemLook::random(rng)) });
        }
    }
    // stalls, usually with their vendor
    for _ in 0..rng.below(3) {
        let (fx, fy) = (rng.range(0.0, 1.0) * w, sidewalk(rng) * h);
        sprites.push(Sprite { id: id(), fx, fy, shape: Shape::Goods(GoodsLook::random(rng, None)) });
        if rng.chance(0.7) {
            let side = if rng.chance(0.5) { 1.0 } else { -1.0 };
            sprites.push(Sprite { id: id(), fx: fx + side * rng.range(0.06, 0.12) * w, fy: fy + 0.012 * h, shape: Shape::Person { look: PersonLook::random(rng), phase: 0.0, arm_out: false } });
        }
    }
    // garbage left on the sidewalk or the road edge
    for _ in 0..rng.below(5) {
        let y = if rng.chance(0.85) { sidewalk(rng) } else { rng.range(scene::ROAD_TOP + 0.01, scene::ROAD_TOP + 0.08) };
        sprites.push(Sprite { id: id(), fx: rng.range(0.0, 1.0) * w, fy: y * h, shape: Shape::Item(ItemLook::random(rng)) });
    }
    // a row of parked bicycles
    if rng.chance(0.45) {
        let n = 1 + rng.below(7);
        let (x0, y) = (rng.range(-0.05, 0.9), sidewalk(rng));
        let gap = rng.range(0.05, 0.09);
        for k in 0..n {
            let yk = (y + rng.range(-0.01, 0.01)).min(scene::CURB);
            sprites.push(Sprite { id: id(), fx: (x0 + k as f32 * gap) * w, fy: yk * h, shape: Shape::Bicycle(bike_color(rng)) });
        }
    }
    // cars on the road
    for _ in 0..rng.below(3) {
        sprites.push(Sprite { id: id(), fx: rng.range(-0.2, 1.2) * w, fy: rng.range(0.68, 0.99) * h, shape: Shape::Car(CarLook::random(rng)) });
    }
}

/// Writes `n` labelled pictures under `out`; returns (train, val) counts.
pub fn write_dataset(out: &Path, n: usize, seed: u64, width: u32, height: u32) -> anyhow::Result<(usize, usize)> {
    for split in ["train", "val"] {
        std::fs::create_dir_all(out.join("images").join(split))?;
        std::fs::create_dir_all(out.join("labels").join(split))?;
        std::fs::create_dir_all(out.join("masks").join(split))?;
    }
    std::fs::write(out.join("classes.txt"), CLASSES.join("\n") + "\n")?;
    let (w, h) = (width as f32, height as f32);
    let (mut ground, mut sprites) = (Vec::new(), Vec::new());
    let mut scratch = Vec::new();
    let mut counts = (0, 0);
    for k in 0..n {
        let mut rng = Rng::new(seed.wrapping_mul(1_000_003).wrapping_add(k as u64));
        let mut painter = Painter::new(Street::new(width, height, &mut rng));
        ground.clear();
        sprites.clear();
        random_scene(&mut rng, w, h, &mut ground, &mut sprites);
        let boxes = painter.paint(&ground, &mut sprites, rng.range(0.0, 100.0));
        let water_ids: Vec<u32> = ground.iter().filter_map(|g| if let Ground::Water { id, .. } = g { Some(*id) } else { None }).collect();
        let mask: Vec<u8> = painter.canvas.ids.iter().map(|id| if water_ids.contains(id) { 255 } else { 0 }).collect();
        let mut fx = Effects::new(rng.next_u64());
        if rng.chance(0.15) {
            fx.rain(&mut painter.canvas);
        }
        if rng.chance(0.2) {
            let p = rng.f32();
            fx.cloud_shadow(&mut painter.canvas, p);
        }
        let gain = rng.range(0.6, 1.3);
        let noise = rng.range(0.0, 7.0);
        fx.light_and_noise(&mut painter.canvas, gain, noise);
        let (dx, dy) = fx.shake(&mut painter.canvas, if rng.chance(0.3) { 2.0 } else { 0.0 }, &mut scratch);
        let split = if k % 10 == 9 { "val" } else { "train" };
        let name = format!("{k:06}");
        let quality = 50 + rng.below(45) as u8;
        let img = image::RgbImage::from_raw(width, height, painter.canvas.rgb.clone()).context("image size")?;
        let file = std::fs::File::create(out.join("images").join(split).join(format!("{name}.jpg")))?;
        let mut enc = image::codecs::jpeg::JpegEncoder::new_with_quality(std::io::BufWriter::new(file), quality);
        enc.encode_image(&img).context("JPEG")?;
        image::GrayImage::from_raw(width, height, mask).context("mask size")?.save(out.join("masks").join(split).join(format!("{name}.png")))?;
        let mut labels = std::io::BufWriter::new(std::fs::File::create(out.join("labels").join(split).join(format!("{name}.txt")))?);
        for b in shifted(&boxes, dx, dy, w, h) {
            let Some(ci) = CLASSES.iter().position(|c| *c == b.class) else { continue };
            let [x1, y1, x2, y2] = b.bbox;
            writeln!(labels, "{ci} {:.6} {:.6} {:.6} {:.6}", (x1 + x2) / 2.0 / w, (y1 + y2) / 2.0 / h, (x2 - x1) / w, (y2 - y1) / h)?;
        }
        labels.flush()?;
        if split == "val" {
            counts.1 += 1;
        } else {
            counts.0 += 1;
        }
    }
    Ok(counts)
}

/// Boxes moved with the picture by camera shake, clipped; boxes pushed off the edge are dropped.
pub fn shifted(boxes: &[TruthBox], dx: i32, dy: i32, w: f32, h: f32) -> Vec<TruthBox> {
    boxes
        .iter()
        .filter_map(|b| {
            let [x1, y1, x2, y2] = b.bbox;
            let nb = [(x1 + dx as f32).clamp(0.0, w), (y1 + dy as f32).clamp(0.0, h), (x2 + dx as f32).clamp(0.0, w), (y2 + dy as f32).clamp(0.0, h)];
            (nb[2] - nb[0] >= 3.0 && nb[3] - nb[1] >= 3.0).then(|| TruthBox { bbox: nb, ..b.clone() })
        })
        .collect()
}
