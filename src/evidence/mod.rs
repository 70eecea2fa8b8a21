//! Evidence: JPEG snapshots of the frame that raised an event, clean and annotated, kept on disk
//! under `<state_dir>/evidence/<event_id>/` with their sha256 and published with the alert.
//! [`privacy`] masks faces and plates in the copies that leave the device.

pub mod privacy;
mod snapshot;

pub use privacy::{MaskReport, Masker, PrivacyError};
pub use snapshot::{encode_jpeg, EvidenceStore, Snapshot};
