//! The scenario file: what happens in front of the synthetic camera, and when.
//!
//! Positions are normalised image points (x right, y down, 0..1) where an object touches the
//! ground; times are seconds of stream time. Zones are hawkeye zone tables, copied into the
//! generated camera config as they are, so the scenario and the rules see the same polygons.

use std::path::Path;

use serde::Deserialize;

use super::traffic::Side;
use crate::config::Zone;

/// A whole scenario (`tests/scenarios/*.toml`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// What the scenario shows (printed by eval).
    #[serde(default)]
    pub description: String,
    /// Seed of every random choice: the same file renders the same video.
    pub seed: u64,
    pub duration_s: f64,
    #[serde(default = "default_fps")]
    pub fps: u32,
    #[serde(default = "default_width")]
    pub width: u32,
    #[serde(default = "default_height")]
    pub height: u32,
    /// Detection rate of the generated camera config.
    #[serde(default = "default_detect_fps")]
    pub detect_fps: f64,
    #[serde(default)]
    pub scene: SceneEffects,
    /// Draw the actors onto a real video instead of the drawn street ([`super::real`]).
    #[serde(default)]
    pub background: Option<Background>,
    #[serde(default, rename = "zone")]
    pub zones: Vec<toml::Table>,
    #[serde(default, rename = "actor")]
    pub actors: Vec<Actor>,
}

fn default_fps() -> u32 {
    10
}
fn default_width() -> u32 {
    640
}
fn default_height() -> u32 {
    360
}
fn default_detect_fps() -> f64 {
    5.0
}

/// Distractors over the whole picture.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SceneEffects {
    /// Sensor noise: uniform, ± this many grey levels.
    #[serde(default = "default_noise")]
    pub noise: f32,
    /// Camera shake: the picture moves by up to this many pixels each frame.
    #[serde(default)]
    pub shake_px: f32,
    /// Global lighting gain keyframes `[t, gain]` (linear in between; 1.0 without keys).
    #[serde(default)]
    pub light: Vec<[f64; 2]>,
    /// Cloud shadows sweeping across the picture: `[start, end]` each.
    #[serde(default)]
    pub shadows: Vec<[f64; 2]>,
    /// Rain (streaks, darker road, no standing water) between `[start, end]`.
    #[serde(default)]
    pub rain: Option<[f64; 2]>,
    /// H.264 bitrate of the rendered video.
    #[serde(default = "default_bitrate")]
    pub bitrate_kbps: u32,
}

impl Default for SceneEffects {
    fn default() -> Self {
        SceneEffects { noise: default_noise(), shake_px: 0.0, light: Vec::new(), shadows: Vec::new(), rain: None, bitrate_kbps: default_bitrate() }
    }
}

fn default_noise() -> f32 {
    3.0
}
fn default_bitrate() -> u32 {
    1500
}

/// A real video under the actors: frames `start_frame..=end_frame`, played forwards and
/// backwards in turn (ping-pong) so that the people in it never jump.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Background {
    /// `vtest` or `tree` (Debian's opencv-doc samples) or a path to a video file.
    pub video: String,
    pub start_frame: u32,
    /// Last frame used (inclusive).
    pub end_frame: u32,
    /// Ground plane `[k, c]`: a standing person whose feet are at normalised height `y` is
    /// `k * y + c` frame heights tall. Measured values are built in for `vtest`.
    #[serde(default)]
    pub ground: Option<[f32; 2]>,
}

/// Something that happens in the scene.
#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Actor {
    /// A person walking from `from` to `to` in `walk_s` seconds, starting at `start`; may stop
    /// for `stop_s` seconds at fraction `stop_at` of the way; may carry a bag through.
    Pedestrian {
        from: [f32; 2],
        to: [f32; 2],
        start: f64,
        walk_s: f64,
        #[serde(default)]
        stop_at: Option<f32>,
        #[serde(default)]
        stop_s: f64,
        #[serde(default)]
        carry: bool,
    },
    /// A vendor walks in, sets out goods at `at` at time `arrive`, stands beside them, packs
    /// up at `leave` and walks off (out-of-store trading when `at` is in such a zone).
    Vendor {
        at: [f32; 2],
        arrive: f64,
        leave: f64,
        /// `table`, `crates` or `rack` (random when absent).
        #[serde(default)]
        style: Option<String>,
    },
    /// A person carries a bag or box from `from`, puts it down at `drop_at` at time `drop` and
    /// walks on to `to`; the item stays until `removed` (end of video when absent).
    Dumper {
        from: [f32; 2],
        drop_at: [f32; 2],
        drop: f64,
        to: [f32; 2],
        #[serde(default)]
        removed: Option<f64>,
    },
    /// A person puts a bag down at `at` at `put`, waits beside it, picks it up at `pick` and
    /// walks on to `to` (not dumping).
    Pickup {
        from: [f32; 2],
        at: [f32; 2],
        put: f64,
        pick: f64,
        to: [f32; 2],
    },
    /// Standing water centred at `center`, `size` (normalised full width and height) at
    /// coverage 1; `coverage` keyframes `[t, fraction of that area]`, linear in between.
    Water {
        center: [f32; 2],
        size: [f32; 2],
        coverage: Vec<[f64; 2]>,
    },
    /// Bicycles parked at `at[i]` from `arrive[i]` until `leave[i]` (or the end).
    Bicycles {
        at: Vec<[f32; 2]>,
        arrive: Vec<f64>,
        #[serde(default)]
        leave: Vec<f64>,
    },
    /// A car crossing the picture along ground line `y` in `cross_s` seconds from `start`.
    Car {
        y: f32,
        start: f64,
        cross_s: f64,
        #[serde(default)]
        leftward: bool,
    },
    /// Rubbish that appears on the ground at `at[i]` at `appear[i]` without anyone seen
    /// leaving it (a bin overflowing, bags left beside it at night) and is cleared at
    /// `removed[i]` (or stays to the end).
    Litter {
        at: Vec<[f32; 2]>,
        appear: Vec<f64>,
        #[serde(default)]
        removed: Vec<f64>,
    },
    /// A street bin standing at `at` for the whole video: scenery, never labelled; `look` 0–3
    /// picks green, blue, grey or red.
    Bin {
        at: [f32; 2],
        #[serde(default)]
        look: usize,
    },
    /// A dark, wet-looking shadow on the road that is not water (a negative for flooding).
    WetShadow { center: [f32; 2], size: [f32; 2] },
    /// A car (or a van) drives in from side `from`, stands with its ground midpoint at `at` from
    /// `arrive` until `leave`, then drives off to side `to` (see [`super::traffic`]).
    ParkedCar {
        at: [f32; 2],
        arrive: f64,
        leave: f64,
        #[serde(default)]
        from: Side,
        #[serde(default = "right")]
        to: Side,
        /// A van (taller body) or a car; random when absent.
        #[serde(default)]
        van: Option<bool>,
    },
    /// Traffic stopping at a light on ground line `y`: `cars` cars from side `from`, the first
    /// stopping at `stop_x`, each next one `spacing` (picture widths) behind it and `every_s`
    /// later; all stand until `leave` (green), then pull away one after another.
    Queue {
        y: f32,
        stop_x: f32,
        cars: u32,
        arrive: f64,
        leave: f64,
        #[serde(default)]
        from: Side,
        #[serde(default = "default_every_s")]
        every_s: f64,
        #[serde(default = "default_spacing")]
        spacing: f32,
    },
    /// Real backgrounds: `count` real people (cut out of the video's training frames) gather
    /// around `at` one by one from `arrive`, `stagger_s` apart, stand, and walk off one by one
    /// from `leave` (see [`super::crowd`]).
    Crowd {
        at: [f32; 2],
        count: u32,
        arrive: f64,
        leave: f64,
        /// Half-width of the group (picture widths).
        #[serde(default = "default_spread")]
        spread: f32,
        #[serde(default = "default_stagger")]
        stagger_s: f64,
    },
    /// Real backgrounds: `count` real people walking from `from` to `to` in `walk_s` seconds,
    /// one every `every_s` from `start`.
    Walkers {
        from: [f32; 2],
        to: [f32; 2],
        start: f64,
        count: u32,
        every_s: f64,
        walk_s: f64,
    },
}

fn right() -> Side {
    Side::Right
}
fn default_every_s() -> f64 {
    2.0
}
fn default_spacing() -> f32 {
    0.3
}
fn default_spread() -> f32 {
    0.06
}
fn default_stagger() -> f64 {
    1.0
}

impl Scenario {
    /// Reads and checks a scenario file; every problem is named.
    pub fn load(path: &Path) -> anyhow::Result<Scenario> {
        let text = std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        let s: Scenario = toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        let errors = s.problems();
        if !errors.is_empty() {
            anyhow::bail!("{}:\n  {}", path.display(), errors.join("\n  "));
        }
        Ok(s)
    }

    /// The zones as hawkeye parses them (the scenario's tables, with hawkeye's defaults).
    pub fn parsed_zones(&self) -> Result<Vec<Zone>, String> {
        self.zones
            .iter()
            .enumerate()
            .map(|(i, t)| Zone::deserialize(toml::Value::Table(t.clone())).map_err(|e| format!("zone[{i}]: {e}")))
            .collect()
    }

    /// Every problem in the scenario, each with its place.
    pub fn problems(&self) -> Vec<String> {
        let mut e = Vec::new();
        if !(self.duration_s > 0.0 && self.duration_s <= 3600.0) {
            e.push(format!("duration_s: {} is not in (0, 3600]", self.duration_s));
        }
        if !(1..=60).contains(&self.fps) {
            e.push(format!("fps: {} is not in 1..=60", self.fps));
        }
        if self.width < 64 || self.height < 64 || self.width % 2 == 1 || self.height % 2 == 1 {
            e.push(format!("width/height: {}x{} must be even and at least 64", self.width, self.height));
        }
        if let Err(msg) = self.parsed_zones() {
            e.push(msg);
        }
        if let Some(b) = &self.background {
            e.extend(super::real::problems(self, b));
        }
        let point = |e: &mut Vec<String>, place: String, p: [f32; 2]| {
            if !(-0.5..=1.5).contains(&p[0]) || !(0.0..=1.0).contains(&p[1]) {
                e.push(format!("{place}: point {p:?} is off the picture"));
            }
        };
        for (i, a) in self.actors.iter().enumerate() {
            let at = |name: &str| format!("actor[{i}].{name}");
            match a {
                Actor::Pedestrian { from, to, walk_s, stop_at, .. } => {
                    point(&mut e, at("from"), *from);
                    point(&mut e, at("to"), *to);
                    if *walk_s <= 0.0 {
                        e.push(format!("{}: must be > 0", at("walk_s")));
                    }
                    if stop_at.is_some_and(|f| !(0.0..=1.0).contains(&f)) {
                        e.push(format!("{}: must be in 0..1", at("stop_at")));
                    }
                }
                Actor::Vendor { at: p, arrive, leave, style } => {
                    point(&mut e, at("at"), *p);
                    if leave <= arrive {
                        e.push(format!("{}: leave {leave} is not after arrive {arrive}", at("leave")));
                    }
                    if style.as_deref().is_some_and(|s| !["table", "crates", "rack"].contains(&s)) {
                        e.push(format!("{}: {style:?} is not table, crates or rack", at("style")));
                    }
                }
                Actor::Dumper { from, drop_at, to, drop, removed } => {
                    point(&mut e, at("from"), *from);
                    point(&mut e, at("drop_at"), *drop_at);
                    point(&mut e, at("to"), *to);
                    if removed.is_some_and(|r| r <= *drop) {
                        e.push(format!("{}: must be after drop", at("removed")));
                    }
                }
                Actor::Pickup { from, at: p, to, put, pick } => {
                    point(&mut e, at("from"), *from);
                    point(&mut e, at("at"), *p);
                    point(&mut e, at("to"), *to);
                    if pick <= put {
                        e.push(format!("{}: must be after put", at("pick")));
                    }
                }
                Actor::Water { center, coverage, .. } => {
                    point(&mut e, at("center"), *center);
                    if coverage.is_empty() || coverage.windows(2).any(|w| w[1][0] < w[0][0]) {
                        e.push(format!("{}: needs keyframes sorted by time", at("coverage")));
                    }
                }
                Actor::Bicycles { at: ps, arrive, leave } => {
                    if ps.len() != arrive.len() || (!leave.is_empty() && leave.len() != ps.len()) {
                        e.push(format!("{}: at, arrive (and leave) need one entry per bicycle", at("at")));
                    }
                    for p in ps {
                        point(&mut e, at("at"), *p);
                    }
                }
                Actor::Car { cross_s, .. } => {
                    if *cross_s <= 0.0 {
                        e.push(format!("{}: must be > 0", at("cross_s")));
                    }
                }
                Actor::WetShadow { center, .. } => point(&mut e, at("center"), *center),
                Actor::Litter { at: ps, appear, removed } => {
                    if ps.len() != appear.len() || (!removed.is_empty() && removed.len() != ps.len()) {
                        e.push(format!("{}: at, appear (and removed) need one entry per item", at("at")));
                    }
                    for p in ps {
                        point(&mut e, at("at"), *p);
                    }
                    for (k, (a, r)) in appear.iter().zip(removed).enumerate() {
                        if r <= a {
                            e.push(format!("{}[{k}]: {r} is not after appear {a}", at("removed")));
                        }
                    }
                }
                Actor::Bin { at: p, .. } => point(&mut e, at("at"), *p),
                Actor::ParkedCar { at: p, arrive, leave, .. } => {
                    point(&mut e, at("at"), *p);
                    if leave <= arrive {
                        e.push(format!("{}: leave {leave} is not after arrive {arrive}", at("leave")));
                    }
                }
                Actor::Queue { y, stop_x, cars, arrive, leave, every_s, spacing, .. } => {
                    point(&mut e, at("stop_x"), [*stop_x, *y]);
                    if !(1..=32).contains(cars) {
                        e.push(format!("{}: {cars} is not in 1..=32", at("cars")));
                    }
                    if leave <= arrive {
                        e.push(format!("{}: leave {leave} is not after arrive {arrive}", at("leave")));
                    }
                    if *every_s < 0.0 || *spacing <= 0.0 {
                        e.push(format!("{}: every_s must be >= 0 and spacing > 0", at("every_s")));
                    }
                }
                Actor::Crowd { at: p, count, arrive, leave, spread, stagger_s } => {
                    point(&mut e, at("at"), *p);
                    if *count == 0 || leave <= arrive || !(0.0..=0.3).contains(spread) || *stagger_s < 0.0 {
                        e.push(format!("{}: needs count >= 1, leave after arrive, spread in 0..0.3 and stagger_s >= 0", at("count")));
                    }
                }
                Actor::Walkers { from, to, count, every_s, walk_s, .. } => {
                    point(&mut e, at("from"), *from);
                    point(&mut e, at("to"), *to);
                    if *count == 0 || *walk_s <= 0.0 || *every_s < 0.0 {
                        e.push(format!("{}: needs count >= 1, walk_s > 0 and every_s >= 0", at("count")));
                    }
                }
            }
            if matches!(a, Actor::Crowd { .. } | Actor::Walkers { .. }) && self.background.is_none() {
                e.push(format!("actor[{i}]: crowds and walkers are real people, drawn on a real background only (use pedestrians on the drawn street)"));
            }
        }
        e
    }
}
