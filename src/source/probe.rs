//! `hawkeye check` for dual-stream cameras whose two streams are files: both are parsed (never
//! decoded) for a few seconds to learn their picture sizes and the main stream's keyframe
//! interval, and [`dual_mismatch`](super::dual::dual_mismatch) says what does not fit.
//! Network streams are not probed at check time (connecting to every camera from `check` would
//! be slow and may not be possible where the config is written); the same check runs in the
//! daemon once both streams are seen (WARN log, `mismatch` in the camera's health).

use std::path::Path;
use std::time::Duration;

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

use crate::config::Camera;

/// Longest a probe waits for the next unit of a file.
const PULL_TIMEOUT: Duration = Duration::from_secs(5);

/// What parsing a stream for a while showed.
#[derive(Clone, Debug, PartialEq)]
pub struct StreamProbe {
    pub width: u32,
    pub height: u32,
    /// Display aspect ratio (pixel aspect ratio applied).
    pub aspect: f64,
    /// Longest interval between keyframes within the probed time, or the whole probed time when
    /// it held at most one keyframe.
    pub keyframe_gap: f64,
}

/// What does not fit between a dual-stream camera's two file streams; `Ok(None)` when the
/// camera is not dual-stream or a stream is not a file (checked at run time instead).
pub fn probe_dual(camera: &Camera, base_dir: &Path) -> Result<Option<Vec<String>>, String> {
    let Some(sub_url) = &camera.detect_url else { return Ok(None) };
    let main_view = Camera { detect_url: None, ..camera.clone() };
    let sub_view = Camera { url: sub_url.clone(), detect_url: None, ..camera.clone() };
    if !super::is_file_source(&main_view) || !super::is_file_source(&sub_view) {
        return Ok(None);
    }
    super::init_gstreamer().map_err(|e| e.to_string())?;
    // both files are parsed with the parse-only main-stream template of the camera's pipeline
    let parse_only = |view: &Camera, other: &str| -> Result<String, String> {
        let dual = Camera { detect_url: Some(other.to_string()), ..view.clone() };
        super::main_launch_string(&dual, base_dir).map_err(|e| e.to_string())?.ok_or_else(|| "no parse-only template".to_string())
    };
    let window = camera.clip_ring().max(1.0) + 1.0;
    let main = probe(&parse_only(&main_view, sub_url)?, window).map_err(|e| format!("main stream {}: {e}", camera.url))?;
    let sub = probe(&parse_only(&sub_view, &camera.url)?, 0.0).map_err(|e| format!("sub-stream {sub_url}: {e}"))?;
    let found = super::dual::dual_mismatch(Some(sub.aspect), Some(main.aspect), Some(main.keyframe_gap), camera.clip_ring());
    Ok(Some(found.into_iter().map(|(_, m)| m).collect()))
}

/// Parses a stream (a launch description ending in `appsink name=encoded`) for `window` seconds
/// of stream time (at least its first unit), as fast as it can be read.
pub fn probe(launch: &str, window: f64) -> Result<StreamProbe, String> {
    let pipeline = gst::parse::launch(launch).map_err(|e| e.to_string())?.downcast::<gst::Pipeline>().map_err(|_| "not a pipeline".to_string())?;
    let result = (|| {
        let sink = pipeline
            .by_name("encoded")
            .and_then(|e| e.downcast::<gst_app::AppSink>().ok())
            .ok_or("no appsink named `encoded`")?;
        sink.set_sync(false);
        pipeline.set_state(gst::State::Playing).map_err(|e| format!("cannot start: {e}"))?;
        let (mut first, mut last_key, mut max_gap, mut latest) = (None::<f64>, None::<f64>, 0.0f64, 0.0f64);
        let mut caps = None;
        while let Some(sample) = sink.try_pull_sample(gst::ClockTime::from_nseconds(PULL_TIMEOUT.as_nanos() as u64)) {
            let Some(buffer) = sample.buffer() else { continue };
            let Some(ts) = buffer.pts().map(|p| p.nseconds() as f64 / 1e9) else { continue };
            caps = caps.or_else(|| sample.caps().map(|c| c.to_owned()));
            let t0 = *first.get_or_insert(ts);
            latest = latest.max(ts);
            if !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT) {
                if let Some(k) = last_key {
                    max_gap = max_gap.max(ts - k);
                }
                last_key = Some(ts);
            }
            if ts - t0 >= window {
                break;
            }
        }
        let caps = caps.ok_or("no video within the first seconds")?;
        let s = caps.structure(0).ok_or("caps without a structure")?;
        let (w, h) = (s.get::<i32>("width").unwrap_or(0), s.get::<i32>("height").unwrap_or(0));
        if w <= 0 || h <= 0 {
            return Err(format!("no picture size in {caps}"));
        }
        let par = s.get::<gst::Fraction>("pixel-aspect-ratio").unwrap_or(gst::Fraction::new(1, 1));
        let aspect = w as f64 * par.numer() as f64 / (h as f64 * par.denom().max(1) as f64);
        let since_key = latest - last_key.or(first).unwrap_or(latest);
        Ok(StreamProbe { width: w as u32, height: h as u32, aspect, keyframe_gap: max_gap.max(since_key) })
    })();
    let _ = pipeline.set_state(gst::State::Null);
    result
}
