//! `hawkeye synth`: deterministic synthetic street-camera scenarios with ground truth.
//!
//! A scenario file ([`scenario`]) places actors on a fixed street ([`scene`]); [`render`] draws
//! each frame with a small rasteriser ([`canvas`]) and knows which objects are visible; frames
//! go to an H.264 MP4 through GStreamer ([`video`]) and the truth to `truth.json` ([`truth`]).
//! A matching camera config is written next to them, so `hawkeye eval` scores the real
//! pipeline against the truth. [`dataset`] draws randomised pictures with YOLO labels for
//! training hawkeye's own detector.

pub mod canvas;
pub mod crowd;
pub mod dataset;
pub mod real;
pub mod render;
pub mod scenario;
pub mod scene;
pub mod sprites;
pub mod traffic;
pub mod truth;
pub mod video;

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;

use crate::config::{Zone, ZoneKind};
use crate::rules::Polygon;
use canvas::Rng;
use render::{Cast, Effects, Painter};
use scenario::{Actor, Scenario};
use truth::{FloodTimeline, FrameTruth, Truth, TruthEvent};

/// `hawkeye synth` arguments.
#[derive(Args, Debug, Clone)]
pub struct SynthArgs {
    /// Scenario file (TOML) to render.
    pub scenario: Option<PathBuf>,
    /// Output directory: video.mp4, truth.json, config.toml (or the dataset).
    #[arg(long)]
    pub out: PathBuf,
    /// Write a YOLO-format training set of this many random pictures instead.
    #[arg(long)]
    pub dataset: Option<usize>,
    /// Write this many cut-outs of goods and garbage (RGBA PNG) for compositing instead.
    #[arg(long)]
    pub sprites: Option<usize>,
    /// Seed of the dataset or the cut-outs.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Model the generated config points at (default: hawkeye's own, models/hawkeye_urban.onnx).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Water segmentation model the generated config's `[water]` points at (default:
    /// models/hawkeye_water.onnx when it exists; without one, flooding zones use water boxes).
    #[arg(long)]
    pub water: Option<PathBuf>,
}

/// Runs `hawkeye synth`.
pub fn run(args: &SynthArgs) -> anyhow::Result<()> {
    if let Some(n) = args.sprites {
        let (goods, garbage) = sprites::write_sprites(&args.out, n, args.seed)?;
        println!("sprites {}: {goods} goods, {garbage} garbage", args.out.display());
        return Ok(());
    }
    if let Some(n) = args.dataset {
        let (train, val) = dataset::write_dataset(&args.out, n, args.seed, 640, 360)?;
        println!("dataset {}: {train} train + {val} val pictures, classes {}", args.out.display(), truth::CLASSES.join(", "));
        return Ok(());
    }
    let path = args.scenario.as_ref().context("give a scenario file, or --dataset N")?;
    let model = args.model.clone().unwrap_or_else(default_model);
    let water = args.water.clone().or_else(default_water);
    let r = render_scenario_with(path, &args.out, &model, water.as_deref())?;
    println!(
        "{}: {} frames ({:.0} s at {} fps) → {}  ({} truth events)",
        r.truth.name,
        r.truth.frames.len(),
        r.truth.duration_s,
        r.truth.fps,
        r.video.display(),
        r.truth.events.len()
    );
    Ok(())
}

/// hawkeye's own detector as installed next to the binary's source tree or in the working
/// directory (`models/hawkeye_urban.onnx`).
pub fn default_model() -> PathBuf {
    let rel = Path::new("models").join("hawkeye_urban.onnx");
    let here = std::env::current_dir().map(|d| d.join(&rel)).unwrap_or(rel.clone());
    if here.exists() {
        return here;
    }
    let built = Path::new(env!("CARGO_MANIFEST_DIR")).join(&rel);
    if built.exists() {
        built
    } else {
        here
    }
}

/// hawkeye's water segmentation model (`models/hawkeye_water.onnx`, found like
/// [`default_model`]), if it exists.
pub fn default_water() -> Option<PathBuf> {
    let rel = Path::new("models").join("hawkeye_water.onnx");
    let here = std::env::current_dir().map(|d| d.join(&rel)).unwrap_or(rel.clone());
    [here, Path::new(env!("CARGO_MANIFEST_DIR")).join(&rel)].into_iter().find(|p| p.is_file())
}

/// What rendering a scenario produced.
pub struct Rendered {
    pub video: PathBuf,
    pub truth_path: PathBuf,
    pub config: PathBuf,
    pub truth: Truth,
}

/// [`render_scenario_with`] the default water model ([`default_water`]), if there is one.
pub fn render_scenario(scenario: &Path, out: &Path, model: &Path) -> anyhow::Result<Rendered> {
    render_scenario_with(scenario, out, model, default_water().as_deref())
}

/// Renders `scenario` into `out` (created): `video.mp4`, `truth.json`, the true water masks
/// (`water/NNNNNN.png`, one per second) and `config.toml` (a file camera on the video with the
/// scenario's zones, detecting with `model`, and with `[water]` = `water` when given). The true
/// flood coverage of a flooding zone is measured on the true water mask's pixels inside its
/// polygon (no longer on the puddles' boxes), frame by frame.
pub fn render_scenario_with(scenario: &Path, out: &Path, model: &Path, water: Option<&Path>) -> anyhow::Result<Rendered> {
    let s = Scenario::load(scenario)?;
    let name = scenario.file_stem().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    std::fs::create_dir_all(out).with_context(|| format!("create {}", out.display()))?;
    let out = out.canonicalize()?;
    if s.background.is_some() {
        return real::render(&s, &name, &out, model, water);
    }
    let zones = s.parsed_zones().map_err(|e| anyhow::anyhow!("{}: {e}", scenario.display()))?;
    let (w, h) = (s.width, s.height);
    let (wf, hf) = (w as f32, h as f32);
    let mut rng = Rng::new(s.seed);
    let mut painter = Painter::new(render::street_for(&s));
    let cast = Cast::new(&s, &mut rng);
    let mut fx = Effects::new(s.seed);
    let video = out.join("video.mp4");
    let mut writer = video::Mp4Writer::create(&video, w, h, s.fps, s.scene.bitrate_kbps)?;
    // the true coverage of a flooding zone is the share of its polygon that shows water: the
    // painted water's pixels (the canvas's object-id layer, so a person or car standing in a
    // puddle hides it), sampled as the rule samples a mask. (Before water masks it was the
    // puddles' boxes, which overstate a round puddle by about a quarter.)
    let flood_zones: Vec<(usize, Polygon)> = zones
        .iter()
        .enumerate()
        .filter(|(_, z)| z.kind == ZoneKind::Flooding)
        .map(|(i, z)| (i, Polygon::new(&z.polygon)))
        .collect();
    let mut coverage: Vec<Vec<f64>> = vec![Vec::new(); flood_zones.len()];
    let n_frames = (s.duration_s * s.fps as f64).round() as usize;
    let (mut ground, mut sprites, mut scratch) = (Vec::new(), Vec::new(), Vec::new());
    let mut frames = Vec::with_capacity(n_frames);
    let water_dir = out.join("water");
    std::fs::create_dir_all(&water_dir).with_context(|| format!("create {}", water_dir.display()))?;
    let mut water_masks = Vec::new();
    let mut mask = crate::detect::WaterMask::dry(w, h);
    for i in 0..n_frames {
        let t = i as f64 / s.fps as f64;
        render::scene_at(&s, &cast, t, wf, hf, &mut ground, &mut sprites);
        let boxes = painter.paint(&ground, &mut sprites, t as f32);
        let c = &mut painter.canvas;
        if s.scene.rain.is_some_and(|[a, b]| t >= a && t < b) {
            fx.rain(c);
        }
        for [a, b] in &s.scene.shadows {
            if t >= *a && t < *b {
                fx.cloud_shadow(c, ((t - a) / (b - a)) as f32);
            }
        }
        let gain = render::keyframe(&s.scene.light, t, 1.0) as f32;
        fx.light_and_noise(c, gain, s.scene.noise);
        let (dx, dy) = fx.shake(c, s.scene.shake_px, &mut scratch);
        render::water_mask(c, &ground, dx, dy, &mut mask);
        for (k, (_, poly)) in flood_zones.iter().enumerate() {
            coverage[k].push(mask.coverage(poly));
        }
        if i % s.fps as usize == 0 {
            let file = format!("water/{i:06}.png");
            mask.write_png(&out.join(&file))?;
            water_masks.push(truth::WaterMaskTruth { frame: i as u64, t, file });
        }
        writer.push(&c.rgb)?;
        frames.push(FrameTruth { t, boxes: dataset::shifted(&boxes, dx, dy, wf, hf) });
    }
    writer.finish()?;
    let times: Vec<f64> = frames.iter().map(|f| f.t).collect();
    let flood_idx: Vec<usize> = flood_zones.iter().map(|(i, _)| *i).collect();
    let (events, flood) = truth_events(&s, &zones, &flood_idx, &coverage, &times);
    let truth = Truth { name: name.clone(), width: w, height: h, fps: s.fps as f64, duration_s: n_frames as f64 / s.fps as f64, frames, events, flood, water_masks, labelled: None, partial: Vec::new() };
    let truth_path = out.join("truth.json");
    std::fs::write(&truth_path, serde_json::to_vec(&truth)?)?;
    let config = out.join("config.toml");
    std::fs::write(&config, camera_config(&s, &name, &video, model, water, &out)?)?;
    Ok(Rendered { video, truth_path, config, truth })
}

/// Truth events and flood timelines of a rendered scenario: the flooding zones (`flood_zones`,
/// indices into `zones`) graded on their true `coverage` per frame, and the actors' events.
fn truth_events(s: &Scenario, zones: &[Zone], flood_zones: &[usize], coverage: &[Vec<f64>], times: &[f64]) -> (Vec<TruthEvent>, Vec<FloodTimeline>) {
    let mut events = Vec::new();
    let mut flood = Vec::new();
    for (k, zi) in flood_zones.iter().enumerate() {
        let z = &zones[*zi];
        let levels = graded(&coverage[k], z);
        let mut steps: Vec<(f64, String)> = Vec::new();
        for (t, l) in times.iter().zip(&levels) {
            if steps.last().map_or(*l != "green", |(_, p)| p != l) {
                steps.push((*t, l.to_string()));
            }
        }
        // the rule reports a level once it has held level_min_s, on coverage smoothed with time
        // constant smooth_s: that is when a correct alert comes
        let latency_s = z.level_min_s + z.smooth_s;
        for (a, b) in intervals(times, levels.iter().map(|l| *l != "green"), s.duration_s).into_iter().filter(|(a, b)| b - a >= z.level_min_s) {
            events.push(TruthEvent { kind: "flooding".into(), zone: z.id.clone(), start: a, end: b, dwell_s: latency_s });
        }
        flood.push(FloodTimeline { zone: z.id.clone(), levels: steps, latency_s });
    }
    // a violation shorter than its zone's dwell is not one a correct system reports
    events.extend(actor_events(s, zones, times).into_iter().filter(|e| e.end - e.start >= e.dwell_s));
    events.sort_by(|a, b| a.start.total_cmp(&b.start));
    (events, flood)
}

/// The true level of a flooding zone frame by frame: its thresholds applied to the true
/// coverage, falling only below a threshold minus the hysteresis (as the zone's grading does).
fn graded(coverage: &[f64], z: &Zone) -> Vec<&'static str> {
    let mut level = 0;
    coverage
        .iter()
        .map(|c| {
            let up = if *c >= z.red_at { 2 } else if *c >= z.yellow_at { 1 } else { 0 };
            let down = if *c >= z.red_at - z.hysteresis { 2 } else if *c >= z.yellow_at - z.hysteresis { 1 } else { 0 };
            level = if up > level { up } else { level.min(down) };
            ["green", "yellow", "red"][level]
        })
        .collect()
}

/// `[start, end)` runs where `on` holds, over frame times (the last run ends at `duration`).
fn intervals(times: &[f64], on: impl Iterator<Item = bool>, duration: f64) -> Vec<(f64, f64)> {
    let mut out = Vec::new();
    let mut start = None;
    for (t, v) in times.iter().zip(on) {
        match (start, v) {
            (None, true) => start = Some(*t),
            (Some(a), false) => {
                out.push((a, *t));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(a) = start {
        out.push((a, duration));
    }
    out
}

/// Truth events implied by the actors: stalls in out-of-store zones, items left in dumping
/// zones, bicycles over a zone's `min_count`, cars standing in parking zones, persons at or over
/// a crowd zone's `min_count`.
fn actor_events(s: &Scenario, zones: &[Zone], times: &[f64]) -> Vec<TruthEvent> {
    let (w, h) = (s.width, s.height);
    let inside = |z: &Zone, p: [f32; 2]| Polygon::new(&z.polygon).contains_px(p[0] * w as f32, p[1] * h as f32, w, h);
    let mut out = Vec::new();
    for z in zones {
        let ev = |start: f64, end: f64| TruthEvent { kind: z.kind.as_str().to_string(), zone: z.id.clone(), start, end, dwell_s: z.dwell_s };
        match z.kind {
            ZoneKind::OutOfStore => {
                for a in &s.actors {
                    if let Actor::Vendor { at, arrive, leave, .. } = a {
                        if inside(z, *at) {
                            out.push(ev(*arrive, *leave));
                        }
                    }
                }
            }
            ZoneKind::Dumping => {
                for a in &s.actors {
                    if let Actor::Dumper { drop_at, drop, removed, .. } = a {
                        if inside(z, render::set_down_point(*drop_at)) {
                            out.push(ev(*drop, removed.unwrap_or(s.duration_s)));
                        }
                    }
                }
            }
            ZoneKind::Occupancy => {
                let count_at = |t: f64| -> usize {
                    s.actors
                        .iter()
                        .map(|a| match a {
                            Actor::Bicycles { at, arrive, leave } => at
                                .iter()
                                .enumerate()
                                .filter(|(k, p)| t >= arrive[*k] && !leave.get(*k).is_some_and(|l| t >= *l) && inside(z, **p))
                                .count(),
                            _ => 0,
                        })
                        .sum()
                };
                for (a, b) in intervals(times, times.iter().map(|t| count_at(*t) >= z.min_count as usize), s.duration_s) {
                    out.push(ev(a, b));
                }
            }
            ZoneKind::BinOverflow => {
                // every piece of rubbish on the ground in the zone, whoever left it
                let count_at = |t: f64| -> usize {
                    s.actors
                        .iter()
                        .map(|a| match a {
                            Actor::Litter { at, appear, removed } => at
                                .iter()
                                .enumerate()
                                .filter(|(k, p)| t >= appear[*k] && !removed.get(*k).is_some_and(|r| t >= *r) && inside(z, **p))
                                .count(),
                            Actor::Dumper { drop_at, drop, removed, .. } => {
                                usize::from(t >= *drop && removed.is_none_or(|r| t < r) && inside(z, render::set_down_point(*drop_at)))
                            }
                            Actor::Pickup { at, put, pick, .. } => usize::from(t >= *put && t < *pick && inside(z, render::set_down_point(*at))),
                            _ => 0,
                        })
                        .sum()
                };
                for (a, b) in intervals(times, times.iter().map(|t| count_at(*t) >= z.min_count as usize), s.duration_s) {
                    out.push(ev(a, b));
                }
            }
            ZoneKind::Crowd => {
                // persons in the zone: crowds and walkers (real backgrounds), pedestrians (the
                // drawn street), standing or walking
                let members: Vec<crowd::Member> = s.actors.iter().flat_map(crowd::members).collect();
                let count_at = |t: f64| -> usize {
                    let people = members.iter().filter_map(|m| m.at(t));
                    let pedestrians = s.actors.iter().filter_map(|a| render::pedestrian_at(a, t));
                    people.chain(pedestrians).filter(|p| inside(z, *p)).count()
                };
                for (a, b) in intervals(times, times.iter().map(|t| count_at(*t) >= z.min_count as usize), s.duration_s) {
                    out.push(ev(a, b));
                }
            }
            ZoneKind::Parking => out.extend(traffic::parking_events(s, z)),
            ZoneKind::Flooding | ZoneKind::Loitering => {}
        }
    }
    out
}

/// The camera config of a rendered scenario: the video as a file camera (not real time, so
/// eval runs as fast as it can on stream timestamps) with the scenario's zones.
fn camera_config(s: &Scenario, name: &str, video: &Path, model: &Path, water: Option<&Path>, out: &Path) -> anyhow::Result<String> {
    let q = |p: &Path| toml::Value::String(p.display().to_string()).to_string();
    let mut text = format!(
        "# Generated by `hawkeye synth` from scenario {name}: the rendered video as a file camera.\n\
         [device]\nid = \"synth-{name}\"\nstate_dir = {state}\n\n\
         [mqtt]\nurl = \"mqtt://127.0.0.1:1883\"\n\n\
         [model]\npath = {model}\nscore_threshold = 0.3\n\n{water}\
         [[camera]]\nid = \"synth\"\nurl = {video}\npipeline = \"file\"\nrealtime = false\ndetect_fps = {fps}\nframe_width = {w}\n\n\
         # drawn people have no real faces or plates: the cascades would only mask false ones\n\
         [camera.privacy]\nfaces = false\nplates = false\n",
        state = q(&out.join("state")),
        model = q(model),
        // the water model drives the flooding zones, at one mask a second
        water = water.map(|wm| format!("[water]\nmodel = {}\nfps = 1.0\n\n", q(wm))).unwrap_or_default(),
        video = q(video),
        fps = s.detect_fps,
        w = s.width,
    );
    for z in &s.zones {
        text.push_str("\n[[camera.zone]]\n");
        text.push_str(&toml::to_string(z)?);
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flood_truth_falls_with_hysteresis() {
        let text = "seed = 1\nduration_s = 5\n[[zone]]\nid = \"r\"\nkind = \"flooding\"\npolygon = [[0, 0], [1, 0], [1, 1]]\nclasses = [\"water\"]\ndwell_s = 0\nyellow_at = 0.2\nred_at = 0.5\nhysteresis = 0.05\n";
        let s: Scenario = toml::from_str(text).unwrap();
        let z = &s.parsed_zones().unwrap()[0];
        let c = [0.1, 0.22, 0.18, 0.14, 0.52, 0.47, 0.44, 0.3, 0.1];
        assert_eq!(graded(&c, z), ["green", "yellow", "yellow", "green", "red", "red", "yellow", "yellow", "green"]);
    }

    #[test]
    fn intervals_close_at_the_end() {
        let times = [0.0, 1.0, 2.0, 3.0, 4.0];
        let on = [false, true, true, false, true];
        assert_eq!(intervals(&times, on.into_iter(), 5.0), vec![(1.0, 3.0), (4.0, 5.0)]);
        assert!(intervals(&times, [false; 5].into_iter(), 5.0).is_empty());
    }

    #[test]
    fn every_suite_scenario_parses_and_names_its_problems() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scenarios");
        let mut n = 0;
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "toml") {
                Scenario::load(&p).unwrap_or_else(|e| panic!("{e}"));
                n += 1;
            }
        }
        assert!(n >= 12, "{n} scenarios");
        let bad = "seed = 1\nduration_s = -1\n[[actor]]\nkind = \"vendor\"\nat = [3.0, 0.5]\narrive = 5\nleave = 2\n";
        let s: Scenario = toml::from_str(bad).unwrap();
        let p = s.problems();
        assert!(p.iter().any(|m| m.starts_with("duration_s")), "{p:?}");
        assert!(p.iter().any(|m| m.starts_with("actor[0].at")), "{p:?}");
        assert!(p.iter().any(|m| m.starts_with("actor[0].leave")), "{p:?}");
        assert!(toml::from_str::<Scenario>("seed = 1\nduration_s = 5\n[[actor]]\nkind = \"ufo\"\n").is_err());
    }

    #[test]
    fn actor_events_follow_zones_and_counts() {
        let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scenarios/11_bikes_overflow.toml")).unwrap();
        let s: Scenario = toml::from_str(&text).unwrap();
        let zones = s.parsed_zones().unwrap();
        let times: Vec<f64> = (0..700).map(|i| i as f64 / 10.0).collect();
        let ev = actor_events(&s, &zones, &times);
        // the fifth bike arrives at 23 s; two leave at 55 s and 58 s: below 5 from 58 s
        assert_eq!(ev.len(), 1, "{ev:?}");
        assert_eq!((ev[0].kind.as_str(), ev[0].start, ev[0].end), ("occupancy", 23.0, 58.0));
    }

    #[test]
    fn bin_overflow_truth_counts_every_piece_of_rubbish_in_the_zone() {
        let zone = "[[zone]]\nid = \"bins\"\nkind = \"bin_overflow\"\npolygon = [[0.5, 0.4], [0.9, 0.4], [0.9, 0.6], [0.5, 0.6]]\nclasses = [\"garbage\"]\ndwell_s = 10\nmin_count = 2\n";
        // litter at 5 s and 9 s (one outside the zone at 7 s), cleared at 30 s; a bag set down
        // in the zone from 40 to 44 s beside a piece left at 41 s; the bin is scenery
        let actors = "[[actor]]\nkind = \"bin\"\nat = [0.7, 0.5]\n[[actor]]\nkind = \"litter\"\nat = [[0.6, 0.5], [0.2, 0.5], [0.8, 0.5], [0.62, 0.52]]\nappear = [5, 7, 9, 41]\nremoved = [30, 30, 30, 60]\n[[actor]]\nkind = \"pickup\"\nfrom = [0.1, 0.5]\nat = [0.7, 0.5]\nput = 40\npick = 44\nto = [1.0, 0.5]\n";
        let s: Scenario = toml::from_str(&format!("seed = 1\nduration_s = 70\n{zone}{actors}")).unwrap();
        assert!(s.problems().is_empty(), "{:?}", s.problems());
        let zones = s.parsed_zones().unwrap();
        let times: Vec<f64> = (0..700).map(|i| i as f64 / 10.0).collect();
        let ev = actor_events(&s, &zones, &times);
        let spans: Vec<(&str, f64, f64)> = ev.iter().map(|e| (e.kind.as_str(), e.start, e.end)).collect();
        assert_eq!(spans, vec![("bin_overflow", 9.0, 30.0), ("bin_overflow", 41.0, 44.0)]);
        // removal before appearance is named with its place
        let bad: Scenario = toml::from_str("seed = 1\nduration_s = 9\n[[actor]]\nkind = \"litter\"\nat = [[0.5, 0.5]]\nappear = [5]\nremoved = [3]\n").unwrap();
        assert!(bad.problems().iter().any(|p| p.starts_with("actor[0].removed[0]")), "{:?}", bad.problems());
    }

    #[test]
    fn crowd_truth_counts_the_people_in_the_zone() {
        // four pedestrians stop in the plaza, then three others: two crowds of min_count 3
        let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scenarios/18_crowd_gathers.toml")).unwrap();
        let s: Scenario = toml::from_str(&text).unwrap();
        let times: Vec<f64> = (0..800).map(|i| i as f64 / 10.0).collect();
        let ev = actor_events(&s, &s.parsed_zones().unwrap(), &times);
        assert_eq!(ev.len(), 2, "{ev:?}");
        assert!(ev.iter().all(|e| e.kind == "crowd" && e.end - e.start > 15.0), "{ev:?}");
        // the negative: two stand, four disperse within the dwell, walkers pass one at a time
        let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scenarios/19_crowd_passes.toml")).unwrap();
        let s: Scenario = toml::from_str(&text).unwrap();
        let ev = actor_events(&s, &s.parsed_zones().unwrap(), &times[..700]);
        assert!(ev.iter().all(|e| e.end - e.start < 8.0), "{ev:?}");
    }
}
