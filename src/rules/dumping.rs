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
mod tests {
    use super::*;

    const FPS: f64 = 10.0;

    fn params() -> DumpingParams {
        DumpingParams { dwell_s: 10.0, grace_s: 2.0, clear_s: 5.0, cooldown_s: 30.0, update_s: 4.0, ..Default::default() }
    }

    fn track(id: u64, class: &str, bbox: BBox) -> Track {
        Track { id, class_id: 0, class: class.into(), score: 0.9, bbox, hits: 10, missed: 0, first_seen: 0.0, last_seen: 0.0 }
    }

    /// The zone: bottom-centre right of x = 500 (frame 1920×1080).
    fn in_zone(b: &BBox) -> bool {
        b.bottom_center().0 >= 500.0
    }

    /// Person 100×300 standing at centre x, feet at y = 800.
    fn person_box(x: f32) -> BBox {
        BBox::new(x - 50.0, 500.0, x + 50.0, 800.0)
    }

    /// Bag 40×40 at centre x, bottom at y = 780.
    fn bag_box(x: f32) -> BBox {
        BBox::new(x - 20.0, 740.0, x + 20.0, 780.0)
    }

    /// Walking person's centre x: from 100 at 250 px/s.
    fn walk(t: f64) -> f32 {
        100.0 + 250.0 * t as f32
    }

    /// Where the bag of the carried-bag scenes comes to rest.
    const REST_X: f32 = 100.0 + 250.0 * 5.0 + 40.0;

    /// Runs frames at 10 Hz over [0, `to`); `scene(t)` gives tracks and blobs. Returns
    /// (t, step) for every non-quiet step.
    fn run(d: &mut Dumping, to: f64, scene: impl Fn(f64) -> (Vec<Track>, Vec<BBox>)) -> Vec<(f64, DumpingStep)> {
        let mut out = Vec::new();
        let mut i = 0u64;
        loop {
            let t = i as f64 / FPS;
            if t >= to {
                break;
            }
            let (tracks, blobs) = scene(t);
            let s = d.observe(&tracks, &blobs, in_zone, t);
            if s != DumpingStep::Quiet {
                out.push((t, s));
            }
            i += 1;
        }
        out
    }

    /// Person 1 walks in carrying a bag (track `bag_id`), drops it at t = 5 and walks on; the
    /// bag stays while `bag_there(t)`.
    fn carried_then_dropped(t: f64, bag_id: impl Fn(f64) -> u64, bag_there: impl Fn(f64) -> bool) -> Vec<Track> {
        let mut v = Vec::new();
        if walk(t) < 1970.0 {
            v.push(track(1, "person", person_box(walk(t))));
        }
        let bag_x = if t < 5.0 { walk(t) + 40.0 } else { REST_X };
        if bag_there(t) {
            v.push(track(bag_id(t), "garbage", bag_box(bag_x)));
        }
        v
    }

    fn starts(steps: &[(f64, DumpingStep)]) -> Vec<(f64, DumpedObject)> {
        steps
            .iter()
            .filter_map(|(t, s)| match s {
                DumpingStep::Start { object } => Some((*t, object.clone())),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn dropped_bag_starts_after_dwell_with_its_dumper() {
        let mut d = Dumping::new(params());
        let steps = run(&mut d, 30.0, |t| (carried_then_dropped(t, |_| 2, |_| true), vec![]));
        let s = starts(&steps);
        assert_eq!(s.len(), 1, "{steps:?}");
        let (t, obj) = &s[0];
        assert!((15.0..=15.1 + 1e-9).contains(t), "start at {t}");
        assert_eq!(obj.class, "garbage");
        assert_eq!(obj.track_id, Some(2));
        assert!((obj.appeared_ts - 5.0).abs() < 0.11, "{obj:?}");
        let dumper = obj.dumper.expect("a dumper");
        assert_eq!(dumper.track_id, 1);
        assert!((dumper.seen_ts - 5.0).abs() < 0.11, "{dumper:?}");
        assert!(d.active());
        assert_eq!(d.current().map(|o| o.track_id), Some(Some(2)));
    }

    #[test]
    fn a_passer_by_who_crossed_the_spot_earlier_is_not_the_dumper() {
        // person 7 loiters over the spot from 0 to 4 s (many contacts), then walks off; person 1
        // brings the bag and puts it down at 5 s
        let mut d = Dumping::new(params());
        let steps = run(&mut d, 20.0, |t| {
            let mut v = carried_then_dropped(t, |_| 2, |_| true);
            if t < 4.0 {
                v.push(track(7, "person", person_box(REST_X + 10.0)));
            } else if t < 6.0 {
                v.push(track(7, "person", person_box(REST_X + 10.0 + 400.0 * (t - 4.0) as f32)));
            }
            (v, vec![])
        });
        let s = starts(&steps);
        assert_eq!(s.len(), 1, "{steps:?}");
        assert_eq!(s[0].1.dumper.expect("a dumper").track_id, 1, "{:?}", s[0].1);
    }

    #[test]
    fn bag_put_down_and_picked_up_before_dwell_never_alerts() {
        let mut d = Dumping::new(params());
        let steps = run(&mut d, 40.0, |t| {
            let mut v = Vec::new();
            if t < 8.0 && walk(t) < 1970.0 {
                v.push(track(1, "person", person_box(walk(t))));
            }
            let bag_x = if t < 5.0 {
                walk(t) + 40.0
            } else if t < 8.0 {
                REST_X
            } else {
                // person 3 picks it up at t = 8 and carries it out of the frame
                let x = REST_X - 40.0 + 250.0 * (t - 8.0) as f32;
                v.push(track(3, "person", person_box(x)));
                x + 40.0
            };
            if bag_x < 1960.0 {
                v.push(track(2, "garbage", bag_box(bag_x)));
            }
            (v, vec![])
        });
        assert!(steps.is_empty(), "{steps:?}");
        assert!(!d.active());
    }

    #[test]
    fn bag_present_from_the_start_is_reference() {
        let mut d = Dumping::new(params());
        let steps = run(&mut d, 60.0, |t| {
            // the detection flickers out for 5 s at t = 20 and returns with a new id
            let v = match t {
                t if t < 20.0 => vec![track(2, "garbage", bag_box(1000.0))],
                t if t < 25.0 => vec![],
                _ => vec![track(9, "garbage", bag_box(1002.0))],
            };
            (v, vec![])
        });
        assert!(steps.is_empty(), "{steps:?}");
    }

    #[test]
    fn reference_bag_moved_elsewhere_alerts_at_its_new_place() {
        let mut d = Dumping::new(params());
        let steps = run(&mut d, 40.0, |t| {
            let x = if t < 10.0 { 1000.0 } else { 1400.0 };
            (vec![track(2, "garbage", bag_box(x))], vec![])
        });
        let s = starts(&steps);
        assert_eq!(s.len(), 1, "{steps:?}");
        assert!((s[0].0 - 20.0).abs() < 1e-9, "{steps:?}");
    }

    #[test]
    fn short_occlusion_is_forgiven() {
        let mut d = Dumping::new(params());
        let steps = run(&mut d, 40.0, |t| {
            // no bag detection for 1 s from t = 8 (a pedestrian in front); afterwards the
            // tracker gives it a new id
            let mut v = carried_then_dropped(t, |t| if t < 9.0 { 2 } else { 7 }, |t| !(8.0..9.0).contains(&t));
            if (7.5..9.5).contains(&t) {
                v.push(track(5, "person", person_box(1600.0 - 200.0 * (t - 7.5) as f32)));
            }
            (v, vec![])
        });
        let s = starts(&steps);
        assert_eq!(s.len(), 1, "{steps:?}");
        assert!((15.0..=15.1 + 1e-9).contains(&s[0].0), "{steps:?}");
        assert_eq!(s[0].1.dumper.map(|d| d.track_id), Some(1));
        assert_eq!(s[0].1.track_id, Some(7));
    }

    #[test]
    fn long_gap_restarts_the_dwell() {
        let mut d = Dumping::new(params());
        let steps = run(&mut d, 40.0, |t| (carried_then_dropped(t, |_| 2, |t| !(8.0..11.0).contains(&t)), vec![]));
        let s = starts(&steps);
        assert_eq!(s.len(), 1, "{steps:?}");
        // seen again at 11 after a 3 s gap: a new candidate, static from 11; person 1 touched
        // its place within the history
        assert!((s[0].0 - 21.0).abs() < 1e-9, "{steps:?}");
        assert_eq!(s[0].1.appeared_ts, 11.0);
        assert_eq!(s[0].1.dumper.map(|d| d.track_id), Some(1));
    }

    #[test]
    fn updates_then_end_after_removal_plus_clear() {
        let mut d = Dumping::new(params());
        let steps = run(&mut d, 40.0, |t| (carried_then_dropped(t, |_| 2, |t| t < 20.0), vec![]));
        let kinds: Vec<(f64, &str)> = steps
            .iter()
            .map(|(t, s)| {
                let k = match s {
                    DumpingStep::Start { .. } => "start",
                    DumpingStep::Update { .. } => "update",
                    DumpingStep::End => "end",
                    DumpingStep::Quiet => "quiet",
                };
                (*t, k)
            })
            .collect();
        assert_eq!(kinds.len(), 3, "{kinds:?}");
        assert_eq!(kinds[0].1, "start");
        assert_eq!(kinds[1].1, "update");
        assert!((kinds[1].0 - 19.0).abs() < 0.11, "{kinds:?}");
        // last seen at 19.9, clear_s 5
        assert_eq!(kinds[2].1, "end");
        assert!((24.85..=25.05).contains(&kinds[2].0), "{kinds:?}");
        assert!(!d.active());
        assert_eq!(d.current(), None);
    }

    #[test]
    fn cooldown_holds_off_the_next_event() {
        let mut d = Dumping::new(params());
        let steps = run(&mut d, 80.0, |t| {
            let mut v = carried_then_dropped(t, |_| 2, |t| t < 20.0);
            // another bag appears at t = 26 elsewhere in the zone and stays
            if t >= 26.0 {
                v.push(track(4, "garbage", bag_box(800.0)));
            }
            (v, vec![])
        });
        let end = steps.iter().find(|s| s.1 == DumpingStep::End).map(|s| s.0).expect("an end");
        let s = starts(&steps);
        assert_eq!(s.len(), 2, "{steps:?}");
        // the second bag dwelt from 26 (due at 36) but waits for the cooldown
        assert!(s[1].0 >= end + 30.0 - 1e-9 && s[1].0 <= end + 30.1 + 1e-9, "end {end}, {steps:?}");
        assert_eq!(s[1].1.track_id, Some(4));
        assert_eq!(s[1].1.appeared_ts, 26.0);
    }

    #[test]
    fn unknown_static_blob_starts_with_class_unknown() {
        let mut d = Dumping::new(params());
        let place = bag_box(REST_X);
        let steps = run(&mut d, 40.0, |t| {
            let mut v = Vec::new();
            // person 1 walks to the place, stands there 5..6 s, walks on
            let x = if t < 5.0 {
                walk(t)
            } else if t < 6.0 {
                walk(5.0)
            } else {
                walk(t - 1.0)
            };
            if x < 1970.0 {
                v.push(track(1, "person", person_box(x)));
            }
            // static_fg reports the blob from t = 12
            let blobs = if t >= 12.0 { vec![place] } else { vec![] };
            (v, blobs)
        });
        let s = starts(&steps);
        assert_eq!(s.len(), 1, "{steps:?}");
        let (t, obj) = &s[0];
        assert!((*t - 22.0).abs() < 1e-9, "{steps:?}");
        assert_eq!(obj.class, UNKNOWN_CLASS);
        assert_eq!(obj.track_id, None);
        assert_eq!(obj.dumper.map(|d| d.track_id), Some(1));
        // the person reached the place just before 5 s: the before-snapshot comes from then
        assert!(obj.appeared_ts > 4.0 && obj.appeared_ts <= 5.0, "{obj:?}");
    }

    #[test]
    fn blob_on_a_standing_person_or_parked_car_is_ignored() {
        let mut d = Dumping::new(params());
        let steps = run(&mut d, 60.0, |t| {
            let person = person_box(1000.0);
            let car = BBox::new(1300.0, 600.0, 1700.0, 850.0);
            let tracks = vec![track(1, "person", person), track(2, "car", car)];
            // blobs from t = 8: the person's legs, and the car's lower half
            let blobs =
                if t >= 8.0 { vec![BBox::new(960.0, 700.0, 1040.0, 800.0), BBox::new(1280.0, 700.0, 1720.0, 850.0)] } else { vec![] };
            (tracks, blobs)
        });
        assert!(steps.is_empty(), "{steps:?}");
    }

    #[test]
    fn blob_and_garbage_track_are_one_object() {
        let mut d = Dumping::new(params());
        let steps = run(&mut d, 40.0, |t| {
            // the detector loses the bag at t = 20; static_fg sees it from t = 12 on
            let v = carried_then_dropped(t, |_| 2, |t| t < 20.0);
            let blobs = if t >= 12.0 { vec![BBox::new(REST_X - 23.0, 737.0, REST_X + 22.0, 783.0)] } else { vec![] };
            (v, blobs)
        });
        let s = starts(&steps);
        assert_eq!(s.len(), 1, "{steps:?}");
        assert!((15.0..=15.1 + 1e-9).contains(&s[0].0));
        assert_eq!(s[0].1.class, "garbage");
        assert!(!steps.iter().any(|s| s.1 == DumpingStep::End), "the blob keeps it present: {steps:?}");
        let last = steps.last().expect("steps");
        match &last.1 {
            DumpingStep::Update { object } => assert_eq!(object.class, "garbage"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bag_dropped_outside_the_zone_is_ignored() {
        let mut d = Dumping::new(params());
        let steps = run(&mut d, 40.0, |t| {
            let x = if t < 1.0 { walk(t) } else { walk(1.0) };
            (vec![track(2, "garbage", bag_box(x))], vec![])
        });
        assert!(steps.is_empty(), "{steps:?}");
    }
}
