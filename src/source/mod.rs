//! Camera sources over GStreamer: one pipeline per camera, built from a template in
//! `pipelines/` ([`template`]), decoded, rate-limited to `detect_fps`, scaled to `frame_width`
//! and converted to packed RGB inside GStreamer, then handed to the shared detector's
//! [`FrameSlots`](crate::frame_slots::FrameSlots) from the appsink callback.
//!
//! - [`template`]: built-in templates, placeholder expansion, the common tail.
//! - [`camera`]: the per-camera supervisor [`run_camera`]: bus events, stall timer, reconnect
//!   with capped exponential backoff, file loop/end, shutdown (pipeline always set to Null).
//! - `appsink`: samples → packed-RGB frames with a stream clock monotonic across restarts.
//! - [`health`]: [`CameraHealth`] shared with telemetry; [`HealthSnapshot`] for heartbeat/healthz.
//! - [`dual`]: whether a dual-stream camera's two streams fit together; [`probe`]: `hawkeye
//!   check`'s look at them when they are files.
//! - `bus`: bus messages → supervisor events, one-line error texts.
//!
//! Dual-stream cameras (`detect_url`): the sub-stream goes the way above; the main stream (`url`)
//! is parsed only, into the camera's clip ring, by a second pipeline of the same supervisor.

mod appsink;
mod bus;
pub mod dual;
pub mod camera;
pub mod health;
pub mod probe;
pub mod template;

use std::sync::OnceLock;

pub use camera::{run_camera, SourceCtx, HEALTHY_RUN};
pub use health::{CameraHealth, HealthSnapshot, HealthState, MainStreamSnapshot, RetryReason, RetryStats};
pub use template::{builtin_templates, detect_view, is_file_source, launch_string, main_launch_string};

/// Errors of the source module (all explained in one line, fit for `last_error`).
#[derive(Debug, Clone, thiserror::Error)]
pub enum SourceError {
    /// The camera's pipeline template is missing, unreadable or malformed.
    #[error("{0}")]
    Template(String),
    /// GStreamer could not be initialised.
    #[error("GStreamer initialisation failed: {0}")]
    Init(String),
    /// GStreamer rejected the launch description (unknown element, property, syntax).
    #[error("invalid pipeline: {0}")]
    Parse(String),
}

/// Initialises GStreamer once per process; later calls return the first call's result.
pub fn init_gstreamer() -> Result<(), SourceError> {
    static INIT: OnceLock<Result<(), String>> = OnceLock::new();
    INIT.get_or_init(|| gstreamer::init().map_err(|e| e.to_string()))
        .clone()
        .map_err(SourceError::Init)
}
