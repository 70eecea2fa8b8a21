//! The street a synthetic camera looks at, and how each kind of object is drawn on it.
//!
//! The camera is fixed and looks across a road at a row of shops: storefront facades at the top
//! of the frame, the sidewalk in front of them (the storefront line is the facades' lower edge),
//! the curb, then the road nearest the camera. Ground positions are given as the normalised
//! image point where an object touches the ground ("foot"); objects nearer the camera (lower in
//! the frame) are drawn larger, which gives the perspective.

use super::canvas::{mix, shade, Canvas, Rng};

/// Normalised y of the storefront line (facades end, sidewalk begins).
pub const STORE_LINE: f32 = 0.36;
/// Normalised y of the curb (sidewalk ends).
pub const CURB: f32 = 0.56;
/// Normalised y where the road surface begins (below the curb stone).
pub const ROAD_TOP: f32 = 0.585;

/// Size of an object at normalised ground height `y`, relative to one at the bottom edge.
pub fn depth_scale(y: f32) -> f32 {
    0.45 + 0.55 * ((y - 0.30) / 0.70).clamp(0.0, 1.0)
}

/// The look of the fixed scene, derived from a seed.
#[derive(Clone, Debug)]
pub struct Street {
    pub width: u32,
    pub height: u32,
    shops: Vec<Shop>,
    sky: [u8; 3],
    sidewalk: [u8; 3],
    road: [u8; 3],
    tile_px: f32,
    texture_seed: u64,
}

#[derive(Clone, Debug)]
struct Shop {
    x0: f32,
    x1: f32,
    wall: [u8; 3],
    sign: [u8; 3],
    door: f32,
}

impl Street {
    pub fn new(width: u32, height: u32, rng: &mut Rng) -> Street {
        let mut shops = Vec::new();
        let mut x = -rng.range(0.0, 0.1);
        while x < 1.0 {
            let w = rng.range(0.16, 0.3);
            shops.push(Shop {
                x0: x,
                x1: x + w,
                wall: rng.jitter_pick(&[[170, 160, 150], [190, 180, 160], [150, 140, 140], [200, 195, 185], [160, 120, 100]], 25.0),
                sign: rng.jitter_pick(&[[200, 40, 40], [40, 90, 170], [220, 180, 40], [40, 140, 80], [120, 60, 140]], 30.0),
                door: rng.range(0.25, 0.75),
            });
            x += w;
        }
        Street {
            width,
            height,
            shops,
            sky: rng.jitter([150, 170, 190], 20.0),
            sidewalk: rng.jitter([165, 160, 150], 18.0),
            road: rng.jitter([85, 85, 88], 12.0),
            tile_px: rng.range(18.0, 30.0),
            texture_seed: rng.next_u64(),
        }
    }

    fn px(&self, x: f32) -> f32 {
        x * self.width as f32
    }
    fn py(&self, y: f32) -> f32 {
        y * self.height as f32
    }

    /// Paints the empty street.
    pub fn paint(&self, c: &mut Canvas) {
        let (w, h) = (self.width as f32, self.height as f32);
        c.pen = super::canvas::NO_OBJECT;
        c.vgradient(0.0, 0.0, w, self.py(0.06), self.sky, mix(self.sky, [230, 230, 235], 0.5));
        for s in &self.shops {
            let (x0, x1) = (self.px(s.x0), self.px(s.x1));
            c.rect(x0, self.py(0.04), x1, self.py(STORE_LINE), s.wall);
            c.rect(x0, self.py(0.04), x0 + 2.0, self.py(STORE_LINE), shade(s.wall, 0.7));
            // upper-floor windows
            let n = ((x1 - x0) / 28.0).max(1.0) as i32;
            for i in 0..n {
                let wx = x0 + (i as f32 + 0.25) * (x1 - x0) / n as f32;
                c.rect(wx, self.py(0.07), wx + (x1 - x0) / n as f32 * 0.5, self.py(0.14), [70, 85, 100]);
            }
            // shop sign and shop window with a door
            c.rect(x0 + 3.0, self.py(0.17), x1 - 3.0, self.py(0.21), s.sign);
            c.rect(x0 + 5.0, self.py(0.23), x1 - 5.0, self.py(STORE_LINE), [60, 70, 80]);
            c.rect(x0 + 7.0, self.py(0.245), x1 - 7.0, self.py(STORE_LINE) - 2.0, [95, 110, 120]);
            let dx = x0 + (x1 - x0) * s.door;
            c.rect(dx - 8.0, self.py(0.24), dx + 8.0, self.py(STORE_LINE), [50, 40, 35]);
        }
        // sidewalk tiles, denser far away
        c.rect(0.0, self.py(STORE_LINE), w, self.py(CURB), self.sidewalk);
        let mut y = self.py(STORE_LINE);
        while y < self.py(CURB) {
            let step = self.tile_px * depth_scale(y / h) * 0.5;
            c.rect(0.0, y, w, y + 1.0, shade(self.sidewalk, 0.85));
            y += step;
        }
        let mut x = 0.0;
        while x < w {
            c.line(x, self.py(STORE_LINE), x + (x - w * 0.5) * 0.15, self.py(CURB), 1.0, shade(self.sidewalk, 0.88));
            x += self.tile_px;
        }
        // curb stone and road with lane markings
        c.vgradient(0.0, self.py(CURB), w, self.py(ROAD_TOP), [190, 188, 180], [120, 118, 115]);
        c.rect(0.0, self.py(ROAD_TOP), w, h, self.road);
        let lane_y = self.py(0.79);
        let mut x = 10.0;
        while x < w {
            c.rect(x, lane_y, x + 40.0, lane_y + 4.0, [215, 215, 205]);
            x += 80.0;
        }
        // asphalt texture: fixed speckles
        let mut r = Rng::new(self.texture_seed);
        for _ in 0..(self.width * self.height / 60) {
            let (x, y) = (r.range(0.0, w), r.range(self.py(ROAD_TOP), h));
            let g = r.range(0.8, 1.2);
            c.rect(x, y, x + 2.0, y + 1.0, shade(self.road, g));
        }
        for _ in 0..(self.width * self.height / 200) {
            let (x, y) = (r.range(0.0, w), r.range(self.py(STORE_LINE), self.py(CURB)));
            c.rect(x, y, x + 1.0, y + 1.0, shade(self.sidewalk, r.range(0.85, 1.1)));
        }
    }
}

/// How a person looks (picked once per person).
#[derive(Clone, Copy, Debug)]
pub struct PersonLook {
    pub shirt: [u8; 3],
    pub pants: [u8; 3],
    pub skin: [u8; 3],
    pub hair: [u8; 3],
    pub height: f32,
}

impl PersonLook {
    pub fn random(rng: &mut Rng) -> Self {
        let shirts = [[200, 40, 40], [40, 80, 160], [230, 230, 230], [40, 40, 45], [60, 140, 70], [220, 170, 40], [130, 80, 150], [240, 120, 40]];
        PersonLook {
            shirt: rng.jitter_pick(&shirts, 20.0),
            pants: rng.jitter_pick(&[[40, 40, 60], [30, 30, 30], [90, 80, 70], [60, 70, 110]], 15.0),
            skin: rng.jitter_pick(&[[225, 185, 150], [190, 145, 110], [150, 105, 75]], 12.0),
            hair: rng.jitter_pick(&[[25, 20, 20], [70, 50, 30], [120, 120, 120]], 10.0),
            height: rng.range(0.9, 1.1),
        }
    }
}

/// Base person height in frame-height units at depth scale 1.
const PERSON_H: f32 = 0.42;

/// Draws a person standing at foot point (fx, fy) (pixels), facing sideways, with legs at walk
/// `phase` (radians; 0 = standing). Returns the box.
pub fn person(c: &mut Canvas, fx: f32, fy: f32, look: &PersonLook, phase: f32, arm_out: bool) -> [f32; 4] {
    let s = depth_scale(fy / c.height as f32);
    let h = PERSON_H * c.height as f32 * s * look.height;
    let leg = h * 0.45;
    let swing = phase.sin() * h * 0.09;
    let lw = (h * 0.075).max(1.5);
    // legs
    c.line(fx - lw * 0.4, fy - leg, fx - lw * 0.4 + swing, fy - lw * 0.5, lw, look.pants);
    c.line(fx + lw * 0.4, fy - leg, fx + lw * 0.4 - swing, fy - lw * 0.5, lw, shade(look.pants, 0.8));
    // torso and arms
    let tw = h * 0.24;
    c.rect(fx - tw * 0.5, fy - h * 0.80, fx + tw * 0.5, fy - leg + 1.0, look.shirt);
    let arm = if arm_out { h * 0.16 } else { -swing * 0.8 };
    c.line(fx + tw * 0.45, fy - h * 0.78, fx + tw * 0.5 + arm, fy - h * 0.47, lw * 0.8, shade(look.shirt, 0.85));
    c.line(fx - tw * 0.45, fy - h * 0.78, fx - tw * 0.5 + swing * 0.8, fy - h * 0.47, lw * 0.8, shade(look.shirt, 0.85));
    // head
    let r = h * 0.085;
    c.ellipse(fx, fy - h * 0.80 - r * 1.05, r * 0.9, r, look.skin);
    c.ellipse(fx, fy - h * 0.80 - r * 1.6, r * 0.9, r * 0.5, look.hair);
    let half = (tw * 0.5).max(h * 0.12) + if arm_out { h * 0.16 } else { swing.abs() * 0.8 };
    [fx - half, fy - h * 0.80 - r * 2.1, fx + half, fy]
}

/// Where a person of this look carries an item: beside the hip on the leading side.
pub fn carry_point(height_px: u32, fx: f32, fy: f32, look: &PersonLook) -> (f32, f32) {
    let s = depth_scale(fy / height_px as f32);
    let h = PERSON_H * height_px as f32 * s * look.height;
    (fx + h * 0.22, fy - h * 0.12)
}

/// Kinds of goods a street vendor sets out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GoodsStyle {
    /// A folding table with crates of produce.
    Table,
    /// Crates stacked on a mat on the ground.
    Crates,
    /// A clothes rack.
    Rack,
}

/// How a stall looks.
#[derive(Clone, Copy, Debug)]
pub struct GoodsLook {
    pub style: GoodsStyle,
    pub cloth: [u8; 3],
    pub produce: [[u8; 3]; 3],
    pub width: f32,
}

impl GoodsLook {
    pub fn random(rng: &mut Rng, style: Option<GoodsStyle>) -> Self {
        let style = style.unwrap_or([GoodsStyle::Table, GoodsStyle::Crates, GoodsStyle::Rack][rng.below(3)]);
        let palette = [[220, 60, 40], [240, 180, 40], [90, 170, 60], [230, 120, 30], [160, 40, 120], [60, 120, 200]];
        GoodsLook {
            style,
            cloth: rng.jitter_pick(&[[40, 90, 170], [200, 50, 50], [230, 230, 220], [60, 130, 70]], 20.0),
            produce: [0, 1, 2].map(|_| rng.jitter_pick(&palette, 20.0)),
            width: rng.range(0.85, 1.2),
        }
    }
}

/// Draws a stall with its front foot line centred at (fx, fy). Returns the box.
pub fn goods(c: &mut Canvas, fx: f32, fy: f32, look: &GoodsLook) -> [f32; 4] {
    let s = depth_scale(fy / c.height as f32);
    let u = c.height as f32 * s; // one frame-height unit at this depth
    let w = 0.36 * u * look.width;
    let (x0, x1) = (fx - w * 0.5, fx + w * 0.5);
    match look.style {
        GoodsStyle::Table => {
            let top = fy - 0.17 * u;
            c.line(x0 + 3.0, top, x0 + 3.0, fy, (0.012 * u).max(1.5), [70, 70, 70]);
            c.line(x1 - 3.0, top, x1 - 3.0, fy, (0.012 * u).max(1.5), [70, 70, 70]);
            c.rect(x0, top, x1, top + 0.06 * u, look.cloth);
            let n = 3;
            let cw = w / n as f32;
            for i in 0..n {
                let cx0 = x0 + i as f32 * cw + 2.0;
                let col = look.produce[i % 3];
                c.rect(cx0, top - 0.07 * u, cx0 + cw - 4.0, top, [150, 110, 60]);
                let mut k = 0;
                while (k as f32) < cw / (0.03 * u).max(2.0) {
                    let px = cx0 + 3.0 + k as f32 * (0.03 * u).max(2.0);
                    c.ellipse(px, top - 0.075 * u, 0.017 * u, 0.017 * u, shade(col, if k % 2 == 0 { 1.0 } else { 0.8 }));
                    k += 1;
                }
            }
            [x0, top - 0.095 * u, x1, fy]
        }
        GoodsStyle::Crates => {
            c.rect(x0 - 0.02 * u, fy - 0.02 * u, x1 + 0.02 * u, fy, look.cloth);
            let cw = w / 3.0;
            for i in 0..3 {
                let cx0 = x0 + i as f32 * cw;
                let stack = if i == 1 { 2 } else { 1 };
                for j in 0..stack {
                    let yb = fy - 0.02 * u - j as f32 * 0.075 * u;
                    c.rect(cx0 + 1.0, yb - 0.07 * u, cx0 + cw - 1.0, yb, [160, 120, 70]);
                    c.rect(cx0 + 3.0, yb - 0.07 * u, cx0 + cw - 3.0, yb - 0.045 * u, look.produce[(i + j) % 3]);
                    c.rect(cx0 + 1.0, yb - 0.04 * u, cx0 + cw - 1.0, yb - 0.035 * u, [110, 80, 45]);
                }
            }
            [x0 - 0.02 * u, fy - 0.02 * u - 0.145 * u, x1 + 0.02 * u, fy]
        }
        GoodsStyle::Rack => {
            let top = fy - 0.3 * u;
            c.line(x0, top, x0, fy, (0.01 * u).max(1.5), [120, 120, 125]);
            c.line(x1, top, x1, fy, (0.01 * u).max(1.5), [120, 120, 125]);
            c.line(x0, top, x1, top, (0.01 * u).max(1.5), [120, 120, 125]);
            let n = ((w / (0.045 * u)).max(3.0)) as i32;
            for i in 0..n {
                let gx = x0 + 2.0 + i as f32 * (w - 4.0) / n as f32;
                let gw = (w - 4.0) / n as f32 - 1.0;
                let col = look.produce[i as usize % 3];
                c.rect(gx, top + 0.01 * u, gx + gw, top + 0.17 * u + (i % 2) as f32 * 0.03 * u, col);
            }
            [x0 - 1.0, top - 1.0, x1 + 1.0, fy]
        }
    }
}

/// A garbage item: a knotted bag or a cardboard box.
#[derive(Clone, Copy, Debug)]
pub struct ItemLook {
    pub bag: bool,
    pub color: [u8; 3],
    pub size: f32,
}

impl ItemLook {
    pub fn random(rng: &mut Rng) -> Self {
        let bag = rng.chance(0.7);
        let color = if bag {
            rng.jitter_pick(&[[25, 25, 28], [30, 70, 40], [40, 60, 130], [215, 215, 210], [150, 30, 30]], 10.0)
        } else {
            rng.jitter([165, 125, 80], 15.0)
        };
        ItemLook { bag, color, size: rng.range(0.85, 1.2) }
    }
}

/// Draws a garbage item resting with its bottom centre at (fx, fy). Returns the box.
pub fn item(c: &mut Canvas, fx: f32, fy: f32, look: &ItemLook) -> [f32; 4] {
    let s = depth_scale(fy / c.height as f32);
    let u = c.height as f32 * s * look.size;
    if look.bag {
        let (rx, ry) = (0.05 * u, 0.055 * u);
        c.ellipse(fx, fy - ry, rx, ry, look.color);
        c.ellipse(fx - rx * 0.3, fy - ry * 1.2, rx * 0.35, ry * 0.3, shade(look.color, 1.35));
        c.ellipse(fx, fy - 2.0 * ry - 0.012 * u, 0.014 * u, 0.02 * u, look.color);
        [fx - rx, fy - 2.0 * ry - 0.032 * u, fx + rx, fy]
    } else {
        let (w, h) = (0.11 * u, 0.08 * u);
        c.rect(fx - w * 0.5, fy - h, fx + w * 0.5, fy, look.color);
        c.rect(fx - w * 0.5, fy - h, fx + w * 0.5, fy - h + 0.015 * u, shade(look.color, 1.2));
        c.rect(fx - 1.0, fy - h, fx + 1.0, fy, [200, 190, 150]);
        [fx - w * 0.5, fy - h, fx + w * 0.5, fy]
    }
}

/// Colours of street bins: green (kitchen waste), blue (recyclables), grey (other), red
/// (hazardous), as Chinese cities sort them.
const BIN_COLORS: [[u8; 3]; 4] = [[40, 110, 60], [35, 80, 150], [95, 98, 100], [170, 45, 40]];

/// Draws a wheelie bin (about 1.05 m tall, 0.6 m wide) standing with its bottom centre at
/// (fx, fy), colour `kind` of [`BIN_COLORS`]. Scenery: never labelled, a hard negative for the
/// garbage class. Returns the box.
pub fn bin(c: &mut Canvas, fx: f32, fy: f32, kind: usize) -> [f32; 4] {
    let s = depth_scale(fy / c.height as f32);
    let h = PERSON_H * c.height as f32 * s * 0.62;
    let (bw, tw) = (h * 0.50, h * 0.58);
    let color = BIN_COLORS[kind % BIN_COLORS.len()];
    // body, a little wider at the top, then the lid overhanging it, a label panel and a wheel
    let body = [(fx - bw * 0.5, fy - h * 0.04), (fx + bw * 0.5, fy - h * 0.04), (fx + tw * 0.5, fy - h * 0.90), (fx - tw * 0.5, fy - h * 0.90)];
    c.polygon(&body, color);
    c.rect(fx - tw * 0.56, fy - h, fx + tw * 0.56, fy - h * 0.90, shade(color, 0.7));
    c.rect(fx - bw * 0.30, fy - h * 0.72, fx + bw * 0.30, fy - h * 0.52, [225, 225, 215]);
    c.rect(fx - bw * 0.5, fy - h * 0.86, fx + bw * 0.5, fy - h * 0.83, shade(color, 0.8));
    c.ellipse(fx - bw * 0.32, fy - h * 0.05, h * 0.06, h * 0.05, [25, 25, 25]);
    c.ellipse(fx + bw * 0.32, fy - h * 0.05, h * 0.06, h * 0.05, [25, 25, 25]);
    [fx - tw * 0.56, fy - h, fx + tw * 0.56, fy]
}

/// Draws a bicycle parked side-on with its ground midpoint at (fx, fy). Returns the box.
pub fn bicycle(c: &mut Canvas, fx: f32, fy: f32, color: [u8; 3]) -> [f32; 4] {
    let s = depth_scale(fy / c.height as f32);
    let u = c.height as f32 * s;
    let r = 0.058 * u;
    let half = 0.085 * u;
    let t = (0.012 * u).max(1.5);
    let (bx, fxw) = (fx - half, fx + half);
    let wy = fy - r;
    c.ring(bx, wy, r, t, [30, 30, 30]);
    c.ring(fxw, wy, r, t, [30, 30, 30]);
    let seat = (fx - 0.02 * u, fy - 2.2 * r);
    let bar = (fx + half * 0.75, fy - 2.35 * r);
    let crank = (fx, wy);
    c.line(bx, wy, crank.0, crank.1, t, color);
    c.line(bx, wy, seat.0, seat.1, t, color);
    c.line(seat.0, seat.1, crank.0, crank.1, t, color);
    c.line(seat.0, seat.1 + 0.3 * r, bar.0, bar.1 + 0.3 * r, t, color);
    c.line(crank.0, crank.1, bar.0, bar.1 + 0.3 * r, t, color);
    c.line(bar.0, bar.1, fxw, wy, t, color);
    c.rect(seat.0 - 0.02 * u, seat.1 - t, seat.0 + 0.02 * u, seat.1 + 1.0, [20, 20, 20]);
    c.line(bar.0 - 0.015 * u, bar.1, bar.0 + 0.015 * u, bar.1, t, [20, 20, 20]);
    [bx - r, bar.1 - t, fxw + r, fy]
}

/// How a car looks.
#[derive(Clone, Copy, Debug)]
pub struct CarLook {
    pub body: [u8; 3],
    pub length: f32,
    pub van: bool,
}

impl CarLook {
    pub fn random(rng: &mut Rng) -> Self {
        let bodies = [[200, 200, 205], [30, 30, 35], [160, 30, 30], [40, 70, 140], [120, 125, 130], [230, 230, 230]];
        CarLook { body: rng.jitter_pick(&bodies, 12.0), length: rng.range(0.9, 1.15), van: rng.chance(0.25) }
    }
}

/// Draws a car side-on with its ground midpoint at (fx, fy). Returns the box.
pub fn car(c: &mut Canvas, fx: f32, fy: f32, look: &CarLook) -> [f32; 4] {
    let s = depth_scale(fy / c.height as f32);
    let u = c.height as f32 * s;
    let half = 0.30 * u * look.length;
    let wheel = 0.055 * u;
    let body_top = fy - wheel - 0.1 * u;
    let roof = body_top - if look.van { 0.13 * u } else { 0.09 * u };
    c.rect(fx - half, body_top, fx + half, fy - wheel * 0.6, look.body);
    let cab0 = if look.van { fx - half } else { fx - half * 0.55 };
    let cab1 = fx + half * 0.45;
    c.polygon(&[(cab0, body_top), (cab0 + 0.05 * u, roof), (cab1 - 0.06 * u, roof), (cab1, body_top)], look.body);
    c.polygon(
        &[(cab0 + 0.03 * u, body_top - 0.01 * u), (cab0 + 0.06 * u, roof + 0.015 * u), (cab1 - 0.07 * u, roof + 0.015 * u), (cab1 - 0.02 * u, body_top - 0.01 * u)],
        [60, 80, 100],
    );
    c.rect(fx - half, fy - wheel - 0.045 * u, fx + half, fy - wheel - 0.04 * u, shade(look.body, 0.7));
    for wx in [fx - half * 0.62, fx + half * 0.62] {
        c.ellipse(wx, fy - wheel, wheel, wheel, [20, 20, 22]);
        c.ellipse(wx, fy - wheel, wheel * 0.45, wheel * 0.45, [150, 150, 155]);
    }
    [fx - half, roof, fx + half, fy]
}

/// A puddle: a rounded, wobbly-edged patch of standing water, drawn on the ground.
#[derive(Clone, Copy, Debug)]
pub struct Puddle {
    /// Centre and half extents in pixels.
    pub cx: f32,
    pub cy: f32,
    pub hw: f32,
    pub hh: f32,
    pub seed: u64,
}

impl Puddle {
    /// Outline points (pixels): a rounded rectangle whose edge wobbles a little.
    pub fn outline(&self) -> Vec<(f32, f32)> {
        let mut rng = Rng::new(self.seed);
        let phases: Vec<f32> = (0..3).map(|_| rng.range(0.0, super::canvas::PHASE_MAX)).collect();
        let n = 48;
        (0..n)
            .map(|i| {
                let a = i as f32 / n as f32 * std::f32::consts::TAU;
                let (ca, sa) = (a.cos(), a.sin());
                // superellipse (exponent 6): nearly a rectangle with round corners
                let k = 1.0 / (ca.abs().powi(6) + sa.abs().powi(6)).powf(1.0 / 6.0);
                let wob = 1.0 + 0.04 * (3.0 * a + phases[0]).sin() + 0.03 * (5.0 * a + phases[1]).sin() + 0.02 * (7.0 * a + phases[2]).sin();
                (self.cx + ca * k * self.hw * wob, self.cy + sa * k * self.hh * wob)
            })
            .collect()
    }

    pub fn bbox(&self) -> [f32; 4] {
        let pts = self.outline();
        let (mut b0, mut b1, mut b2, mut b3) = (f32::MAX, f32::MAX, f32::MIN, f32::MIN);
        for (x, y) in pts {
            b0 = b0.min(x);
            b1 = b1.min(y);
            b2 = b2.max(x);
            b3 = b3.max(y);
        }
        [b0, b1, b2, b3]
    }
}

/// Draws standing water: the sky reflected in a darkened, bluish sheet with ripple highlights.
pub fn water(c: &mut Canvas, p: &Puddle, t: f32) -> [f32; 4] {
    let pts = p.outline();
    let b = p.bbox();
    // which pixels are inside: fill the id layer, then shade those pixels
    c.polygon(&pts, [0, 0, 0]); // placeholder colour, replaced below pixel by pixel
    let (w, h) = (c.width as i32, c.height as i32);
    let x0 = (b[0].floor() as i32).clamp(0, w);
    let x1 = (b[2].ceil() as i32).clamp(0, w);
    let y0 = (b[1].floor() as i32).clamp(0, h);
    let y1 = (b[3].ceil() as i32).clamp(0, h);
    let mut rng = Rng::new(p.seed ^ 0xABCD);
    for y in y0..y1 {
        let fy = (y as f32 - b[1]) / (b[3] - b[1]).max(1.0);
        for x in x0..x1 {
            let i = (y * w + x) as usize;
            if c.ids[i] != c.pen {
                continue;
            }
            // reflection: lighter towards the far edge, ripples move with time
            let ripple = ((x as f32 * 0.21 + y as f32 * 1.3 + t * 3.0).sin() * 0.5 + 0.5) * ((y as f32 * 0.7 - t * 2.0).sin() * 0.5 + 0.5);
            let base = mix([95, 115, 140], [150, 170, 195], 1.0 - fy);
            let col = mix(base, [215, 225, 235], ripple * 0.35);
            let n = rng.range(-6.0, 6.0);
            c.rgb[i * 3..i * 3 + 3].copy_from_slice(&col.map(|v| (v as f32 + n).clamp(0.0, 255.0) as u8));
        }
    }
    // a dark rim where the water meets the dry surface
    for k in 0..pts.len() {
        let (a, bb) = (pts[k], pts[(k + 1) % pts.len()]);
        c.line(a.0, a.1, bb.0, bb.1, 1.5, [60, 65, 70]);
    }
    b
}
