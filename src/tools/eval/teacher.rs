//! `hawkeye eval --teacher <coco model>`: the shipped detector against the COCO teacher on real
//! footage that has no ground truth.
//!
//! On every `every`-th frame of each clip both models run. The teacher's persons and its cars,
//! buses and trucks with score ≥ [`TEACHER_SCORE`] are the reference: the check reports the
//! share of them the shipped model finds (same truth class through the eval class map, its own
//! score ≥ the operating score, IoU ≥ [`MATCH_IOU`], greedy by score). Real footage holds no
//! stalls, bags or puddles, so every urban detection (goods, garbage) at score ≥
//! [`URBAN_SCORE`] is a false one: the check reports them per frame.
//!
//! The default clips keep the train/test split apart: vtest.avi frames 0–399 and tree.avi
//! frames 0–33 are training backgrounds, vtest.avi frames 400–794 and tree.avi frames 34–67
//! are not; each is reported on its own.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde::Serialize;

use crate::detect::{Detection, Detector, DetectorOptions};
use crate::tools::eval::metrics::{iou, truth_class};
use crate::tools::synth::real::{decode_each, find_video};

/// Teacher detections at least this confident are the reference.
pub const TEACHER_SCORE: f32 = 0.5;
/// A reference object is found by a detection of its class overlapping it this much.
pub const MATCH_IOU: f32 = 0.5;
/// Urban detections are counted from this score.
pub const URBAN_SCORE: f32 = 0.4;
/// Classes that real footage without stalls, bags or puddles never shows.
pub const URBAN_CLASSES: [&str; 3] = ["goods", "garbage", "water"];
/// Teacher classes counted as cars and vans.
const TEACHER_VEHICLES: [&str; 3] = ["car", "bus", "truck"];

/// Frames `first..=last` of a video (to its end when `last` is `None`).
#[derive(Clone, Debug, PartialEq)]
pub struct Clip {
    pub name: String,
    pub path: PathBuf,
    pub first: usize,
    pub last: Option<usize>,
}

impl Clip {
    /// Parses `FILE` or `FILE:FIRST-LAST`; `vtest` and `tree` name Debian's samples.
    pub fn parse(spec: &str) -> anyhow::Result<Clip> {
        let (file, range) = match spec.rsplit_once(':') {
            Some((f, r)) if r.contains('-') && r.chars().all(|c| c.is_ascii_digit() || c == '-') => (f, Some(r)),
            _ => (spec, None),
        };
        let path = find_video(file)?;
        let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        let (first, last) = match range {
            None => (0, None),
            Some(r) => {
                let (a, b) = r.split_once('-').context("FIRST-LAST")?;
                let (a, b): (usize, usize) = (a.parse().with_context(|| format!("clip {spec}: frame {a:?}"))?, b.parse().with_context(|| format!("clip {spec}: frame {b:?}"))?);
                if b < a {
                    bail!("clip {spec}: last frame {b} is before first frame {a}");
                }
                (a, Some(b))
            }
        };
        let name = match last {
            Some(b) => format!("{stem} {first}-{b}"),
            None => stem,
        };
        Ok(Clip { name, path, first, last })
    }

    /// The default clips: vtest.avi's training half and evaluation half, tree.avi's halves.
    pub fn defaults() -> anyhow::Result<Vec<Clip>> {
        ["vtest:0-399", "vtest:400-794", "tree:0-33", "tree:34-67"].iter().map(|s| Clip::parse(s)).collect()
    }
}

/// Figures of one clip.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct ClipReport {
    pub clip: String,
    pub frames: usize,
    /// Teacher persons (score ≥ 0.5) and how many of them the shipped model found.
    pub teacher_persons: usize,
    pub persons_found: usize,
    /// `persons_found / teacher_persons`; `None` without teacher persons.
    pub person_share: Option<f64>,
    /// The same for the teacher's cars, buses and trucks.
    pub teacher_vehicles: usize,
    pub vehicles_found: usize,
    pub vehicle_share: Option<f64>,
    /// Urban detections (score ≥ 0.4), per class and per frame.
    pub urban_dets: usize,
    pub urban_by_class: BTreeMap<String, usize>,
    pub urban_per_frame: f64,
}

impl ClipReport {
    fn finish(&mut self) {
        let share = |n: usize, d: usize| (d > 0).then(|| n as f64 / d as f64);
        self.person_share = share(self.persons_found, self.teacher_persons);
        self.vehicle_share = share(self.vehicles_found, self.teacher_vehicles);
        self.urban_per_frame = self.urban_dets as f64 / self.frames.max(1) as f64;
    }

    /// Adds one frame's detections of both models.
    pub fn add_frame(&mut self, model: &[Detection], teacher: &[Detection], model_score: f32) {
        self.frames += 1;
        let boxes = |dets: &[Detection], keep: &dyn Fn(&Detection) -> bool| -> Vec<(f32, [f32; 4])> {
            dets.iter().filter(|d| keep(d)).map(|d| (d.score, [d.bbox.x1, d.bbox.y1, d.bbox.x2, d.bbox.y2])).collect()
        };
        for (truth, counted, found) in [("person", &mut self.teacher_persons, &mut self.persons_found), ("vehicle", &mut self.teacher_vehicles, &mut self.vehicles_found)] {
            let refs = boxes(teacher, &|d| {
                d.score >= TEACHER_SCORE && if truth == "person" { d.class == "person" } else { TEACHER_VEHICLES.contains(&d.class.as_str()) }
            });
            let mine = boxes(model, &|d| d.score >= model_score && truth_class(&d.class) == Some(truth));
            *counted += refs.len();
            *found += matched(&refs, &mine);
        }
        for d in model.iter().filter(|d| d.score >= URBAN_SCORE && URBAN_CLASSES.contains(&d.class.as_str())) {
            self.urban_dets += 1;
            *self.urban_by_class.entry(d.class.clone()).or_default() += 1;
        }
        self.finish();
    }
}

/// How many of `refs` a detection in `dets` takes: detections by descending score, each to the
/// free reference it overlaps most with IoU ≥ [`MATCH_IOU`].
fn matched(refs: &[(f32, [f32; 4])], dets: &[(f32, [f32; 4])]) -> usize {
    let mut order: Vec<usize> = (0..dets.len()).collect();
    order.sort_by(|a, b| dets[*b].0.total_cmp(&dets[*a].0));
    let mut taken = vec![false; refs.len()];
    for k in order {
        let best = (0..refs.len()).filter(|g| !taken[*g]).map(|g| (g, iou(&refs[g].1, &dets[k].1))).filter(|(_, v)| *v >= MATCH_IOU).max_by(|a, b| a.1.total_cmp(&b.1));
        if let Some((g, _)) = best {
            taken[g] = true;
        }
    }
    taken.iter().filter(|t| **t).count()
}

/// The whole check.
#[derive(Clone, Debug, Serialize)]
pub struct TeacherReport {
    pub model: String,
    pub teacher: String,
    pub every: usize,
    pub model_score: f32,
    pub teacher_score: f32,
    pub urban_score: f32,
    pub iou: f32,
    pub clips: Vec<ClipReport>,
}

/// Runs `model` and `teacher` on every `every`-th frame of each clip.
pub fn run_check(model: &Path, teacher: &Path, clips: &[Clip], every: usize, model_score: f32, threads: usize) -> anyhow::Result<TeacherReport> {
    let every = every.max(1);
    let floor = model_score.min(URBAN_SCORE);
    let mut mine = Detector::load(model, None, DetectorOptions { score_threshold: floor, threads, ..Default::default() })?;
    let mut coco = Detector::load(teacher, None, DetectorOptions { score_threshold: TEACHER_SCORE, threads, ..Default::default() })?;
    let mut reports = Vec::new();
    for clip in clips {
        let mut r = ClipReport { clip: clip.name.clone(), ..Default::default() };
        let bar = indicatif::ProgressBar::new(clip.last.map_or(0, |b| ((b - clip.first) / every + 1) as u64)).with_message(clip.name.clone());
        let mut failure = None;
        let n = decode_each(&clip.path, None, |i, rgb, w, h| {
            if i >= clip.first && (i - clip.first) % every == 0 {
                match (mine.detect(rgb, w, h), coco.detect(rgb, w, h)) {
                    (Ok(a), Ok(b)) => r.add_frame(&a, &b, model_score),
                    (Err(e), _) | (_, Err(e)) => {
                        failure = Some(e);
                        return false;
                    }
                }
                bar.inc(1);
            }
            clip.last.is_none_or(|b| i < b)
        })?;
        bar.finish_and_clear();
        if let Some(e) = failure {
            return Err(e).with_context(|| format!("{}: detection failed", clip.name));
        }
        if let Some(b) = clip.last.filter(|b| n <= *b) {
            bail!("{}: frames {}–{b} wanted, {} decodes to {n} frames", clip.name, clip.first, clip.path.display());
        }
        reports.push(r);
    }
    Ok(TeacherReport {
        model: model.display().to_string(),
        teacher: teacher.display().to_string(),
        every,
        model_score,
        teacher_score: TEACHER_SCORE,
        urban_score: URBAN_SCORE,
        iou: MATCH_IOU,
        clips: reports,
    })
}

impl TeacherReport {
    /// A fixed-width table, one row per clip.
    pub fn print_table(&self) -> String {
        use std::fmt::Write;
        let pct = |v: Option<f64>| v.map_or("-".to_string(), |x| format!("{:.1}%", 100.0 * x));
        let mut s = String::new();
        let _ = writeln!(s, "== teacher check: {} against {} (every {}th frame) ==", self.model, self.teacher, self.every);
        let _ = writeln!(
            s,
            "teacher's persons and cars/buses/trucks (score >= {}) found at IoU >= {} (model score >= {}); urban detections (goods, garbage, water) at score >= {} per frame",
            self.teacher_score, self.iou, self.model_score, self.urban_score
        );
        let _ = writeln!(s, "  {:<16} {:>6} {:>8} {:>8} {:>9} {:>8} {:>7} {:>9}  by class", "clip", "frames", "persons", "found", "vehicles", "found", "urban", "per frame");
        for c in &self.clips {
            let by: Vec<String> = c.urban_by_class.iter().map(|(k, v)| format!("{k} {v}")).collect();
            let _ = writeln!(
                s,
                "  {:<16} {:>6} {:>8} {:>8} {:>9} {:>8} {:>7} {:>9.3}  {}",
                c.clip,
                c.frames,
                c.teacher_persons,
                pct(c.person_share),
                c.teacher_vehicles,
                pct(c.vehicle_share),
                c.urban_dets,
                c.urban_per_frame,
                by.join(", ")
            );
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::BBox;

    fn det(class: &str, score: f32, b: [f32; 4]) -> Detection {
        Detection { class_id: 0, class: class.into(), score, bbox: BBox::new(b[0], b[1], b[2], b[3]) }
    }

    #[test]
    fn shares_count_the_teachers_confident_objects() {
        let (p1, p2, car) = ([0.0, 0.0, 10.0, 30.0], [50.0, 0.0, 60.0, 30.0], [100.0, 100.0, 160.0, 140.0]);
        let teacher = [det("person", 0.9, p1), det("person", 0.7, p2), det("person", 0.3, [200.0, 0.0, 210.0, 30.0]), det("truck", 0.8, car)];
        // the model finds p1, misses p2 (a box beside it), reports the truck as a car, and a bag
        let model = [det("person", 0.8, p1), det("person", 0.6, [56.0, 0.0, 66.0, 30.0]), det("car", 0.5, car), det("garbage", 0.45, [300.0, 300.0, 320.0, 320.0]), det("goods", 0.35, p1)];
        let mut r = ClipReport::default();
        r.add_frame(&model, &teacher, 0.3);
        r.add_frame(&[], &[], 0.3);
        assert_eq!((r.frames, r.teacher_persons, r.persons_found), (2, 2, 1));
        assert_eq!((r.teacher_vehicles, r.vehicles_found), (1, 1));
        assert_eq!(r.person_share, Some(0.5));
        assert_eq!((r.urban_dets, r.urban_per_frame), (1, 0.5));
        assert_eq!(r.urban_by_class.get("garbage"), Some(&1));
    }

    #[test]
    fn clips_parse_with_and_without_a_range() {
        if !Path::new(crate::tools::synth::real::DATA_DIR).join("vtest.avi").is_file() {
            eprintln!("*** SKIPPED clips_parse_with_and_without_a_range: vtest.avi absent (opencv-doc) ***");
            return;
        }
        let c = Clip::parse("vtest:400-794").unwrap();
        assert_eq!((c.name.as_str(), c.first, c.last), ("vtest 400-794", 400, Some(794)));
        assert_eq!(Clip::parse("vtest").unwrap().last, None);
        assert!(Clip::parse("vtest:9-3").unwrap_err().to_string().contains("before"));
        assert!(Clip::parse("/no/such.avi:0-3").unwrap_err().to_string().contains("not found"));
    }
}
