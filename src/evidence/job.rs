//! What a camera task hands to its evidence worker: alert jobs (the alert body and the pictures
//! that go with it), clips, snapshots, acknowledgements, and the stop.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use super::crop::CropRequest;
use super::privacy::SearchRegions;
use super::ClipInfo;
use crate::publish::{Alert, AlertAck};

/// A picture: the frame's own pixels, or a JPEG (history frames, journal replays).
#[derive(Clone, Debug)]
pub enum Picture {
    Rgb { width: u32, height: u32, rgb: Arc<Vec<u8>> },
    Jpeg { width: u32, height: u32, jpeg: Arc<Vec<u8>> },
}

impl Picture {
    pub fn size(&self) -> (u32, u32) {
        match self {
            Picture::Rgb { width, height, .. } | Picture::Jpeg { width, height, .. } => (*width, *height),
        }
    }

    /// Bytes this picture holds in memory (for the worker queue's budget).
    pub fn bytes(&self) -> usize {
        match self {
            Picture::Rgb { rgb, .. } => rgb.len(),
            Picture::Jpeg { jpeg, .. } => jpeg.len(),
        }
    }

    /// Packed RGB pixels (decoding a JPEG).
    pub fn to_rgb(&self) -> Result<Vec<u8>, String> {
        match self {
            Picture::Rgb { rgb, .. } => Ok(rgb.to_vec()),
            Picture::Jpeg { width, height, jpeg } => {
                let img = image::load_from_memory_with_format(jpeg, image::ImageFormat::Jpeg).map_err(|e| format!("cannot decode a kept frame: {e}"))?.to_rgb8();
                if img.dimensions() != (*width, *height) {
                    return Err(format!("kept frame is {}x{}, expected {width}x{height}", img.width(), img.height()));
                }
                Ok(img.into_raw())
            }
        }
    }
}

/// A box to draw on a picture, with its label.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct MarkedBox {
    /// `[x1, y1, x2, y2]`, pixels.
    pub bbox: [f32; 4],
    pub label: String,
    /// Involved in the event (drawn in the alert colour).
    pub involved: bool,
}

/// What the annotated snapshot shows: the zone and every tracked object.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Annotation {
    /// The zone's polygon in pixels (empty for drone events).
    pub polygon: Vec<(f32, f32)>,
    pub boxes: Vec<MarkedBox>,
}

/// A named picture besides the snapshot (dumping: `before`, `dumper`; parking: `vehicle`).
#[derive(Clone, Debug)]
pub struct ExtraPicture {
    pub name: String,
    pub picture: Picture,
    pub mark: Option<MarkedBox>,
    /// Published with plates readable (a parking zone's vehicle crop with `unmask_plates`; see
    /// [`super::crop`]).
    pub keep_plates: bool,
}

/// One alert to publish, with its pictures.
#[derive(Clone, Debug)]
pub struct AlertJob {
    /// The alert body from [`Alert::from_transition`]; `seq` 0 until the worker numbers it.
    pub alert: Alert,
    /// Evidence names of the clean and annotated snapshots of `frame`.
    pub names: Option<(String, String)>,
    pub frame: Option<Picture>,
    /// Stream time of `frame` (the camera's stream clock): a dual-stream camera's evidence worker
    /// decodes the main-stream picture nearest to it. `None`: use `frame` as it is.
    pub frame_ts: Option<f64>,
    pub annotation: Annotation,
    pub extra: Vec<ExtraPicture>,
    /// Crops of the alert's objects the worker cuts from the full-resolution frame (parking:
    /// the vehicle); they become `extra` pictures before the job is journaled.
    pub crops: Vec<CropRequest>,
    /// Where `frame`'s faces and plates can be (the frame's people and vehicles, in its
    /// pixels), for privacy masking; `None`: search the whole picture.
    pub search: Option<SearchRegions>,
}

impl AlertJob {
    /// An alert without pictures (`update`, `end`).
    pub fn bare(alert: Alert) -> AlertJob {
        AlertJob { alert, names: None, frame: None, frame_ts: None, annotation: Annotation::default(), extra: Vec::new(), crops: Vec::new(), search: None }
    }

    /// Bytes of pictures it holds.
    pub fn bytes(&self) -> usize {
        self.frame.as_ref().map_or(0, Picture::bytes) + self.extra.iter().map(|e| e.picture.bytes()).sum::<usize>()
    }

    /// Drops the pictures (the worker is too far behind to take them), saying why in the alert.
    pub fn without_pictures(mut self, why: &str) -> AlertJob {
        if self.frame.is_some() || !self.extra.is_empty() {
            self.alert.evidence_error = Some(why.to_string());
        }
        self.frame = None;
        self.names = None;
        self.extra.clear();
        self.crops.clear();
        self.search = None;
        self
    }
}

/// The answer to a command, sent back by the worker.
pub type Reply = oneshot::Sender<Result<serde_json::Value, String>>;

/// A unit of work for a camera's evidence worker; jobs are done in order.
#[derive(Debug)]
pub enum Job {
    Alert(Box<AlertJob>),
    /// The event's clip is written: seal and publish it with an `update` (`alert` is its body).
    Clip { alert: Box<Alert>, clip: ClipInfo },
    /// `cmd/snapshot`: publish the picture now.
    Snapshot { picture: Picture, captured_at: chrono::DateTime<chrono::Utc>, reply: Reply },
    /// An operator acknowledged an event: remember it across restarts.
    Ack { event_id: String, ack: AlertAck },
    /// The camera stops: end its open events with `reason` (`shutdown`), then exit.
    Stop { reason: &'static str },
}
