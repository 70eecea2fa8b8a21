//! Multi-object tracking: gives detections stable ids across frames so alerts can name the
//! objects involved. ByteTrack-style: every track's box is predicted with a constant-velocity
//! model; high-score detections are matched first against all live tracks, then low-score
//! detections (often the same object half occluded) are matched against the tracks still
//! unmatched, so a dip in confidence does not end a track. Tracks are born tentative and
//! confirmed after `min_hits` matches (birth hysteresis), and survive `max_missed` frames
//! without a match (death hysteresis). Matching is per class, greedy by IoU. Pure logic.

use crate::detect::{BBox, Detection};

/// One tracked object.
#[derive(Clone, Debug, PartialEq)]
pub struct Track {
    pub id: u64,
    pub class_id: usize,
    pub class: String,
    pub score: f32,
    pub bbox: BBox,
    /// Matched detections so far.
    pub hits: u32,
    /// Consecutive frames without a match.
    pub missed: u32,
    /// Stream time of the first and the latest match.
    pub first_seen: f64,
    pub last_seen: f64,
}

/// Tracker settings.
#[derive(Clone, Copy, Debug)]
pub struct TrackerParams {
    /// Detections at or above this score are "high" (first association stage, may start tracks).
    pub high_score: f32,
    /// Minimum IoU between a predicted track box and a high-score detection.
    pub iou_match: f32,
    /// Minimum IoU for the second stage (low-score detections): stricter, as they are less sure.
    pub iou_match_low: f32,
    /// Frames a track may go unmatched before it is dropped.
    pub max_missed: u32,
    /// Matches needed before a track is reported.
    pub min_hits: u32,
}

impl Default for TrackerParams {
    fn default() -> Self {
        TrackerParams { high_score: 0.5, iou_match: 0.3, iou_match_low: 0.5, max_missed: 10, min_hits: 2 }
    }
}

/// Internal track state: the public view plus motion.
#[derive(Clone, Debug)]
struct State {
    t: Track,
    /// Velocity of the box centre and size per frame (pixels), smoothed.
    vel: [f32; 4],
}

impl State {
    /// Box expected in the next frame (constant velocity, `missed + 1` frames ahead).
    fn predicted(&self) -> BBox {
        let k = (self.t.missed + 1) as f32;
        let [cx, cy, w, h] = cxcywh(&self.t.bbox);
        from_cxcywh([cx + self.vel[0] * k, cy + self.vel[1] * k, (w + self.vel[2] * k).max(1.0), (h + self.vel[3] * k).max(1.0)])
    }

    fn absorb(&mut self, d: &Detection, ts: f64) {
        let old = cxcywh(&self.t.bbox);
        let new = cxcywh(&d.bbox);
        let frames = (self.t.missed + 1) as f32;
        for i in 0..4 {
            let v = (new[i] - old[i]) / frames;
            // exponential smoothing keeps one noisy box from throwing the prediction off
            self.vel[i] = if self.t.hits <= 1 { v } else { 0.6 * self.vel[i] + 0.4 * v };
        }
        self.t.bbox = d.bbox;
        self.t.score = d.score;
        self.t.hits += 1;
        self.t.missed = 0;
        self.t.last_seen = ts;
    }
}

fn cxcywh(b: &BBox) -> [f32; 4] {
    [(b.x1 + b.x2) * 0.5, (b.y1 + b.y2) * 0.5, b.width(), b.height()]
}

fn from_cxcywh(v: [f32; 4]) -> BBox {
    BBox::new(v[0] - v[2] * 0.5, v[1] - v[3] * 0.5, v[0] + v[2] * 0.5, v[1] + v[3] * 0.5)
}

/// Tracker state for one camera.
#[derive(Debug, Default)]
pub struct Tracker {
    params: TrackerParams,
    tracks: Vec<State>,
    next_id: u64,
}

impl Tracker {
    pub fn new(params: TrackerParams) -> Self {
        Tracker { params, tracks: Vec::new(), next_id: 1 }
    }

    /// Greedy best-IoU matching of `dets` (indices into `detections`) to the tracks not yet
    /// matched; marks both sides used.
    fn associate(&mut self, detections: &[Detection], dets: &[usize], track_used: &mut [bool], min_iou: f32, ts: f64) -> Vec<usize> {
        let predicted: Vec<BBox> = self.tracks.iter().map(State::predicted).collect();
        let mut pairs: Vec<(f32, usize, usize)> = Vec::new();
        for (ti, s) in self.tracks.iter().enumerate() {
            if track_used[ti] {
                continue;
            }
            for &di in dets {
                let d = &detections[di];
                if s.t.class_id == d.class_id {
                    let iou = predicted[ti].iou(&d.bbox).max(s.t.bbox.iou(&d.bbox));
                    if iou >= min_iou {
                        pairs.push((iou, ti, di));
                    }
                }
            }
        }
        pairs.sort_by(|a, b| b.0.total_cmp(&a.0));
        let mut det_used: Vec<usize> = Vec::new();
        for (_, ti, di) in pairs {
            if track_used[ti] || det_used.contains(&di) {
                continue;
            }
            track_used[ti] = true;
            det_used.push(di);
            self.tracks[ti].absorb(&detections[di], ts);
        }
        dets.iter().copied().filter(|d| !det_used.contains(d)).collect()
    }

    /// Feeds one frame's detections at stream time `ts`; returns the confirmed tracks matched in
    /// this frame (tracks coasting through a miss are kept internally but not returned).
    pub fn update(&mut self, detections: &[Detection], ts: f64) -> Vec<Track> {
        let p = self.params;
        let (high, low): (Vec<usize>, Vec<usize>) = (0..detections.len()).partition(|&i| detections[i].score >= p.high_score);
        let mut track_used = vec![false; self.tracks.len()];
        // stage 1: confident detections against every live track
        let unmatched_high = self.associate(detections, &high, &mut track_used, p.iou_match, ts);
        // stage 2: unsure detections only continue existing tracks, never start new ones
        self.associate(detections, &low, &mut track_used, p.iou_match_low, ts);
        for (ti, used) in track_used.iter().enumerate() {
            if !used {
                self.tracks[ti].t.missed += 1;
            }
        }
        self.tracks.retain(|s| s.t.missed <= p.max_missed);
        for di in unmatched_high {
            let d = &detections[di];
            self.tracks.push(State {
                t: Track {
                    id: self.next_id,
                    class_id: d.class_id,
                    class: d.class.clone(),
                    score: d.score,
                    bbox: d.bbox,
                    hits: 1,
                    missed: 0,
                    first_seen: ts,
                    last_seen: ts,
                },
                vel: [0.0; 4],
            });
            self.next_id += 1;
        }
        self.tracks.iter().filter(|s| s.t.missed == 0 && s.t.hits >= p.min_hits).map(|s| s.t.clone()).collect()
    }

    /// Number of live tracks (confirmed or not).
    pub fn len(&self) -> usize {
        self.tracks.len()
    }

    /// True when nothing is tracked.
    pub fn is_empty(&self) -> bool {
        self.tracks.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn det_s(class_id: usize, x: f32, score: f32) -> Detection {
        Detection { class_id, class: format!("c{class_id}"), score, bbox: BBox::new(x, 10.0, x + 20.0, 50.0) }
    }

    fn det(class_id: usize, x: f32) -> Detection {
        det_s(class_id, x, 0.9)
    }

    #[test]
    fn moving_object_keeps_its_id() {
        let mut tr = Tracker::new(TrackerParams::default());
        assert!(tr.update(&[det(0, 0.0)], 0.0).is_empty(), "not confirmed after one hit");
        let mut ids = Vec::new();
        for i in 1..10 {
            let out = tr.update(&[det(0, i as f32 * 3.0)], i as f64);
            assert_eq!(out.len(), 1);
            ids.push(out[0].id);
        }
        assert!(ids.iter().all(|&id| id == ids[0]));
        assert_eq!(tr.len(), 1);
    }

    #[test]
    fn classes_do_not_match_each_other() {
        let mut tr = Tracker::new(TrackerParams { min_hits: 1, ..Default::default() });
        let a = tr.update(&[det(0, 0.0)], 0.0);
        let b = tr.update(&[det(1, 0.0)], 1.0);
        assert_ne!(a[0].id, b[0].id);
    }

    #[test]
    fn short_gap_survives_long_gap_does_not() {
        let p = TrackerParams { min_hits: 1, max_missed: 2, ..Default::default() };
        let mut tr = Tracker::new(p);
        let id = tr.update(&[det(0, 0.0)], 0.0)[0].id;
        tr.update(&[], 1.0);
        tr.update(&[], 2.0);
        assert_eq!(tr.update(&[det(0, 1.0)], 3.0)[0].id, id, "2 missed frames are tolerated");
        for t in 4..7 {
            tr.update(&[], t as f64);
        }
        assert_ne!(tr.update(&[det(0, 1.0)], 7.0)[0].id, id, "3 missed frames end the track");
    }

    #[test]
    fn two_crossing_objects_get_best_iou_matches() {
        let mut tr = Tracker::new(TrackerParams { min_hits: 1, ..Default::default() });
        let first = tr.update(&[det(0, 0.0), det(0, 100.0)], 0.0);
        let second = tr.update(&[det(0, 102.0), det(0, 2.0)], 1.0);
        let id_at = |v: &[Track], x: f32| v.iter().find(|t| (t.bbox.x1 - x).abs() < 5.0).unwrap().id;
        assert_eq!(id_at(&first, 0.0), id_at(&second, 2.0));
        assert_eq!(id_at(&first, 100.0), id_at(&second, 102.0));
    }

    #[test]
    fn a_confidence_dip_continues_the_track_but_never_starts_one() {
        let mut tr = Tracker::new(TrackerParams { min_hits: 1, ..Default::default() });
        let id = tr.update(&[det(0, 0.0)], 0.0)[0].id;
        // half occluded: score 0.35, still the same object
        assert_eq!(tr.update(&[det_s(0, 1.0, 0.35)], 1.0)[0].id, id);
        // a lone low-score detection elsewhere starts nothing
        assert!(tr.update(&[det(0, 2.0), det_s(0, 300.0, 0.35)], 2.0).iter().all(|t| t.id == id));
        assert_eq!(tr.len(), 1);
    }

    #[test]
    fn motion_prediction_bridges_a_gap_for_a_fast_object() {
        // 8 px per frame on a 20 px wide box: after a missed frame the last box and the new one
        // overlap by IoU 0.11 only, but the predicted box matches exactly
        let mut tr = Tracker::new(TrackerParams { min_hits: 1, ..Default::default() });
        let mut id = 0;
        for i in 0..4 {
            let out = tr.update(&[det(0, i as f32 * 8.0)], i as f64);
            assert_eq!(out.len(), 1);
            id = out[0].id;
        }
        tr.update(&[], 4.0);
        let out = tr.update(&[det(0, 5.0 * 8.0)], 5.0);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].id, id);
        assert_eq!(tr.len(), 1);
    }
}
