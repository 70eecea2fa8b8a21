//! The dumping (偷倒) rule for one zone. Pure logic: fed tracks, static-foreground blobs and
//! stream time (s), returns event steps.
//!
//! An object appears in the zone (bottom-centre inside the polygon, tested by the caller's
//! `in_zone`): a track of one of `waste_classes`, or an unknown static blob (from
//! [`super::static_fg`]) that no track explains. It becomes a *candidate*. A candidate is
//! *static* while its box stays near its anchor box (centre moved ≤ `max_move` × anchor height,
//! or IoU with the anchor ≥ 0.5); when it moves further it is re-anchored and its dwell starts
//! over. A candidate static for `dwell_s` starts an event (`Start`) carrying the object and the
//! person who brought it (see "Dumper"). Unseen for more than `grace_s` (picked up, carried
//! away) a pending candidate is dropped without an event; shorter gaps (occlusion by a passer-by)
//! are forgiven. While the event's object remains, `Update` comes at most every `update_s`
//! (only on frames where it is seen); once it has been unseen for `clear_s` the event ends
//! (`End`), and the zone rests for `cooldown_s` before the next `Start`.
//!
//! Matching across frames: a track observation continues the candidate with its track id;
//! otherwise observations go to candidates by IoU ≥ 0.3 (best first, classes equal or one of
//! them unknown), which also covers a track that changed id after an occlusion. Blobs:
//! - a blob overlapping a waste-class track (IoU ≥ 0.3) is that object and is skipped;
//! - a blob overlapping any other track — person, vehicle, … (IoU > 0.2, or at least half of
//!   the blob inside the track's box) — is explained by it and ignored (a standing person is
//!   not dumping);
//! - a candidate first seen as a blob and later as a waste track (or the reverse) is one object:
//!   it takes the class and track id, and the source switch does not restart its dwell.
//!
//! Dwell of a blob candidate counts from the blob's first report (static_fg confirms a blob
//! only after its own `min_static_s`).
//!
//! Reference state: objects seen within `grace_s` of the first observation were there when
//! monitoring started; they never alert, as long as they stay where they are (moving one
//! re-anchors it and makes it a new object at its new place). When a reference object is lost
//! its box is remembered for 10 minutes, so that a detection flickering back (with a new track
//! id) at the same place is still reference.
//!
//! Dumper: person tracks (`person_class`) are kept for `history_s`. When a candidate is
//! (re-)anchored, a person whose box touched the object's box (gap ≤ 0.1 person height) is the
//! dumper: for a detected object (anchored as it comes to rest) the one with the latest contact,
//! for a blob (confirmed seconds later) the one with the most contacts; without contact,
//! the nearest person within one person height. `Dumper` holds that person's box and time at
//! the latest contact (or nearest approach). `appeared_ts` is when the object came to rest for
//! track candidates; for blob candidates (seen late) it is the dumper's first contact in the
//! history when there is one, else the blob's first report — a snapshot from just before
//! `appeared_ts` shows the place before the object.

use std::collections::VecDeque;

use crate::detect::BBox;
use crate::track::Track;

/// Settings of the dumping rule.
#[derive(Clone, Debug, PartialEq)]
pub struct DumpingParams {
    /// An object must stay static this long (s) before the event starts.
    pub dwell_s: f64,
    /// Gaps (s) in the sightings of a pending object that are forgiven; also the reference
    /// window after the first observation.
    pub grace_s: f64,
    /// The event ends once its object has been unseen this long (s).
    pub clear_s: f64,
    /// Rest (s) after an event ends before the next may start.
    pub cooldown_s: f64,
    /// Minimum interval (s) between updates.
    pub update_s: f64,
    /// Movement (centre, as a fraction of the box height) still counted as static.
    pub max_move: f32,
    /// Class of the tracks that may be the dumper.
    pub person_class: String,
    /// Classes of the tracks that are waste.
    pub waste_classes: Vec<String>,
    /// Tracks below this score are ignored.
    pub min_score: f32,
    /// How far back (s) person boxes are kept to find the dumper.
    pub history_s: f64,
}

impl Default for DumpingParams {
    fn default() -> Self {
        DumpingParams {
            dwell_s: 30.0,
            grace_s: 2.0,
            clear_s: 10.0,
            cooldown_s: 60.0,
            update_s: 60.0,
            max_move: 0.2,
            person_class: "person".into(),
            waste_classes: vec!["garbage".into()],
            min_score: 0.3,
            history_s: 15.0,
        }
    }
}

/// The person who brought a dumped object.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Dumper {
    pub track_id: u64,
    /// The person's box at `seen_ts` (latest contact with the object, or nearest approach).
    pub bbox: BBox,
    pub seen_ts: f64,
}

/// A dumped object, as reported by `Start` and `Update`.
#[derive(Clone, Debug, PartialEq)]
pub struct DumpedObject {
    /// Latest box, frame pixels.
    pub bbox: BBox,
    /// Waste class, or [`UNKNOWN_CLASS`] for a static blob no detection explains.
    pub class: String,
    /// Track id when the object was (last) seen as a track.
    pub track_id: Option<u64>,
    /// Stream time at which the object appeared (came to rest) at its place.
    pub appeared_ts: f64,
    pub dumper: Option<Dumper>,
}

/// What one observation did to the zone.
#[derive(Clone, Debug, PartialEq)]
pub enum DumpingStep {
    Quiet,
    /// An object has stayed static for `dwell_s`: the event starts.
    Start {
        object: DumpedObject,
    },
    /// The event's object is still there and `update_s` has passed since the last report.
    Update {
        object: DumpedObject,
    },
    /// The event's object has been gone for `clear_s`.
    End,
}

/// Class reported for static blobs without a class.
pub const UNKNOWN_CLASS: &str = "unknown";

/// Same object: IoU between an observation and a candidate, or a blob and a waste track.
const SAME_OBJECT_IOU: f32 = 0.3;
/// Static: IoU with the anchor box.
const STATIC_IOU: f32 = 0.5;
/// A blob explained by a non-waste track: IoU above this, or this share of the blob covered.
const EXPLAINED_IOU: f32 = 0.2;
const EXPLAINED_COVER: f32 = 0.5;
/// A new object on a remembered reference footprint (IoU) is reference too.
const FOOTPRINT_IOU: f32 = 0.5;
const FOOTPRINT_FORGET_S: f64 = 600.0;
/// Contact between a person and an object: gap ≤ this × person height.
const CONTACT: f32 = 0.1;
/// Farthest a dumper may be without contact, in person heights.
const REACH: f32 = 1.0;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Source {
    Track,
    Blob,
}

#[derive(Clone, Debug)]
struct Candidate {
    serial: u64,
    class: String,
    track_id: Option<u64>,
    source: Source,
    /// Latest box.
    bbox: BBox,
    /// Box at the start of the current static period.
    anchor: BBox,
    static_since: f64,
    appeared_ts: f64,
    last_seen: f64,
    seen_now: bool,
    reference: bool,
    dumper: Option<Dumper>,
}

impl Candidate {
    fn object(&self) -> DumpedObject {
        DumpedObject {
            bbox: self.bbox,
            class: self.class.clone(),
            track_id: self.track_id,
            appeared_ts: self.appeared_ts,
            dumper: self.dumper,
        }
    }
}

struct Obs<'a> {
    bbox: BBox,
    class: &'a str,
    track_id: Option<u64>,
    source: Source,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum State {
    Idle { rest_until: f64 },
    Active { serial: u64, last_report: f64 },
}

/// Dumping rule state for one zone.
pub struct Dumping {
    p: DumpingParams,
    /// Stream time of the first observation.
    started: Option<f64>,
    /// (time, track id, box) of person tracks over the last `history_s`.
    persons: VecDeque<(f64, u64, BBox)>,
    cands: Vec<Candidate>,
    /// Boxes of lost reference objects, with the time they were lost.
    footprints: Vec<(BBox, f64)>,
    state: State,
    next_serial: u64,
}

impl Dumping {
    pub fn new(p: DumpingParams) -> Self {
        Dumping {
            p,
            started: None,
            persons: VecDeque::new(),
            cands: Vec::new(),
            footprints: Vec::new(),
            state: State::Idle { rest_until: f64::NEG_INFINITY },
            next_serial: 1,
        }
    }

    /// True while an event is active.
    pub fn active(&self) -> bool {
        matches!(self.state, State::Active { .. })
    }

    /// The active event's object, as it is now.
    pub fn current(&self) -> Option<DumpedObject> {
        match self.state {
            State::Active { serial, .. } => self.cands.iter().find(|c| c.serial == serial).map(Candidate::object),
            State::Idle { .. } => None,
        }
    }

    /// Feeds one frame at stream time `ts` (s): all of the frame's tracks (any class, any
    /// place: person tracks anywhere can be the dumper), the static-foreground blobs (frame
    /// pixels) and the zone test. `in_zone(b)` must say whether box `b` is in the zone; the
    /// rule's semantics are "bottom-centre inside the polygon", e.g.
    /// `|b| { let (x, y) = b.bottom_center(); polygon.contains_px(x, y, w, h) }`.
    pub fn observe(&mut self, tracks: &[Track], blobs: &[BBox], in_zone: impl Fn(&BBox) -> bool, ts: f64) -> DumpingStep {
        let start = *self.started.get_or_insert(ts);
        let min_score = self.p.min_score;

        // persons, for the dumper
        for t in tracks.iter().filter(|t| t.score >= min_score && t.class == self.p.person_class) {
            self.persons.push_back((ts, t.id, t.bbox));
        }
        while self.persons.front().is_some_and(|&(t, _, _)| t < ts - self.p.history_s) {
            self.persons.pop_front();
        }

        // this frame's observations in the zone
        let is_waste = |t: &Track| t.score >= min_score && self.p.waste_classes.contains(&t.class);
        let mut obs: Vec<Obs> = tracks
            .iter()
            .filter(|t| is_waste(t) && in_zone(&t.bbox))
            .map(|t| Obs { bbox: t.bbox, class: &t.class, track_id: Some(t.id), source: Source::Track })
            .collect();
        for b in blobs {
            if !in_zone(b) {
                continue;
            }
            let explained = tracks.iter().any(|t| {
                if is_waste(t) {
                    t.bbox.iou(b) >= SAME_OBJECT_IOU
                } else {
                    t.score >= min_score && (t.bbox.iou(b) > EXPLAINED_IOU || intersection(&t.bbox, b) >= EXPLAINED_COVER * b.area())
                }
            });
            if !explained {
                obs.push(Obs { bbox: *b, class: UNKNOWN_CLASS, track_id: None, source: Source::Blob });
            }
        }

        // match observations to candidates: by track id, then by IoU
        for c in &mut self.cands {
            c.seen_now = false;
        }
        let mut used = vec![false; obs.len()];
        for (oi, o) in obs.iter().enumerate() {
            let Some(id) = o.track_id else { continue };
            if let Some(ci) = self.cands.iter().position(|c| !c.seen_now && c.track_id == Some(id)) {
                used[oi] = true;
                self.absorb(ci, o, ts);
            }
        }
        let mut pairs: Vec<(f32, usize, usize)> = Vec::new();
        for (oi, o) in obs.iter().enumerate().filter(|&(oi, _)| !used[oi]) {
            for (ci, c) in self.cands.iter().enumerate().filter(|(_, c)| !c.seen_now) {
                let compatible = o.class == c.class || o.class == UNKNOWN_CLASS || c.class == UNKNOWN_CLASS;
                let iou = o.bbox.iou(&c.bbox);
                if compatible && iou >= SAME_OBJECT_IOU {
                    pairs.push((iou, oi, ci));
                }
            }
        }
        pairs.sort_by(|a, b| b.0.total_cmp(&a.0));
        for (_, oi, ci) in pairs {
            if used[oi] || self.cands[ci].seen_now {
                continue;
            }
            used[oi] = true;
            self.absorb(ci, &obs[oi], ts);
        }
        for o in obs.iter().enumerate().filter(|&(oi, _)| !used[oi]).map(|(_, o)| o) {
            let in_start = ts - start <= self.p.grace_s;
            let footprint = self.footprints.iter().position(|f| f.0.iou(&o.bbox) >= FOOTPRINT_IOU);
            if let Some(fi) = footprint {
                self.footprints.swap_remove(fi);
            }
            let reference = in_start || footprint.is_some();
            let (dumper, appeared_ts) = if reference { (None, ts) } else { self.find_dumper(&o.bbox, o.source, ts) };
            self.cands.push(Candidate {
                serial: self.next_serial,
                class: o.class.to_string(),
                track_id: o.track_id,
                source: o.source,
                bbox: o.bbox,
                anchor: o.bbox,
                static_since: ts,
                appeared_ts,
                last_seen: ts,
                seen_now: true,
                reference,
                dumper,
            });
            self.next_serial += 1;
        }

        // forget pending candidates unseen for longer than the grace
        let active = match self.state {
            State::Active { serial, .. } => Some(serial),
            State::Idle { .. } => None,
        };
        let grace = self.p.grace_s;
        let footprints = &mut self.footprints;
        self.cands.retain(|c| {
            let keep = c.seen_now || Some(c.serial) == active || ts - c.last_seen <= grace;
            if !keep && c.reference {
                footprints.push((c.anchor, ts));
            }
            keep
        });
        self.footprints.retain(|f| ts - f.1 <= FOOTPRINT_FORGET_S);

        self.step(ts)
    }

    /// The event state machine, after this frame's candidates are updated.
    fn step(&mut self, ts: f64) -> DumpingStep {
        match self.state {
            State::Active { serial, last_report } => {
                let Some(ci) = self.cands.iter().position(|c| c.serial == serial) else {
                    // cannot happen: the active candidate is kept until the end
                    self.state = State::Idle { rest_until: ts + self.p.cooldown_s };
                    return DumpingStep::End;
                };
                let c = &self.cands[ci];
                if ts - c.last_seen >= self.p.clear_s {
                    self.cands.swap_remove(ci);
                    self.state = State::Idle { rest_until: ts + self.p.cooldown_s };
                    DumpingStep::End
                } else if c.seen_now && ts - last_report >= self.p.update_s {
                    self.state = State::Active { serial, last_report: ts };
                    DumpingStep::Update { object: c.object() }
                } else {
                    DumpingStep::Quiet
                }
            }
            State::Idle { rest_until } => {
                if ts < rest_until {
                    return DumpingStep::Quiet;
                }
                let due = self
                    .cands
                    .iter()
                    .filter(|c| !c.reference && ts - c.static_since >= self.p.dwell_s)
                    .min_by(|a, b| a.static_since.total_cmp(&b.static_since));
                match due {
                    Some(c) => {
                        self.state = State::Active { serial: c.serial, last_report: ts };
                        DumpingStep::Start { object: c.object() }
                    }
                    None => DumpingStep::Quiet,
                }
            }
        }
    }

    /// Continues candidate `ci` with observation `o`.
    fn absorb(&mut self, ci: usize, o: &Obs, ts: f64) {
        let is_active = matches!(self.state, State::Active { serial, .. } if serial == self.cands[ci].serial);
        let max_move = self.p.max_move;
        let c = &mut self.cands[ci];
        c.seen_now = true;
        c.last_seen = ts;
        if o.class != UNKNOWN_CLASS {
            if c.class != o.class {
                c.class = o.class.to_string();
            }
            c.track_id = o.track_id;
        }
        let still = is_still(&c.anchor, &o.bbox, max_move);
        let switched = c.source != o.source;
        c.bbox = o.bbox;
        c.source = o.source;
        if still {
            return;
        }
        c.anchor = o.bbox;
        if switched {
            // another view (track ↔ blob) of the same object: new anchor, same dwell
            return;
        }
        // it moved: a new object at a new place
        c.static_since = ts;
        c.reference = false;
        if !is_active {
            let (dumper, appeared) = self.find_dumper(&o.bbox, o.source, ts);
            let c = &mut self.cands[ci];
            c.dumper = dumper;
            c.appeared_ts = appeared;
        }
    }

    /// The person who brought an object now at `obj` (see the module doc), and the object's
    /// appearance time.
    fn find_dumper(&self, obj: &BBox, source: Source, ts: f64) -> (Option<Dumper>, f64) {
        struct Acc {
            id: u64,
            contacts: u32,
            first_contact: f64,
            last_contact: Option<(f64, BBox)>,
            nearest: (f32, f64, BBox),
        }
        let mut acc: Vec<Acc> = Vec::new();
        for &(t, id, b) in &self.persons {
            let h = b.height().max(1.0);
            let g = gap(&b, obj) / h;
            let a = match acc.iter_mut().position(|a| a.id == id) {
                Some(i) => &mut acc[i],
                None => {
                    acc.push(Acc { id, contacts: 0, first_contact: t, last_contact: None, nearest: (g, t, b) });
                    acc.last_mut().expect("just pushed")
                }
            };
            if g <= CONTACT {
                if a.contacts == 0 {
                    a.first_contact = t;
                }
                a.contacts += 1;
                a.last_contact = Some((t, b));
            }
            if g <= a.nearest.0 {
                a.nearest = (g, t, b);
            }
        }
        let last = |a: &Acc| a.last_contact.map(|c| c.0).unwrap_or(0.0);
        let by_contact = match source {
            // a detected object is anchored as it comes to rest: the person touching it then (the
            // latest contact) put it there, not a passer-by who crossed the spot earlier
            Source::Track => acc.iter().filter(|a| a.contacts > 0).max_by(|a, b| last(a).total_cmp(&last(b)).then(a.contacts.cmp(&b.contacts))),
            // a blob is confirmed seconds after it appeared: the most contacts, then the latest
            Source::Blob => acc.iter().filter(|a| a.contacts > 0).max_by(|a, b| a.contacts.cmp(&b.contacts).then(last(a).total_cmp(&last(b)))),
        };
        let (dumper, first_contact) = match by_contact {
            Some(a) => {
                let (seen_ts, bbox) = a.last_contact.expect("has contacts");
                (Some(Dumper { track_id: a.id, bbox, seen_ts }), Some(a.first_contact))
            }
            None => {
                let near = acc.iter().filter(|a| a.nearest.0 <= REACH).min_by(|a, b| a.nearest.0.total_cmp(&b.nearest.0));
                (near.map(|a| Dumper { track_id: a.id, bbox: a.nearest.2, seen_ts: a.nearest.1 }), None)
            }
        };
        let appeared = match source {
            Source::Track => ts,
            Source::Blob => first_contact.map_or(ts, |f| f.min(ts)),
        };
        (dumper, appeared)
    }
}

/// Whether `b` is still where `anchor` was: centre moved ≤ `max_move` × anchor height, or IoU
/// with the anchor ≥ 0.5.
fn is_still(anchor: &BBox, b: &BBox, max_move: f32) -> bool {
    let (ax, ay) = ((anchor.x1 + anchor.x2) * 0.5, (anchor.y1 + anchor.y2) * 0.5);
    let (bx, by) = ((b.x1 + b.x2) * 0.5, (b.y1 + b.y2) * 0.5);
    let moved = ((ax - bx).powi(2) + (ay - by).powi(2)).sqrt();
    moved <= max_move * anchor.height().max(1.0) || anchor.iou(b) >= STATIC_IOU
}

/// Area of the intersection of two boxes.
fn intersection(a: &BBox, b: &BBox) -> f32 {
    let ix = (a.x2.min(b.x2) - a.x1.max(b.x1)).max(0.0);
    let iy = (a.y2.min(b.y2) - a.y1.max(b.y1)).max(0.0);
    ix * iy
}

/// Euclidean gap between two boxes (0 when they touch or overlap).
fn gap(a: &BBox, b: &BBox) -> f32 {
    let dx = (a.x1 - b.x2).max(b.x1 - a.x2).max(0.0);
    let dy = (a.y1 - b.y2).max(b.y1 - a.y2).max(0.0);
    (dx * dx + dy * dy).sqrt()
}

#[cfg(test)]
mod tests;
