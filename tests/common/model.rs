//! The shared reference model. Tests that need it say so loudly and skip only when
//! `../shared/models` is absent (a user's clone); CI always has it.

use std::path::PathBuf;

/// `../shared/models/yolox_nano.onnx`, or `None` after printing a loud SKIPPED line.
pub fn yolox_nano(test: &str) -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/models/yolox_nano.onnx");
    if p.is_file() {
        Some(p.canonicalize().unwrap())
    } else {
        eprintln!("\n*** SKIPPED {test}: needs ../shared/models/yolox_nano.onnx beside the repository (absent here) ***\n");
        None
    }
}

/// Debian's opencv-doc street scene (installed by scripts/setup.sh).
pub fn vtest() -> PathBuf {
    let p = PathBuf::from(hawkeye::tools::demo::SAMPLE_VIDEO);
    assert!(p.is_file(), "{} missing: run scripts/setup.sh (installs opencv-doc)", p.display());
    p
}

/// hawkeye's own detector, committed in `models/` (never skipped: it is part of the repository).
pub fn urban() -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models/hawkeye_urban.onnx");
    assert!(p.is_file(), "{} missing: it is committed in the repository", p.display());
    p
}
