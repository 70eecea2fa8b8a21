//! Water as stuff: [`Segmenter`] runs a segmentation model (manifest `kind = "segmentation"`)
//! on a frame and returns a [`WaterMask`] in frame pixels; [`WaterMask::coverage`] is the share
//! of a zone polygon that is water, measured on the same sample grid as the box coverage of
//! [`crate::rules::flood::coverage`].
//!
//! The model sees the frame exactly as the detector does (same ONNX Runtime environment, same
//! [`Letterboxer`]); its one output `[1, 1, Hm, Wm]` holds the water probability over the
//! letterboxed input, input pixel `(x, y)` ↔ mask cell `(x·Wm/W, y·Hm/H)`. [`mask_to_frame`]
//! undoes the letterbox: every frame pixel takes the cell under its centre (nearest), and is
//! water at probability ≥ [`WATER_THRESHOLD`].

use std::path::{Path, PathBuf};

use ort::session::Session;
use ort::value::{TensorElementType, TensorRef};

use super::error::DetectError;
use super::letterbox::{Letterbox, Letterboxer};
use super::manifest::{one_line, Manifest, ModelKind};
use super::runtime::{check_input, load_model, LoadedModel};
use super::yolo::format_shape;
use crate::rules::Polygon;

/// Probability at which a mask cell counts as water.
pub const WATER_THRESHOLD: f32 = 0.5;

/// A binary water mask at a frame's size: `data[y * width + x]` is 1 for water, 0 otherwise.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WaterMask {
    pub width: u32,
    pub height: u32,
    pub data: Vec<u8>,
}

impl WaterMask {
    /// An all-dry mask.
    pub fn dry(width: u32, height: u32) -> WaterMask {
        WaterMask { width, height, data: vec![0; width as usize * height as usize] }
    }

    /// A mask from 8-bit grey values (a truth PNG: 255 water, 0 not); ≥ 128 is water.
    pub fn from_grey(width: u32, height: u32, grey: &[u8]) -> WaterMask {
        WaterMask { width, height, data: grey.iter().map(|v| u8::from(*v >= 128)).collect() }
    }

    /// Reads an 8-bit grey PNG (any format the `image` crate reads, converted to grey).
    pub fn read_png(path: &Path) -> Result<WaterMask, DetectError> {
        let img = image::open(path)
            .map_err(|e| DetectError::ImageRead { path: path.to_path_buf(), reason: e.to_string() })?
            .to_luma8();
        let (w, h) = img.dimensions();
        Ok(WaterMask::from_grey(w, h, img.as_raw()))
    }

    /// Writes the mask as an 8-bit grey PNG (255 water, 0 not).
    pub fn write_png(&self, path: &Path) -> Result<(), DetectError> {
        let grey: Vec<u8> = self.data.iter().map(|v| if *v != 0 { 255 } else { 0 }).collect();
        image::GrayImage::from_raw(self.width, self.height, grey)
            .expect("mask data matches its size")
            .save_with_format(path, image::ImageFormat::Png)
            .map_err(|e| DetectError::ImageWrite { path: path.to_path_buf(), reason: e.to_string() })
    }

    /// Whether frame pixel `(x, y)` is water (false outside the frame).
    pub fn is_water(&self, x: u32, y: u32) -> bool {
        x < self.width && y < self.height && self.data[(y * self.width + x) as usize] != 0
    }

    /// Whether the pixel under normalised point `(x, y)` (0..1) is water.
    pub fn is_water_at(&self, x: f64, y: f64) -> bool {
        if !(0.0..1.0).contains(&x) || !(0.0..1.0).contains(&y) {
            return false;
        }
        self.is_water((x * self.width as f64) as u32, (y * self.height as f64) as u32)
    }

    /// Share of the whole picture that is water (0..1).
    pub fn share(&self) -> f64 {
        let wet = self.data.iter().filter(|v| **v != 0).count();
        wet as f64 / self.data.len().max(1) as f64
    }

    /// Share of `polygon`'s sample points that are water (0 for a polygon without samples).
    pub fn coverage(&self, polygon: &Polygon) -> f64 {
        crate::rules::flood::coverage_where(polygon, |x, y| self.is_water_at(x, y))
    }

    /// Pixels that are water in both masks, and in either (for IoU); `None` when the sizes
    /// differ.
    pub fn overlap(&self, other: &WaterMask) -> Option<(u64, u64)> {
        if (self.width, self.height) != (other.width, other.height) {
            return None;
        }
        let (mut both, mut either) = (0u64, 0u64);
        for (a, b) in self.data.iter().zip(&other.data) {
            let (a, b) = (*a != 0, *b != 0);
            both += u64::from(a && b);
            either += u64::from(a || b);
        }
        Some((both, either))
    }
}

/// The model's probability map `prob` (`mh` rows of `mw` cells over an `input_w`×`input_h`
/// model input) as a binary mask of the frame that letterbox `g` placed in that input: each
/// frame pixel takes the cell under its centre.
pub fn mask_to_frame(prob: &[f32], mw: usize, mh: usize, input_w: u32, input_h: u32, g: &Letterbox, threshold: f32) -> WaterMask {
    let (fw, fh) = (g.frame_width as usize, g.frame_height as usize);
    // frame pixel centre → model-input pixel → mask cell, one table per axis
    let cell = |frame_px: usize, pad: f32, input: u32, cells: usize| -> usize {
        let m = (frame_px as f32 + 0.5) * g.scale + pad;
        ((m * cells as f32 / input as f32).floor().max(0.0) as usize).min(cells - 1)
    };
    let cols: Vec<usize> = (0..fw).map(|x| cell(x, g.pad_x, input_w, mw)).collect();
    let mut data = Vec::with_capacity(fw * fh);
    for y in 0..fh {
        let row = &prob[cell(y, g.pad_y, input_h, mh) * mw..][..mw];
        data.extend(cols.iter().map(|c| u8::from(row[*c] >= threshold)));
    }
    WaterMask { width: g.frame_width, height: g.frame_height, data }
}

/// When a camera's next water mask is due: at most `fps` masks per second of stream time.
/// Pure; the detector thread of `hawkeye run` and `hawkeye eval` share it, so eval measures
/// the rate the daemon runs at.
#[derive(Clone, Debug, PartialEq)]
pub struct WaterSchedule {
    every_s: f64,
    last: Option<f64>,
}

impl WaterSchedule {
    /// A schedule of `fps` masks per second (0 or less: never).
    pub fn new(fps: f64) -> WaterSchedule {
        WaterSchedule { every_s: if fps > 0.0 { 1.0 / fps } else { f64::INFINITY }, last: None }
    }

    /// Whether a frame at stream time `ts` gets a mask; if so, it counts as the last one. The
    /// first frame gets one; a stream that starts again (time goes back) starts again too.
    pub fn due(&mut self, ts: f64) -> bool {
        if !self.every_s.is_finite() {
            return false;
        }
        // 1 ms of slack: frame times that are sums of frame intervals fall just short
        let due = self.last.is_none_or(|l| ts < l || ts - l >= self.every_s - 1e-3);
        if due {
            self.last = Some(ts);
        }
        due
    }
}

/// A loaded water segmentation model ready to run on frames.
pub struct Segmenter {
    session: Session,
    manifest: Manifest,
    manifest_origin: String,
    model_path: PathBuf,
    sha256: String,
    input_name: String,
    letterboxer: Letterboxer,
    /// NCHW model input, reused for every frame.
    input: Vec<f32>,
}

impl std::fmt::Debug for Segmenter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Segmenter").field("model", &self.model_path).field("name", &self.manifest.name).field("manifest", &self.manifest_origin).finish()
    }
}

impl Segmenter {
    /// Loads a segmentation model with its manifest (explicit, beside the model, or built in);
    /// a detector's manifest is refused with both kinds named. Checks the input `[1, 3, H, W]`
    /// and the output `[1, 1, Hm, Wm]` (sizes may be dynamic; read from each result).
    pub fn load(model: &Path, manifest: Option<&Path>, threads: usize) -> Result<Segmenter, DetectError> {
        let LoadedModel { session, manifest, manifest_origin, sha256 } = load_model(model, manifest, ModelKind::Segmentation, threads)?;
        let input_name = check_input(&session, &manifest, model)?;
        let Some(output) = session.outputs().first() else {
            return Err(DetectError::ModelMismatch { path: model.to_path_buf(), problem: "has no outputs".into() });
        };
        let shape: &[i64] = output.dtype().tensor_shape().map_or(&[], |s| s);
        let fits = shape.len() == 4 && shape[..2].iter().all(|d| *d == 1 || *d < 0);
        if output.dtype().tensor_type() != Some(TensorElementType::Float32) || !fits {
            return Err(DetectError::ModelMismatch {
                path: model.to_path_buf(),
                problem: format!("output {} is {} of {:?}; a water model gives float32 [1,1,Hm,Wm]", output.name(), format_shape(shape), output.dtype().tensor_type()),
            });
        }
        let letterboxer = Letterboxer::new(&manifest);
        let input = vec![manifest.pad_value as f32 * manifest.scale; letterboxer.input_len()];
        tracing::info!(model = %model.display(), name = %manifest.name, manifest = %manifest_origin, sha256 = %sha256, "water model loaded");
        Ok(Segmenter { session, manifest, manifest_origin, model_path: model.to_path_buf(), sha256, input_name, letterboxer, input })
    }

    /// The water mask of a packed RGB frame (`width*height*3` bytes), in frame pixels.
    pub fn segment(&mut self, rgb: &[u8], width: u32, height: u32) -> Result<WaterMask, DetectError> {
        let g = self.letterboxer.run(rgb, width, height, &mut self.input)?;
        let (w, h) = (self.manifest.input_width, self.manifest.input_height);
        let infer_err = |e: ort::Error| DetectError::Inference(one_line(&e.to_string()));
        let tensor = TensorRef::from_array_view(([1usize, 3, h as usize, w as usize], self.input.as_slice())).map_err(infer_err)?;
        let outputs = self.session.run(ort::inputs![self.input_name.as_str() => tensor]).map_err(infer_err)?;
        let (shape, data) = outputs[0].try_extract_tensor::<f32>().map_err(infer_err)?;
        let shape: &[i64] = shape;
        let (mh, mw) = match shape {
            [1, 1, mh, mw] if *mh > 0 && *mw > 0 && data.len() == (*mh * *mw) as usize => (*mh as usize, *mw as usize),
            _ => {
                return Err(DetectError::ModelMismatch { path: self.model_path.clone(), problem: format!("output has shape {}; a water model gives [1,1,Hm,Wm]", format_shape(shape)) });
            }
        };
        Ok(mask_to_frame(data, mw, mh, w, h, &g, WATER_THRESHOLD))
    }

    /// The model's manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }
    /// Lower-case hex sha256 of the model file.
    pub fn model_sha256(&self) -> &str {
        &self.sha256
    }
    /// The manifest's model name.
    pub fn model_name(&self) -> &str {
        &self.manifest.name
    }
    /// Path the model was loaded from.
    pub fn model_path(&self) -> &Path {
        &self.model_path
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::manifest::Alignment;

    #[test]
    fn the_letterbox_is_undone_cell_by_cell() {
        // a 200×100 frame in a 416×416 input, top-left: scale 2.08, the frame fills rows 0..208
        let g = Letterbox::new(200, 100, 416, 416, Alignment::TopLeft);
        // a 104×104 mask (stride 4): water in cells x 52..104 (input x ≥ 208 = frame x ≥ 100)
        // of the rows that hold the frame, and everywhere in the padding below (must not leak)
        let (mw, mh) = (104usize, 104usize);
        let mut prob = vec![0.0f32; mw * mh];
        for y in 0..mh {
            for x in 0..mw {
                if x >= 52 || y >= 52 {
                    prob[y * mw + x] = 0.9;
                }
            }
        }
        let m = mask_to_frame(&prob, mw, mh, 416, 416, &g, 0.5);
        assert_eq!((m.width, m.height), (200, 100));
        for y in 0..100 {
            for x in 0..200 {
                assert_eq!(m.is_water(x, y), x >= 100, "pixel {x},{y}");
            }
        }
        assert!((m.share() - 0.5).abs() < 1e-9);
        // centred letterbox of a tall frame: padding left and right
        let g = Letterbox::new(100, 200, 416, 416, Alignment::Center);
        assert!(g.pad_x > 0.0);
        let mut prob = vec![0.0f32; mw * mh];
        // water in the input's left padding only: nothing of the frame is water
        for y in 0..mh {
            for x in 0..(g.pad_x as usize / 4) {
                prob[y * mw + x] = 1.0;
            }
        }
        assert_eq!(mask_to_frame(&prob, mw, mh, 416, 416, &g, 0.5).share(), 0.0);
        // water in the input's top quarter: the frame's top quarter
        let prob: Vec<f32> = (0..mw * mh).map(|i| if i / mw < 26 { 1.0 } else { 0.0 }).collect();
        let m = mask_to_frame(&prob, mw, mh, 416, 416, &g, 0.5);
        assert!(m.is_water(50, 0) && m.is_water(50, 49) && !m.is_water(50, 50), "{}", m.share());
    }

    #[test]
    fn coverage_counts_the_polygons_sample_points() {
        // water in the left half of a 100×100 frame
        let mut m = WaterMask::dry(100, 100);
        for y in 0..100 {
            for x in 0..50 {
                m.data[y * 100 + x] = 1;
            }
        }
        let bottom = Polygon::new(&[[0.0, 0.5], [1.0, 0.5], [1.0, 1.0], [0.0, 1.0]]);
        assert!((m.coverage(&bottom) - 0.5).abs() < 0.03, "{}", m.coverage(&bottom));
        let left = Polygon::new(&[[0.0, 0.0], [0.4, 0.0], [0.4, 1.0], [0.0, 1.0]]);
        assert_eq!(m.coverage(&left), 1.0);
        let right = Polygon::new(&[[0.6, 0.0], [1.0, 0.0], [1.0, 1.0], [0.6, 1.0]]);
        assert_eq!(m.coverage(&right), 0.0);
        // a triangle: only points inside it count (the lower-left half of the frame)
        let tri = Polygon::new(&[[0.0, 0.0], [1.0, 1.0], [0.0, 1.0]]);
        let c = m.coverage(&tri);
        assert!((c - 0.75).abs() < 0.04, "{c}");
    }

    #[test]
    fn the_schedule_keeps_the_rate_on_stream_time() {
        let mut s = WaterSchedule::new(1.0);
        // 5 fps frames whose times are sums of 0.2 s (falling just short of whole seconds)
        let mut ts = 0.0;
        let mut due = Vec::new();
        for _ in 0..26 {
            if s.due(ts) {
                due.push((ts * 10.0_f64).round() / 10.0);
            }
            ts += 0.2;
        }
        assert_eq!(due, vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
        // dropped frames: the next frame after the interval gets it
        assert!(!s.due(5.5) && s.due(6.3) && !s.due(7.0) && s.due(7.4));
        // a restarted stream starts again at once
        assert!(s.due(0.1));
        let mut never = WaterSchedule::new(0.0);
        assert!(!never.due(0.0) && !never.due(100.0));
    }

    #[test]
    fn overlap_and_grey_round_trip() {
        let a = WaterMask::from_grey(4, 1, &[255, 255, 0, 0]);
        let b = WaterMask::from_grey(4, 1, &[0, 255, 200, 10]);
        assert_eq!(a.overlap(&b), Some((1, 3)));
        assert_eq!(a.overlap(&WaterMask::dry(2, 2)), None);
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.png");
        b.write_png(&p).unwrap();
        assert_eq!(WaterMask::read_png(&p).unwrap(), b);
    }
}
