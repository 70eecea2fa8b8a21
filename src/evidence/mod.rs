//! Evidence: JPEG snapshots of the frame that raised an event, clean and annotated, kept on disk
//! under `<state_dir>/evidence/<event_id>/` with their sha256 and published with the alert.

mod snapshot;

pub use snapshot::{encode_jpeg, EvidenceStore, Snapshot};
