//! Model manifest: the facts about an ONNX detector that the file itself does not state
//! (output layout, colour order, value scale, letterbox alignment, class names).
//!
//! Lookup order for a model file `M` ([`Manifest::find`]):
//! 1. the path the caller gives explicitly;
//! 2. `M` with its extension replaced by `.toml`, beside the model;
//! 3. a built-in manifest (see [`builtin_manifests`]) whose `sha256` equals the model file's.

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Manifests compiled into the binary, matched to model files by sha256.
const BUILTIN: &[(&str, &str)] = &[(
    "models/yolox_nano.toml",
    include_str!("../../models/yolox_nano.toml"),
)];

/// How the detector's output tensor is laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    /// `[1, N, 5+C]`, grid-encoded boxes (offsets per stride cell), objectness, class scores.
    Yolox,
    /// `[1, N, 5+C]`, decoded `cx, cy, w, h` in input pixels, objectness, class scores.
    Yolov5,
    /// `[1, 4+C, N]` (channels first), decoded `cx, cy, w, h`, class scores, no objectness.
    Yolov8,
}

impl fmt::Display for Layout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Layout::Yolox => "yolox",
            Layout::Yolov5 => "yolov5",
            Layout::Yolov8 => "yolov8",
        })
    }
}

/// Channel order the model expects in its input planes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ColorOrder {
    Rgb,
    Bgr,
}

/// Where the resized frame sits inside the padded model input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Alignment {
    /// Image at (0, 0), padding right and bottom (YOLOX).
    TopLeft,
    /// Image centred, padding split on both sides (Ultralytics YOLOv5/v8).
    Center,
}

/// What a model computes: boxes of objects, or a per-pixel mask of stuff (water).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    /// Boxes with classes (the default when a manifest names no kind).
    #[default]
    Detector,
    /// One output `[1, 1, Hm, Wm]` of probabilities 0..1 over the letterboxed input.
    Segmentation,
}

impl fmt::Display for ModelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ModelKind::Detector => "detector",
            ModelKind::Segmentation => "segmentation",
        })
    }
}

/// A model manifest as written in TOML.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Short model name reported in alerts (`model.name`).
    pub name: String,
    /// `detector` (absent) or `segmentation`.
    #[serde(default)]
    pub kind: ModelKind,
    /// Output layout of a detector; a segmentation manifest leaves it out (the stand-in
    /// `yolox` is never used for it).
    #[serde(default = "default_layout")]
    pub layout: Layout,
    pub input_width: u32,
    pub input_height: u32,
    pub color: ColorOrder,
    /// Multiplier applied to 0–255 pixel values (1.0, or 1/255 for 0–1 inputs).
    #[serde(default = "default_scale")]
    pub scale: f32,
    /// Value (0–255, before `scale`) of the letterbox padding.
    #[serde(default = "default_pad_value")]
    pub pad_value: u8,
    pub letterbox: Alignment,
    /// Grid strides of a YOLOX head, in output order.
    #[serde(default = "default_strides")]
    pub strides: Vec<u32>,
    /// Class names in output order.
    pub classes: Vec<String>,
    /// Lower-case hex sha256 of the `.onnx` file this manifest describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub license: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

fn default_layout() -> Layout {
    Layout::Yolox
}
fn default_scale() -> f32 {
    1.0
}
fn default_pad_value() -> u8 {
    114
}
fn default_strides() -> Vec<u32> {
    vec![8, 16, 32]
}

/// Why a manifest could not be read, found, or trusted.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("manifest {origin} is not valid: {message}")]
    Parse { origin: String, message: String },
    #[error("manifest {origin} is not valid: {}", problems.join("; "))]
    Invalid {
        origin: String,
        problems: Vec<String>,
    },
    #[error(
        "no manifest for model {model} (sha256 {sha256}): give one explicitly, put {beside} \
         beside the model, or use a model with a built-in manifest ({known})"
    )]
    NotFound {
        model: PathBuf,
        sha256: String,
        beside: PathBuf,
        known: String,
    },
    #[error(
        "model {model} is a {actual} model (manifest {origin} says kind = \"{actual}\"), but a \
         {expected} model is expected here"
    )]
    WrongKind {
        model: PathBuf,
        origin: String,
        expected: ModelKind,
        actual: ModelKind,
    },
    #[error(
        "manifest {origin} is for a model with sha256 {expected}, but {model} has sha256 {actual}"
    )]
    HashMismatch {
        origin: String,
        model: PathBuf,
        expected: String,
        actual: String,
    },
}

impl Manifest {
    /// Parses and validates manifest TOML; `origin` names it in error messages.
    pub fn from_toml_str(text: &str, origin: &str) -> Result<Manifest, ManifestError> {
        let m: Manifest = toml::from_str(text).map_err(|e| ManifestError::Parse {
            origin: origin.to_string(),
            message: one_line(&e.to_string()),
        })?;
        // `layout` has a stand-in for segmentation manifests; a detector must still name it
        let names_layout = text
            .parse::<toml::Table>()
            .is_ok_and(|t| t.contains_key("layout"));
        if m.kind == ModelKind::Detector && !names_layout {
            return Err(ManifestError::Parse {
                origin: origin.to_string(),
                message: "missing field `layout` (a detector needs it: yolox, yolov5 or yolov8)"
                    .to_string(),
            });
        }
        m.validate(origin)?;
        Ok(m)
    }

    /// `Ok` when this manifest describes a model of `kind`; else an error naming the model
    /// file, the manifest and both kinds.
    pub fn expect_kind(
        &self,
        kind: ModelKind,
        model: &Path,
        origin: &str,
    ) -> Result<(), ManifestError> {
        if self.kind == kind {
            Ok(())
        } else {
            Err(ManifestError::WrongKind {
                model: model.to_path_buf(),
                origin: origin.to_string(),
                expected: kind,
                actual: self.kind,
            })
        }
    }

    /// Reads, parses and validates a manifest file.
    pub fn from_file(path: &Path) -> Result<Manifest, ManifestError> {
        let text = std::fs::read_to_string(path).map_err(|source| ManifestError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Manifest::from_toml_str(&text, &path.display().to_string())
    }

    /// Checks every field and reports all problems at once.
    pub fn validate(&self, origin: &str) -> Result<(), ManifestError> {
        let mut problems = Vec::new();
        if self.name.trim().is_empty() {
            problems.push("name is empty".to_string());
        }
        if self.input_width == 0 || self.input_height == 0 {
            problems.push(format!(
                "input size {}x{} must be positive",
                self.input_width, self.input_height
            ));
        }
        if !(self.scale.is_finite() && self.scale > 0.0) {
            problems.push(format!("scale {} must be a positive number", self.scale));
        }
        if self.classes.is_empty() {
            problems.push("classes is empty".to_string());
        }
        if self.classes.iter().any(|c| c.trim().is_empty()) {
            problems.push("classes contains an empty name".to_string());
        }
        if self.kind == ModelKind::Segmentation && self.classes.len() != 1 {
            problems.push(format!(
                "a segmentation model has one class (its mask), not {:?}",
                self.classes
            ));
        }
        if self.kind == ModelKind::Detector && self.layout == Layout::Yolox {
            if self.strides.is_empty() || self.strides.contains(&0) {
                problems.push(format!(
                    "strides {:?} must be non-empty and positive",
                    self.strides
                ));
            } else if let Some(s) = self.strides.iter().find(|s| {
                !self.input_width.is_multiple_of(**s) || !self.input_height.is_multiple_of(**s)
            }) {
                problems.push(format!(
                    "stride {s} does not divide the input size {}x{}",
                    self.input_width, self.input_height
                ));
            }
        }
        if let Some(h) = &self.sha256 {
            if h.len() != 64 || !h.chars().all(|c| c.is_ascii_hexdigit()) {
                problems.push(format!("sha256 {h:?} is not 64 hex digits"));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ManifestError::Invalid {
                origin: origin.to_string(),
                problems,
            })
        }
    }

    /// Index of a class name, if the model has it.
    pub fn class_id(&self, name: &str) -> Option<usize> {
        self.classes.iter().position(|c| c == name)
    }

    /// Finds the manifest for `model` (see the module docs for the order); also checks that a
    /// manifest which names a sha256 matches the model file.
    pub fn find(model: &Path, explicit: Option<&Path>) -> Result<Manifest, ManifestError> {
        let sha = file_sha256(model).map_err(|source| ManifestError::Io {
            path: model.to_path_buf(),
            source,
        })?;
        Manifest::find_with_hash(model, explicit, &sha).map(|(m, _)| m)
    }

    /// Like [`Manifest::find`] when the model's sha256 is already known; also returns where
    /// the manifest came from (a path, or `built-in:<file>`).
    pub fn find_with_hash(
        model: &Path,
        explicit: Option<&Path>,
        model_sha256: &str,
    ) -> Result<(Manifest, String), ManifestError> {
        let beside = model.with_extension("toml");
        let chosen = match explicit {
            Some(p) => Some(p.to_path_buf()),
            None if beside.is_file() => Some(beside.clone()),
            None => None,
        };
        if let Some(path) = chosen {
            let m = Manifest::from_file(&path)?;
            let origin = path.display().to_string();
            if let Some(expected) = &m.sha256 {
                if !expected.eq_ignore_ascii_case(model_sha256) {
                    return Err(ManifestError::HashMismatch {
                        origin,
                        model: model.to_path_buf(),
                        expected: expected.clone(),
                        actual: model_sha256.to_string(),
                    });
                }
            }
            return Ok((m, origin));
        }
        for (file, text) in BUILTIN {
            if let Ok(m) = Manifest::from_toml_str(text, file) {
                if m.sha256
                    .as_deref()
                    .is_some_and(|h| h.eq_ignore_ascii_case(model_sha256))
                {
                    return Ok((m, format!("built-in:{file}")));
                }
            }
        }
        Err(ManifestError::NotFound {
            model: model.to_path_buf(),
            sha256: model_sha256.to_string(),
            beside,
            known: builtin_manifests()
                .iter()
                .map(|m| m.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        })
    }
}

/// Every manifest compiled into the binary (invalid ones are skipped; a unit test keeps
/// them all valid).
pub fn builtin_manifests() -> Vec<Manifest> {
    BUILTIN
        .iter()
        .filter_map(|(file, text)| Manifest::from_toml_str(text, file).ok())
        .collect()
}

/// Lower-case hex sha256 of a file, read in chunks.
pub fn file_sha256(path: &Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// Error texts from parsers span lines; hawkeye reports one line per error.
pub(crate) fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const YOLOX_SHA: &str = "695e750a5d5754bb5a8d5325643b59282191a7e7a564e435a415fd3c578eab14";

    #[test]
    fn builtin_manifests_are_all_valid() {
        assert_eq!(builtin_manifests().len(), BUILTIN.len());
        let m = &builtin_manifests()[0];
        assert_eq!(m.name, "yolox_nano");
        assert_eq!(m.layout, Layout::Yolox);
        assert_eq!(m.classes.len(), 80);
        assert_eq!(m.classes[0], "person");
        assert_eq!(m.classes[79], "toothbrush");
        assert_eq!(m.class_id("dining table"), Some(60));
        assert_eq!(m.sha256.as_deref(), Some(YOLOX_SHA));
    }

    #[test]
    fn defaults_apply() {
        let m = Manifest::from_toml_str(
            "name='t'\nlayout='yolov8'\ninput_width=640\ninput_height=640\ncolor='rgb'\n\
             letterbox='center'\nclasses=['a']\n",
            "test",
        )
        .unwrap();
        assert_eq!(m.pad_value, 114);
        assert_eq!(m.scale, 1.0);
        assert_eq!(m.strides, vec![8, 16, 32]);
        assert_eq!(m.letterbox, Alignment::Center);
    }

    #[test]
    fn unknown_fields_and_bad_values_are_reported() {
        let e = Manifest::from_toml_str(
            "name='t'\nlayout='yolox'\ninput_width=416\ninput_height=416\ncolor='bgr'\n\
             letterbox='top_left'\nclasses=['a']\ncolour='x'\n",
            "t.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("t.toml") && e.contains("colour"), "{e}");
        assert!(!e.contains('\n'));

        let e = Manifest::from_toml_str(
            "name='t'\nlayout='yolox'\ninput_width=0\ninput_height=416\ncolor='bgr'\n\
             letterbox='top_left'\nclasses=[]\n",
            "t.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("classes is empty") && e.contains("must be positive"),
            "{e}"
        );

        let e = Manifest::from_toml_str(
            "name='t'\nlayout='yolov9'\ninput_width=1\ninput_height=1\ncolor='bgr'\n\
             letterbox='top_left'\nclasses=['a']\n",
            "t.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("yolov9"), "{e}");
    }

    #[test]
    fn a_segmentation_manifest_needs_no_layout_and_kinds_are_told_apart() {
        let seg = "name='w'\nkind='segmentation'\ninput_width=416\ninput_height=416\n\
                   color='bgr'\nletterbox='top_left'\nclasses=['water']\n";
        let m = Manifest::from_toml_str(seg, "w.toml").unwrap();
        assert_eq!(m.kind, ModelKind::Segmentation);
        // a detector still has to name its layout
        let e = Manifest::from_toml_str(&seg.replace("kind='segmentation'\n", ""), "d.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("d.toml") && e.contains("layout"), "{e}");
        // a mask has one class
        let e = Manifest::from_toml_str(&seg.replace("['water']", "['water', 'smoke']"), "w.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("one class"), "{e}");
        let e = Manifest::from_toml_str(&seg.replace("segmentation", "mask"), "w.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("mask"), "{e}");
        // the wrong kind is named with both kinds, the model and the manifest
        let e = m
            .expect_kind(ModelKind::Detector, Path::new("models/w.onnx"), "models/w.toml")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("models/w.onnx is a segmentation")
                && e.contains("models/w.toml")
                && e.contains("a detector model is expected"),
            "{e}"
        );
        assert!(m.expect_kind(ModelKind::Segmentation, Path::new("w"), "w").is_ok());
        assert_eq!(builtin_manifests()[0].kind, ModelKind::Detector);
    }

    #[test]
    fn lookup_order_explicit_then_beside_then_builtin() {
        let dir = tempfile::tempdir().unwrap();
        let model = dir.path().join("m.onnx");
        std::fs::write(&model, b"not really a model").unwrap();
        let sha = file_sha256(&model).unwrap();

        // Nothing beside it and no built-in for this hash.
        let e = Manifest::find(&model, None).unwrap_err().to_string();
        assert!(e.contains("no manifest") && e.contains("m.toml"), "{e}");

        let text = "name='beside'\nlayout='yolov5'\ninput_width=64\ninput_height=64\n\
                    color='rgb'\nletterbox='center'\nclasses=['a']\n";
        std::fs::write(dir.path().join("m.toml"), text).unwrap();
        assert_eq!(Manifest::find(&model, None).unwrap().name, "beside");

        let explicit = dir.path().join("other.toml");
        std::fs::write(&explicit, text.replace("beside", "explicit")).unwrap();
        assert_eq!(
            Manifest::find(&model, Some(&explicit)).unwrap().name,
            "explicit"
        );

        // A manifest naming another file's hash is refused.
        std::fs::write(&explicit, format!("{text}sha256='{YOLOX_SHA}'\n")).unwrap();
        let e = Manifest::find(&model, Some(&explicit))
            .unwrap_err()
            .to_string();
        assert!(e.contains(&sha) && e.contains(YOLOX_SHA), "{e}");

        // Built-in match by hash.
        std::fs::remove_file(dir.path().join("m.toml")).unwrap();
        let (m, origin) = Manifest::find_with_hash(&model, None, YOLOX_SHA).unwrap();
        assert_eq!(m.name, "yolox_nano");
        assert!(origin.starts_with("built-in:"));
    }
}
