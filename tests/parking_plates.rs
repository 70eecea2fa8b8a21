//! The plate-masking policy of a parking zone's vehicle crop, on real pictures from Debian's
//! opencv-doc with the Haar cascades from opencv-data: with the camera's masking (a zone without
//! `unmask_plates`) the plate is made unreadable; with `unmask_plates` the plate is left as it
//! is while faces are still masked; a camera that masks no faces publishes the crop untouched.

use std::path::Path;

use hawkeye::config::PrivacyCfg;
use hawkeye::detect::BBox;
use hawkeye::evidence::crop::plates_readable;
use hawkeye::evidence::SharedMasker;

const DATA: &str = "/usr/share/doc/opencv-doc/examples/data";
/// The plate in licenseplate_motion.jpg (600x482), measured by eye (as tests/privacy.rs).
const PLATE: BBox = BBox { x1: 228.0, y1: 228.0, x2: 358.0, y2: 292.0 };
/// Messi's face in messi5.jpg (548x342), measured by eye.
const FACE: BBox = BBox { x1: 226.0, y1: 92.0, x2: 266.0, y2: 134.0 };

fn load(name: &str) -> (Vec<u8>, u32, u32) {
    let img = image::open(Path::new(DATA).join(name)).unwrap_or_else(|e| panic!("{name}: {e} (install opencv-doc)")).to_rgb8();
    let (w, h) = img.dimensions();
    (img.into_raw(), w, h)
}

/// Mean absolute difference of neighbouring grey values inside `b` (high when text is legible).
fn detail(rgb: &[u8], w: u32, b: &BBox) -> f64 {
    let grey = |x: u32, y: u32| {
        let o = ((y * w + x) * 3) as usize;
        rgb[o] as f64 * 0.299 + rgb[o + 1] as f64 * 0.587 + rgb[o + 2] as f64 * 0.114
    };
    let (mut sum, mut n) = (0.0, 0.0);
    for y in b.y1 as u32..b.y2 as u32 - 1 {
        for x in b.x1 as u32..b.x2 as u32 - 1 {
            sum += (grey(x, y) - grey(x + 1, y)).abs() + (grey(x, y) - grey(x, y + 1)).abs();
            n += 2.0;
        }
    }
    sum / n
}

/// Pixels of `b` in `a` and `c` are the same.
fn same_inside(a: &[u8], c: &[u8], w: u32, b: &BBox) -> bool {
    (b.y1 as u32..b.y2 as u32).all(|y| {
        let (o0, o1) = (((y * w + b.x1 as u32) * 3) as usize, ((y * w + b.x2 as u32) * 3) as usize);
        a[o0..o1] == c[o0..o1]
    })
}

#[test]
fn a_zone_without_unmask_plates_masks_the_plate_in_the_vehicle_crop() {
    let (orig, w, h) = load("licenseplate_motion.jpg");
    let mut masked = orig.clone();
    SharedMasker::new(&PrivacyCfg::default()).unwrap().mask(&mut masked, w, h).unwrap();
    let (before, after) = (detail(&orig, w, &PLATE), detail(&masked, w, &PLATE));
    assert!(after < before / 2.0, "plate detail only fell from {before:.1} to {after:.1}");
}

#[test]
fn unmask_plates_leaves_the_plate_readable_and_still_masks_faces() {
    let cfg = PrivacyCfg::default();
    assert!(cfg.faces && cfg.plates);
    let (orig, w, h) = load("licenseplate_motion.jpg");
    let kept = plates_readable(&cfg, orig.clone(), w, h).expect("face masking available");
    assert!(same_inside(&orig, &kept, w, &PLATE), "the plate was changed");
    let (face, fw, fh) = load("messi5.jpg");
    let masked = plates_readable(&cfg, face.clone(), fw, fh).unwrap();
    let (before, after) = (detail(&face, fw, &FACE), detail(&masked, fw, &FACE));
    assert!(after < before / 3.0, "face detail only fell from {before:.1} to {after:.1}");
    // a camera that masks no faces publishes the crop as it is
    let no_faces = PrivacyCfg { faces: false, ..cfg };
    assert_eq!(plates_readable(&no_faces, orig.clone(), w, h).unwrap(), orig);
}
