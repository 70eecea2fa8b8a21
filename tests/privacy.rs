//! Privacy masking against real pictures from Debian's opencv-doc with the Haar cascades from
//! opencv-data: the face and the plate are found and made unreadable, the rest of the picture is
//! untouched, scenes without faces stay untouched, and a missing cascade is an error.

use std::path::Path;

use hawkeye::config::{MaskMethod, PrivacyCfg};
use hawkeye::detect::BBox;
use hawkeye::evidence::privacy::{Region, MASK_MARGIN};
use hawkeye::evidence::{encode_jpeg, Masker, PrivacyError};

const DATA: &str = "/usr/share/doc/opencv-doc/examples/data";

/// Messi's face in messi5.jpg (548x342), measured by eye: about 226..266 x 92..134.
const FACE_CENTRE: (f32, f32) = (246.0, 113.0);
/// The plate in licenseplate_motion.jpg (600x482), measured by eye: about 228..358 x 228..292.
const PLATE: BBox = BBox { x1: 228.0, y1: 228.0, x2: 358.0, y2: 292.0 };

struct Picture {
    rgb: Vec<u8>,
    w: u32,
    h: u32,
}

fn load(name: &str) -> Picture {
    let img = image::open(Path::new(DATA).join(name)).unwrap_or_else(|e| panic!("{name}: {e} (install opencv-doc)")).to_rgb8();
    let (w, h) = img.dimensions();
    Picture { rgb: img.into_raw(), w, h }
}

fn crop(p: &Picture, x: u32, y: u32, w: u32, h: u32) -> Picture {
    let mut rgb = Vec::with_capacity((w * h * 3) as usize);
    for row in y..y + h {
        let o = ((row * p.w + x) * 3) as usize;
        rgb.extend_from_slice(&p.rgb[o..o + (w * 3) as usize]);
    }
    Picture { rgb, w, h }
}

fn contains(b: &BBox, (x, y): (f32, f32)) -> bool {
    b.x1 <= x && x <= b.x2 && b.y1 <= y && y <= b.y2
}

/// High-frequency energy: mean absolute difference of neighbouring grey values inside `b`.
fn detail(p: &Picture, b: &BBox) -> f64 {
    let grey = |x: u32, y: u32| {
        let o = ((y * p.w + x) * 3) as usize;
        (p.rgb[o] as f64 * 0.299) + (p.rgb[o + 1] as f64 * 0.587) + (p.rgb[o + 2] as f64 * 0.114)
    };
    let (x1, y1, x2, y2) = (b.x1 as u32, b.y1 as u32, b.x2 as u32 - 1, b.y2 as u32 - 1);
    let mut sum = 0.0;
    let mut n = 0.0;
    for y in y1..y2 {
        for x in x1..x2 {
            sum += (grey(x, y) - grey(x + 1, y)).abs() + (grey(x, y) - grey(x, y + 1)).abs();
            n += 2.0;
        }
    }
    sum / n
}

/// Pixels outside every masked region are byte for byte the original.
fn assert_unchanged_outside(before: &Picture, after: &Picture, boxes: &[BBox]) {
    let regions: Vec<Region> = boxes.iter().filter_map(|b| Region::around(b, MASK_MARGIN, before.w, before.h)).collect();
    let mut changed_inside = 0;
    for y in 0..before.h {
        for x in 0..before.w {
            let o = ((y * before.w + x) * 3) as usize;
            let inside = regions.iter().any(|r| x >= r.x && x < r.x + r.w && y >= r.y && y < r.y + r.h);
            if inside {
                changed_inside += (before.rgb[o..o + 3] != after.rgb[o..o + 3]) as usize;
            } else {
                assert_eq!(before.rgb[o..o + 3], after.rgb[o..o + 3], "pixel ({x},{y}) outside the masked regions changed");
            }
        }
    }
    assert!(changed_inside > 0, "nothing inside the masked regions changed");
}

fn cfg(method: MaskMethod) -> PrivacyCfg {
    PrivacyCfg { method, ..PrivacyCfg::default() }
}

#[test]
fn face_is_found_and_masked_by_every_method() {
    let orig = load("messi5.jpg");
    for method in [MaskMethod::Pixelate, MaskMethod::Blur, MaskMethod::Fill] {
        let mut m = Masker::new(&cfg(method)).unwrap();
        let mut pic = Picture { rgb: orig.rgb.clone(), w: orig.w, h: orig.h };
        let t = std::time::Instant::now();
        let report = m.mask(&mut pic.rgb, pic.w, pic.h).unwrap();
        println!("{method:?}: {report:?} in {:?}", t.elapsed());
        let face = report.faces.iter().find(|b| contains(b, FACE_CENTRE)).unwrap_or_else(|| panic!("no face at {FACE_CENTRE:?}: {report:?}"));
        assert!(face.width() >= 30.0 && face.width() <= 60.0, "face box {face:?}");
        let (before, after) = (detail(&orig, face), detail(&pic, face));
        println!("{method:?}: detail in the face {before:.1} -> {after:.1}");
        assert!(after < before / 3.0, "{method:?}: face detail only fell from {before:.1} to {after:.1}");
        let all: Vec<BBox> = report.faces.iter().chain(&report.plates).copied().collect();
        assert_unchanged_outside(&orig, &pic, &all);
    }
}

#[test]
fn published_snapshot_of_a_face_scene_has_no_readable_face() {
    let orig = load("messi5.jpg");
    let mut m = Masker::new(&PrivacyCfg::default()).unwrap();
    let mut pic = Picture { rgb: orig.rgb.clone(), w: orig.w, h: orig.h };
    let report = m.mask(&mut pic.rgb, pic.w, pic.h).unwrap();
    let face = *report.faces.iter().find(|b| contains(b, FACE_CENTRE)).expect("face found");
    // what leaves the device: the masked copy as JPEG, decoded again by a receiver
    let jpeg = encode_jpeg(&pic.rgb, pic.w, pic.h).unwrap();
    let published = image::load_from_memory(&jpeg).unwrap().to_rgb8().into_raw();
    let again = m.detect(&published, pic.w, pic.h).unwrap();
    assert!(!again.faces.iter().any(|b| b.iou(&face) > 0.3), "face {face:?} still detectable after masking: {again:?}");
    // the original (kept on the device) still shows it
    let orig_report = m.detect(&orig.rgb, orig.w, orig.h).unwrap();
    assert!(orig_report.faces.iter().any(|b| b.iou(&face) > 0.9));
}

#[test]
fn plate_is_found_and_masked() {
    let orig = load("licenseplate_motion.jpg");
    let mut m = Masker::new(&PrivacyCfg::default()).unwrap();
    let mut pic = Picture { rgb: orig.rgb.clone(), w: orig.w, h: orig.h };
    let report = m.mask(&mut pic.rgb, pic.w, pic.h).unwrap();
    println!("{report:?}");
    let centre = ((PLATE.x1 + PLATE.x2) / 2.0, (PLATE.y1 + PLATE.y2) / 2.0);
    assert!(report.plates.iter().any(|b| contains(b, centre)), "no plate box over the plate: {report:?}");
    let (before, after) = (detail(&orig, &PLATE), detail(&pic, &PLATE));
    println!("detail in the plate {before:.1} -> {after:.1}");
    assert!(after < before / 2.0, "plate detail only fell from {before:.1} to {after:.1}");
    let all: Vec<BBox> = report.faces.iter().chain(&report.plates).copied().collect();
    assert_unchanged_outside(&orig, &pic, &all);
}

#[test]
fn scenes_without_faces_or_plates_are_left_alone() {
    let messi = load("messi5.jpg");
    let scenes = [
        ("fruits.jpg", load("fruits.jpg")),
        ("home.jpg", load("home.jpg")),
        ("messi5.jpg grass", crop(&messi, 0, 270, 320, 72)),
        ("messi5.jpg crowd-free right side", crop(&messi, 400, 0, 148, 342)),
    ];
    let mut m = Masker::new(&PrivacyCfg::default()).unwrap();
    for (name, p) in scenes {
        let mut rgb = p.rgb.clone();
        let report = m.mask(&mut rgb, p.w, p.h).unwrap();
        assert!(report.is_empty(), "{name}: {report:?}");
        assert!(rgb == p.rgb, "{name} changed");
    }
}

#[test]
fn disabled_privacy_masks_nothing() {
    let orig = load("messi5.jpg");
    let off = PrivacyCfg { faces: false, plates: false, ..PrivacyCfg::default() };
    let mut m = Masker::new(&off).unwrap();
    let mut rgb = orig.rgb.clone();
    assert!(m.mask(&mut rgb, orig.w, orig.h).unwrap().is_empty());
    assert!(rgb == orig.rgb);
    // faces off, plates on: the face stays
    let mut m = Masker::new(&PrivacyCfg { faces: false, ..PrivacyCfg::default() }).unwrap();
    let report = m.detect(&orig.rgb, orig.w, orig.h).unwrap();
    assert!(report.faces.is_empty());
}

#[test]
fn model_boxes_are_masked_too() {
    let orig = load("home.jpg");
    let mut m = Masker::new(&PrivacyCfg { faces: false, plates: false, ..PrivacyCfg::default() }).unwrap();
    let mut pic = Picture { rgb: orig.rgb.clone(), w: orig.w, h: orig.h };
    let boxes = [BBox::new(100.0, 100.0, 180.0, 160.0), BBox::new(600.0, 600.0, 700.0, 700.0)];
    assert_eq!(m.mask_boxes(&mut pic.rgb, pic.w, pic.h, &boxes).unwrap(), 1, "the box outside the frame is skipped");
    assert!(detail(&pic, &boxes[0]) < detail(&orig, &boxes[0]) / 3.0);
    assert_unchanged_outside(&orig, &pic, &boxes[..1]);
}

#[test]
fn missing_cascade_is_an_error_naming_the_file_and_package() {
    let dir = tempfile::tempdir().unwrap();
    let err = Masker::with_cascade_dir(&PrivacyCfg::default(), dir.path()).unwrap_err();
    let msg = err.to_string();
    println!("{msg}");
    assert!(matches!(err, PrivacyError::MissingCascade(_)));
    assert!(msg.contains(&dir.path().display().to_string()) && msg.contains("opencv-data"), "{msg}");
    assert_eq!(msg.lines().count(), 1);
}

#[test]
fn corrupt_cascade_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    for f in hawkeye::evidence::privacy::cascade_files(&PrivacyCfg::default(), dir.path()) {
        std::fs::write(f, "<opencv_storage>not a cascade</opencv_storage>").unwrap();
    }
    let err = Masker::with_cascade_dir(&PrivacyCfg::default(), dir.path()).unwrap_err();
    let msg = err.to_string();
    println!("{msg}");
    assert!(matches!(err, PrivacyError::BadCascade { .. }), "{err:?}");
    assert_eq!(msg.lines().count(), 1, "{msg}");
}

/// A picture larger than `MAX_SEARCH_PIXELS` (a 1080p main-stream snapshot) is searched at a
/// reduced size: the face is still found, its box in the big picture's pixels, and masked.
#[test]
fn a_large_picture_is_searched_scaled_down_with_boxes_in_its_own_pixels() {
    let small = load("messi5.jpg");
    let f = 4u32;
    let (w, h) = (small.w * f, small.h * f);
    assert!((w * h) as u64 > hawkeye::evidence::privacy::MAX_SEARCH_PIXELS);
    let mut rgb = Vec::with_capacity((w * h * 3) as usize);
    for y in 0..h {
        for x in 0..w {
            let o = (((y / f) * small.w + x / f) * 3) as usize;
            rgb.extend_from_slice(&small.rgb[o..o + 3]);
        }
    }
    let big = Picture { rgb, w, h };
    let mut pic = Picture { rgb: big.rgb.clone(), w, h };
    let mut m = Masker::new(&cfg(MaskMethod::Pixelate)).unwrap();
    let report = m.mask(&mut pic.rgb, w, h).unwrap();
    let centre = (FACE_CENTRE.0 * f as f32, FACE_CENTRE.1 * f as f32);
    let face = report.faces.iter().find(|b| contains(b, centre)).unwrap_or_else(|| panic!("no face at {centre:?}: {report:?}"));
    assert!(face.width() >= 120.0 && face.width() <= 240.0, "face box in the big picture's pixels: {face:?}");
    let (before, after) = (detail(&big, face), detail(&pic, face));
    assert!(after < before / 3.0, "face detail only fell from {before:.1} to {after:.1}");
}

/// Searching only around the detector's people and vehicles (`privacy.search = "detections"`,
/// the default) finds what the whole-picture search finds on real pictures where the detector
/// (hawkeye's street model, from the repository) sees them: Messi's face, the basketball
/// player's face, the plate on the car. With nobody and no vehicle detected nothing is searched,
/// and a box that says "person" where there is none finds no face.
#[test]
fn faces_and_plates_are_found_around_the_detected_people_and_vehicles() {
    use hawkeye::detect::{Detector, DetectorOptions};
    use hawkeye::evidence::privacy::SearchRegions;
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/hawkeye_urban.onnx");
    let mut det = Detector::load(&model, None, DetectorOptions { score_threshold: 0.35, ..Default::default() }).unwrap();
    let mut m = Masker::new(&PrivacyCfg::default()).unwrap();
    for (name, want_faces, want_plates) in [("messi5.jpg", 1, 0), ("basketball1.png", 1, 0), ("licenseplate_motion.jpg", 0, 1)] {
        let p = load(name);
        let regions = SearchRegions::of(&det.detect(&p.rgb, p.w, p.h).unwrap());
        let whole = m.detect(&p.rgb, p.w, p.h).unwrap();
        let around = m.detect_in(&p.rgb, p.w, p.h, Some(&regions)).unwrap();
        println!("{name}: whole {whole:?}\n  around {} people, {} vehicles: {around:?}", regions.people.len(), regions.vehicles.len());
        assert!(whole.faces.len() >= want_faces && whole.plates.len() >= want_plates, "{name}: {whole:?}");
        for f in &whole.faces {
            assert!(around.faces.iter().any(|g| g.iou(f) > 0.7), "{name}: face {f:?} not found around the people: {around:?}");
        }
        if want_plates > 0 {
            let centre = ((PLATE.x1 + PLATE.x2) / 2.0, (PLATE.y1 + PLATE.y2) / 2.0);
            assert!(around.plates.iter().any(|b| contains(b, centre)), "{name}: the plate not found around the car: {around:?}");
        }
        // masking with the regions makes the face unreadable as the whole search does
        let mut rgb = p.rgb.clone();
        let report = m.mask_in(&mut rgb, p.w, p.h, Some(&regions)).unwrap();
        assert_eq!(report, around);
        assert_unchanged_outside(&p, &Picture { rgb, w: p.w, h: p.h }, &report.faces.iter().chain(&report.plates).copied().collect::<Vec<_>>());
    }
    // nobody detected: nothing is searched, so nothing is found
    let messi = load("messi5.jpg");
    assert!(m.detect_in(&messi.rgb, messi.w, messi.h, Some(&SearchRegions::default())).unwrap().is_empty());
    // a "person" over the grass: no face there
    let grass = SearchRegions { people: vec![[0.0, 270.0, 320.0, 342.0]], vehicles: vec![] };
    assert!(m.detect_in(&messi.rgb, messi.w, messi.h, Some(&grass)).unwrap().faces.is_empty());
}
