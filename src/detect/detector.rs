//! [`Detector`]: one ONNX model, its manifest and reusable buffers; RGB frame in, detections in
//! frame pixels out (letterbox → inference → decode → per-class NMS → map back).

use std::path::{Path, PathBuf};

use ort::session::Session;
use ort::value::{TensorElementType, TensorRef};

use super::error::DetectError;
use super::letterbox::{Letterbox, Letterboxer};
use super::manifest::{one_line, Manifest, ModelKind};
use super::nms::nms_per_class;
use super::runtime::{check_input, load_model, LoadedModel};
use super::types::Detection;
use super::yolo::{decode, Candidate, DecodeSpec};

/// Upper bound on detections kept per frame after NMS.
const MAX_DETECTIONS: usize = 300;

/// Tunables of a detector.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DetectorOptions {
    /// Minimum combined score for a detection to be reported.
    pub score_threshold: f32,
    /// IoU above which a lower-scoring box of the same class is suppressed.
    pub nms_iou: f32,
    /// ONNX Runtime intra-op threads.
    pub threads: usize,
}

impl Default for DetectorOptions {
    fn default() -> Self {
        DetectorOptions {
            score_threshold: 0.3,
            nms_iou: 0.45,
            threads: 2,
        }
    }
}

/// A loaded model ready to run on frames.
pub struct Detector {
    session: Session,
    manifest: Manifest,
    manifest_origin: String,
    model_path: PathBuf,
    sha256: String,
    input_name: String,
    spec: DecodeSpec,
    opts: DetectorOptions,
    letterboxer: Letterboxer,
    /// NCHW model input, reused for every frame.
    input: Vec<f32>,
    /// Geometry of the frame currently in `input`.
    geometry: Option<Letterbox>,
    candidates: Vec<Candidate>,
}

impl std::fmt::Debug for Detector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Detector")
            .field("model", &self.model_path)
            .field("name", &self.manifest.name)
            .field("sha256", &self.sha256)
            .field("manifest", &self.manifest_origin)
            .field("opts", &self.opts)
            .finish()
    }
}

impl Detector {
    /// Loads `model` with its manifest (explicit, beside the model, or built-in by sha256) and
    /// checks that the model's input and output shapes agree with the manifest.
    pub fn load(
        model: &Path,
        manifest: Option<&Path>,
        opts: DetectorOptions,
    ) -> Result<Detector, DetectError> {
        let LoadedModel {
            session,
            manifest,
            manifest_origin,
            sha256,
        } = load_model(model, manifest, ModelKind::Detector, opts.threads)?;
        let spec = DecodeSpec::from_manifest(&manifest);
        let input_name = check_io(&session, &manifest, &spec, model)?;
        let letterboxer = Letterboxer::new(&manifest);
        let input = vec![manifest.pad_value as f32 * manifest.scale; letterboxer.input_len()];
        tracing::info!(
            model = %model.display(),
            name = %manifest.name,
            manifest = %manifest_origin,
            sha256 = %sha256,
            "detector loaded"
        );
        Ok(Detector {
            session,
            manifest,
            manifest_origin,
            model_path: model.to_path_buf(),
            sha256,
            input_name,
            spec,
            opts,
            letterboxer,
            input,
            geometry: None,
            candidates: Vec::with_capacity(1024),
        })
    }

    /// Detects objects in a packed RGB frame (`width*height*3` bytes); boxes in frame pixels,
    /// best score first.
    pub fn detect(
        &mut self,
        rgb: &[u8],
        width: u32,
        height: u32,
    ) -> Result<Vec<Detection>, DetectError> {
        let mut out = Vec::new();
        self.detect_into(rgb, width, height, &mut out)?;
        Ok(out)
    }

    /// Like [`Detector::detect`], but fills `out` (cleared first) so a caller can reuse it.
    pub fn detect_into(
        &mut self,
        rgb: &[u8],
        width: u32,
        height: u32,
        out: &mut Vec<Detection>,
    ) -> Result<(), DetectError> {
        out.clear();
        let geometry = self.prepare(rgb, width, height)?;
        self.run_and_decode()?;
        for c in &self.candidates {
            let bbox = geometry.to_frame(&c.bbox);
            // A box wholly in the padding collapses to nothing once clamped to the frame.
            if bbox.area() > 0.0 {
                out.push(Detection {
                    class_id: c.class_id,
                    class: self.manifest.classes[c.class_id].clone(),
                    score: c.score,
                    bbox,
                });
            }
        }
        Ok(())
    }

    /// Detects objects in the `region` crop of a packed RGB frame, letterboxed to the whole
    /// model input (see [`super::zoom`]); boxes in frame pixels. `buf` holds the crop's pixels
    /// between calls.
    pub fn detect_region(
        &mut self,
        rgb: &[u8],
        width: u32,
        height: u32,
        region: &super::zoom::Region,
        buf: &mut Vec<u8>,
    ) -> Result<Vec<Detection>, DetectError> {
        let expected = width as usize * height as usize * 3;
        if rgb.len() != expected || region.x2 > width || region.y2 > height || region.width() == 0 || region.height() == 0 {
            return Err(DetectError::Inference(format!(
                "crop {region:?} of a {width}x{height} frame ({} bytes)",
                rgb.len()
            )));
        }
        let (x1, x2) = (region.x1 as usize * 3, region.x2 as usize * 3);
        buf.clear();
        for y in region.y1 as usize..region.y2 as usize {
            let row = y * width as usize * 3;
            buf.extend_from_slice(&rgb[row + x1..row + x2]);
        }
        let mut out = Vec::new();
        self.detect_into(buf, region.width(), region.height(), &mut out)?;
        let (dx, dy) = (region.x1 as f32, region.y1 as f32);
        for d in &mut out {
            d.bbox = super::types::BBox::new(d.bbox.x1 + dx, d.bbox.y1 + dy, d.bbox.x2 + dx, d.bbox.y2 + dy);
        }
        Ok(out)
    }

    /// Letterboxes a frame into the input buffer (the first stage of [`Detector::detect`]).
    pub fn prepare(
        &mut self,
        rgb: &[u8],
        width: u32,
        height: u32,
    ) -> Result<Letterbox, DetectError> {
        let g = self.letterboxer.run(rgb, width, height, &mut self.input)?;
        self.geometry = Some(g);
        Ok(g)
    }

    /// Runs the model on the current input buffer and discards the result: for timing
    /// inference alone in benchmarks.
    pub fn infer_only(&mut self) -> Result<(), DetectError> {
        let (w, h) = (
            self.manifest.input_width as usize,
            self.manifest.input_height as usize,
        );
        let tensor = TensorRef::from_array_view(([1usize, 3, h, w], self.input.as_slice()))
            .map_err(|e| DetectError::Inference(one_line(&e.to_string())))?;
        self.session
            .run(ort::inputs![self.input_name.as_str() => tensor])
            .map_err(|e| DetectError::Inference(one_line(&e.to_string())))?;
        Ok(())
    }

    /// Runs the model on the input buffer, then decodes and suppresses into `candidates`.
    fn run_and_decode(&mut self) -> Result<(), DetectError> {
        let (w, h) = (
            self.manifest.input_width as usize,
            self.manifest.input_height as usize,
        );
        let infer_err = |e: ort::Error| DetectError::Inference(one_line(&e.to_string()));
        let tensor = TensorRef::from_array_view(([1usize, 3, h, w], self.input.as_slice()))
            .map_err(infer_err)?;
        let outputs = self
            .session
            .run(ort::inputs![self.input_name.as_str() => tensor])
            .map_err(infer_err)?;
        let (shape, data) = outputs[0].try_extract_tensor::<f32>().map_err(infer_err)?;
        decode(
            &self.spec,
            data,
            shape,
            self.opts.score_threshold,
            &mut self.candidates,
        )
        .map_err(|source| DetectError::Output {
            path: self.model_path.clone(),
            source,
        })?;
        nms_per_class(&mut self.candidates, self.opts.nms_iou, MAX_DETECTIONS);
        Ok(())
    }

    /// The model's manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }
    /// Where the manifest came from: a file path or `built-in:<file>`.
    pub fn manifest_origin(&self) -> &str {
        &self.manifest_origin
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
    /// Class names in output order.
    pub fn class_names(&self) -> &[String] {
        &self.manifest.classes
    }
    /// Options the detector runs with.
    pub fn options(&self) -> DetectorOptions {
        self.opts
    }
    /// Letterbox geometry of the frame last prepared.
    pub fn last_letterbox(&self) -> Option<Letterbox> {
        self.geometry
    }
}

/// Checks the session's single float input `[1,3,H,W]` and first output against the
/// manifest; returns the input's name.
fn check_io(
    session: &Session,
    manifest: &Manifest,
    spec: &DecodeSpec,
    model: &Path,
) -> Result<String, DetectError> {
    let mismatch = |problem: String| DetectError::ModelMismatch {
        path: model.to_path_buf(),
        problem,
    };
    let input_name = check_input(session, manifest, model)?;
    let Some(output) = session.outputs().first() else {
        return Err(mismatch("has no outputs".to_string()));
    };
    if output.dtype().tensor_type() != Some(TensorElementType::Float32) {
        return Err(mismatch(format!(
            "output {} is not a float32 tensor",
            output.name()
        )));
    }
    let out_shape: &[i64] = output.dtype().tensor_shape().map_or(&[], |s| s);
    spec.check_shape(out_shape)
        .map_err(|source| DetectError::Output {
            path: model.to_path_buf(),
            source,
        })?;
    Ok(input_name)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shared detector runs on its own thread and its errors travel through `anyhow`.
    #[test]
    fn detector_moves_between_threads_and_errors_are_shareable() {
        fn send<T: Send>() {}
        fn send_sync_static<T: Send + Sync + 'static>() {}
        send::<Detector>();
        send_sync_static::<DetectError>();
    }

    #[test]
    fn missing_model_is_reported_before_anything_else() {
        let e = Detector::load(
            Path::new("/no/such/model.onnx"),
            None,
            DetectorOptions::default(),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "model file /no/such/model.onnx does not exist"
        );
    }
}
