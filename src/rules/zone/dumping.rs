//! The dumping rule in a zone: left-behind objects (waste tracks or static-foreground blobs)
//! that stay put for `dwell_s` start an event naming the person who brought them (see
//! [`crate::rules::Dumping`] for the tracking itself).

use super::{CompiledZone, FrameInput};
use crate::detect::BBox;
use crate::rules::dumping::{Dumping, DumpingParams, DumpingStep};
use crate::rules::event::{EventState, Transition, ZoneEvents};
use crate::track::Track;

/// A dumping zone's state.
pub(in crate::rules) struct DumpingZone {
    dumping: Dumping,
}

impl DumpingZone {
    pub(super) fn new(p: DumpingParams) -> Self {
        DumpingZone { dumping: Dumping::new(p) }
    }

    pub(super) fn step(&mut self, spec: &CompiledZone, ev: &mut ZoneEvents<'_>, f: &FrameInput<'_>) -> Option<Transition> {
        let (ts, wall) = (f.ts, f.wall);
        // outside the schedule nothing is seen: candidates are dropped, a running event ends
        let (tracks, blobs): (&[Track], &[BBox]) = if spec.schedule.is_active(wall) { (f.tracks, f.blobs) } else { (&[], &[]) };
        let big_enough: Vec<Track> = tracks.iter().filter(|t| t.bbox.height() >= spec.zone.min_size_px || t.class == "person").cloned().collect();
        let (poly, w, h) = (&spec.polygon, f.w, f.h);
        let step = self.dumping.observe(
            &big_enough,
            blobs,
            |b: &BBox| {
                let (x, y) = b.bottom_center();
                poly.contains_px(x, y, w, h)
            },
            ts,
        );
        let (state, object) = match step {
            DumpingStep::Quiet => return None,
            DumpingStep::Start { object } => (EventState::New, Some(object)),
            DumpingStep::Update { object } => (EventState::Update, Some(object)),
            DumpingStep::End => (EventState::End, None),
        };
        if state == EventState::New {
            let appeared = object.as_ref().map_or(ts, |o| o.appeared_ts);
            let started_wall = wall - chrono::Duration::milliseconds(((ts - appeared).max(0.0) * 1000.0) as i64);
            ev.open(appeared, started_wall);
        }
        // the object as a track: the live track when it has one, else its last box
        let objects = object
            .as_ref()
            .map(|o| {
                let live = o.track_id.and_then(|id| tracks.iter().find(|t| t.id == id)).cloned();
                vec![live.unwrap_or(Track {
                    id: o.track_id.unwrap_or(0),
                    class_id: usize::MAX,
                    class: o.class.clone(),
                    score: 1.0,
                    bbox: o.bbox,
                    hits: 0,
                    missed: 0,
                    first_seen: o.appeared_ts,
                    last_seen: ts,
                })]
            })
            .unwrap_or_default();
        Some(Transition { dumped: object, ..ev.transition(state, ts, wall, objects) })
    }
}
