//! Zoomed looks at far zones. On the whole frame letterboxed to the model's input, a stall on a
//! far car park is ~20 px and a bag ~10 px: below what the detector finds. A zone with
//! `zoom = true` is also looked at through a crop around it, letterboxed to the full input (so
//! its objects are 2–3× larger to the model), a few times a second at most (`zoom_fps`); the
//! crop's detections are mapped back to the frame and merged with the whole frame's.
//!
//! Pure geometry ([`plan_regions`], [`merge`]) is separate from running the model
//! ([`Zoomer::look`]) so both are tested on their own.

use super::detector::Detector;
use super::error::DetectError;
use super::segment::WaterSchedule;
use super::types::{BBox, Detection};

/// How much larger than the model input a crop may be magnified at most: beyond ~3× the
/// upscaled pixels carry no more detail, only blur.
pub const MAX_MAGNIFICATION: f64 = 3.0;

/// Looks are worth it only when the crop shows its zone at least this much larger than the
/// whole frame does.
pub const MIN_GAIN: f64 = 1.25;

/// A crop of the frame, in frame pixels (`x1..x2`, `y1..y2`, exclusive ends).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region {
    pub x1: u32,
    pub y1: u32,
    pub x2: u32,
    pub y2: u32,
}

impl Region {
    pub fn width(&self) -> u32 {
        self.x2 - self.x1
    }
    pub fn height(&self) -> u32 {
        self.y2 - self.y1
    }
    fn contains(&self, o: &Region) -> bool {
        o.x1 >= self.x1 && o.y1 >= self.y1 && o.x2 <= self.x2 && o.y2 <= self.y2
    }
}

/// The crop that shows a zone: the polygon's bounding box, widened by a quarter of its width on
/// each side, extended upwards by its own height (objects stand in a zone by their feet, their
/// boxes reach above it) and a little downwards, then grown to the model input's aspect ratio
/// and to at least `1 / MAX_MAGNIFICATION` of its size, moved inside the frame. `None` when the
/// crop would show the zone hardly larger than the whole frame does (a near or large zone).
pub fn zone_region(polygon: &[[f64; 2]], frame_w: u32, frame_h: u32, input_w: u32, input_h: u32) -> Option<Region> {
    if polygon.is_empty() || frame_w == 0 || frame_h == 0 || input_w == 0 || input_h == 0 {
        return None;
    }
    let (fw, fh) = (frame_w as f64, frame_h as f64);
    let xs = polygon.iter().map(|p| p[0].clamp(0.0, 1.0) * fw);
    let ys = polygon.iter().map(|p| p[1].clamp(0.0, 1.0) * fh);
    let (x1, x2) = xs.fold((f64::MAX, f64::MIN), |(a, b), x| (a.min(x), b.max(x)));
    let (y1, y2) = ys.fold((f64::MAX, f64::MIN), |(a, b), y| (a.min(y), b.max(y)));
    let (zw, zh) = ((x2 - x1).max(1.0), (y2 - y1).max(1.0));
    let (mut x1, mut x2, mut y1, mut y2) = (x1 - 0.25 * zw, x2 + 0.25 * zw, y1 - zh, y2 + 0.15 * zh);
    // at least 1/MAX_MAGNIFICATION of the input, and the input's aspect ratio
    let aspect = input_w as f64 / input_h as f64;
    let mut w = (x2 - x1).max(input_w as f64 / MAX_MAGNIFICATION);
    let mut h = (y2 - y1).max(input_h as f64 / MAX_MAGNIFICATION);
    if w / h < aspect {
        w = h * aspect;
    } else {
        h = w / aspect;
    }
    // never larger than the frame (then the aspect gives way)
    w = w.min(fw);
    h = h.min(fh);
    let (cx, cy) = ((x1 + x2) / 2.0, (y1 + y2) / 2.0);
    x1 = (cx - w / 2.0).clamp(0.0, fw - w);
    y1 = (cy - h / 2.0).clamp(0.0, fh - h);
    x2 = x1 + w;
    y2 = y1 + h;
    // the gain: the crop's scale to the input against the whole frame's
    let frame_scale = (input_w as f64 / fw).min(input_h as f64 / fh);
    let crop_scale = (input_w as f64 / w).min(input_h as f64 / h);
    if crop_scale < MIN_GAIN * frame_scale {
        return None;
    }
    let r = Region { x1: x1.floor() as u32, y1: y1.floor() as u32, x2: (x2.ceil() as u32).min(frame_w), y2: (y2.ceil() as u32).min(frame_h) };
    (r.width() > 0 && r.height() > 0).then_some(r)
}

/// The crops for a camera's zoomed zones; a crop that lies inside another is dropped (the larger
/// one shows its zone too).
pub fn plan_regions<'a>(polygons: impl IntoIterator<Item = &'a [[f64; 2]]>, frame_w: u32, frame_h: u32, input_w: u32, input_h: u32) -> Vec<Region> {
    let all: Vec<Region> = polygons.into_iter().filter_map(|p| zone_region(p, frame_w, frame_h, input_w, input_h)).collect();
    let mut kept: Vec<Region> = Vec::new();
    for (i, r) in all.iter().enumerate() {
        let covered = all.iter().enumerate().any(|(j, o)| j != i && o.contains(r) && (o != r || j < i));
        if !covered {
            kept.push(*r);
        }
    }
    kept
}

/// Whether a box mapped back from `region` touches one of its edges that is not also an edge of
/// the frame: an object cut by the crop, whose box is only part of it.
fn cut_by(b: &BBox, region: &Region, frame_w: u32, frame_h: u32) -> bool {
    const EDGE_PX: f32 = 2.0;
    (region.x1 > 0 && b.x1 <= region.x1 as f32 + EDGE_PX)
        || (region.y1 > 0 && b.y1 <= region.y1 as f32 + EDGE_PX)
        || (region.x2 < frame_w && b.x2 >= region.x2 as f32 - EDGE_PX)
        || (region.y2 < frame_h && b.y2 >= region.y2 as f32 - EDGE_PX)
}

/// Overlap at which a zoomed box and a whole-frame box of the same class are one object:
/// intersection over the smaller box (a crop can frame an object a little differently).
const SAME_OBJECT: f32 = 0.6;

fn overlap_of_smaller(a: &BBox, b: &BBox) -> f32 {
    let iw = (a.x2.min(b.x2) - a.x1.max(b.x1)).max(0.0);
    let ih = (a.y2.min(b.y2) - a.y1.max(b.y1)).max(0.0);
    let smaller = a.area().min(b.area());
    if smaller <= 0.0 {
        0.0
    } else {
        iw * ih / smaller
    }
}

/// Merges a crop's detections (already in frame pixels) into the frame's: an object found in
/// both keeps the higher-scoring box; objects cut by the crop's edge are left to the whole
/// frame. Returns how many were added.
pub fn merge(frame: &mut Vec<Detection>, zoomed: Vec<Detection>, region: &Region, frame_w: u32, frame_h: u32) -> usize {
    let mut added = 0;
    for z in zoomed {
        if cut_by(&z.bbox, region, frame_w, frame_h) {
            continue;
        }
        let same = frame.iter().position(|d| d.class_id == z.class_id && overlap_of_smaller(&d.bbox, &z.bbox) >= SAME_OBJECT);
        match same {
            Some(i) if frame[i].score >= z.score => {}
            Some(i) => frame[i] = z,
            None => {
                frame.push(z);
                added += 1;
            }
        }
    }
    frame.sort_by(|a, b| b.score.total_cmp(&a.score));
    added
}

/// A camera's zoomed looks: its zones' polygons, the rate, and the crops for the frame size
/// last seen.
#[derive(Clone, Debug)]
pub struct Zoomer {
    polygons: Vec<Vec<[f64; 2]>>,
    schedule: WaterSchedule,
    fps: f64,
    regions: Option<((u32, u32), Vec<Region>)>,
    buf: Vec<u8>,
}

impl Zoomer {
    /// Looks at `polygons` (normalised) `fps` times a second.
    pub fn new(polygons: Vec<Vec<[f64; 2]>>, fps: f64) -> Zoomer {
        Zoomer { polygons, schedule: WaterSchedule::new(fps), fps, regions: None, buf: Vec::new() }
    }

    /// Whether this zoomer was made for these settings.
    pub fn is_for(&self, polygons: &[Vec<[f64; 2]>], fps: f64) -> bool {
        self.polygons == polygons && self.fps == fps
    }

    /// The crops for a frame of this size.
    pub fn regions(&mut self, det: &Detector, w: u32, h: u32) -> &[Region] {
        if self.regions.as_ref().is_none_or(|(size, _)| *size != (w, h)) {
            let m = det.manifest();
            let r = plan_regions(self.polygons.iter().map(|p| p.as_slice()), w, h, m.input_width, m.input_height);
            let near = self.polygons.iter().filter(|p| zone_region(p, w, h, m.input_width, m.input_height).is_none()).count();
            tracing::info!(crops = r.len(), zones = self.polygons.len(), near, "zoomed looks planned for {w}x{h} frames (a near zone gains nothing and is seen whole only)");
            self.regions = Some(((w, h), r));
        }
        &self.regions.as_ref().expect("set above").1
    }

    /// When a look is due at stream time `ts`, runs the detector on every crop and merges what
    /// it finds into `detections`; returns the number of crops looked at (0: not due).
    pub fn look(&mut self, det: &mut Detector, rgb: &[u8], w: u32, h: u32, ts: f64, detections: &mut Vec<Detection>) -> Result<usize, DetectError> {
        if self.polygons.is_empty() || !self.schedule.due(ts) {
            return Ok(0);
        }
        let mut buf = std::mem::take(&mut self.buf);
        let regions = self.regions(det, w, h);
        let mut result = Ok(regions.len());
        for r in regions {
            match det.detect_region(rgb, w, h, r, &mut buf) {
                Ok(found) => {
                    merge(detections, found, r, w, h);
                }
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        self.buf = buf;
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rect(x1: f64, y1: f64, x2: f64, y2: f64) -> Vec<[f64; 2]> {
        vec![[x1, y1], [x2, y1], [x2, y2], [x1, y2]]
    }

    fn det(class_id: usize, score: f32, b: [f32; 4]) -> Detection {
        Detection { class_id, class: format!("c{class_id}"), score, bbox: BBox::new(b[0], b[1], b[2], b[3]) }
    }

    #[test]
    fn a_far_zone_gets_a_crop_with_the_input_aspect_holding_it_and_the_space_above() {
        // a 102x48 px zone on the upper car park of a 640x480 frame, model 416x416
        let r = zone_region(&rect(0.64, 0.25, 0.80, 0.35), 640, 480, 416, 416).expect("far zone zooms");
        assert!(r.width().abs_diff(r.height()) <= 1, "square like the input: {r:?}");
        assert!(r.width() as f64 >= 416.0 / MAX_MAGNIFICATION - 1.0, "{r:?}");
        assert!(r.x1 as f64 <= 0.64 * 640.0 && r.x2 as f64 >= 0.80 * 640.0, "holds the zone: {r:?}");
        assert!(r.y1 as f64 <= 0.25 * 480.0 - 48.0, "holds a zone height above: {r:?}");
        assert!(r.y2 as f64 >= 0.35 * 480.0, "{r:?}");
        let gain = 416.0 / r.width() as f64 / (416.0 / 640.0);
        assert!(gain > 2.0, "objects shown over twice as large: {gain}");
    }

    #[test]
    fn a_near_or_large_zone_gets_none() {
        assert_eq!(zone_region(&rect(0.05, 0.5, 0.95, 0.98), 640, 480, 416, 416), None);
        assert_eq!(zone_region(&rect(0.2, 0.2, 0.8, 0.8), 640, 480, 416, 416), None);
    }

    #[test]
    fn crops_stay_inside_the_frame() {
        for poly in [rect(0.0, 0.0, 0.1, 0.05), rect(0.9, 0.9, 1.0, 1.0), rect(0.95, 0.0, 1.0, 0.1)] {
            let r = zone_region(&poly, 640, 480, 416, 416).expect("a corner zone zooms");
            assert!(r.x2 <= 640 && r.y2 <= 480 && r.width() > 0 && r.height() > 0, "{r:?}");
        }
    }

    #[test]
    fn a_crop_inside_another_is_dropped_and_duplicates_count_once() {
        let a = rect(0.30, 0.30, 0.34, 0.32);
        let regions = plan_regions([a.as_slice(), a.as_slice(), rect(0.70, 0.30, 0.74, 0.32).as_slice()], 640, 480, 416, 416);
        assert_eq!(regions.len(), 2, "{regions:?}");
    }

    #[test]
    fn merging_keeps_the_better_box_adds_new_objects_and_skips_cut_ones() {
        let region = Region { x1: 100, y1: 100, x2: 300, y2: 300 };
        let mut frame = vec![det(1, 0.5, [150.0, 150.0, 170.0, 170.0]), det(0, 0.9, [10.0, 10.0, 50.0, 90.0])];
        let zoomed = vec![
            det(1, 0.8, [151.0, 149.0, 171.0, 171.0]), // the same object, better scored
            det(1, 0.6, [200.0, 200.0, 210.0, 212.0]), // found only in the crop
            det(1, 0.9, [100.5, 120.0, 130.0, 140.0]), // cut by the crop's left edge
            det(0, 0.7, [150.0, 150.0, 170.0, 170.0]), // another class at the same place
        ];
        let added = merge(&mut frame, zoomed, &region, 640, 480);
        assert_eq!(added, 2);
        assert_eq!(frame.len(), 4);
        assert!(frame.iter().any(|d| d.class_id == 1 && d.score == 0.8));
        assert!(!frame.iter().any(|d| d.class_id == 1 && d.score == 0.5), "replaced");
        assert!(!frame.iter().any(|d| d.score == 0.9 && d.class_id == 1), "cut box dropped");
        assert!(frame.windows(2).all(|w| w[0].score >= w[1].score), "best first");
    }

    #[test]
    fn an_edge_that_is_the_frame_edge_does_not_cut() {
        let region = Region { x1: 0, y1: 0, x2: 200, y2: 200 };
        let mut frame = Vec::new();
        merge(&mut frame, vec![det(1, 0.6, [0.0, 0.0, 20.0, 20.0])], &region, 640, 480);
        assert_eq!(frame.len(), 1);
    }
}
