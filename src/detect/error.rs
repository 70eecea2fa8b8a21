//! Everything that can go wrong in detection, each a one-line message a user can act on.

use std::path::PathBuf;

use super::letterbox::LetterboxError;
use super::manifest::ManifestError;
use super::yolo::DecodeError;

/// Errors from loading ONNX Runtime or a model, and from running detection.
#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    #[error(
        "ONNX Runtime library not found (looked in: {looked}); run scripts/setup.sh or set \
         ORT_DYLIB_PATH"
    )]
    RuntimeNotFound { looked: String },
    #[error("cannot load ONNX Runtime from {path}: {reason}")]
    RuntimeLoad { path: PathBuf, reason: String },
    #[error("model file {0} does not exist")]
    ModelNotFound(PathBuf),
    #[error("cannot read model file {path}: {source}")]
    ModelRead {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot load model {path} (is it an ONNX file?): {reason}")]
    ModelLoad { path: PathBuf, reason: String },
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error("model {path}: {problem}")]
    ModelMismatch { path: PathBuf, problem: String },
    #[error("model {path}: {source}")]
    Output {
        path: PathBuf,
        #[source]
        source: DecodeError,
    },
    #[error("inference failed: {0}")]
    Inference(String),
    #[error(transparent)]
    Frame(#[from] LetterboxError),
    #[error("cannot read image {path}: {reason}")]
    ImageRead { path: PathBuf, reason: String },
    #[error("cannot write image {path}: {reason}")]
    ImageWrite { path: PathBuf, reason: String },
}
