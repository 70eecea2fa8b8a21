//! Zone rules: turn tracked objects into event transitions (`new`, `update`, `end`), and the
//! operator side of the lifecycle: `ack`, then a re-check (回头看) that reports `resolved` or
//! `recurred`. Pure logic: fed tracks and stream time, returns transitions; evidence and
//! publishing happen elsewhere.
//!
//! - [`event`]: lifecycle states, transitions, acknowledgements, the event log.
//! - [`zone`]: [`ZoneRule`] (from the config compiler) and one file per rule: dwell
//!   (out-of-store trading, occupancy), loitering, flooding, dumping, parking, crowding.
//! - [`camera`]: [`CameraRules`], all zones of one camera.
//! - Building blocks: [`Dwell`] (presence timer), [`Flood`] (level grading), [`Dumping`]
//!   (left-behind objects), [`static_fg`] (unknown static objects), [`Schedule`], [`Polygon`].

mod camera;
pub mod dumping;
mod dwell;
mod event;
pub mod flood;
mod polygon;
pub mod schedule;
pub mod static_fg;
mod zone;

pub use camera::CameraRules;
pub use dumping::{DumpedObject, Dumper, Dumping, DumpingParams, DumpingStep};
pub use dwell::{Dwell, DwellParams, DwellStep};
pub use event::{Ack, CrowdCount, EventState, Transition};
pub use flood::{Flood, FloodLevel, FloodParams};
pub use polygon::Polygon;
pub use schedule::Schedule;
pub use zone::{CompiledZone, ParkingParams, ZoneRule};
