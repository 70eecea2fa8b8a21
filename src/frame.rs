//! A decoded video frame as it travels from a camera's source to the detector and the rules.

use std::sync::Arc;

use chrono::{DateTime, Utc};

/// One decoded RGB frame (packed rows, no stride padding) from one camera.
#[derive(Clone, Debug)]
pub struct Frame {
    /// Index of the camera in the running config (stable for the life of a pipeline set).
    pub camera: usize,
    /// Per-camera sequence number, counting every frame that reached the appsink.
    pub seq: u64,
    /// Stream time in seconds: monotonic per camera across reconnects and file loops.
    /// All rule timing (dwell, grace, clear) uses this clock, never the wall clock.
    pub ts: f64,
    /// Wall-clock time at which the frame was captured (UTC), for alert timestamps.
    pub wall: DateTime<Utc>,
    pub width: u32,
    pub height: u32,
    /// `width * height * 3` bytes, RGB.
    pub rgb: Arc<Vec<u8>>,
}

impl Frame {
    /// Pixel value at (x, y) as `[r, g, b]`; panics when out of bounds.
    pub fn pixel(&self, x: u32, y: u32) -> [u8; 3] {
        let i = ((y * self.width + x) * 3) as usize;
        [self.rgb[i], self.rgb[i + 1], self.rgb[i + 2]]
    }
}
