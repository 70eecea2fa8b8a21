//! Evidence: JPEG snapshots of the frame that raised an event, clean and annotated, kept on disk
//! under `<state_dir>/evidence/<event_id>/` with their sha256 and published with the alert; each
//! evidence set sealed by a signed manifest in the device's hash chain; `hawkeye verify`;
//! event clips from the encoded ring; [`privacy`] masks faces and plates in the copies that
//! leave the device; [`retention`] deletes old evidence (never undelivered evidence) and
//! records each deletion in the chain.

pub mod chain;
pub mod clip;
pub mod clock;
pub mod crop;
pub mod job;
pub mod journal;
pub mod keys;
pub mod main_picture;
pub mod privacy;
pub mod registry;
pub mod retention;
pub mod seal;
mod snapshot;
pub mod verify;
pub mod worker;

pub use clip::{record_clip, write_clip, ClipError, ClipInfo, EncodedRing};
pub use keys::DeviceKey;
pub use chain::ChainRepair;
pub use seal::{ManifestInput, SealError, Sealed, Sealer};
pub use privacy::{MaskReport, Masker, PrivacyError, SharedMasker};
pub use snapshot::{encode_jpeg, EvidenceStore, Snapshot};
pub use verify::{verify_command, verify_dir, Head, VerifyOptions, VerifyReport};
