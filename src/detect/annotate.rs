//! Drawing detections and zone outlines onto RGB images for annotated evidence snapshots.
//! Pure pixel functions: everything is clipped to the image, nothing panics on odd input.
//! Labels use a small hand-made 5×7 bitmap font (upper-case letters, digits, a few signs).

use image::{Rgb, RgbImage};

use super::types::{BBox, Detection};

/// Distinct, saturated colours; class `i` gets `PALETTE[i % len]`.
const PALETTE: [[u8; 3]; 12] = [
    [255, 56, 56],
    [255, 157, 151],
    [255, 112, 31],
    [255, 178, 29],
    [207, 210, 49],
    [72, 249, 10],
    [26, 147, 52],
    [0, 212, 187],
    [44, 153, 168],
    [0, 194, 255],
    [52, 69, 147],
    [203, 56, 255],
];

/// The colour used for a class.
pub fn class_colour(class_id: usize) -> Rgb<u8> {
    Rgb(PALETTE[class_id % PALETTE.len()])
}

/// Fills the rectangle `[x0, x1) × [y0, y1)`, clipped to the image.
pub fn fill_rect(img: &mut RgbImage, x0: i64, y0: i64, x1: i64, y1: i64, colour: Rgb<u8>) {
    let (w, h) = (img.width() as i64, img.height() as i64);
    let (x0, x1) = (x0.clamp(0, w), x1.clamp(0, w));
    let (y0, y1) = (y0.clamp(0, h), y1.clamp(0, h));
    for y in y0..y1 {
        for x in x0..x1 {
            img.put_pixel(x as u32, y as u32, colour);
        }
    }
}

/// Draws the outline of `b` (frame pixels) with lines `thickness` pixels wide, inside the box.
pub fn draw_box(img: &mut RgbImage, b: &BBox, colour: Rgb<u8>, thickness: u32) {
    let t = thickness.max(1) as i64;
    let (x0, y0) = (b.x1.round() as i64, b.y1.round() as i64);
    let (x1, y1) = (b.x2.round() as i64, b.y2.round() as i64);
    if x1 <= x0 || y1 <= y0 {
        return;
    }
    fill_rect(img, x0, y0, x1, (y0 + t).min(y1), colour); // top
    fill_rect(img, x0, (y1 - t).max(y0), x1, y1, colour); // bottom
    fill_rect(img, x0, y0, (x0 + t).min(x1), y1, colour); // left
    fill_rect(img, (x1 - t).max(x0), y0, x1, y1, colour); // right
}

/// 5×7 glyph: seven rows, bit 4 is the leftmost column.
fn glyph(c: char) -> [u8; 7] {
    match c.to_ascii_uppercase() {
        '0' => [0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E],
        '1' => [0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E],
        '2' => [0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F],
        '3' => [0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E],
        '4' => [0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02],
        '5' => [0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E],
        '6' => [0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E],
        '7' => [0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08],
        '8' => [0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E],
        '9' => [0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C],
        'A' => [0x0E, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11],
        'B' => [0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E],
        'C' => [0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E],
        'D' => [0x1C, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1C],
        'E' => [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F],
        'F' => [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10],
        'G' => [0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F],
        'H' => [0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11],
        'I' => [0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E],
        'J' => [0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C],
        'K' => [0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11],
        'L' => [0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F],
        'M' => [0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11],
        'N' => [0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11],
        'O' => [0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E],
        'P' => [0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10],
        'Q' => [0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D],
        'R' => [0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11],
        'S' => [0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E],
        'T' => [0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04],
        'U' => [0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E],
        'V' => [0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04],
        'W' => [0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A],
        'X' => [0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11],
        'Y' => [0x11, 0x11, 0x0A, 0x04, 0x04, 0x04, 0x04],
        'Z' => [0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F],
        '-' => [0x00, 0x00, 0x00, 0x1F, 0x00, 0x00, 0x00],
        '_' => [0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x1F],
        '.' => [0x00, 0x00, 0x00, 0x00, 0x00, 0x0C, 0x0C],
        ':' => [0x00, 0x0C, 0x0C, 0x00, 0x0C, 0x0C, 0x00],
        '%' => [0x18, 0x19, 0x02, 0x04, 0x08, 0x13, 0x03],
        ' ' => [0x00; 7],
        _ => [0x0E, 0x11, 0x01, 0x02, 0x04, 0x00, 0x04], // '?'
    }
}

/// Width and height in pixels of `text` drawn at `scale` (1 = 5×7 glyphs, 1 px apart).
pub fn text_size(text: &str, scale: u32) -> (u32, u32) {
    let n = text.chars().count() as u32;
    (if n == 0 { 0 } else { (6 * n - 1) * scale }, 7 * scale)
}

/// Draws `text` with its top-left corner at (x, y), each font pixel a `scale`×`scale` square.
pub fn draw_text(img: &mut RgbImage, x: i64, y: i64, text: &str, colour: Rgb<u8>, scale: u32) {
    let s = scale.max(1) as i64;
    for (i, c) in text.chars().enumerate() {
        let gx = x + i as i64 * 6 * s;
        for (row, bits) in glyph(c).iter().enumerate() {
            for col in 0..5 {
                if bits & (0x10 >> col) != 0 {
                    let (px, py) = (gx + col * s, y + row as i64 * s);
                    fill_rect(img, px, py, px + s, py + s, colour);
                }
            }
        }
    }
}

/// Black or white, whichever reads better on `bg`.
fn contrast(bg: Rgb<u8>) -> Rgb<u8> {
    let [r, g, b] = bg.0;
    let luma = 299 * r as u32 + 587 * g as u32 + 114 * b as u32;
    if luma > 128_000 {
        Rgb([0, 0, 0])
    } else {
        Rgb([255, 255, 255])
    }
}

/// Draws `text` on a filled `bg` tag whose bottom-left corner is at (x, y), moved inside the
/// image when it would stick out above or to the right.
pub fn draw_label(img: &mut RgbImage, x: i64, y: i64, text: &str, bg: Rgb<u8>, scale: u32) {
    let (tw, th) = text_size(text, scale);
    let pad = scale as i64;
    let (w, h) = (tw as i64 + 2 * pad, th as i64 + 2 * pad);
    let x = x.min(img.width() as i64 - w).max(0);
    let top = (y - h).max(0);
    fill_rect(img, x, top, x + w, top + h, bg);
    draw_text(img, x + pad, top + pad, text, contrast(bg), scale);
}

/// Draws each detection's box (class colour, 2–3 px) and a `class score` label above it.
pub fn draw_detections(img: &mut RgbImage, detections: &[Detection]) {
    let big = img.height() >= 720;
    let (thickness, scale) = if big { (3, 2) } else { (2, 1) };
    for d in detections {
        let colour = class_colour(d.class_id);
        draw_box(img, &d.bbox, colour, thickness);
        let label = format!("{} {:.0}%", d.class, d.score * 100.0);
        draw_label(
            img,
            d.bbox.x1.round() as i64,
            d.bbox.y1.round() as i64,
            &label,
            colour,
            scale,
        );
    }
}

/// Draws a line with Bresenham's algorithm, each point a `thickness`-wide square.
pub fn draw_line(
    img: &mut RgbImage,
    from: (i64, i64),
    to: (i64, i64),
    colour: Rgb<u8>,
    thickness: u32,
) {
    let t = thickness.max(1) as i64;
    let half = (t - 1) / 2;
    let (mut x, mut y) = from;
    let (dx, dy) = ((to.0 - x).abs(), -(to.1 - y).abs());
    let (sx, sy) = (if x < to.0 { 1 } else { -1 }, if y < to.1 { 1 } else { -1 });
    let mut err = dx + dy;
    loop {
        fill_rect(img, x - half, y - half, x - half + t, y - half + t, colour);
        if (x, y) == to {
            break;
        }
        let e2 = 2 * err;
        if e2 >= dy {
            err += dy;
            x += sx;
        }
        if e2 <= dx {
            err += dx;
            y += sy;
        }
    }
}

/// Draws a closed polygon outline (zone) through `points_px` (frame pixels), 2 px wide.
pub fn draw_polygon(img: &mut RgbImage, points_px: &[(f32, f32)], colour: Rgb<u8>) {
    // Far-off points would make Bresenham walk for a long time; zones live near the frame.
    let limit = 4.0 * (img.width().max(img.height()) as f32 + 1.0);
    let pt = |p: &(f32, f32)| {
        (
            p.0.clamp(-limit, limit).round() as i64,
            p.1.clamp(-limit, limit).round() as i64,
        )
    };
    for (i, p) in points_px.iter().enumerate() {
        let q = &points_px[(i + 1) % points_px.len()];
        draw_line(img, pt(p), pt(q), colour, 2);
    }
}

/// Colour of the water overlay, and how much of it shows over the picture.
const WATER_TINT: [f32; 3] = [30.0, 110.0, 255.0];
const WATER_ALPHA: f32 = 0.45;

/// Tints the water pixels of `mask` (same size as `img`; otherwise nothing is drawn) with a
/// translucent blue, so what is under the water stays visible.
pub fn overlay_water(img: &mut RgbImage, mask: &super::segment::WaterMask) {
    if img.dimensions() != (mask.width, mask.height) {
        return;
    }
    for (px, wet) in img.pixels_mut().zip(&mask.data) {
        if *wet != 0 {
            for (c, t) in px.0.iter_mut().zip(WATER_TINT) {
                *c = (*c as f32 * (1.0 - WATER_ALPHA) + t * WATER_ALPHA).round() as u8;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BLACK: Rgb<u8> = Rgb([0, 0, 0]);
    const RED: Rgb<u8> = Rgb([255, 0, 0]);

    fn count(img: &RgbImage, c: Rgb<u8>) -> usize {
        img.pixels().filter(|p| **p == c).count()
    }

    #[test]
    fn box_outline_has_the_right_thickness_and_is_clipped() {
        let mut img = RgbImage::from_pixel(20, 20, BLACK);
        draw_box(&mut img, &BBox::new(2.0, 2.0, 12.0, 8.0), RED, 2);
        // 10x6 box, 2px ring: 60 - 6*2 = 48 pixels.
        assert_eq!(count(&img, RED), 48);
        assert_eq!(*img.get_pixel(2, 2), RED);
        assert_eq!(*img.get_pixel(5, 5), BLACK);
        assert_eq!(*img.get_pixel(12, 5), BLACK); // x2 is exclusive
                                                  // Off-image boxes do not panic.
        draw_box(&mut img, &BBox::new(-50.0, -5.0, 500.0, 300.0), RED, 3);
        draw_box(&mut img, &BBox::new(5.0, 5.0, 5.0, 9.0), RED, 3);
    }

    #[test]
    fn text_renders_glyph_bits() {
        let mut img = RgbImage::from_pixel(20, 10, BLACK);
        draw_text(&mut img, 0, 0, "1", RED, 1);
        // '1' has 4+... pixels: rows 0x04,0x0C,0x04,0x04,0x04,0x04,0x0E → 1+2+1+1+1+1+3.
        assert_eq!(count(&img, RED), 10);
        assert_eq!(*img.get_pixel(2, 0), RED);
        assert_eq!(text_size("ab", 2), (22, 14));
        assert_eq!(glyph('a'), glyph('A'));
        // Every glyph of the label alphabet is distinct from the fallback.
        for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:% ".chars() {
            assert_ne!(glyph(c), glyph('\u{1}'), "{c}");
        }
    }

    #[test]
    fn labels_stay_inside_the_image() {
        let mut img = RgbImage::from_pixel(30, 30, BLACK);
        let green = Rgb([0, 200, 0]);
        draw_label(&mut img, 25, 0, "ABC", green, 1);
        assert_eq!(*img.get_pixel(29, 0), green);
        draw_detections(
            &mut img,
            &[Detection {
                class_id: 0,
                class: "person".into(),
                score: 0.9,
                bbox: BBox::new(5.0, 10.0, 25.0, 28.0),
            }],
        );
        assert_eq!(*img.get_pixel(5, 27), class_colour(0));
    }

    #[test]
    fn bresenham_lines_and_polygons() {
        let mut img = RgbImage::from_pixel(10, 10, BLACK);
        draw_line(&mut img, (0, 0), (9, 9), RED, 1);
        assert_eq!(count(&img, RED), 10);
        assert!((0..10).all(|i| *img.get_pixel(i, i) == RED));

        let mut img = RgbImage::from_pixel(10, 10, BLACK);
        draw_line(&mut img, (0, 0), (9, 3), RED, 1);
        assert_eq!(count(&img, RED), 10); // one pixel per column on a shallow line
        assert_eq!(*img.get_pixel(9, 3), RED);

        let mut img = RgbImage::from_pixel(20, 20, BLACK);
        draw_polygon(&mut img, &[(2.0, 2.0), (15.0, 2.0), (15.0, 15.0)], RED);
        assert_eq!(*img.get_pixel(8, 2), RED);
        assert_eq!(*img.get_pixel(15, 8), RED);
        assert_eq!(*img.get_pixel(8, 8), RED); // on the diagonal
        assert_eq!(*img.get_pixel(12, 4), BLACK); // inside
        draw_polygon(&mut img, &[(-1e9, 0.0), (1e9, 5.0)], RED);
        draw_polygon(&mut img, &[], RED);
    }
}
