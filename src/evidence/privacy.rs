//! Privacy masking: faces and licence plates are made unreadable in the snapshots that leave the
//! device. Detection uses OpenCV Haar cascades from Debian's `opencv-data` (frontal and profile
//! faces, plates); boxes from the model's own face/plate classes can be masked too
//! ([`Masker::mask_boxes`]). Masking itself is plain Rust over the packed RGB buffer, in place.
//!
//! The caller keeps (and seals) the unmasked original; this module only ever changes the copy it
//! is handed.


use std::path::{Path, PathBuf};
use std::sync::Mutex;

use opencv::core::{Mat, Rect, Size, Vec3b, Vector};
use opencv::objdetect::{CascadeClassifier, CascadeClassifierTrait, CascadeClassifierTraitConst};
use opencv::imgproc;

use opencv::prelude::*;
use serde::{Deserialize, Serialize};

use crate::config::{MaskMethod, PrivacyCfg};
use crate::detect::BBox;

/// Where Debian's `opencv-data` installs the Haar cascades.
pub const DEFAULT_CASCADE_DIR: &str = "/usr/share/opencv4/haarcascades";
/// Face cascades, all run: frontal (`alt`: on the test scenes it gave no false positives where
/// `default` and `alt2` found a shoulder) and profile.
pub const FACE_CASCADES: [&str; 2] = ["haarcascade_frontalface_alt.xml", "haarcascade_profileface.xml"];
/// Plate cascade (`licence_plate_rus_16stages` fires on fruit and façades; this one does not).
pub const PLATE_CASCADE: &str = "haarcascade_russian_plate_number.xml";

/// Margin added on every side of a detected box, as a fraction of its size: Haar boxes are
/// tight around the eyes and mouth and leave hair, ears and plate borders readable.
pub const MASK_MARGIN: f32 = 0.15;
/// Haar scale step between pyramid levels and neighbours required for a detection.
const FACE_SCALE_STEP: f64 = 1.1;
const FACE_NEIGHBOURS: i32 = 3;
/// Plates are thin, so the pyramid is finer.
const PLATE_SCALE_STEP: f64 = 1.05;
const PLATE_NEIGHBOURS: i32 = 3;
/// The plate cascade was trained on Russian plates (about 4.6:1, window 60x20). Squeezing the
/// frame vertically makes other plates that shape: Chinese blue/yellow plates (440x140, 3.1:1)
/// at 0.7, US and Japanese plates (about 2:1) at 0.5. Boxes are scaled back to the frame.
const PLATE_SQUEEZE: [f64; 3] = [1.0, 0.7, 0.5];
/// Flat grey of the `fill` method.
const FILL_GREY: u8 = 128;
/// Largest picture the cascades search, in pixels (1280×720). OpenCV's cascade keeps integral
/// images for every scale of the picture it last searched, so a 1920×1080 main-stream
/// snapshot cost ~450 MB resident per masker (measured); above this size the search runs on a
/// copy scaled down to it (boxes mapped back). The cascades' smallest window is 24 px there,
/// i.e. faces from 36 px are found in a 1080p picture, against 72 px (in 1080p terms) on a
/// 640×360 sub-stream frame.
pub const MAX_SEARCH_PIXELS: u64 = 1280 * 720;

/// Why masking could not be set up or run.
#[derive(Debug, thiserror::Error)]
pub enum PrivacyError {
    #[error("privacy: Haar cascade {} is missing (install Debian's opencv-data, or turn privacy.faces/privacy.plates off)", .0.display())]
    MissingCascade(PathBuf),
    #[error("privacy: Haar cascade {} could not be loaded: {why}", path.display())]
    BadCascade { path: PathBuf, why: String },
    #[error("privacy: frame of {len} bytes is not {width}x{height} packed RGB")]
    BadFrame { len: usize, width: u32, height: u32 },
    #[error("privacy: OpenCV: {}", opencv_reason(.0))]
    OpenCv(#[from] opencv::Error),
}

/// What was found (and masked) in one frame, boxes as detected (before the margin).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MaskReport {
    pub faces: Vec<BBox>,
    pub plates: Vec<BBox>,
}

impl MaskReport {
    /// Number of regions masked.
    pub fn len(&self) -> usize {
        self.faces.len() + self.plates.len()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A camera's masker: loaded cascades plus reusable grey buffers. One per camera task.
///
/// `Send` because opencv-rust declares `Mat` and `CascadeClassifier` `Send` (each owns its C++
/// object outright); not `Sync`, and it needs none: `detectMultiScale` mutates the classifier's
/// internal buffers, which is why every method takes `&mut self`.
pub struct Masker {
    method: MaskMethod,
    min_size_px: u32,
    faces: Vec<CascadeClassifier>,
    plate: Option<CascadeClassifier>,
    grey: Mat,
    equalized: Mat,
    squeezed: Mat,
}

impl std::fmt::Debug for Masker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Masker")
            .field("method", &self.method)
            .field("min_size_px", &self.min_size_px)
            .field("face_cascades", &self.faces.len())
            .field("plate_cascade", &self.plate.is_some())
            .finish()
    }
}

/// The cascade files a config needs, under `dir`.
pub fn cascade_files(cfg: &PrivacyCfg, dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    if cfg.faces {
        files.extend(FACE_CASCADES.iter().map(|f| dir.join(f)));
    }
    if cfg.plates {
        files.push(dir.join(PLATE_CASCADE));
    }
    files
}

/// OpenCV's message without its newline and C++ source location:
/// `OpenCV(4.6.0) ./modules/…:692: error: (-5:Bad argument) Input file is invalid in function 'open'`
/// becomes `(-5:Bad argument) Input file is invalid in function 'open'`.
fn opencv_reason(e: &opencv::Error) -> String {
    let first = e.message.lines().next().unwrap_or_default();
    first.rsplit(" error: ").next().unwrap_or(first).trim().to_string()
}

fn load_cascade(path: &Path) -> Result<CascadeClassifier, PrivacyError> {
    // OpenCV only logs and returns an empty classifier for a missing file; check first so the
    // user reads which file and which package.
    if !path.is_file() {
        return Err(PrivacyError::MissingCascade(path.to_path_buf()));
    }
    let bad = |why: String| PrivacyError::BadCascade { path: path.to_path_buf(), why };
    let c = CascadeClassifier::new(path.as_os_str()).map_err(|e| bad(opencv_reason(&e)))?;
    if c.empty()? {
        return Err(bad("not a cascade file".into()));
    }
    Ok(c)
}

/// Maskers per privacy setting, at most: masking is CPU-bound (Haar cascades over the whole
/// picture), so on an edge box more maskers at once only share the same cores, while each
/// holds ~60 MB (measured) plus its picture-sized buffers. Workers that need one while it is
/// lent wait for it.
const POOL_MAX: usize = 1;

/// The shared maskers: idle ones by setting, and how many of each setting exist.
struct Pool {
    idle: Vec<(PrivacyCfg, Masker)>,
    made: Vec<(PrivacyCfg, usize)>,
}

/// Maskers shared by every camera's evidence worker. A masker holds three Haar cascades and is
/// used only when an alert's pictures are made, so one per camera cost 60 MB a camera for
/// nothing; the pool lends one for each masking instead.
static POOL: Mutex<Pool> = Mutex::new(Pool { idle: Vec::new(), made: Vec::new() });
static RETURNED: std::sync::Condvar = std::sync::Condvar::new();

/// A lease on the shared pool for one privacy setting: what an evidence worker keeps instead
/// of a masker of its own.
#[derive(Debug, Clone)]
pub struct SharedMasker {
    cfg: PrivacyCfg,
}

impl SharedMasker {
    /// Checks that maskers for `cfg` can be made (loads one into the pool if none is there), so
    /// a missing cascade is reported when the camera starts, not at its first alert.
    pub fn new(cfg: &PrivacyCfg) -> Result<SharedMasker, PrivacyError> {
        let shared = SharedMasker { cfg: cfg.clone() };
        shared.with(|_| ())?;
        Ok(shared)
    }

    /// Runs `f` with a masker for this setting, borrowed from the pool (made when none is idle)
    /// and given back afterwards.
    pub fn with<R>(&self, f: impl FnOnce(&mut Masker) -> R) -> Result<R, PrivacyError> {
        let lock = || POOL.lock().unwrap_or_else(|p| p.into_inner());
        let mut pool = lock();
        // an idle masker of this setting, or the right to make one, or wait for one to return
        let mut masker = loop {
            if let Some(i) = pool.idle.iter().position(|(c, _)| *c == self.cfg) {
                break Some(pool.idle.swap_remove(i).1);
            }
            let made = pool.made.iter().find(|(c, _)| *c == self.cfg).map_or(0, |(_, n)| *n);
            if made < POOL_MAX {
                match pool.made.iter_mut().find(|(c, _)| *c == self.cfg) {
                    Some((_, n)) => *n += 1,
                    None => pool.made.push((self.cfg.clone(), 1)),
                }
                break None;
            }
            pool = RETURNED.wait(pool).unwrap_or_else(|p| p.into_inner());
        };
        drop(pool);
        if masker.is_none() {
            match Masker::new(&self.cfg) {
                Ok(m) => masker = Some(m),
                Err(e) => {
                    // give the right back, so a later attempt may try again
                    if let Some((_, n)) = lock().made.iter_mut().find(|(c, _)| *c == self.cfg) {
                        *n -= 1;
                    }
                    RETURNED.notify_all();
                    return Err(e);
                }
            }
        }
        let mut m = masker.expect("set above");
        let r = f(&mut m);
        lock().idle.push((self.cfg.clone(), m));
        RETURNED.notify_all();
        Ok(r)
    }

    /// Detects faces and plates and masks them in place, with a pooled masker.
    pub fn mask(&self, rgb: &mut [u8], width: u32, height: u32) -> Result<MaskReport, PrivacyError> {
        self.with(|m| m.mask(rgb, width, height))?
    }

    /// [`Masker::mask_in`] with a masker from the pool.
    pub fn mask_in(&self, rgb: &mut [u8], width: u32, height: u32, regions: Option<&SearchRegions>) -> Result<MaskReport, PrivacyError> {
        self.with(|m| m.mask_in(rgb, width, height, regions))?
    }
}

impl Masker {
    /// Loads the cascades the config asks for from [`DEFAULT_CASCADE_DIR`].
    pub fn new(cfg: &PrivacyCfg) -> Result<Masker, PrivacyError> {
        Self::with_cascade_dir(cfg, Path::new(DEFAULT_CASCADE_DIR))
    }

    /// Loads the cascades from `dir` (for systems that install them elsewhere). Nothing is loaded
    /// for a kind that is turned off, so a camera with privacy off needs no `opencv-data`.
    pub fn with_cascade_dir(cfg: &PrivacyCfg, dir: &Path) -> Result<Masker, PrivacyError> {
        let faces = if cfg.faces {
            FACE_CASCADES.iter().map(|f| load_cascade(&dir.join(f))).collect::<Result<Vec<_>, _>>()?
        } else {
            Vec::new()
        };
        let plate = if cfg.plates { Some(load_cascade(&dir.join(PLATE_CASCADE))?) } else { None };
        Ok(Masker {
            method: cfg.method,
            min_size_px: cfg.min_size_px.max(1),
            faces,
            plate,
            grey: Mat::default(),
            equalized: Mat::default(),
            squeezed: Mat::default(),
        })
    }

    /// Detects faces and plates in the packed RGB frame and masks them in place.
    pub fn mask(&mut self, rgb: &mut [u8], width: u32, height: u32) -> Result<MaskReport, PrivacyError> {
        self.mask_in(rgb, width, height, None)
    }

    /// [`Masker::mask`], searching only where `regions` says (the whole picture for `None`).
    pub fn mask_in(&mut self, rgb: &mut [u8], width: u32, height: u32, regions: Option<&SearchRegions>) -> Result<MaskReport, PrivacyError> {
        let report = self.detect_in(rgb, width, height, regions)?;
        for b in report.faces.iter().chain(&report.plates) {
            if let Some(r) = Region::around(b, MASK_MARGIN, width, height) {
                mask_region(rgb, width, r, self.method);
            }
        }
        Ok(report)
    }

    /// Masks boxes found elsewhere (the model's own face/plate classes), with the same margin and
    /// method; returns how many regions were masked.
    pub fn mask_boxes(&mut self, rgb: &mut [u8], width: u32, height: u32, boxes: &[BBox]) -> Result<usize, PrivacyError> {
        check_frame(rgb, width, height)?;
        let mut n = 0;
        for b in boxes {
            if let Some(r) = Region::around(b, MASK_MARGIN, width, height) {
                mask_region(rgb, width, r, self.method);
                n += 1;
            }
        }
        Ok(n)
    }

    /// Detects faces and plates without changing the frame.
    pub fn detect(&mut self, rgb: &[u8], width: u32, height: u32) -> Result<MaskReport, PrivacyError> {
        self.detect_in(rgb, width, height, None)
    }

    /// Detects faces and plates without changing the frame: in the whole picture (`None`), or
    /// faces only around the people and plates only around the vehicles of `regions`.
    pub fn detect_in(&mut self, rgb: &[u8], width: u32, height: u32, regions: Option<&SearchRegions>) -> Result<MaskReport, PrivacyError> {
        check_frame(rgb, width, height)?;
        let mut report = MaskReport::default();
        if self.faces.is_empty() && self.plate.is_none() {
            return Ok(report);
        }
        // The frame is wrapped, not copied; only the grey image is new (and its buffer reused).
        let frame = Mat::new_rows_cols_with_bytes::<Vec3b>(height as i32, width as i32, rgb)?;
        imgproc::cvt_color_def(&frame, &mut self.grey, imgproc::COLOR_RGB2GRAY)?;
        // a large picture is searched at MAX_SEARCH_PIXELS; `k` maps boxes back
        let area = width as u64 * height as u64;
        let k = if area > MAX_SEARCH_PIXELS { (MAX_SEARCH_PIXELS as f64 / area as f64).sqrt() } else { 1.0 };
        if k < 1.0 {
            let mut small = Mat::default();
            imgproc::resize(&self.grey, &mut small, Size::default(), k, k, imgproc::INTER_AREA)?;
            self.grey = small;
        }
        // Equalizing makes the cascades work in shade and backlight, where street faces are.
        imgproc::equalize_hist(&self.grey, &mut self.equalized)?;
        let min = ((self.min_size_px as f64 * k).round() as i32).max(1);
        let (sw, sh) = (self.equalized.cols(), self.equalized.rows());
        // where to look, in the search image's pixels
        let whole = vec![Rect::new(0, 0, sw, sh)];
        let (face_rects, plate_rects) = match regions {
            None => (whole.clone(), whole),
            Some(r) => (r.face_rects(width, height, k), r.plate_rects(width, height, k)),
        };
        let mut found = Vector::<Rect>::new();
        for cascade in &mut self.faces {
            for area in &face_rects {
                found.clear();
                let roi = Mat::roi(&self.equalized, *area)?;
                cascade.detect_multi_scale(&roi, &mut found, FACE_SCALE_STEP, FACE_NEIGHBOURS, 0, Size::new(min, min), Size::default())?;
                for r in found.iter() {
                    add_unique(&mut report.faces, rect_box(Rect::new(r.x + area.x, r.y + area.y, r.width, r.height), k, 1.0));
                }
            }
        }
        if let Some(cascade) = &mut self.plate {
            for sy in PLATE_SQUEEZE {
                let img = if sy == 1.0 {
                    &self.equalized
                } else {
                    imgproc::resize(&self.equalized, &mut self.squeezed, Size::default(), 1.0, sy, imgproc::INTER_AREA)?;
                    &self.squeezed
                };
                for area in &plate_rects {
                    // the area in the squeezed image (rows scaled by `sy`)
                    let y0 = (area.y as f64 * sy).floor() as i32;
                    let y1 = (((area.y + area.height) as f64 * sy).ceil() as i32).min(img.rows());
                    let a = Rect::new(area.x, y0, area.width, y1 - y0);
                    if a.width < PLATE_WINDOW.0 || a.height < PLATE_WINDOW.1 {
                        continue;
                    }
                    found.clear();
                    let roi = Mat::roi(img, a)?;
                    // the smallest plate is the cascade's own window (60x20 in the squeezed image)
                    cascade.detect_multi_scale(&roi, &mut found, PLATE_SCALE_STEP, PLATE_NEIGHBOURS, 0, Size::default(), Size::default())?;
                    for r in found.iter() {
                        add_unique(&mut report.plates, rect_box(Rect::new(r.x + a.x, r.y + a.y, r.width, r.height), k, sy));
                    }
                }
            }
        }
        Ok(report)
    }
}

/// The plate cascade's window (width, height): a smaller area cannot hold a plate.
const PLATE_WINDOW: (i32, i32) = (60, 20);

/// Where a picture's faces and plates can be: faces around the people the detector found,
/// plates around its vehicles (boxes in the picture's pixels). Searching only there costs a
/// fraction of a whole-picture search on a street; what the detector missed is not searched
/// (see `privacy.search` in the README for the measured trade-off).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SearchRegions {
    pub people: Vec<[f32; 4]>,
    pub vehicles: Vec<[f32; 4]>,
}

/// A person's face lies in the upper part of their box: searched in the top 70 %, widened by
/// half the box's width on each side and raised by 30 % of its height (a box cut at the head,
/// a face window larger than the head on small people).
const FACE_AREA: (f32, f32, f32) = (0.5, 0.3, 0.7);
/// A vehicle's plate lies inside its box: widened by a tenth on every side.
const PLATE_AREA: f32 = 0.1;

/// Classes whose boxes hold faces, and plates (COCO names and hawkeye's own).
pub const FACE_CLASSES: [&str; 1] = ["person"];
pub const PLATE_CLASSES: [&str; 4] = ["car", "truck", "bus", "motorcycle"];

impl SearchRegions {
    /// The regions of a frame's detections.
    pub fn of(detections: &[crate::detect::Detection]) -> SearchRegions {
        let pick = |names: &[&str]| detections.iter().filter(|d| names.contains(&d.class.as_str())).map(|d| [d.bbox.x1, d.bbox.y1, d.bbox.x2, d.bbox.y2]).collect();
        SearchRegions { people: pick(&FACE_CLASSES), vehicles: pick(&PLATE_CLASSES) }
    }

    /// Scales every box by `(sx, sy)` (sub-stream pixels to main-stream pixels).
    pub fn scaled(&self, sx: f32, sy: f32) -> SearchRegions {
        let s = |b: &[f32; 4]| [b[0] * sx, b[1] * sy, b[2] * sx, b[3] * sy];
        SearchRegions { people: self.people.iter().map(s).collect(), vehicles: self.vehicles.iter().map(s).collect() }
    }

    /// Face search areas in a `width`×`height` picture searched at scale `k`, merged.
    fn face_rects(&self, width: u32, height: u32, k: f64) -> Vec<Rect> {
        let (mx, up, depth) = FACE_AREA;
        let areas = self.people.iter().map(|b| {
            let (w, h) = (b[2] - b[0], b[3] - b[1]);
            [b[0] - w * mx, b[1] - h * up, b[2] + w * mx, b[1] + h * depth]
        });
        search_rects(areas, width, height, k)
    }

    /// Plate search areas, as [`SearchRegions::face_rects`].
    fn plate_rects(&self, width: u32, height: u32, k: f64) -> Vec<Rect> {
        let areas = self.vehicles.iter().map(|b| {
            let (mx, my) = ((b[2] - b[0]) * PLATE_AREA, (b[3] - b[1]) * PLATE_AREA);
            [b[0] - mx, b[1] - my, b[2] + mx, b[3] + my]
        });
        search_rects(areas, width, height, k)
    }
}

/// Areas (`[x1, y1, x2, y2]` in picture pixels) as rectangles of the search image (scale `k`),
/// clipped to it; overlapping ones merged into their bounding rectangle (a crowd is searched
/// once, not once per person).
fn search_rects(areas: impl Iterator<Item = [f32; 4]>, width: u32, height: u32, k: f64) -> Vec<Rect> {
    let (sw, sh) = ((width as f64 * k).round() as i32, (height as f64 * k).round() as i32);
    let mut rects: Vec<Rect> = Vec::new();
    for a in areas {
        if !a.iter().all(|v| v.is_finite()) {
            continue;
        }
        let x0 = ((a[0] as f64 * k).floor() as i32).clamp(0, sw);
        let y0 = ((a[1] as f64 * k).floor() as i32).clamp(0, sh);
        let x1 = ((a[2] as f64 * k).ceil() as i32).clamp(0, sw);
        let y1 = ((a[3] as f64 * k).ceil() as i32).clamp(0, sh);
        if x1 > x0 && y1 > y0 {
            rects.push(Rect::new(x0, y0, x1 - x0, y1 - y0));
        }
    }
    // merge until no two overlap
    let mut merged = true;
    while merged {
        merged = false;
        'outer: for i in 0..rects.len() {
            for j in i + 1..rects.len() {
                let (a, b) = (rects[i], rects[j]);
                if a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height {
                    let (x0, y0) = (a.x.min(b.x), a.y.min(b.y));
                    let (x1, y1) = ((a.x + a.width).max(b.x + b.width), (a.y + a.height).max(b.y + b.height));
                    rects[i] = Rect::new(x0, y0, x1 - x0, y1 - y0);
                    rects.swap_remove(j);
                    merged = true;
                    break 'outer;
                }
            }
        }
    }
    rects
}

/// A detection in an image scaled by `k` and then squeezed vertically by `sy`, as a box in
/// frame pixels.
fn rect_box(r: Rect, k: f64, sy: f64) -> BBox {
    let x = |v: i32| (v as f64 / k) as f32;
    let y = |v: i32| (v as f64 / (sy * k)) as f32;
    BBox::new(x(r.x), y(r.y), x(r.x + r.width), y(r.y + r.height))
}

/// Adds `b` unless a box already there overlaps it much (frontal and profile cascades both fire
/// on a three-quarter face; squeezed passes find the same plate again).
fn add_unique(boxes: &mut Vec<BBox>, b: BBox) {
    if !boxes.iter().any(|o| o.iou(&b) > 0.3) {
        boxes.push(b);
    }
}

fn check_frame(rgb: &[u8], width: u32, height: u32) -> Result<(), PrivacyError> {
    let ok = width > 0
        && height > 0
        && width <= i32::MAX as u32
        && height <= i32::MAX as u32
        && (width as u64) * (height as u64) * 3 == rgb.len() as u64;
    if ok {
        Ok(())
    } else {
        Err(PrivacyError::BadFrame { len: rgb.len(), width, height })
    }
}

/// A pixel rectangle inside the frame: columns `x..x+w`, rows `y..y+h`, never empty.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region {
    pub x: u32,
    pub y: u32,
    pub w: u32,
    pub h: u32,
}

impl Region {
    /// `b` grown by `margin` of its size on every side, rounded outwards and clamped to the
    /// frame; `None` when nothing of it is inside the frame.
    pub fn around(b: &BBox, margin: f32, width: u32, height: u32) -> Option<Region> {
        let finite = [b.x1, b.y1, b.x2, b.y2].iter().all(|v| v.is_finite());
        if !finite || b.x2 <= b.x1 || b.y2 <= b.y1 {
            return None;
        }
        let mx = b.width() * margin;
        let my = b.height() * margin;
        let x1 = (b.x1 - mx).floor().max(0.0);
        let y1 = (b.y1 - my).floor().max(0.0);
        let x2 = (b.x2 + mx).ceil().min(width as f32);
        let y2 = (b.y2 + my).ceil().min(height as f32);
        if x2 <= x1 || y2 <= y1 {
            return None;
        }
        Some(Region { x: x1 as u32, y: y1 as u32, w: (x2 - x1) as u32, h: (y2 - y1) as u32 })
    }
}

/// Masks `r` of a packed RGB frame `width` pixels wide in place. `r` must lie inside the frame
/// (as [`Region::around`] guarantees).
pub fn mask_region(rgb: &mut [u8], width: u32, r: Region, method: MaskMethod) {
    match method {
        MaskMethod::Pixelate => pixelate(rgb, width, r),
        MaskMethod::Blur => blur(rgb, width, r),
        MaskMethod::Fill => fill(rgb, width, r),
    }
}

fn offset(width: u32, x: u32, y: u32) -> usize {
    (y as usize * width as usize + x as usize) * 3
}

fn fill(rgb: &mut [u8], width: u32, r: Region) {
    for y in r.y..r.y + r.h {
        let o = offset(width, r.x, y);
        rgb[o..o + r.w as usize * 3].fill(FILL_GREY);
    }
}

/// Blocks of about an eighth of the region's longer side (at least 4 px), each set to its mean.
fn pixelate(rgb: &mut [u8], width: u32, r: Region) {
    let block = (r.w.max(r.h) / 8).max(4);
    let mut by = r.y;
    while by < r.y + r.h {
        let bh = block.min(r.y + r.h - by);
        let mut bx = r.x;
        while bx < r.x + r.w {
            let bw = block.min(r.x + r.w - bx);
            let mut sum = [0u64; 3];
            for y in by..by + bh {
                let o = offset(width, bx, y);
                for px in rgb[o..o + bw as usize * 3].chunks_exact(3) {
                    for c in 0..3 {
                        sum[c] += px[c] as u64;
                    }
                }
            }
            let n = (bw * bh) as u64;
            let mean = [(sum[0] / n) as u8, (sum[1] / n) as u8, (sum[2] / n) as u8];
            for y in by..by + bh {
                let o = offset(width, bx, y);
                for px in rgb[o..o + bw as usize * 3].chunks_exact_mut(3) {
                    px.copy_from_slice(&mean);
                }
            }
            bx += bw;
        }
        by += bh;
    }
}

/// Three passes of a separable box blur (close to a Gaussian) with a radius of a sixth of the
/// region's longer side, edges clamped to the region so nothing outside leaks in or changes.
fn blur(rgb: &mut [u8], width: u32, r: Region) {
    let (w, h) = (r.w as usize, r.h as usize);
    let radius = (r.w.max(r.h) as usize / 6).max(2);
    let mut buf: Vec<u8> = Vec::with_capacity(w * h * 3);
    for y in r.y..r.y + r.h {
        let o = offset(width, r.x, y);
        buf.extend_from_slice(&rgb[o..o + w * 3]);
    }
    let mut line = Vec::new();
    for _ in 0..3 {
        for row in 0..h {
            box_pass(&mut buf, row * w * 3, 3, w, radius, &mut line);
        }
        for col in 0..w {
            box_pass(&mut buf, col * 3, w * 3, h, radius, &mut line);
        }
    }
    for (row, y) in (r.y..r.y + r.h).enumerate() {
        let o = offset(width, r.x, y);
        rgb[o..o + w * 3].copy_from_slice(&buf[row * w * 3..(row + 1) * w * 3]);
    }
}

/// One box-filter pass over `n` RGB pixels starting at `start`, `stride` bytes apart, with a
/// running sum; samples beyond the ends repeat the end pixel.
fn box_pass(buf: &mut [u8], start: usize, stride: usize, n: usize, radius: usize, line: &mut Vec<[u8; 3]>) {
    line.clear();
    line.extend((0..n).map(|i| {
        let o = start + i * stride;
        [buf[o], buf[o + 1], buf[o + 2]]
    }));
    let at = |i: isize| line[i.clamp(0, n as isize - 1) as usize];
    let r = radius as isize;
    let mut sum = [0u32; 3];
    for i in -r..=r {
        let p = at(i);
        for c in 0..3 {
            sum[c] += p[c] as u32;
        }
    }
    let taps = (2 * radius + 1) as u32;
    for i in 0..n as isize {
        let o = start + i as usize * stride;
        for c in 0..3 {
            buf[o + c] = ((sum[c] + taps / 2) / taps) as u8;
        }
        let (add, sub) = (at(i + r + 1), at(i - r));
        for c in 0..3 {
            sum[c] = sum[c] + add[c] as u32 - sub[c] as u32;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_areas_are_scaled_clipped_and_merged() {
        // two people side by side overlap once widened: one area; a third far away: its own
        let r = SearchRegions { people: vec![[100.0, 100.0, 140.0, 200.0], [150.0, 100.0, 190.0, 200.0], [800.0, 50.0, 840.0, 150.0]], vehicles: vec![] };
        let rects = r.face_rects(1000, 500, 1.0);
        assert_eq!(rects.len(), 2, "{rects:?}");
        // the first: x from 100 - 20 to 190 + 20, y from 100 - 30 to 100 + 70
        assert!(rects.contains(&Rect::new(80, 70, 130, 100)), "{rects:?}");
        // at half scale, and a box over the picture's edge is clipped
        let edge = SearchRegions { people: vec![], vehicles: vec![[900.0, 400.0, 1100.0, 520.0]] };
        assert_eq!(edge.plate_rects(1000, 500, 0.5), vec![Rect::new(440, 194, 60, 56)]);
        // nothing inside the picture, or not a number: no area
        let off = SearchRegions { people: vec![[2000.0, 0.0, 2100.0, 50.0], [f32::NAN, 0.0, 10.0, 10.0]], vehicles: vec![] };
        assert!(off.face_rects(1000, 500, 1.0).is_empty());
        // sub-stream boxes scaled to the main stream
        assert_eq!(r.scaled(3.0, 2.0).people[0], [300.0, 200.0, 420.0, 400.0]);
    }

    fn noise(w: u32, h: u32) -> Vec<u8> {
        // deterministic high-frequency pattern (xorshift)
        let mut s = 0x2545_f491u32;
        (0..w * h * 3)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                s as u8
            })
            .collect()
    }

    fn inside(r: Region, x: u32, y: u32) -> bool {
        x >= r.x && x < r.x + r.w && y >= r.y && y < r.y + r.h
    }

    /// Mean absolute difference between horizontally adjacent pixels in `r`.
    fn roughness(rgb: &[u8], width: u32, r: Region) -> f64 {
        let mut sum = 0u64;
        let mut n = 0u64;
        for y in r.y..r.y + r.h {
            for x in r.x..r.x + r.w - 1 {
                let (a, b) = (offset(width, x, y), offset(width, x + 1, y));
                for c in 0..3 {
                    sum += (rgb[a + c] as i32 - rgb[b + c] as i32).unsigned_abs() as u64;
                }
                n += 3;
            }
        }
        sum as f64 / n as f64
    }

    #[test]
    fn region_adds_margin_and_clamps_to_frame() {
        let r = Region::around(&BBox::new(10.0, 20.0, 30.0, 60.0), 0.1, 100, 100).unwrap();
        assert_eq!(r, Region { x: 8, y: 16, w: 24, h: 48 });
        let r = Region::around(&BBox::new(-5.0, 90.0, 20.0, 130.0), 0.0, 100, 100).unwrap();
        assert_eq!(r, Region { x: 0, y: 90, w: 20, h: 10 });
        let r = Region::around(&BBox::new(95.5, 0.2, 99.5, 3.7), 0.0, 100, 100).unwrap();
        assert_eq!(r, Region { x: 95, y: 0, w: 5, h: 4 });
    }

    #[test]
    fn region_outside_empty_or_nan_is_none() {
        assert_eq!(Region::around(&BBox::new(120.0, 10.0, 140.0, 30.0), 0.1, 100, 100), None);
        assert_eq!(Region::around(&BBox::new(10.0, -40.0, 30.0, -1.0), 0.0, 100, 100), None);
        assert_eq!(Region::around(&BBox::new(30.0, 10.0, 30.0, 30.0), 0.1, 100, 100), None);
        assert_eq!(Region::around(&BBox::new(f32::NAN, 10.0, 30.0, 30.0), 0.1, 100, 100), None);
        assert_eq!(Region::around(&BBox::new(10.0, 10.0, f32::INFINITY, 30.0), 0.1, 100, 100), None);
    }

    #[test]
    fn every_method_changes_the_region_and_nothing_outside() {
        let (w, h) = (97u32, 61u32);
        let orig = noise(w, h);
        let r = Region { x: 13, y: 7, w: 41, h: 33 };
        for method in [MaskMethod::Pixelate, MaskMethod::Blur, MaskMethod::Fill] {
            let mut img = orig.clone();
            mask_region(&mut img, w, r, method);
            for y in 0..h {
                for x in 0..w {
                    let o = offset(w, x, y);
                    if !inside(r, x, y) {
                        assert_eq!(img[o..o + 3], orig[o..o + 3], "{method:?} changed ({x},{y}) outside");
                    }
                }
            }
            let before = roughness(&orig, w, r);
            let after = roughness(&img, w, r);
            assert!(after < before / 4.0, "{method:?}: roughness {before:.1} -> {after:.1}");
        }
    }

    #[test]
    fn pixelate_blocks_are_uniform_means() {
        let w = 16u32;
        // left half black, right half white: one 8x8 block straddling x=4..12 averages to grey
        let mut img: Vec<u8> = (0..w * 8).flat_map(|i| if i % w < 8 { [0u8; 3] } else { [255u8; 3] }).collect();
        mask_region(&mut img, w, Region { x: 4, y: 0, w: 8, h: 8 }, MaskMethod::Pixelate);
        // block = max(8/8, 4) = 4 → blocks 4..8 (black) and 8..12 (white) keep their colour
        assert_eq!(img[offset(w, 5, 3)], 0);
        assert_eq!(img[offset(w, 9, 3)], 255);
        let mut img: Vec<u8> = (0..64u32 * 64).flat_map(|i| [(i % 2 * 200) as u8; 3]).collect();
        mask_region(&mut img, 64, Region { x: 0, y: 0, w: 64, h: 64 }, MaskMethod::Pixelate);
        assert!(img.iter().all(|&v| v == 100), "alternating 0/200 columns pixelate to 100");
    }

    #[test]
    fn one_pixel_regions_and_frame_edges_do_not_panic() {
        let (w, h) = (10u32, 10u32);
        for method in [MaskMethod::Pixelate, MaskMethod::Blur, MaskMethod::Fill] {
            let mut img = noise(w, h);
            mask_region(&mut img, w, Region { x: 9, y: 9, w: 1, h: 1 }, method);
            mask_region(&mut img, w, Region { x: 0, y: 0, w: 10, h: 10 }, method);
        }
    }

    #[test]
    fn masker_with_everything_off_needs_no_cascades_and_masks_nothing() {
        let cfg = PrivacyCfg { faces: false, plates: false, ..PrivacyCfg::default() };
        let mut m = Masker::with_cascade_dir(&cfg, Path::new("/nonexistent")).unwrap();
        let mut img = noise(32, 24);
        let orig = img.clone();
        assert!(m.mask(&mut img, 32, 24).unwrap().is_empty());
        assert_eq!(img, orig);
        assert!(matches!(m.mask(&mut img, 33, 24), Err(PrivacyError::BadFrame { .. })));
    }

    #[test]
    fn masker_is_send() {
        fn send<T: Send>() {}
        send::<Masker>();
    }
}
