//! `hawkeye synth --sprites N`: the scenario renderer's goods and garbage as cut-outs (RGBA PNG,
//! alpha from the object-id layer), for compositing onto real footage when training the
//! real-street detector (`models/train/`). Each object is drawn near the camera, where the
//! renderer draws it largest; the compositor scales it to where it stands in the real scene.
//!
//! Layout: `NNNNNN.png` and `sprites.json` (a list of `{file, class, width, height}`).

use std::path::Path;

use anyhow::Context;
use serde::Serialize;

use super::canvas::{Canvas, Rng, NO_OBJECT};
use super::scene::{self, GoodsLook, ItemLook};

/// One cut-out in `sprites.json`.
#[derive(Serialize)]
struct SpriteFile {
    file: String,
    class: &'static str,
    width: u32,
    height: u32,
}

/// Canvas the objects are drawn on; the ground point sits near its bottom (largest scale).
const SIDE: u32 = 720;
const ID: u32 = 1;

/// Draws one random object (a stall, an item or a pile of items) with pen `ID`; returns its class.
fn draw(c: &mut Canvas, rng: &mut Rng) -> &'static str {
    let (fx, fy) = (SIDE as f32 * 0.5, SIDE as f32 * 0.92);
    c.pen = ID;
    if rng.chance(0.45) {
        scene::goods(c, fx, fy, &GoodsLook::random(rng, None));
        return "goods";
    }
    // a single bag or box, or a pile of them dumped together (labelled as one)
    let n = if rng.chance(0.25) { 2 + rng.below(3) } else { 1 };
    for k in 0..n {
        let dx = if k == 0 { 0.0 } else { rng.range(-40.0, 40.0) };
        let dy = if k == 0 { 0.0 } else { rng.range(-12.0, 6.0) };
        scene::item(c, fx + dx, fy + dy, &ItemLook::random(rng));
    }
    "garbage"
}

/// Writes `n` cut-outs under `out`; returns how many of each class.
pub fn write_sprites(out: &Path, n: usize, seed: u64) -> anyhow::Result<(usize, usize)> {
    std::fs::create_dir_all(out).with_context(|| format!("create {}", out.display()))?;
    let mut index = Vec::with_capacity(n);
    let mut counts = (0, 0);
    let bar = indicatif::ProgressBar::new(n as u64).with_message("sprites");
    for k in 0..n {
        let mut rng = Rng::new(seed.wrapping_mul(7_919).wrapping_add(k as u64));
        let mut c = Canvas::new(SIDE, SIDE);
        c.pen = NO_OBJECT;
        let class = draw(&mut c, &mut rng);
        let (mut x0, mut y0, mut x1, mut y1) = (SIDE, SIDE, 0, 0);
        for (i, id) in c.ids.iter().enumerate() {
            if *id == ID {
                let (x, y) = (i as u32 % SIDE, i as u32 / SIDE);
                (x0, y0, x1, y1) = (x0.min(x), y0.min(y), x1.max(x + 1), y1.max(y + 1));
            }
        }
        anyhow::ensure!(x1 > x0 && y1 > y0, "sprite {k}: nothing drawn");
        let mut img = image::RgbaImage::new(x1 - x0, y1 - y0);
        for (x, y, p) in img.enumerate_pixels_mut() {
            let i = ((y + y0) * SIDE + x + x0) as usize;
            let a = if c.ids[i] == ID { 255 } else { 0 };
            *p = image::Rgba([c.rgb[i * 3], c.rgb[i * 3 + 1], c.rgb[i * 3 + 2], a]);
        }
        let file = format!("{k:06}.png");
        img.save(out.join(&file)).with_context(|| format!("write {file}"))?;
        index.push(SpriteFile { file, class, width: img.width(), height: img.height() });
        if class == "goods" {
            counts.0 += 1;
        } else {
            counts.1 += 1;
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    std::fs::write(out.join("sprites.json"), serde_json::to_vec_pretty(&index)?)?;
    Ok(counts)
}
