//! From a scenario and a time to a picture and its ground truth: where every actor is at `t`,
//! drawing them far to near, the distractors on top, and which objects remain visible.

use super::canvas::{Canvas, Rng};
use super::scenario::{Actor, Scenario};
use super::scene::{self, CarLook, GoodsLook, GoodsStyle, ItemLook, PersonLook, Puddle, Street};
use super::truth::TruthBox;

/// Walking speed in normalised picture widths per second.
const WALK: f32 = 0.09;
/// A vendor needs this long to walk in before setting out goods, and to walk off after.
const VENDOR_WALK_S: f64 = 4.0;

/// What is drawn for one object.
#[derive(Clone, Copy, Debug)]
pub enum Shape {
    Person { look: PersonLook, phase: f32, arm_out: bool },
    Goods(GoodsLook),
    Item(ItemLook),
    Bicycle([u8; 3]),
    Car(CarLook),
    /// A street bin (scenery: drawn, never labelled).
    Bin(usize),
}

impl Shape {
    pub fn class(&self) -> &'static str {
        match self {
            Shape::Person { .. } => "person",
            Shape::Goods(_) => "goods",
            Shape::Item(_) => "garbage",
            Shape::Bicycle(_) => "bicycle",
            Shape::Car(_) => "vehicle",
            Shape::Bin(_) => SCENERY,
        }
    }
}

/// The class of drawn things that are not objects of any class (bins): never labelled.
pub const SCENERY: &str = "scenery";

/// One object at one moment: a stable id, its ground point (pixels) and its shape.
#[derive(Clone, Copy, Debug)]
pub struct Sprite {
    pub id: u32,
    pub fx: f32,
    pub fy: f32,
    pub shape: Shape,
}

/// Ground-level things drawn before the objects.
#[derive(Clone, Copy, Debug)]
pub enum Ground {
    Water { id: u32, puddle: Puddle },
    WetShadow(Puddle),
}

/// Draws `sprites` and `ground` over a copy of the painted street, then the picture-wide
/// effects. Returns the visible objects' boxes (before shake is applied to the picture, the
/// caller shifts both together).
pub struct Painter {
    pub street: Street,
    background: Canvas,
    pub canvas: Canvas,
}

/// Share of an object's drawn pixels that must remain visible for it to be labelled.
const MIN_VISIBLE: f32 = 0.4;

impl Painter {
    pub fn new(street: Street) -> Painter {
        let (w, h) = (street.width, street.height);
        let mut background = Canvas::new(w, h);
        street.paint(&mut background);
        Painter { street, background, canvas: Canvas::new(w, h) }
    }

    /// Paints ground and sprites; returns labelled boxes of what is visible.
    pub fn paint(&mut self, ground: &[Ground], sprites: &mut [Sprite], t: f32) -> Vec<TruthBox> {
        let c = &mut self.canvas;
        c.copy_from(&self.background);
        let mut drawn: Vec<(u32, &'static str, [f32; 4], u32)> = Vec::new();
        for g in ground {
            match g {
                Ground::Water { id, puddle } => {
                    c.pen = *id;
                    let b = scene::water(c, puddle, t);
                    let n = c.count_id(*id, b);
                    drawn.push((*id, "water", b, n));
                }
                Ground::WetShadow(p) => {
                    c.pen = super::canvas::NO_OBJECT;
                    c.polygon_shade(&p.outline(), 0.62);
                }
            }
        }
        sprites.sort_by(|a, b| a.fy.total_cmp(&b.fy));
        for s in sprites.iter() {
            c.pen = s.id;
            let b = match &s.shape {
                Shape::Person { look, phase, arm_out } => scene::person(c, s.fx, s.fy, look, *phase, *arm_out),
                Shape::Goods(l) => scene::goods(c, s.fx, s.fy, l),
                Shape::Item(l) => scene::item(c, s.fx, s.fy, l),
                Shape::Bicycle(col) => scene::bicycle(c, s.fx, s.fy, *col),
                Shape::Car(l) => scene::car(c, s.fx, s.fy, l),
                Shape::Bin(k) => scene::bin(c, s.fx, s.fy, *k),
            };
            let n = c.count_id(s.id, b);
            drawn.push((s.id, s.shape.class(), b, n));
        }
        c.pen = super::canvas::NO_OBJECT;
        let (w, h) = (c.width as f32, c.height as f32);
        drawn
            .into_iter()
            .filter(|(_, class, _, _)| *class != SCENERY)
            .filter_map(|(id, class, b, n)| {
                let clipped = [b[0].max(0.0), b[1].max(0.0), b[2].min(w), b[3].min(h)];
                let visible = c.count_id(id, clipped);
                let ok = n > 0 && visible as f32 >= MIN_VISIBLE * n as f32 && clipped[2] - clipped[0] >= 3.0 && clipped[3] - clipped[1] >= 3.0;
                ok.then(|| TruthBox { class: class.to_string(), id, bbox: clipped })
            })
            .collect()
    }
}

/// Picture-wide effects applied after the objects, in place.
pub struct Effects {
    rng: Rng,
}

impl Effects {
    pub fn new(seed: u64) -> Self {
        Effects { rng: Rng::new(seed ^ 0x5EED) }
    }

    /// A cloud shadow sweeping left to right; `progress` 0..1.
    pub fn cloud_shadow(&mut self, c: &mut Canvas, progress: f32) {
        let (w, h) = (c.width as f32, c.height as f32);
        let x = -0.6 * w + progress * 2.2 * w;
        let pts = [(x, 0.0), (x + 0.5 * w, 0.0), (x + 0.65 * w, h), (x + 0.1 * w, h)];
        c.polygon_shade(&pts, 0.72);
    }

    /// Rain: light streaks and a darker, wet road (no standing water).
    pub fn rain(&mut self, c: &mut Canvas) {
        let (w, h) = (c.width as f32, c.height as f32);
        let road = [(0.0, scene::ROAD_TOP * h), (w, scene::ROAD_TOP * h), (w, h), (0.0, h)];
        c.polygon_shade(&road, 0.85);
        let n = (c.width * c.height / 900) as usize;
        for _ in 0..n {
            let (x, y) = (self.rng.range(0.0, w), self.rng.range(0.0, h));
            let len = self.rng.range(6.0, 14.0);
            let (x0, y0, x1, y1) = (x, y, x - len * 0.2, y + len);
            let steps = len as i32;
            for k in 0..steps {
                let t = k as f32 / steps as f32;
                let (px, py) = (x0 + (x1 - x0) * t, y0 + (y1 - y0) * t);
                c.rect_alpha(px, py, px + 1.0, py + 1.0, [220, 225, 235], 0.35);
            }
        }
    }

    /// Global gain and sensor noise.
    pub fn light_and_noise(&mut self, c: &mut Canvas, gain: f32, noise: f32) {
        let mut r = self.rng.next_u64();
        let amp = noise.max(0.0);
        for v in c.rgb.iter_mut() {
            // xorshift per byte: cheap and deterministic
            r ^= r << 13;
            r ^= r >> 7;
            r ^= r << 17;
            let n = if amp > 0.0 { ((r >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * amp } else { 0.0 };
            *v = (*v as f32 * gain + n).clamp(0.0, 255.0) as u8;
        }
    }

    /// Moves the picture by a random offset up to `amp` pixels (edges repeated); returns it.
    pub fn shake(&mut self, c: &mut Canvas, amp: f32, scratch: &mut Vec<u8>) -> (i32, i32) {
        if amp <= 0.0 {
            return (0, 0);
        }
        let a = amp.round() as i32;
        let dx = self.rng.below((2 * a + 1) as usize) as i32 - a;
        let dy = self.rng.below((2 * a + 1) as usize) as i32 - a;
        if dx == 0 && dy == 0 {
            return (0, 0);
        }
        let (w, h) = (c.width as i32, c.height as i32);
        scratch.clear();
        scratch.extend_from_slice(&c.rgb);
        for y in 0..h {
            let sy = (y - dy).clamp(0, h - 1);
            for x in 0..w {
                let sx = (x - dx).clamp(0, w - 1);
                let (d, s) = (((y * w + x) * 3) as usize, ((sy * w + sx) * 3) as usize);
                c.rgb[d..d + 3].copy_from_slice(&scratch[s..s + 3]);
            }
        }
        (dx, dy)
    }
}

/// Linear interpolation in `[t, value]` keyframes (`dflt` without keys; held at the ends).
pub fn keyframe(keys: &[[f64; 2]], t: f64, dflt: f64) -> f64 {
    match keys {
        [] => dflt,
        [k] => k[1],
        _ => {
            if t <= keys[0][0] {
                return keys[0][1];
            }
            for w in keys.windows(2) {
                if t <= w[1][0] {
                    let span = (w[1][0] - w[0][0]).max(1e-9);
                    return w[0][1] + (w[1][1] - w[0][1]) * (t - w[0][0]) / span;
                }
            }
            keys[keys.len() - 1][1]
        }
    }
}

/// The looks of every actor, picked once from the scenario seed.
pub struct Cast {
    people: Vec<PersonLook>,
    goods: Vec<GoodsLook>,
    items: Vec<ItemLook>,
    cars: Vec<CarLook>,
    bikes: Vec<[u8; 3]>,
}

impl Cast {
    pub fn new(s: &Scenario, rng: &mut Rng) -> Cast {
        let n = s.actors.len();
        let mut cast = Cast { people: Vec::new(), goods: Vec::new(), items: Vec::new(), cars: Vec::new(), bikes: Vec::new() };
        for a in &s.actors {
            cast.people.push(PersonLook::random(rng));
            let style = match a {
                Actor::Vendor { style: Some(st), .. } => Some(match st.as_str() {
                    "crates" => GoodsStyle::Crates,
                    "rack" => GoodsStyle::Rack,
                    _ => GoodsStyle::Table,
                }),
                _ => None,
            };
            cast.goods.push(GoodsLook::random(rng, style));
            cast.items.push(ItemLook::random(rng));
            cast.cars.push(CarLook::random(rng));
        }
        for _ in 0..n * 32 {
            cast.bikes.push(bike_color(rng));
        }
        cast
    }
}

/// A random bicycle frame colour.
pub fn bike_color(rng: &mut Rng) -> [u8; 3] {
    rng.jitter_pick(&[[30, 90, 200], [230, 200, 40], [220, 60, 40], [40, 160, 80], [240, 240, 240], [30, 30, 30]], 15.0)
}

/// Object id of sub-object `k` of actor `i` (0 = its person).
pub fn object_id(actor: usize, k: usize) -> u32 {
    (actor * 64 + k + 1) as u32
}

fn lerp2(a: [f32; 2], b: [f32; 2], f: f32) -> [f32; 2] {
    [a[0] + (b[0] - a[0]) * f, a[1] + (b[1] - a[1]) * f]
}

fn dist(a: [f32; 2], b: [f32; 2]) -> f32 {
    ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)).sqrt()
}

/// Seconds a person needs to walk from `a` to `b`.
pub fn walk_time(a: [f32; 2], b: [f32; 2]) -> f64 {
    (dist(a, b) / WALK) as f64
}

/// Where an item is set down relative to the person's ground point.
pub fn set_down_point(p: [f32; 2]) -> [f32; 2] {
    [p[0] + 0.035, p[1] + 0.006]
}

/// Where a vendor stands relative to the goods.
fn vendor_spot(at: [f32; 2]) -> [f32; 2] {
    [at[0] + 0.075, at[1] + 0.012]
}

/// Everything in the scene at time `t`: sprites and ground layers.
/// Where a pedestrian actor's feet are at time `t` (normalised), or `None` before it starts,
/// after it arrived, or for another actor.
pub fn pedestrian_at(a: &Actor, t: f64) -> Option<[f32; 2]> {
    let Actor::Pedestrian { from, to, start, walk_s, stop_at, stop_s, .. } = a else { return None };
    let stop = if stop_at.is_some() { *stop_s } else { 0.0 };
    let (start, walk_s) = (*start, *walk_s);
    if t < start || t > start + walk_s + stop {
        return None;
    }
    let e = t - start;
    let split = stop_at.unwrap_or(1.0) as f64 * walk_s;
    let f = if e < split {
        e / walk_s
    } else if e < split + stop {
        split / walk_s
    } else {
        (e - stop) / walk_s
    };
    Some(lerp2(*from, *to, f as f32))
}

pub fn scene_at(s: &Scenario, cast: &Cast, t: f64, w: f32, h: f32, ground: &mut Vec<Ground>, sprites: &mut Vec<Sprite>) {
    ground.clear();
    sprites.clear();
    let px = |p: [f32; 2]| (p[0] * w, p[1] * h);
    let walker = |i: usize, p: [f32; 2], travelled: f32, carrying: bool, sprites: &mut Vec<Sprite>| {
        let look = cast.people[i];
        let (fx, fy) = px(p);
        // one stride per ~0.03 picture widths, scaled by depth
        let phase = travelled / (0.03 * scene::depth_scale(p[1])) * std::f32::consts::PI;
        sprites.push(Sprite { id: object_id(i, 0), fx, fy, shape: Shape::Person { look, phase, arm_out: carrying } });
        if carrying {
            let (cx, cy) = scene::carry_point(h as u32, fx, fy, &look);
            sprites.push(Sprite { id: object_id(i, 2), fx: cx, fy: cy, shape: Shape::Item(cast.items[i]) });
        }
    };
    for (i, a) in s.actors.iter().enumerate() {
        match a {
            Actor::Pedestrian { from, carry, .. } => {
                if let Some(p) = pedestrian_at(a, t) {
                    walker(i, p, dist(*from, p), *carry, sprites);
                }
            }
            Actor::Vendor { at, arrive, leave, .. } => {
                let spot = vendor_spot(*at);
                let entry = [at[0] - 0.28, at[1] + 0.02];
                let exit = [at[0] + 0.35, at[1] + 0.02];
                if t >= arrive - VENDOR_WALK_S && t < *arrive {
                    let f = ((t - (arrive - VENDOR_WALK_S)) / VENDOR_WALK_S) as f32;
                    let p = lerp2(entry, spot, f);
                    walker(i, p, dist(entry, p), false, sprites);
                } else if t >= *arrive && t < *leave {
                    let sway = 0.004 * ((t * 0.7) as f32).sin();
                    walker(i, [spot[0] + sway, spot[1]], 0.0, false, sprites);
                    let (fx, fy) = px(*at);
                    sprites.push(Sprite { id: object_id(i, 1), fx, fy, shape: Shape::Goods(cast.goods[i]) });
                } else if t >= *leave && t < leave + VENDOR_WALK_S {
                    let f = ((t - leave) / VENDOR_WALK_S) as f32;
                    let p = lerp2(spot, exit, f);
                    walker(i, p, dist(spot, p), false, sprites);
                }
            }
            Actor::Dumper { from, drop_at, drop, to, removed } => {
                let t_in = walk_time(*from, *drop_at);
                let t_out = walk_time(*drop_at, *to);
                if t >= drop - t_in && t < *drop {
                    let f = ((t - (drop - t_in)) / t_in.max(1e-6)) as f32;
                    let p = lerp2(*from, *drop_at, f);
                    walker(i, p, dist(*from, p), true, sprites);
                } else if t >= *drop && t < drop + t_out {
                    let f = ((t - drop) / t_out.max(1e-6)) as f32;
                    let p = lerp2(*drop_at, *to, f);
                    walker(i, p, dist(*from, *drop_at) + dist(*drop_at, p), false, sprites);
                }
                if t >= *drop && removed.is_none_or(|r| t < r) {
                    let (fx, fy) = px(set_down_point(*drop_at));
                    sprites.push(Sprite { id: object_id(i, 2), fx, fy, shape: Shape::Item(cast.items[i]) });
                }
            }
            Actor::Pickup { from, at, put, pick, to } => {
                let t_in = walk_time(*from, *at);
                let t_out = walk_time(*at, *to);
                if t >= put - t_in && t < *put {
                    let f = ((t - (put - t_in)) / t_in.max(1e-6)) as f32;
                    let p = lerp2(*from, *at, f);
                    walker(i, p, dist(*from, p), true, sprites);
                } else if t >= *put && t < *pick {
                    walker(i, *at, 0.0, false, sprites);
                    let (fx, fy) = px(set_down_point(*at));
                    sprites.push(Sprite { id: object_id(i, 2), fx, fy, shape: Shape::Item(cast.items[i]) });
                } else if t >= *pick && t < pick + t_out {
                    let f = ((t - pick) / t_out.max(1e-6)) as f32;
                    let p = lerp2(*at, *to, f);
                    walker(i, p, dist(*at, p), true, sprites);
                }
            }
            Actor::Water { center, size, coverage } => {
                if let Some(puddle) = puddle_at(*center, *size, coverage, t, w, h, s.seed ^ i as u64) {
                    ground.push(Ground::Water { id: object_id(i, 3), puddle });
                }
            }
            Actor::Bicycles { at, arrive, leave } => {
                for (k, p) in at.iter().enumerate() {
                    let gone = leave.get(k).is_some_and(|l| t >= *l);
                    if t >= arrive[k] && !gone {
                        let (fx, fy) = px(*p);
                        sprites.push(Sprite { id: object_id(i, 4 + k), fx, fy, shape: Shape::Bicycle(cast.bikes[(i * 32 + k) % cast.bikes.len()]) });
                    }
                }
            }
            Actor::Car { y, start, cross_s, leftward } => {
                if t < *start || t > start + cross_s {
                    continue;
                }
                let f = ((t - start) / cross_s) as f32;
                let x = if *leftward { 1.4 - 1.8 * f } else { -0.4 + 1.8 * f };
                let (fx, fy) = px([x, *y]);
                sprites.push(Sprite { id: object_id(i, 1), fx, fy, shape: Shape::Car(cast.cars[i]) });
            }
            Actor::Litter { at, appear, removed } => {
                for (k, p) in at.iter().enumerate() {
                    if t >= appear[k] && !removed.get(k).is_some_and(|r| t >= *r) {
                        let (fx, fy) = px(*p);
                        sprites.push(Sprite { id: object_id(i, 4 + k), fx, fy, shape: Shape::Item(litter_look(s.seed, i, k)) });
                    }
                }
            }
            Actor::Bin { at, look } => {
                let (fx, fy) = px(*at);
                sprites.push(Sprite { id: object_id(i, 1), fx, fy, shape: Shape::Bin(*look) });
            }
            Actor::ParkedCar { .. } | Actor::Queue { .. } => {
                let van = if let Actor::ParkedCar { van, .. } = a { *van } else { None };
                for p in super::traffic::car_paths(a) {
                    if let Some(g) = p.at(t) {
                        let (fx, fy) = px(g);
                        sprites.push(Sprite { id: object_id(i, 1 + p.k), fx, fy, shape: Shape::Car(super::traffic::look_of(cast.cars[i], p.k, van)) });
                    }
                }
            }
            Actor::WetShadow { center, size } => {
                let (cx, cy) = px(*center);
                ground.push(Ground::WetShadow(Puddle { cx, cy, hw: size[0] * w * 0.5, hh: size[1] * h * 0.5, seed: s.seed ^ (i as u64 * 77) }));
            }
            // real people, composited on real backgrounds only (the scenario check refuses them here)
            Actor::Crowd { .. } | Actor::Walkers { .. } => {}
        }
    }
}

/// The look of item `k` of litter actor `i`: each piece its own, fixed by the scenario seed.
pub fn litter_look(seed: u64, i: usize, k: usize) -> ItemLook {
    ItemLook::random(&mut Rng::new(seed ^ (object_id(i, 4 + k) as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)))
}

/// The puddle of a water actor at time `t` (none while its coverage is ~0).
pub fn puddle_at(center: [f32; 2], size: [f32; 2], coverage: &[[f64; 2]], t: f64, w: f32, h: f32, seed: u64) -> Option<Puddle> {
    let c = keyframe(coverage, t, 0.0).clamp(0.0, 1.0) as f32;
    if c < 0.002 {
        return None;
    }
    let k = c.sqrt();
    Some(Puddle { cx: center[0] * w, cy: center[1] * h, hw: size[0] * w * 0.5 * k, hh: size[1] * h * 0.5 * k, seed })
}

/// A street with the scenario's look.
pub fn street_for(s: &Scenario) -> Street {
    Street::new(s.width, s.height, &mut Rng::new(s.seed))
}


/// The true water mask of the painted canvas: the pixels whose object id is one of `ground`'s
/// water ids (exact: what is drawn over the water hides it), moved by the shake `(dx, dy)`
/// that moved the picture (edges repeated, as [`Effects::shake`] does). Written into `mask`
/// (resized to the canvas).
pub fn water_mask(c: &Canvas, ground: &[Ground], dx: i32, dy: i32, mask: &mut crate::detect::WaterMask) {
    let ids: Vec<u32> = ground.iter().filter_map(|g| if let Ground::Water { id, .. } = g { Some(*id) } else { None }).collect();
    let (w, h) = (c.width as i32, c.height as i32);
    mask.width = c.width;
    mask.height = c.height;
    mask.data.clear();
    mask.data.reserve((w * h) as usize);
    for y in 0..h {
        let sy = (y - dy).clamp(0, h - 1);
        for x in 0..w {
            let sx = (x - dx).clamp(0, w - 1);
            mask.data.push(u8::from(!ids.is_empty() && ids.contains(&c.ids[(sy * w + sx) as usize])));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_water_mask_is_the_visible_water_moved_with_the_picture() {
        let mut c = Canvas::new(8, 4);
        // water (id 5) in columns 0..4, a person (id 9) over column 1 of it, a dry shadow
        for y in 0..4 {
            for x in 0..8 {
                c.ids[y * 8 + x] = match x {
                    1 => 9,
                    0 | 2 | 3 => 5,
                    _ => 0,
                };
            }
        }
        let puddle = Puddle { cx: 0.0, cy: 0.0, hw: 1.0, hh: 1.0, seed: 0 };
        let ground = [Ground::Water { id: 5, puddle }, Ground::WetShadow(puddle)];
        let mut m = crate::detect::WaterMask::dry(1, 1);
        water_mask(&c, &ground, 0, 0, &mut m);
        let row: Vec<u8> = m.data[..8].to_vec();
        assert_eq!(row, vec![1, 0, 1, 1, 0, 0, 0, 0]);
        // shaken one pixel right: the picture's column x shows the canvas's column x - 1
        water_mask(&c, &ground, 1, 0, &mut m);
        assert_eq!(m.data[8..16].to_vec(), vec![1, 1, 0, 1, 1, 0, 0, 0]);
        // no water on the ground: dry, whatever the ids
        water_mask(&c, &ground[1..], 0, 0, &mut m);
        assert_eq!(m.share(), 0.0);
    }
}
