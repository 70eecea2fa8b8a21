//! The process-wide ONNX Runtime environment. `ort` is built with `load-dynamic`, so the shared
//! library is found at run time; ONNX Runtime allows one environment per process, kept here.
//!
//! Library search order: `$ORT_DYLIB_PATH`; `.deps/onnxruntime/libonnxruntime.so` in the
//! executable's directory or any ancestor (finds the setup script's copy from
//! `target/release/hawkeye` and from test binaries in `target/release/deps/`);
//! `/usr/local/lib/hawkeye/libonnxruntime.so`; `/usr/lib/hawkeye/libonnxruntime.so`.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use ort::environment::Environment;
use ort::session::Session;
use ort::value::TensorElementType;

use super::error::DetectError;
use super::manifest::{file_sha256, one_line, Manifest, ModelKind};
use super::yolo::format_shape;

/// Relative location the setup script installs the library to.
const DEPS_LIB: &str = ".deps/onnxruntime/libonnxruntime.so";
/// System-wide install locations, tried last.
const SYSTEM_LIBS: &[&str] = &[
    "/usr/local/lib/hawkeye/libonnxruntime.so",
    "/usr/lib/hawkeye/libonnxruntime.so",
];

/// The environment once built. A failed attempt leaves `None` so a later call can retry
/// (e.g. after `ORT_DYLIB_PATH` was fixed).
static ENV: Mutex<Option<Environment>> = Mutex::new(None);

/// Loads ONNX Runtime and creates the environment; later calls return at once.
pub fn init_runtime() -> Result<(), DetectError> {
    environment().map(|_| ())
}

/// The process's ONNX Runtime environment, initialising it on first use.
pub(crate) fn environment() -> Result<Environment, DetectError> {
    let mut slot = ENV.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(env) = slot.as_ref() {
        return Ok(env.clone());
    }
    let path = find_library()?;
    let env = load(&path)?;
    *slot = Some(env.clone());
    Ok(env)
}

/// A model file opened in the process's environment, with its manifest.
pub(crate) struct LoadedModel {
    pub(crate) session: Session,
    pub(crate) manifest: Manifest,
    /// Where the manifest came from: a file path or `built-in:<file>`.
    pub(crate) manifest_origin: String,
    pub(crate) sha256: String,
}

/// Opens `model` (a detector or a segmentation model, as `kind` says) with its manifest
/// (explicit, beside the model, or built in by sha256): the one place sessions are built, so
/// both kinds of model run with the same environment and settings. A manifest of the other
/// kind is refused before the model is loaded.
pub(crate) fn load_model(
    model: &Path,
    manifest: Option<&Path>,
    kind: ModelKind,
    threads: usize,
) -> Result<LoadedModel, DetectError> {
    if !model.is_file() {
        return Err(DetectError::ModelNotFound(model.to_path_buf()));
    }
    let sha256 = file_sha256(model).map_err(|source| DetectError::ModelRead {
        path: model.to_path_buf(),
        source,
    })?;
    let (manifest, manifest_origin) = Manifest::find_with_hash(model, manifest, &sha256)?;
    manifest.expect_kind(kind, model, &manifest_origin)?;
    let env = environment()?;
    let load_err = |e: &dyn std::fmt::Display| DetectError::ModelLoad {
        path: model.to_path_buf(),
        reason: one_line(&e.to_string()),
    };
    let session = Session::builder(&env)
        .map_err(|e| load_err(&e))?
        .with_intra_threads(threads.max(1))
        .map_err(|e| load_err(&e))?
        // Spinning threads only pay off on an otherwise idle machine (one clip: 82–98 against
        // 74–79 inferences/s); beside GStreamer decoding and other cameras they steal the CPU:
        // the capacity bench held 4 dual-stream cameras with spinning, 6 without (README).
        .with_intra_op_spinning(false)
        .map_err(|e| load_err(&e))?
        .commit_from_file(model)
        .map_err(|e| load_err(&e))?;
    Ok(LoadedModel {
        session,
        manifest,
        manifest_origin,
        sha256,
    })
}

/// Checks the session's single float input `[1, 3, H, W]` against the manifest's input size;
/// returns the input's name.
pub(crate) fn check_input(
    session: &Session,
    manifest: &Manifest,
    model: &Path,
) -> Result<String, DetectError> {
    let mismatch = |problem: String| DetectError::ModelMismatch {
        path: model.to_path_buf(),
        problem,
    };
    let [input] = session.inputs() else {
        return Err(mismatch(format!(
            "has {} inputs; hawkeye runs single-input models",
            session.inputs().len()
        )));
    };
    if input.dtype().tensor_type() != Some(TensorElementType::Float32) {
        return Err(mismatch(format!(
            "input {} is not a float32 tensor",
            input.name()
        )));
    }
    let shape: &[i64] = input.dtype().tensor_shape().map_or(&[], |s| s);
    let want = [
        1,
        3,
        manifest.input_height as i64,
        manifest.input_width as i64,
    ];
    let fits = shape.len() == 4 && shape.iter().zip(want).all(|(g, w)| *g < 0 || *g == w);
    if !fits {
        return Err(mismatch(format!(
            "input {} has shape {} but manifest {} says {}",
            input.name(),
            format_shape(shape),
            manifest.name,
            format_shape(&want)
        )));
    }
    Ok(input.name().to_string())
}

/// Loads the library at `path` and builds the environment, turning panics inside `ort` (it
/// asserts on some malformed libraries) into errors.
fn load(path: &Path) -> Result<Environment, DetectError> {
    let fail = |reason: String| DetectError::RuntimeLoad {
        path: path.to_path_buf(),
        reason: one_line(&reason),
    };
    let attempt = catch_unwind(AssertUnwindSafe(|| {
        ort::init_from(path)
            .map_err(|e| e.to_string())?
            .with_name("hawkeye")
            .with_telemetry(false)
            .build()
            .map_err(|e| e.to_string())
    }));
    match attempt {
        Ok(Ok(env)) => Ok(env),
        Ok(Err(reason)) => Err(fail(reason)),
        Err(panic) => Err(fail(panic_text(&panic))),
    }
}

fn panic_text(p: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "ONNX Runtime initialisation panicked".to_string()
    }
}

/// Every place the library is looked for, in order (the `ORT_DYLIB_PATH` value first if set).
pub fn library_candidates() -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Some(p) = std::env::var_os("ORT_DYLIB_PATH").filter(|p| !p.is_empty()) {
        out.push(PathBuf::from(p));
    }
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf))
    {
        out.extend(dir.ancestors().map(|a| a.join(DEPS_LIB)));
    }
    out.extend(SYSTEM_LIBS.iter().map(PathBuf::from));
    out
}

/// The first library that exists. An `ORT_DYLIB_PATH` naming a missing file is an error
/// rather than silently falling through to another copy.
pub fn find_library() -> Result<PathBuf, DetectError> {
    if let Some(p) = std::env::var_os("ORT_DYLIB_PATH").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(DetectError::RuntimeNotFound {
                looked: format!("ORT_DYLIB_PATH={} (no such file)", p.display()),
            })
        };
    }
    let candidates = library_candidates();
    if let Some(p) = candidates.iter().find(|p| p.is_file()) {
        return Ok(p.clone());
    }
    Err(DetectError::RuntimeNotFound {
        looked: candidates
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", "),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_walk_up_from_the_executable() {
        let c = library_candidates();
        let exe_dir = std::env::current_exe()
            .unwrap()
            .parent()
            .unwrap()
            .to_path_buf();
        assert!(c.contains(&exe_dir.join(DEPS_LIB)));
        assert!(c
            .iter()
            .any(|p| p == Path::new("/usr/lib/hawkeye/libonnxruntime.so")));
    }

    #[test]
    fn not_found_message_is_one_line_and_actionable() {
        let e = DetectError::RuntimeNotFound {
            looked: "a, b".into(),
        }
        .to_string();
        assert!(e.contains("ONNX Runtime library not found (looked in: a, b)"));
        assert!(e.contains("scripts/setup.sh") && e.contains("ORT_DYLIB_PATH"));
        assert!(!e.contains('\n'));
    }

    #[test]
    fn loading_a_non_library_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let bogus = dir.path().join("libonnxruntime.so");
        std::fs::write(&bogus, b"not an ELF file").unwrap();
        let e = load(&bogus).unwrap_err().to_string();
        assert!(e.contains(&bogus.display().to_string()), "{e}");
        assert!(!e.contains('\n'), "{e}");
    }
}
