//! Detection against real ONNX Runtime and the real YOLOX-nano model on frames of OpenCV's
//! `vtest.avi` street scene, decoded with real GStreamer. Run with `cargo test --release`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use gstreamer_video as gst_video;

use hawkeye::detect::{detect_command, Detection, Detector, DetectorOptions};

const VIDEO: &str = "/usr/share/doc/opencv-doc/examples/data/vtest.avi";

fn model_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/models/yolox_nano.onnx")
}

/// The model, or `None` (after a loud note) where the shared models are not mounted.
fn model() -> Option<PathBuf> {
    let p = model_path();
    if p.is_file() {
        Some(p)
    } else {
        eprintln!(
            "SKIPPED: this test needs ../shared/models/yolox_nano.onnx ({})",
            p.display()
        );
        None
    }
}

fn video() -> Option<&'static Path> {
    let p = Path::new(VIDEO);
    if p.is_file() {
        Some(p)
    } else {
        eprintln!("SKIPPED: this test needs {VIDEO} (Debian package opencv-doc)");
        None
    }
}

fn opts() -> DetectorOptions {
    DetectorOptions {
        score_threshold: 0.3,
        nms_iou: 0.45,
        threads: 2,
    }
}

/// A packed RGB frame.
struct Frame {
    width: u32,
    height: u32,
    rgb: Vec<u8>,
}

/// Decodes `video` with GStreamer and returns the first frame at or after each of `secs`
/// (ascending), copied row by row so that padded strides are honoured.
fn frames_at(video: &Path, secs: &[u64]) -> Vec<Frame> {
    gst::init().expect("GStreamer init");
    let desc = format!(
        "filesrc location={} ! decodebin ! videoconvert ! video/x-raw,format=RGB ! \
         appsink name=sink sync=false",
        video.display()
    );
    let pipeline = gst::parse::launch(&desc)
        .expect("pipeline")
        .downcast::<gst::Pipeline>()
        .expect("a pipeline");
    let sink = pipeline
        .by_name("sink")
        .expect("sink")
        .downcast::<gst_app::AppSink>()
        .expect("appsink");
    pipeline.set_state(gst::State::Playing).expect("playing");
    let mut out = Vec::new();
    let mut wanted = secs.iter().copied().peekable();
    while let Some(&t) = wanted.peek() {
        let Ok(sample) = sink.pull_sample() else {
            break;
        };
        let buffer = sample.buffer().expect("buffer");
        let pts = buffer.pts().map_or(0, |p| p.nseconds());
        if pts < t * 1_000_000_000 {
            continue;
        }
        wanted.next();
        let info = gst_video::VideoInfo::from_caps(sample.caps().expect("caps")).expect("info");
        let map = buffer.map_readable().expect("readable");
        let (w, h) = (info.width(), info.height());
        let (stride, offset) = (info.stride()[0] as usize, info.offset()[0]);
        let mut rgb = Vec::with_capacity(w as usize * h as usize * 3);
        for y in 0..h as usize {
            let row = offset + y * stride;
            rgb.extend_from_slice(&map[row..row + w as usize * 3]);
        }
        out.push(Frame {
            width: w,
            height: h,
            rgb,
        });
    }
    pipeline.set_state(gst::State::Null).expect("null");
    assert_eq!(out.len(), secs.len(), "video ended before {secs:?} s");
    out
}

fn people(dets: &[Detection]) -> usize {
    dets.iter().filter(|d| d.class == "person").count()
}

fn assert_inside(dets: &[Detection], f: &Frame) {
    for d in dets {
        let b = d.bbox;
        assert!(
            b.x1 >= 0.0 && b.y1 >= 0.0 && b.x2 <= f.width as f32 && b.y2 <= f.height as f32,
            "box outside the {}x{} frame: {d:?}",
            f.width,
            f.height
        );
        assert!(b.x2 > b.x1 && b.y2 > b.y1, "empty box {d:?}");
        assert!(d.score > 0.0 && d.score <= 1.0, "{d:?}");
    }
}

/// Persons at least this tall count as pedestrians. YOLOX-nano also calls a small blue sign
/// post at the left edge (about 32 px tall) a person at score ~0.55; it is counted apart.
const PEDESTRIAN_MIN_HEIGHT: f32 = 50.0;

fn pedestrians(dets: &[Detection]) -> usize {
    dets.iter()
        .filter(|d| d.class == "person" && d.bbox.height() >= PEDESTRIAN_MIN_HEIGHT)
        .count()
}

#[test]
fn counts_pedestrians_in_street_frames() {
    let (Some(model), Some(video)) = (model(), video()) else {
        return;
    };
    // Counted by eye on the frames: 3 walkers at 0 s, 6 at 30 s, 4 at 50 s (two of them
    // overlapping).
    let expected = [(0u64, 3usize..=3usize), (30, 5..=7), (50, 3..=5)];
    let secs: Vec<u64> = expected.iter().map(|e| e.0).collect();
    let frames = frames_at(video, &secs);
    let mut det = Detector::load(&model, None, opts()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(det.model_name(), "yolox_nano");
    assert_eq!(det.class_names().len(), 80);
    for ((t, range), f) in expected.iter().zip(&frames) {
        assert_eq!((f.width, f.height), (768, 576));
        let dets = det
            .detect(&f.rgb, f.width, f.height)
            .unwrap_or_else(|e| panic!("{e}"));
        for d in &dets {
            eprintln!("t={t}s: {} {:.2} {:?}", d.class, d.score, d.bbox);
        }
        let n = pedestrians(&dets);
        assert!(
            range.contains(&n),
            "t={t}s: {n} pedestrians, wanted {range:?}"
        );
        assert!(people(&dets) <= n + 2, "t={t}s: too many small persons");
        assert_inside(&dets, f);
        for d in dets.iter().filter(|d| d.class == "person") {
            // Upright people: taller than wide, and none taller than 160 px in this scene.
            assert!(d.bbox.height() > d.bbox.width(), "{d:?}");
            assert!(d.bbox.height() < 160.0, "{d:?}");
        }
        // The parked white van at the top is always there.
        assert!(
            dets.iter()
                .any(|d| (d.class == "car" || d.class == "truck") && d.bbox.x1 > 600.0),
            "t={t}s: van not found"
        );
    }
}

#[test]
fn detect_command_on_a_jpeg_writes_json_and_annotated_image() {
    let (Some(model), Some(video)) = (model(), video()) else {
        return;
    };
    let frame = &frames_at(video, &[30])[0];
    let dir = tempfile::tempdir().unwrap();
    let jpeg = dir.path().join("frame.jpg");
    image::RgbImage::from_raw(frame.width, frame.height, frame.rgb.clone())
        .unwrap()
        .save(&jpeg)
        .unwrap();
    let out = dir.path().join("annotated.jpg");
    let v =
        detect_command(&model, None, &jpeg, Some(&out), opts()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(v["image"], jpeg.display().to_string());
    assert_eq!(
        (v["width"].as_u64(), v["height"].as_u64()),
        (Some(768), Some(576))
    );
    assert_eq!(v["model"]["name"], "yolox_nano");
    assert_eq!(
        v["model"]["sha256"],
        "695e750a5d5754bb5a8d5325643b59282191a7e7a564e435a415fd3c578eab14"
    );
    let dets = v["detections"].as_array().unwrap();
    let persons = dets.iter().filter(|d| d["class"] == "person").count();
    assert!((5..=8).contains(&persons), "{v:#}");
    for d in dets {
        let b: Vec<f64> = d["bbox"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect();
        assert!(
            b[0] >= 0.0 && b[1] >= 0.0 && b[2] <= 768.0 && b[3] <= 576.0,
            "{d}"
        );
        assert!(d["class_id"].as_u64().is_some() && d["score"].as_f64().unwrap() > 0.0);
    }
    let annotated = image::open(&out).expect("annotated JPEG").to_rgb8();
    assert_eq!(annotated.dimensions(), (768, 576));
    // Boxes were drawn: the annotated image differs from the clean one.
    let clean = image::open(&jpeg).unwrap().to_rgb8();
    let changed = clean
        .pixels()
        .zip(annotated.pixels())
        .filter(|(a, b)| a.0.iter().zip(b.0.iter()).any(|(x, y)| x.abs_diff(*y) > 60));
    assert!(changed.count() > 500);
}

#[test]
fn missing_model_is_an_error_naming_the_path() {
    let missing = Path::new("/nonexistent/dir/model.onnx");
    let e = Detector::load(missing, None, opts())
        .unwrap_err()
        .to_string();
    assert!(e.contains("/nonexistent/dir/model.onnx"), "{e}");
    assert!(!e.contains('\n'), "{e}");
}

#[test]
fn garbage_model_file_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.onnx");
    std::fs::write(&garbage, b"this is not an ONNX protobuf \x00\x01\x02").unwrap();
    // No manifest for it: the manifest lookup explains that.
    let e = Detector::load(&garbage, None, opts())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("no manifest") && e.contains("garbage.toml"),
        "{e}"
    );
    // With a manifest beside it, ONNX Runtime itself rejects the file.
    let manifest = include_str!("../models/yolox_nano.toml")
        .lines()
        .filter(|l| !l.starts_with("sha256"))
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(dir.path().join("garbage.toml"), manifest).unwrap();
    let e = Detector::load(&garbage, None, opts())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("cannot load model") && e.contains("garbage.onnx"),
        "{e}"
    );
    assert!(!e.contains('\n'), "{e}");
}

#[test]
fn manifest_that_disagrees_with_the_model_is_refused() {
    let Some(model) = model() else { return };
    let dir = tempfile::tempdir().unwrap();
    let base = include_str!("../models/yolox_nano.toml");
    let v8 = dir.path().join("v8.toml");
    std::fs::write(
        &v8,
        base.replace("layout = \"yolox\"", "layout = \"yolov8\""),
    )
    .unwrap();
    let e = Detector::load(&model, Some(&v8), opts())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("model output [1,3549,85] does not match layout yolov8 with 80 classes"),
        "{e}"
    );
    let big = dir.path().join("big.toml");
    std::fs::write(
        &big,
        base.replace("input_width = 416", "input_width = 640")
            .replace("input_height = 416", "input_height = 640"),
    )
    .unwrap();
    let e = Detector::load(&model, Some(&big), opts())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("[1,3,416,416]") && e.contains("[1,3,640,640]"),
        "{e}"
    );
}

/// Best per-call milliseconds of `f` over a few batches: the machine is shared (builds, other
/// tests), so the minimum is the figure that reflects the code rather than the neighbours.
fn best_ms(batches: usize, per_batch: usize, mut f: impl FnMut()) -> f64 {
    (0..batches)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..per_batch {
                f();
            }
            t.elapsed().as_secs_f64() * 1000.0 / per_batch as f64
        })
        .fold(f64::INFINITY, f64::min)
}

/// Prints letterbox and inference timings (ms per frame) for the report and benchmarks.
#[test]
fn timings() {
    let Some(model) = model() else { return };
    let mut det = Detector::load(&model, None, opts()).unwrap_or_else(|e| panic!("{e}"));
    for (w, h) in [(640u32, 480u32), (1920, 1080), (416, 234)] {
        let rgb: Vec<u8> = (0..w as usize * h as usize * 3)
            .map(|i| (i * 7 % 251) as u8)
            .collect();
        let ms = best_ms(5, 20, || {
            det.prepare(&rgb, w, h).unwrap();
        });
        eprintln!("TIMING letterbox {w}x{h} -> 416x416: {ms:.3} ms");
    }
    for _ in 0..3 {
        det.infer_only().unwrap();
    }
    let ms = best_ms(5, 10, || det.infer_only().unwrap());
    eprintln!("TIMING yolox_nano 416 inference, 2 threads: {ms:.2} ms");
}
