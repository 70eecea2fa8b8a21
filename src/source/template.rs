//! Pipeline templates: a camera's `pipeline` (a built-in name or a path to a `.pipeline` file) and
//! its url become one `gst-launch` description that ends in hawkeye's common tail (rate limit →
//! scale → RGB → `appsink name=frames`).
//!
//! Template syntax: lines starting with `#` are comments; the rest is a launch fragment that must
//! produce raw video. Placeholders, replaced with quoted values so spaces and quotes in paths or
//! urls cannot break the description:
//! - `{url}`: the camera url as written in the config;
//! - `{uri}`: a URI; a plain path or `file://` url becomes an absolute `file://` URI;
//! - `{location}`: a filesystem path (only for file sources);
//! - `{latency_ms}`: the RTSP jitter-buffer latency (a number, unquoted);
//! - `{protocols}`: rtspsrc's `protocols` for the camera's `transport` (`tcp` or `udp`, unquoted;
//!   `auto` starts with `tcp` and the supervisor rebuilds the description with `udp` when the
//!   camera sets up no stream over TCP).

use std::path::{Path, PathBuf};

use crate::config::Camera;

use super::SourceError;

/// Name of the appsink the tail ends in.
pub const APPSINK_NAME: &str = "frames";
/// Name of the videoscale element (its sink pad is probed to keep the height even).
pub const SCALE_NAME: &str = "hawkeye_scale";
/// Name of the capsfilter after videoscale (its caps are set once the input size is known).
pub const SCALE_CAPS_NAME: &str = "hawkeye_size";

const BUILTIN: &[(&str, &str)] = &[
    ("rtsp_h264", include_str!("../../pipelines/rtsp_h264.pipeline")),
    ("rtsp_h265", include_str!("../../pipelines/rtsp_h265.pipeline")),
    ("rtsp", include_str!("../../pipelines/rtsp.pipeline")),
    ("file", include_str!("../../pipelines/file.pipeline")),
    ("rtmp", include_str!("../../pipelines/rtmp.pipeline")),
    ("srt", include_str!("../../pipelines/srt.pipeline")),
    ("ts_klv", include_str!("../../pipelines/ts_klv.pipeline")),
    ("file_main", include_str!("../../pipelines/file_main.pipeline")),
    ("rtsp_main", include_str!("../../pipelines/rtsp_main.pipeline")),
];

/// Suffix of a template's parse-only companion for a dual-stream camera's main stream
/// (`file` → `file_main`, `my.pipeline` → `my_main.pipeline`).
pub const MAIN_SUFFIX: &str = "_main";

/// The templates compiled into the binary, as `(name, text)`.
pub fn builtin_templates() -> &'static [(&'static str, &'static str)] {
    BUILTIN
}

/// True when the camera reads a local file (a plain path or a `file://` url): such sources may
/// loop, honour `realtime`, and end at EOS instead of reconnecting. For a dual-stream camera this
/// is about the stream that is detected (`detect_url`).
pub fn is_file_source(camera: &Camera) -> bool {
    matches!(url_kind(camera.detect_url.as_deref().unwrap_or(&camera.url)), UrlKind::Path(_) | UrlKind::FileUrl(_))
}

/// The camera as its detected stream sees it: for a dual-stream camera, `url` is the sub-stream
/// (`detect_url`) and there is no `detect_url`; otherwise the camera itself.
pub fn detect_view(camera: &Camera) -> Camera {
    let mut c = camera.clone();
    if let Some(sub) = c.detect_url.take() {
        c.url = sub;
    }
    c
}

/// The full launch description of the stream that is decoded and detected (`detect_url` for a
/// dual-stream camera, else `url`): its template with placeholders filled in, followed by the
/// common tail. Relative paths (template files, plain-path urls) resolve against `base_dir`.
pub fn launch_string(camera: &Camera, base_dir: &Path) -> Result<String, SourceError> {
    if camera.detect_url.is_some() {
        return launch_string(&detect_view(camera), base_dir);
    }
    let template = template_text(&camera.pipeline, base_dir)?;
    let body = strip_comments(&template);
    if body.trim().is_empty() {
        return Err(SourceError::Template(format!("pipeline template `{}` is empty", camera.pipeline)));
    }
    if body.contains(&format!("name={APPSINK_NAME}")) {
        return Err(SourceError::Template(format!(
            "pipeline template `{}` must produce raw video only; hawkeye adds the appsink",
            camera.pipeline
        )));
    }
    let head = expand(&body, camera, base_dir)?;
    Ok(format!("{} ! {}", head.trim(), tail(camera)))
}

/// Whether the camera's template takes the `transport` setting (has a `{protocols}` placeholder);
/// `transport` on a camera whose template does not is a config error.
pub fn uses_transport(camera: &Camera, base_dir: &Path) -> Result<bool, SourceError> {
    Ok(strip_comments(&template_text(&camera.pipeline, base_dir)?).contains("{protocols}"))
}

/// The parse-only description of a dual-stream camera's main stream (`url`), ending in
/// `appsink name=encoded` (nothing decoded); `None` without `detect_url`.
///
/// The template is the pipeline's `_main` companion when there is one (built-in `file_main`,
/// `rtsp_main`, or `<stem>_main.pipeline` beside a template file); otherwise the template itself
/// with its decoding branches cut: every `enc. ! …` branch of its `tee name=enc` that does not
/// end in the `encoded` appsink (the RTSP H.264/H.265, RTMP, SRT and KLV templates).
pub fn main_launch_string(camera: &Camera, base_dir: &Path) -> Result<Option<String>, SourceError> {
    if camera.detect_url.is_none() {
        return Ok(None);
    }
    let name = &camera.pipeline;
    let (main_name, companion) = if BUILTIN.iter().any(|(n, _)| n == name) {
        let main = format!("{name}{MAIN_SUFFIX}");
        let text = BUILTIN.iter().find(|(n, _)| *n == main).map(|(_, t)| (*t).to_string());
        (main, text)
    } else {
        let p = resolve(Path::new(name), base_dir);
        let stem = p.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        let path = p.with_file_name(format!("{stem}{MAIN_SUFFIX}.pipeline"));
        (path.display().to_string(), std::fs::read_to_string(&path).ok())
    };
    let body = match companion {
        Some(t) => strip_comments(&t),
        None => {
            let body = strip_comments(&template_text(name, base_dir)?);
            parse_only(&body).ok_or_else(|| {
                SourceError::Template(format!(
                    "pipeline template `{name}` has no `encoded` branch (tee name=enc … appsink name=encoded) and there is no `{main_name}`, so a dual-stream camera's main stream (url) cannot be parsed without decoding"
                ))
            })?
        }
    };
    if !body.contains("name=encoded") {
        return Err(SourceError::Template(format!("the main-stream template for `{name}` must end in `appsink name=encoded`")));
    }
    Ok(Some(expand(&body, camera, base_dir)?.trim().to_string()))
}

/// `body` without the branches of `tee name=enc` that do not feed the `encoded` appsink; `None`
/// when it has no such tee and appsink.
fn parse_only(body: &str) -> Option<String> {
    if !body.contains("tee name=enc") || !body.contains("name=encoded") {
        return None;
    }
    // split at each `enc.` token that starts a branch; keep the head and the encoded branch
    let mut parts: Vec<String> = vec![String::new()];
    for token in body.split_whitespace() {
        if token == "enc." {
            parts.push(String::new());
        }
        let cur = parts.last_mut().expect("never empty");
        if !cur.is_empty() {
            cur.push(' ');
        }
        cur.push_str(token);
    }
    let mut out = parts.remove(0);
    for branch in parts.into_iter().filter(|b| b.contains("name=encoded")) {
        out.push(' ');
        out.push_str(&branch);
    }
    Some(out)
}

/// The part hawkeye appends to every template.
fn tail(camera: &Camera) -> String {
    // videorate's max-rate is an integer; round up so we never deliver fewer frames than asked.
    let max_rate = if camera.detect_fps.is_finite() && camera.detect_fps > 0.0 {
        (camera.detect_fps.ceil() as u64).clamp(1, i32::MAX as u64)
    } else {
        1
    };
    // The queue decouples decoding (in the source's streaming thread) from scaling and colour
    // conversion, so the two run on different cores. It sits after videorate, so it only ever
    // holds frames that will be delivered.
    format!(
        "videorate drop-only=true max-rate={max_rate} \
         ! queue max-size-buffers=2 max-size-bytes=0 max-size-time=0 \
         ! videoscale name={SCALE_NAME} \
         ! capsfilter name={SCALE_CAPS_NAME} caps=\"video/x-raw,width={w},pixel-aspect-ratio=1/1\" \
         ! videoconvert ! video/x-raw,format=RGB \
         ! appsink name={APPSINK_NAME}",
        w = camera.frame_width.max(2) & !1,
    )
}

fn template_text(pipeline: &str, base_dir: &Path) -> Result<String, SourceError> {
    if let Some((_, text)) = BUILTIN.iter().find(|(name, _)| *name == pipeline) {
        return Ok((*text).to_string());
    }
    let path = resolve(Path::new(pipeline), base_dir);
    if !looks_like_path(pipeline) {
        let names: Vec<&str> = BUILTIN.iter().map(|(n, _)| *n).collect();
        return Err(SourceError::Template(format!(
            "unknown pipeline template `{pipeline}` (built-in: {}; or a path to a .pipeline file)",
            names.join(", ")
        )));
    }
    std::fs::read_to_string(&path)
        .map_err(|e| SourceError::Template(format!("cannot read pipeline template {}: {e}", path.display())))
}

/// A name without a separator or extension is meant as a built-in template name.
fn looks_like_path(s: &str) -> bool {
    s.contains('/') || s.contains('\\') || s.ends_with(".pipeline") || s.contains('.')
}

fn strip_comments(text: &str) -> String {
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n")
}

fn resolve(p: &Path, base_dir: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base_dir.join(p)
    }
}

enum UrlKind {
    /// A plain filesystem path (no scheme).
    Path(PathBuf),
    /// `file:///…`, converted to a path.
    FileUrl(PathBuf),
    /// Any other scheme (rtsp, http, srt, …).
    Remote,
}

fn url_kind(url: &str) -> UrlKind {
    match url::Url::parse(url) {
        // One-letter "schemes" are Windows drive letters, i.e. paths.
        Ok(u) if u.scheme().len() > 1 => {
            if u.scheme() == "file" {
                match u.to_file_path() {
                    Ok(p) => UrlKind::FileUrl(p),
                    Err(()) => UrlKind::Remote,
                }
            } else {
                UrlKind::Remote
            }
        }
        _ => UrlKind::Path(PathBuf::from(url)),
    }
}

/// Quotes a value for a launch description: double quotes, with `\` and `"` escaped.
pub fn quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

fn expand(body: &str, camera: &Camera, base_dir: &Path) -> Result<String, SourceError> {
    let file_path = match url_kind(&camera.url) {
        UrlKind::Path(p) | UrlKind::FileUrl(p) => Some(resolve(&p, base_dir)),
        UrlKind::Remote => None,
    };
    let mut out = String::with_capacity(body.len() + camera.url.len());
    let mut rest = body;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            return Err(SourceError::Template(format!(
                "pipeline template `{}`: unclosed `{{`",
                camera.pipeline
            )));
        };
        let key = &after[..close];
        let value = match key {
            "url" => quote(&camera.url),
            "latency_ms" => camera.latency_ms.to_string(),
            "protocols" => camera.transport().protocols().to_string(),
            "location" => match &file_path {
                Some(p) => quote(&p.to_string_lossy()),
                None => {
                    return Err(SourceError::Template(format!(
                        "pipeline template `{}` needs a file ({{location}}) but url `{}` is not a path or file:// url",
                        camera.pipeline, camera.url
                    )))
                }
            },
            "uri" => match &file_path {
                Some(p) => {
                    let abs = if p.is_absolute() {
                        p.clone()
                    } else {
                        std::env::current_dir().map(|d| d.join(p)).unwrap_or_else(|_| p.clone())
                    };
                    let u = url::Url::from_file_path(&abs).map_err(|()| {
                        SourceError::Template(format!("cannot make a file:// URI from {}", abs.display()))
                    })?;
                    quote(u.as_str())
                }
                None => quote(&camera.url),
            },
            other => {
                return Err(SourceError::Template(format!(
                    "pipeline template `{}`: unknown placeholder `{{{other}}}` (known: {{url}}, {{uri}}, {{location}}, {{latency_ms}}, {{protocols}})",
                    camera.pipeline
                )))
            }
        };
        out.push_str(&value);
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn camera(url: &str, pipeline: &str) -> Camera {
        let text = format!("id = \"cam\"\nurl = {url:?}\npipeline = {pipeline:?}\n");
        toml::from_str(&text).unwrap()
    }

    #[test]
    fn builtins_are_all_present_and_commented() {
        let names: Vec<&str> = builtin_templates().iter().map(|(n, _)| *n).collect();
        assert_eq!(names, vec!["rtsp_h264", "rtsp_h265", "rtsp", "file", "rtmp", "srt", "ts_klv", "file_main", "rtsp_main"]);
        for (name, text) in builtin_templates() {
            assert!(text.starts_with('#'), "{name} has a comment header");
        }
    }

    #[test]
    fn rtsp_h264_expands_url_latency_and_tail() {
        let mut cam = camera("rtsp://10.0.0.7:554/Streaming/Channels/102", "rtsp_h264");
        cam.latency_ms = 300;
        cam.detect_fps = 4.2;
        cam.frame_width = 416;
        let s = launch_string(&cam, Path::new("/etc/hawkeye")).unwrap();
        assert!(!s.contains('#'));
        assert!(s.contains("location=\"rtsp://10.0.0.7:554/Streaming/Channels/102\""), "{s}");
        assert!(s.contains("latency=300"), "{s}");
        assert!(s.contains(" protocols=tcp "), "absent transport is auto, which starts with TCP: {s}");
        assert!(s.contains("rtph264depay ! h264parse config-interval=-1 ! tee name=enc"), "{s}");
        // parsed access units to the clip ring, decoded frames to the tail
        assert!(s.contains("appsink name=encoded"), "{s}");
        assert!(s.contains("enc. ! queue ! avdec_h264 ! videorate"), "{s}");
        assert!(s.contains("max-rate=5"), "{s}");
        assert!(s.contains("width=416,pixel-aspect-ratio=1/1"), "{s}");
        assert!(s.ends_with("appsink name=frames"), "{s}");
        // scale happens before colour conversion
        assert!(s.find("videoscale").unwrap() < s.find("videoconvert").unwrap());
    }

    #[test]
    fn plain_relative_path_gives_location_and_file_uri() {
        let mut cam = camera("clips/street 1.mp4", "file");
        assert!(is_file_source(&cam));
        let s = launch_string(&cam, Path::new("/srv/hk")).unwrap();
        assert!(s.contains("uri=\"file:///srv/hk/clips/street%201.mp4\""), "{s}");
        cam.pipeline = "custom.pipeline".into();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("custom.pipeline"), "# mine\nfilesrc location={location} ! decodebin\n").unwrap();
        let s = launch_string(&cam, dir.path()).unwrap();
        let expected = format!("filesrc location=\"{}/clips/street 1.mp4\"", dir.path().display());
        assert!(s.starts_with(&expected), "{s}");
    }

    #[test]
    fn file_url_is_a_file_source_and_rtsp_is_not() {
        assert!(is_file_source(&camera("file:///data/a.mkv", "file")));
        assert!(is_file_source(&camera("/data/a.mkv", "file")));
        assert!(!is_file_source(&camera("rtsp://cam/1", "rtsp")));
        assert!(!is_file_source(&camera("http://host/a.mp4", "file")));
        let s = launch_string(&camera("file:///data/a.mkv", "file"), Path::new("/x")).unwrap();
        assert!(s.contains("uri=\"file:///data/a.mkv\""), "{s}");
    }

    #[test]
    fn values_are_quoted_so_they_cannot_inject_elements() {
        let cam = camera("rtsp://h/a\" ! fakesink name=\\x", "rtsp");
        let s = launch_string(&cam, Path::new("/")).unwrap();
        assert!(s.contains(r#"location="rtsp://h/a\" ! fakesink name=\\x""#), "{s}");
        assert_eq!(quote("a b"), "\"a b\"");
    }

    #[test]
    fn errors_name_the_problem() {
        let e = launch_string(&camera("rtsp://h/a", "rtsp_h266"), Path::new("/")).unwrap_err();
        assert!(e.to_string().contains("unknown pipeline template `rtsp_h266`"), "{e}");
        let e = launch_string(&camera("rtsp://h/a", "missing/x.pipeline"), Path::new("/nope")).unwrap_err();
        assert!(e.to_string().contains("/nope/missing/x.pipeline"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bad.pipeline");
        std::fs::write(&p, "filesrc location={location} ! decodebin").unwrap();
        let e = launch_string(&camera("rtsp://h/a", p.to_str().unwrap()), Path::new("/")).unwrap_err();
        assert!(e.to_string().contains("{location}"), "{e}");
        std::fs::write(&p, "videotestsrc pattern={pattern}").unwrap();
        let e = launch_string(&camera("rtsp://h/a", p.to_str().unwrap()), Path::new("/")).unwrap_err();
        assert!(e.to_string().contains("unknown placeholder `{pattern}`"), "{e}");
        std::fs::write(&p, "videotestsrc ! appsink name=frames").unwrap();
        assert!(launch_string(&camera("rtsp://h/a", p.to_str().unwrap()), Path::new("/")).is_err());
    }

    #[test]
    fn transport_fills_protocols_in_every_rtsp_template_and_only_there() {
        for name in ["rtsp", "rtsp_h264", "rtsp_h265"] {
            for (transport, protocols) in [("tcp", "tcp"), ("udp", "udp"), ("auto", "tcp")] {
                let text = format!("id = \"c\"\nurl = \"rtsp://h/a\"\npipeline = \"{name}\"\ntransport = \"{transport}\"\n");
                let cam: Camera = toml::from_str(&text).unwrap();
                let s = launch_string(&cam, Path::new("/")).unwrap();
                assert!(s.starts_with(&format!("rtspsrc location=\"rtsp://h/a\" protocols={protocols} ")), "{name} {transport}: {s}");
                assert!(uses_transport(&cam, Path::new("/")).unwrap(), "{name}");
            }
        }
        for name in ["file", "rtmp", "srt", "ts_klv"] {
            assert!(!uses_transport(&camera("rtsp://h/a", name), Path::new("/")).unwrap(), "{name}");
        }
        assert!(uses_transport(&camera("rtsp://h/a", "nosuch"), Path::new("/")).is_err());
    }

    #[test]
    fn dual_stream_detects_the_sub_stream_and_parses_the_main_stream() {
        let mut cam = camera("rtsp://cam/main", "rtsp_h264");
        assert_eq!(main_launch_string(&cam, Path::new("/")).unwrap(), None);
        cam.detect_url = Some("rtsp://cam/sub".into());
        let detect = launch_string(&cam, Path::new("/")).unwrap();
        assert!(detect.contains("location=\"rtsp://cam/sub\"") && detect.contains("avdec_h264"), "{detect}");
        let main = main_launch_string(&cam, Path::new("/")).unwrap().unwrap();
        assert!(main.contains("location=\"rtsp://cam/main\""), "{main}");
        assert!(main.contains("h264parse") && main.ends_with("appsink name=encoded"), "{main}");
        assert!(!main.contains("avdec") && !main.contains("name=frames"), "nothing decoded: {main}");
        // the companions of templates without an encoded branch
        cam.pipeline = "rtsp".into();
        let main = main_launch_string(&cam, Path::new("/")).unwrap().unwrap();
        assert!(main.contains("parsebin") && !main.contains("decodebin"), "{main}");
        let mut file = camera("clips/main.mp4", "file");
        file.detect_url = Some("clips/sub.mp4".into());
        assert!(is_file_source(&file));
        let main = main_launch_string(&file, Path::new("/srv")).unwrap().unwrap();
        assert!(main.starts_with("filesrc location=\"/srv/clips/main.mp4\" ! parsebin"), "{main}");
        assert!(launch_string(&file, Path::new("/srv")).unwrap().contains("file:///srv/clips/sub.mp4"));
    }

    #[test]
    fn a_custom_template_without_an_encoded_branch_needs_a_main_companion() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("cam.pipeline"), "# mine\nrtspsrc location={url} ! decodebin\n").unwrap();
        let mut cam = camera("rtsp://h/main", "cam.pipeline");
        cam.detect_url = Some("rtsp://h/sub".into());
        let e = main_launch_string(&cam, dir.path()).unwrap_err();
        assert!(e.to_string().contains("cam_main"), "{e}");
        std::fs::write(dir.path().join("cam_main.pipeline"), "rtspsrc location={url} ! parsebin ! appsink name=encoded\n").unwrap();
        let main = main_launch_string(&cam, dir.path()).unwrap().unwrap();
        assert_eq!(main, "rtspsrc location=\"rtsp://h/main\" ! parsebin ! appsink name=encoded");
    }

    #[test]
    fn parse_only_keeps_the_head_and_the_encoded_branch() {
        let body = "src ! parse ! tee name=enc\n enc. ! queue ! appsink name=encoded\n enc. ! queue ! avdec_h264";
        assert_eq!(parse_only(body).unwrap(), "src ! parse ! tee name=enc enc. ! queue ! appsink name=encoded");
        assert_eq!(parse_only("uridecodebin uri={uri}"), None);
    }

    #[test]
    fn odd_frame_width_is_made_even() {
        let mut cam = camera("rtsp://h/a", "rtsp");
        cam.frame_width = 641;
        assert!(launch_string(&cam, Path::new("/")).unwrap().contains("width=640,"));
    }
}
