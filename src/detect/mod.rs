//! Object detection with ONNX Runtime (`ort`, library loaded at run time).
//!
//! # Layout
//! - [`manifest`]: what a model file does not say (layout, colours, classes), from TOML beside
//!   the model or built in and matched by sha256.
//! - [`runtime`]: finds and loads the ONNX Runtime library; one environment per process.
//! - [`letterbox`]: RGB frame → NCHW f32 model input, and boxes back to frame pixels.
//! - [`yolo`]: pure decoders for the YOLOX, YOLOv5 and YOLOv8 output layouts.
//! - [`nms`]: per-class non-maximum suppression.
//! - [`detector`]: [`Detector`] ties the above together around an `ort` session.
//! - [`segment`]: [`Segmenter`], the water model (manifest `kind = "segmentation"`): a frame's
//!   [`WaterMask`] and the share of a zone polygon that is water.
//! - [`zoom`]: [`Zoomer`], zoomed looks at far zones through crops at the model's full input.
//! - [`annotate`]: boxes, labels and zone outlines drawn on images.
//! - [`cli_detect`]: `hawkeye detect` on one image file.

pub mod annotate;
pub mod cli_detect;
pub mod detector;
pub mod gate;
mod error;
pub mod letterbox;
pub mod manifest;
pub mod nms;
pub mod runtime;
pub mod segment;
mod types;
pub mod yolo;
pub mod zoom;

pub use annotate::*;
pub use cli_detect::detect_command;
pub use detector::{Detector, DetectorOptions};
pub use gate::{GateDecision, GateParams, GatedDetector, MotionGate};
pub use error::DetectError;
pub use letterbox::{Letterbox, Letterboxer};
pub use manifest::{builtin_manifests, Alignment, ColorOrder, Layout, Manifest, ManifestError, ModelKind};
pub use runtime::init_runtime;
pub use segment::{Segmenter, WaterMask, WaterSchedule};
pub use types::{BBox, Detection};
pub use zoom::Zoomer;
