//! Real people for crowds on a real background: single persons cut out of the video's training
//! frames (vtest.avi 0–399; the suite's backgrounds are 400–794), to be composited standing or
//! walking where a scenario puts them.
//!
//! A person is a connected blob of foreground (pixels far from the per-pixel median of the
//! training frames, closed by one pixel to fill small holes) whose size fits one standing
//! person where it stands: height within 0.8–1.3 of the ground plane's person height at its
//! feet (two people side by side, or one with a long shadow, fail the width test; a bag or a
//! car fails the height), 0.2–0.65 as wide as tall, at least 35 % of its box filled, clear of
//! the frame's edges. Its alpha is the blob itself, so the background around it never travels.

use std::path::Path;

use anyhow::bail;

use super::composite::FG_THRESHOLD;
use super::{decode_each, median_of, GroundPlane};

/// The last frame of the video's training half: people are only ever cut from frames before it.
pub const TRAIN_LAST_FRAME: usize = 399;
/// Every this many training frames one is searched for people (the same person moves on
/// between them, so the bank holds different poses).
const SOURCE_EVERY: usize = 20;
/// A blob's height against the ground plane's person height where its feet are.
const HEIGHT_FIT: std::ops::Range<f32> = 0.8..1.3;
/// A blob's width against its height.
const ASPECT: std::ops::Range<f32> = 0.2..0.65;
/// Share of the blob's box it fills.
const MIN_FILL: f32 = 0.35;

/// One person cut out of a training frame: premultiplied RGBA over its box, feet at the bottom
/// centre.
pub(in crate::tools::synth) struct Cutout {
    pub(super) w: u32,
    pub(super) h: u32,
    pub(super) px: Vec<[f32; 4]>,
    /// The person's height in the cut-out, in pixels.
    pub(super) person_h: f32,
    /// The training frame it came from, and its box there (read by the tests).
    #[cfg_attr(not(test), allow(dead_code))]
    pub(super) frame: usize,
    #[cfg_attr(not(test), allow(dead_code))]
    pub(super) bbox: [u32; 4],
}

/// Cuts the single persons out of frames 0–[`TRAIN_LAST_FRAME`] of `video`, decoded at
/// `w`×`h`; fails when there are none.
pub(super) fn person_bank(video: &Path, w: u32, h: u32, ground: &GroundPlane) -> anyhow::Result<Vec<Cutout>> {
    let (mut for_median, mut sources) = (Vec::new(), Vec::new());
    let n = decode_each(video, Some((w, h)), |i, rgb, _, _| {
        if i % 4 == 0 {
            for_median.push(rgb.to_vec());
        }
        if i % SOURCE_EVERY == SOURCE_EVERY / 2 {
            sources.push((i, rgb.to_vec()));
        }
        i < TRAIN_LAST_FRAME
    })?;
    if n <= TRAIN_LAST_FRAME {
        bail!("{}: {n} frames, fewer than the {} training frames people are cut from", video.display(), TRAIN_LAST_FRAME + 1);
    }
    let median = median_of(&for_median, 1);
    let bank: Vec<Cutout> = sources.iter().flat_map(|(i, f)| cut_people(*i, f, &median, w, h, ground)).collect();
    if bank.is_empty() {
        bail!("{}: no single person found in the training frames to cut out", video.display());
    }
    Ok(bank)
}

/// The single persons of frame `index` (`frame`, packed RGB) against the background `median`.
pub(super) fn cut_people(index: usize, frame: &[u8], median: &[u8], w: u32, h: u32, ground: &GroundPlane) -> Vec<Cutout> {
    let (wu, hu) = (w as usize, h as usize);
    let fg: Vec<bool> = (0..wu * hu)
        .map(|i| {
            let (f, m) = (&frame[i * 3..i * 3 + 3], &median[i * 3..i * 3 + 3]);
            (0..3).map(|c| (f[c] as i32 - m[c] as i32).abs()).sum::<i32>() > FG_THRESHOLD && !shadow(f, m)
        })
        .collect();
    let closed = erode(&dilate(&fg, wu, hu), wu, hu);
    let mut label = vec![0u32; wu * hu];
    let mut out = Vec::new();
    let mut next = 0;
    let mut stack = Vec::new();
    for start in 0..wu * hu {
        if !closed[start] || label[start] != 0 {
            continue;
        }
        next += 1;
        label[start] = next;
        stack.push(start);
        let (mut x0, mut y0, mut x1, mut y1, mut n) = (wu, hu, 0, 0, 0usize);
        while let Some(i) = stack.pop() {
            let (x, y) = (i % wu, i / wu);
            (x0, y0, x1, y1, n) = (x0.min(x), y0.min(y), x1.max(x + 1), y1.max(y + 1), n + 1);
            for (dx, dy) in [(-1i32, 0i32), (1, 0), (0, -1), (0, 1), (-1, -1), (1, -1), (-1, 1), (1, 1)] {
                let (nx, ny) = (x as i32 + dx, y as i32 + dy);
                if nx >= 0 && ny >= 0 && (nx as usize) < wu && (ny as usize) < hu {
                    let j = ny as usize * wu + nx as usize;
                    if closed[j] && label[j] == 0 {
                        label[j] = next;
                        stack.push(j);
                    }
                }
            }
        }
        let (bw, bh) = ((x1 - x0) as f32, (y1 - y0) as f32);
        let fits = bh >= 24.0
            && HEIGHT_FIT.contains(&(bh / ground.person_px(y1 as f32, h)))
            && ASPECT.contains(&(bw / bh))
            && n as f32 >= MIN_FILL * bw * bh
            && x0 >= 2
            && y0 >= 2
            && x1 + 2 <= wu
            && y1 + 2 <= hu;
        if !fits {
            continue;
        }
        let px = (y0..y1)
            .flat_map(|y| (x0..x1).map(move |x| y * wu + x))
            .map(|i| {
                let a = if label[i] == next { 1.0 } else { 0.0 };
                [frame[i * 3] as f32 * a, frame[i * 3 + 1] as f32 * a, frame[i * 3 + 2] as f32 * a, a]
            })
            .collect();
        out.push(Cutout { w: (x1 - x0) as u32, h: (y1 - y0) as u32, px, person_h: bh, frame: index, bbox: [x0 as u32, y0 as u32, x1 as u32, y1 as u32] });
    }
    out
}

/// Whether pixel `f` looks like the background `m` in shadow: darker by the same factor in
/// every channel. A person's shadow on the road would otherwise come along as a grey halo
/// round the feet.
fn shadow(f: &[u8], m: &[u8]) -> bool {
    let r = [0, 1, 2].map(|c| (f[c] as f32 + 1.0) / (m[c] as f32 + 1.0));
    let mean = (r[0] + r[1] + r[2]) / 3.0;
    (0.5..0.95).contains(&mean) && r.iter().all(|v| (v - mean).abs() < 0.05)
}

/// 3×3 dilation of a mask.
fn dilate(m: &[bool], w: usize, h: usize) -> Vec<bool> {
    morph(m, w, h, true)
}

/// 3×3 erosion of a mask (the frame's border counts as set).
fn erode(m: &[bool], w: usize, h: usize) -> Vec<bool> {
    morph(m, w, h, false)
}

fn morph(m: &[bool], w: usize, h: usize, grow: bool) -> Vec<bool> {
    (0..w * h)
        .map(|i| {
            let (x, y) = ((i % w) as i32, (i / w) as i32);
            let mut any = false;
            let mut all = true;
            for dy in -1..=1 {
                for dx in -1..=1 {
                    let (nx, ny) = (x + dx, y + dy);
                    let v = if nx >= 0 && ny >= 0 && (nx as usize) < w && (ny as usize) < h { m[ny as usize * w + nx as usize] } else { !grow };
                    any |= v;
                    all &= v;
                }
            }
            if grow {
                any
            } else {
                all
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_person_shaped_blob_is_cut_two_side_by_side_and_a_bag_are_not() {
        let (w, h) = (200u32, 200u32);
        let ground = GroundPlane { k: 0.0, c: 0.3 }; // a person is 60 px tall anywhere
        let median = vec![100u8; (w * h * 3) as usize];
        let mut frame = median.clone();
        let mut paint = |x0: u32, y0: u32, x1: u32, y1: u32| {
            for y in y0..y1 {
                for x in x0..x1 {
                    let i = ((y * w + x) * 3) as usize;
                    frame[i..i + 3].copy_from_slice(&[30, 40, 200]);
                }
            }
        };
        paint(20, 40, 40, 100); // a person: 20×60
        paint(80, 40, 140, 100); // two people shoulder to shoulder: 60×60
        paint(160, 150, 185, 170); // a bag: 25×20
        let cut = cut_people(7, &frame, &median, w, h, &ground);
        assert_eq!(cut.len(), 1);
        let c = &cut[0];
        assert_eq!((c.frame, c.bbox, c.w, c.h, c.person_h), (7, [20, 40, 40, 100], 20, 60, 60.0));
        // opaque inside, the person's own colours premultiplied
        assert_eq!(c.px[0], [30.0, 40.0, 200.0, 1.0]);
    }

    #[test]
    fn vtest_gives_many_people_all_from_its_training_half() {
        let Ok(video) = super::super::find_video("vtest") else { panic!("vtest.avi missing: run scripts/setup.sh") };
        let g = GroundPlane { k: super::super::VTEST_GROUND[0], c: super::super::VTEST_GROUND[1] };
        let bank = person_bank(&video, 640, 480, &g).unwrap();
        assert!(bank.len() >= 20, "{} people", bank.len());
        assert!(bank.iter().all(|c| c.frame <= TRAIN_LAST_FRAME && c.bbox[3] <= 480 && c.person_h >= 24.0));
        // from many frames, not one
        let frames: std::collections::BTreeSet<usize> = bank.iter().map(|c| c.frame).collect();
        assert!(frames.len() >= 10, "{frames:?}");
    }

    #[test]
    fn closing_fills_pinholes_but_keeps_apart_what_is_apart() {
        let (w, h) = (9, 5);
        let mut m = vec![false; w * h];
        for x in 1..4 {
            for y in 1..4 {
                m[y * w + x] = true;
            }
        }
        m[2 * w + 2] = false; // a hole
        m[2 * w + 7] = true; // a lone pixel four columns away
        let c = erode(&dilate(&m, w, h), w, h);
        assert!(c[2 * w + 2], "the hole is filled");
        assert!(!c[2 * w + 5], "the gap between the two stays");
    }
}
