//! Object detection with ONNX Runtime. (Being written: see the module plan in lib.rs.)
mod types;
pub use types::{BBox, Detection};
