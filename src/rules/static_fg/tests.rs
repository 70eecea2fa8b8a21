//! Unit tests of the static-foreground detector on synthetic frames.

use super::*;

const W: u32 = 640;
const H: u32 = 360;
const FPS: f64 = 10.0;

/// Grey textured background (coarse 8-px blocks, 80..160) with a little per-frame noise.
fn background(frame: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity((W * H * 3) as usize);
    let mut seed = frame.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    for y in 0..H {
        for x in 0..W {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let noise = (seed % 9) as i32 - 4;
            let v = 80 + (((x / 8) * 37 + (y / 8) * 53) % 80) as i32 + noise;
            let v = v.clamp(0, 255) as u8;
            out.extend_from_slice(&[v, v, v]);
        }
    }
    out
}

fn paint(img: &mut [u8], x0: u32, y0: u32, x1: u32, y1: u32, rgb: [u8; 3]) {
    for y in y0.min(H)..y1.min(H) {
        for x in x0.min(W)..x1.min(W) {
            let i = ((y * W + x) * 3) as usize;
            img[i..i + 3].copy_from_slice(&rgb);
        }
    }
}

/// Runs frames at `FPS` over [0, `to`) s; `frame(t, img)` draws on the background. Returns
/// (t, blobs) for every frame.
fn run(to: f64, frame: impl Fn(f64, &mut Vec<u8>)) -> Vec<(f64, Vec<BBox>)> {
    let mut sf = StaticForeground::new(StaticFgParams::default());
    let mut out = Vec::new();
    let mut i = 0u64;
    loop {
        let t = i as f64 / FPS;
        if t >= to {
            break;
        }
        let mut img = background(i);
        frame(t, &mut img);
        out.push((t, sf.observe(&img, W, H, t)));
        i += 1;
    }
    out
}

fn first_blob(frames: &[(f64, Vec<BBox>)]) -> Option<(f64, BBox)> {
    frames.iter().find(|(_, b)| !b.is_empty()).map(|(t, b)| (*t, b[0]))
}

#[test]
fn downscale_geometry_keeps_aspect_ratio() {
    let mut sf = StaticForeground::new(StaticFgParams::default());
    sf.observe(&background(0), W, H, 0.0);
    assert_eq!(sf.downscaled_size(), (160, 90));
    // a short buffer is ignored
    assert!(sf.observe(&[0; 10], W, H, 0.1).is_empty());
}

#[test]
fn left_object_is_reported_after_min_static_s_at_its_place() {
    let p = StaticFgParams::default();
    let frames = run(40.0, |t, img| {
        if t >= 10.0 {
            paint(img, 302, 201, 342, 243, [230, 230, 230]);
        }
    });
    let (t, b) = first_blob(&frames).expect("a blob");
    assert!(t >= 10.0 + p.min_static_s, "reported too early at {t}");
    assert!(t <= 10.0 + p.min_static_s + 3.0, "reported too late at {t}");
    for (got, want) in [(b.x1, 302.0), (b.y1, 201.0), (b.x2, 342.0), (b.y2, 243.0)] {
        assert!((got - want).abs() <= 4.0, "bbox {b:?}");
    }
    // it stays reported while the object stays (long-term background absorbs it slowly)
    for (t, blobs) in frames.iter().filter(|(ft, _)| *ft >= t) {
        assert_eq!(blobs.len(), 1, "at {t}: {blobs:?}");
    }
}

#[test]
fn dark_object_is_reported_too() {
    let frames = run(25.0, |t, img| {
        if t >= 10.0 {
            paint(img, 100, 100, 140, 150, [10, 10, 10]);
        }
    });
    let (t, b) = first_blob(&frames).expect("a blob");
    assert!((15.0..=18.0).contains(&t), "{t}");
    assert!((b.x1 - 100.0).abs() <= 4.0 && (b.y2 - 150.0).abs() <= 4.0, "{b:?}");
}

#[test]
fn walking_person_leaves_no_blob() {
    let frames = run(30.0, |t, img| {
        if (5.0..20.0).contains(&t) {
            // 40×90 px, 50 px/s across the frame
            let x = ((t - 5.0) * 50.0) as u32;
            paint(img, x, 150, x + 40, 240, [200, 60, 60]);
        }
    });
    assert_eq!(first_blob(&frames), None);
}

#[test]
fn object_removed_after_3_s_leaves_no_blob() {
    let frames = run(40.0, |t, img| {
        if (10.0..13.0).contains(&t) {
            paint(img, 302, 201, 342, 243, [230, 230, 230]);
        }
    });
    assert_eq!(first_blob(&frames), None);
}

#[test]
fn global_brightness_change_leaves_no_blob() {
    let frames = run(40.0, |t, img| {
        if t >= 10.0 {
            for v in img.iter_mut() {
                *v = ((*v as f32) * 1.3).min(255.0) as u8;
            }
        }
    });
    assert_eq!(first_blob(&frames), None);
    let frames = run(40.0, |t, img| {
        if t >= 10.0 {
            for v in img.iter_mut() {
                *v = ((*v as f32) * 0.7) as u8;
            }
        }
    });
    assert_eq!(first_blob(&frames), None);
}

#[test]
fn scene_change_reseeds_instead_of_reporting() {
    // the camera turns: a different texture from t = 10
    let frames = run(40.0, |t, img| {
        if t >= 10.0 {
            for (i, px) in img.chunks_exact_mut(3).enumerate() {
                let (x, y) = (i as u32 % W, i as u32 / W);
                let v = 40 + ((x / 16 * 71 + y / 16 * 29) % 180) as u8;
                px.copy_from_slice(&[v, v, v]);
            }
        }
    });
    assert_eq!(first_blob(&frames), None);
}

#[test]
fn removed_background_object_is_not_a_ghost_blob() {
    // present from the first frame (reference), taken away at t = 10
    let frames = run(40.0, |t, img| {
        if t < 10.0 {
            paint(img, 302, 201, 342, 243, [230, 230, 230]);
        }
    });
    assert_eq!(first_blob(&frames), None);
}

#[test]
fn object_placed_where_one_was_removed_is_reported() {
    // a background object removed at t = 10, a different one put at the same place at 20
    let frames = run(40.0, |t, img| {
        if t < 10.0 {
            paint(img, 302, 201, 342, 243, [230, 230, 230]);
        } else if t >= 20.0 {
            paint(img, 302, 201, 342, 243, [20, 20, 20]);
        }
    });
    let (t, _) = first_blob(&frames).expect("a blob");
    assert!(t >= 25.0, "{t}");
}
