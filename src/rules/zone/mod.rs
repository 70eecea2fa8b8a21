//! Zone rules: a compiled zone names its rule ([`ZoneRule`], from the config compiler), and a
//! zone's runtime state is the matching variant of one enum, so a zone runs exactly its own
//! rule. One file per rule: [`dwell`] (out-of-store trading, occupancy), [`loitering`],
//! [`flooding`], [`dumping`], [`parking`], [`crowd`].

mod crowd;
mod dumping;
mod dwell;
mod flooding;
mod loitering;
mod parking;

pub use parking::ParkingParams;

use chrono::{DateTime, Utc};

use super::dumping::DumpingParams;
use super::dwell::DwellParams;
use super::event::{Transition, ZoneEvents};
use super::flood::{FloodLevel, FloodParams};
use super::{Polygon, Schedule};
use crate::config::Zone;
use crate::detect::BBox;
use crate::track::Track;

/// What a zone alerts on, with the parameters of its rule.
#[derive(Clone, Debug, PartialEq)]
pub enum ZoneRule {
    /// Out-of-store trading and occupancy: qualifying objects present for `dwell_s`.
    Dwell(DwellParams),
    /// Loitering: a person (any qualifying track) that itself stays `dwell_s`; `presence`
    /// times the zone once one does (its `dwell_s` is 0).
    Loitering { dwell_s: f64, presence: DwellParams },
    /// Flooding: water coverage of the segment, graded green / yellow / red.
    Flooding(FloodParams),
    /// Dumping: an object left behind that stays put.
    Dumping(DumpingParams),
    /// Illegal parking: a vehicle that itself stands still for `dwell_s`.
    Parking(ParkingParams),
    /// Crowding: at least `min_count` persons present for `dwell_s`; transitions carry the
    /// count and its peak.
    Crowd(DwellParams),
}

/// One zone as the config compiler leaves it: the raw entry (id, kind, classes, speak, …) and
/// its typed values.
#[derive(Clone, Debug, PartialEq)]
pub struct CompiledZone {
    pub zone: Zone,
    pub polygon: Polygon,
    pub schedule: Schedule,
    pub rule: ZoneRule,
}

/// One frame as the zone rules see it.
pub(super) struct FrameInput<'a> {
    pub(super) tracks: &'a [Track],
    /// Static-foreground blobs (frame pixels), for dumping zones.
    pub(super) blobs: &'a [BBox],
    pub(super) w: u32,
    pub(super) h: u32,
    pub(super) ts: f64,
    pub(super) wall: DateTime<Utc>,
}

/// A zone's rule state: one variant per [`ZoneRule`].
pub(super) enum RuleState {
    Dwell(dwell::DwellZone),
    Loitering(loitering::LoiterZone),
    Flooding(flooding::FloodZone),
    Dumping(dumping::DumpingZone),
    Parking(parking::ParkingZone),
    Crowd(crowd::CrowdZone),
}

impl RuleState {
    pub(super) fn new(rule: &ZoneRule) -> RuleState {
        match rule {
            ZoneRule::Dwell(p) => RuleState::Dwell(dwell::DwellZone::new(*p)),
            ZoneRule::Loitering { dwell_s, presence } => RuleState::Loitering(loitering::LoiterZone::new(*dwell_s, *presence)),
            ZoneRule::Flooding(p) => RuleState::Flooding(flooding::FloodZone::new(*p)),
            ZoneRule::Dumping(p) => RuleState::Dumping(dumping::DumpingZone::new(p.clone())),
            ZoneRule::Parking(p) => RuleState::Parking(parking::ParkingZone::new(*p)),
            ZoneRule::Crowd(p) => RuleState::Crowd(crowd::CrowdZone::new(*p)),
        }
    }

    /// Feeds one frame to the zone's rule; returns the transition it makes, if any.
    pub(super) fn step(&mut self, spec: &CompiledZone, ev: &mut ZoneEvents<'_>, f: &FrameInput<'_>) -> Option<Transition> {
        match self {
            RuleState::Dwell(d) => d.step(spec, ev, f, objects_in_zone(spec, f.tracks, f.w, f.h), None),
            RuleState::Loitering(l) => l.step(spec, ev, f),
            RuleState::Flooding(fl) => fl.step(spec, ev, f),
            RuleState::Dumping(d) => d.step(spec, ev, f),
            RuleState::Parking(p) => p.step(spec, ev, f),
            RuleState::Crowd(c) => c.step(spec, ev, f),
        }
    }

    /// Flooding zones: the current level and smoothed coverage.
    pub(super) fn flood(&self) -> Option<(FloodLevel, f64)> {
        match self {
            RuleState::Flooding(f) => Some(f.level()),
            _ => None,
        }
    }

    /// Feeds a new water mask to a mask-driven flooding zone (other zones ignore it).
    pub(super) fn observe_water(&mut self, spec: &CompiledZone, mask: &crate::detect::WaterMask) {
        if let RuleState::Flooding(f) = self {
            f.observe_water(spec, mask);
        }
    }

    /// Whether this is a flooding zone whose coverage comes from water masks.
    pub(super) fn wants_water(&self) -> bool {
        matches!(self, RuleState::Flooding(f) if f.wants_water())
    }

    /// Whether this is a dumping zone (which needs the static-foreground detector).
    pub(super) fn wants_frames(&self) -> bool {
        matches!(self, RuleState::Dumping(_))
    }
}

/// Tracks of the zone's classes, scored high and large enough, standing (bottom-centre) in the
/// polygon.
pub(super) fn objects_in_zone(spec: &CompiledZone, tracks: &[Track], w: u32, h: u32) -> Vec<Track> {
    let z = &spec.zone;
    tracks
        .iter()
        .filter(|t| {
            let (x, y) = t.bbox.bottom_center();
            t.score >= z.min_score && t.bbox.height() >= z.min_size_px && z.classes.contains(&t.class) && spec.polygon.contains_px(x, y, w, h)
        })
        .cloned()
        .collect()
}

/// Whether the objects in a zone make it occupied: at least `min_count` of them, and every
/// `required` class among them.
pub(super) fn occupied(zone: &Zone, inside: &[Track]) -> bool {
    inside.len() >= zone.min_count as usize && zone.required.iter().all(|r| inside.iter().any(|t| t.class == *r))
}
