//! `hawkeye detect`: run the detector on one image file and describe what it found as JSON,
//! optionally writing an annotated JPEG.

use std::path::Path;

use serde_json::{json, Value};

use super::annotate::draw_detections;
use super::detector::{Detector, DetectorOptions};
use super::error::DetectError;

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
    let read_err = |reason: String| DetectError::ImageRead {
        path: image.to_path_buf(),
        reason,
    };
    if !image.is_file() {
        return Err(read_err("no such file".to_string()));
    }
    // Load the model before decoding the image so model errors come first and cheaply.
    let mut detector = Detector::load(model, manifest, opts)?;
    let img = image::open(image)
        .map_err(|e| read_err(e.to_string()))?
        .to_rgb8();
    let (width, height) = img.dimensions();
    let detections = detector.detect(img.as_raw(), width, height)?;

    if let Some(out) = out {
        let mut annotated = img;
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
    Ok(json!({
        "image": image.display().to_string(),
        "width": width,
        "height": height,
        "model": { "name": detector.model_name(), "sha256": detector.model_sha256() },
        "detections": dets,
    }))
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
