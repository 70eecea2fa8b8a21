//! The int8 street detector (`models/hawkeye_urban_int8.onnx`, made by
//! models/train/quantize.py) in real ONNX Runtime: its manifest pins its own file and describes
//! the same outputs as the fp32 model's, and on real vtest.avi frames that calibration never
//! saw (400–794) it finds the fp32 model's persons.
//!
//! NOT COMMITTED YET: as measured (models/README.md, "int8"), int8 does not pay on the 2-core
//! reference box, so no int8 model is in the repository and both tests are ignored, with the
//! reason shown by `cargo test` (run them with `-- --ignored` once a model is made). They are
//! the acceptance check for the day one is committed: remove the `#[ignore]`s in that commit.

mod common;

use std::path::{Path, PathBuf};

use hawkeye::detect::manifest::file_sha256;
use hawkeye::detect::{Detection, Detector, DetectorOptions, Manifest, ModelKind};
use hawkeye::tools::synth::real::decode_each;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The int8 model, which a test that runs requires to be committed.
fn int8() -> PathBuf {
    let p = root().join("models/hawkeye_urban_int8.onnx");
    assert!(p.is_file(), "{} missing: it is committed in the repository", p.display());
    p
}

/// fp32 persons at least this confident are the reference.
const REFERENCE_SCORE: f32 = 0.5;
/// An int8 person matches one of them at this IoU or more (at the detector's 0.3 floor).
const MATCH_IOU: f32 = 0.5;
/// Share of the reference persons the int8 model must find (measured: see models/README.md).
const MIN_FOUND: f64 = 0.9;
/// Every 40th frame of vtest.avi 400–794 (held out from calibration and training): 10 frames.
const FIRST: usize = 400;
const LAST: usize = 794;
const EVERY: usize = 40;

#[test]
#[ignore = "no int8 model is committed: it does not pay yet (models/README.md, int8)"]
fn the_int8_manifest_pins_its_model_and_matches_the_fp32_outputs() {
    let model = int8();
    let m = Manifest::from_file(&model.with_extension("toml")).unwrap();
    let sha = file_sha256(&model).unwrap();
    assert_eq!(m.sha256.as_deref(), Some(sha.as_str()), "the manifest's sha256 is not the model file's");
    assert_eq!(m.name, "hawkeye_urban_int8");
    assert_eq!(m.kind, ModelKind::Detector);
    // the int8 model is a drop-in for the fp32 one: same input, layout, strides and classes
    let fp32 = Manifest::from_file(&common::model::urban().with_extension("toml")).unwrap();
    assert_ne!(fp32.sha256, m.sha256);
    assert_eq!((m.input_width, m.input_height, m.color, m.scale, m.pad_value, m.letterbox), (fp32.input_width, fp32.input_height, fp32.color, fp32.scale, fp32.pad_value, fp32.letterbox));
    assert_eq!(m.layout, fp32.layout);
    assert_eq!(m.strides, fp32.strides);
    assert_eq!(m.classes, fp32.classes);
    // and it loads: ONNX Runtime takes it, and its input and output shapes agree with the manifest
    hawkeye::detect::init_runtime().unwrap();
    let d = Detector::load(&model, None, DetectorOptions::default()).unwrap();
    assert_eq!(d.model_sha256(), sha);
    assert_eq!(d.model_name(), "hawkeye_urban_int8");
}

fn persons(dets: &[Detection], min_score: f32) -> Vec<&Detection> {
    dets.iter().filter(|d| d.class == "person" && d.score >= min_score).collect()
}

#[test]
#[ignore = "no int8 model is committed: it does not pay yet (models/README.md, int8)"]
fn int8_finds_the_fp32_persons_on_held_out_vtest_frames() {
    let video = common::model::vtest();
    hawkeye::detect::init_runtime().unwrap();
    let opts = DetectorOptions { score_threshold: 0.3, ..Default::default() };
    let mut fp32 = Detector::load(&common::model::urban(), None, opts).unwrap();
    let mut int8 = Detector::load(&int8(), None, opts).unwrap();

    let (mut reference, mut found, mut frames) = (0usize, 0usize, 0usize);
    let (mut confident_int8, mut confirmed) = (0usize, 0usize);
    let mut misses = Vec::new();
    let decoded = decode_each(&video, None, |i, rgb, w, h| {
        if i >= FIRST && (i - FIRST).is_multiple_of(EVERY) {
            let a = fp32.detect(rgb, w, h).unwrap();
            let b = int8.detect(rgb, w, h).unwrap();
            for p in persons(&a, REFERENCE_SCORE) {
                reference += 1;
                let best = persons(&b, 0.0).iter().map(|q| q.bbox.iou(&p.bbox)).fold(0.0f32, f32::max);
                if best >= MATCH_IOU {
                    found += 1;
                } else {
                    misses.push(format!("frame {i}: fp32 person {:.2} at {:?}, best int8 IoU {best:.2}", p.score, p.bbox));
                }
            }
            // the other way round: int8's confident persons are fp32's (at its 0.3 floor)
            for q in persons(&b, REFERENCE_SCORE) {
                confident_int8 += 1;
                confirmed += persons(&a, 0.0).iter().any(|p| p.bbox.iou(&q.bbox) >= MATCH_IOU) as usize;
            }
            frames += 1;
        }
        i < LAST
    })
    .unwrap();
    assert!(decoded > LAST, "vtest.avi decoded to {decoded} frames");
    assert_eq!(frames, (LAST - FIRST) / EVERY + 1);
    // the scene is busy: a handful of walkers in every frame
    assert!(reference >= 30, "only {reference} fp32 persons at score >= {REFERENCE_SCORE} in {frames} frames");
    let share = found as f64 / reference as f64;
    let precision = confirmed as f64 / confident_int8.max(1) as f64;
    println!("int8 found {found}/{reference} fp32 persons ({:.1} %); {confirmed}/{confident_int8} of its confident persons are fp32's", 100.0 * share);
    for m in &misses {
        println!("  missed: {m}");
    }
    assert!(share >= MIN_FOUND, "int8 found {:.1} % of the fp32 persons (< {:.0} %):\n  {}", 100.0 * share, 100.0 * MIN_FOUND, misses.join("\n  "));
    assert!(precision >= MIN_FOUND, "only {confirmed} of int8's {confident_int8} confident persons are fp32's");
}
