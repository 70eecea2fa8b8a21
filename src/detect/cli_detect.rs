//! `hawkeye detect`: run the detector and/or the water model on one image file and describe
//! what they found as JSON, optionally writing an annotated JPEG (boxes, and the water mask as
//! a translucent blue overlay).

use std::path::Path;

use serde_json::{json, Value};

use super::annotate::{draw_detections, overlay_water};
use super::detector::{Detector, DetectorOptions};
use super::error::DetectError;
use super::manifest::{Manifest, ModelKind};
use super::segment::Segmenter;

/// JPEG quality of annotated images.
const JPEG_QUALITY: u8 = 90;

/// Detects objects in `image` (any format the `image` crate decodes) and returns
/// `{image, width, height, model: {name, sha256}, detections: [{class, class_id, score,
/// bbox: [x1, y1, x2, y2]}]}`; writes the annotated image to `out` as JPEG when given.
pub fn detect_command(
    model: &Path,
    manifest: Option<&Path>,
    image: &Path,
    out: Option<&Path>,
    opts: DetectorOptions,
) -> Result<Value, DetectError> {
    detect_and_segment(Some(model), manifest, None, image, out, opts)
}

/// `hawkeye detect` in full: the detector `model` (with `manifest`) and/or the water model
/// `water`. A `model` whose manifest says `kind = "segmentation"` is taken as the water model.
/// The JSON gains `water: {model: {name, sha256}, share}` (share of the picture that is
/// water); `out` shows the mask as a translucent blue overlay under the boxes.
pub fn detect_and_segment(
    model: Option<&Path>,
    manifest: Option<&Path>,
    water: Option<&Path>,
    image: &Path,
    out: Option<&Path>,
    opts: DetectorOptions,
) -> Result<Value, DetectError> {
    let read_err = |reason: String| DetectError::ImageRead {
        path: image.to_path_buf(),
        reason,
    };
    if !image.is_file() {
        return Err(read_err("no such file".to_string()));
    }
    // a segmentation model given as --model is the water model (when --water is not given)
    let (model, water) = match (model, water) {
        (Some(m), None) if m.is_file() && Manifest::find(m, manifest).is_ok_and(|x| x.kind == ModelKind::Segmentation) => (None, Some(m)),
        other => other,
    };
    if model.is_none() && water.is_none() {
        return Err(read_err("give a model (--model) and/or a water model (--water)".to_string()));
    }
    // Load the models before decoding the image so model errors come first and cheaply.
    let mut detector = model.map(|m| Detector::load(m, manifest, opts)).transpose()?;
    let water_manifest = if model.is_none() { manifest } else { None };
    let mut segmenter = water.map(|w| Segmenter::load(w, water_manifest, opts.threads)).transpose()?;
    let img = image::open(image)
        .map_err(|e| read_err(e.to_string()))?
        .to_rgb8();
    let (width, height) = img.dimensions();
    let detections = match detector.as_mut() {
        Some(d) => d.detect(img.as_raw(), width, height)?,
        None => Vec::new(),
    };
    let mask = match segmenter.as_mut() {
        Some(s) => Some(s.segment(img.as_raw(), width, height)?),
        None => None,
    };

    if let Some(out) = out {
        let mut annotated = img;
        if let Some(m) = &mask {
            overlay_water(&mut annotated, m);
        }
        draw_detections(&mut annotated, &detections);
        write_jpeg(&annotated, out)?;
    }

    let round = |v: f32| (v as f64 * 10.0).round() / 10.0;
    let dets: Vec<Value> = detections
        .iter()
        .map(|d| {
            json!({
                "class": d.class,
                "class_id": d.class_id,
                "score": (d.score as f64 * 1000.0).round() / 1000.0,
                "bbox": [round(d.bbox.x1), round(d.bbox.y1), round(d.bbox.x2), round(d.bbox.y2)],
            })
        })
        .collect();
    let mut v = json!({
        "image": image.display().to_string(),
        "width": width,
        "height": height,
    });
    if let Some(d) = &detector {
        v["model"] = json!({ "name": d.model_name(), "sha256": d.model_sha256() });
        v["detections"] = json!(dets);
    }
    if let (Some(s), Some(m)) = (&segmenter, &mask) {
        v["water"] = json!({
            "model": { "name": s.model_name(), "sha256": s.model_sha256() },
            "share": (m.share() * 10000.0).round() / 10000.0,
        });
    }
    Ok(v)
}

/// Writes an RGB image as JPEG.
pub fn write_jpeg(img: &image::RgbImage, path: &Path) -> Result<(), DetectError> {
    let write_err = |reason: String| DetectError::ImageWrite {
        path: path.to_path_buf(),
        reason,
    };
    let file = std::fs::File::create(path).map_err(|e| write_err(e.to_string()))?;
    let mut w = std::io::BufWriter::new(file);
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut w, JPEG_QUALITY)
        .encode_image(img)
        .map_err(|e| write_err(e.to_string()))?;
    std::io::Write::flush(&mut w).map_err(|e| write_err(e.to_string()))
}
