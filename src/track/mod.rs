//! Multi-object tracking: gives detections stable ids across frames so alerts can name the
//! objects involved. Greedy IoU association per class, highest IoU first; a track survives
//! `max_missed` frames without a match (short occlusions) and is confirmed after `min_hits`.
//! Pure logic, no I/O.

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
    /// Minimum IoU for a detection to continue a track.
    pub iou_match: f32,
    /// Frames a track may go unmatched before it is dropped.
    pub max_missed: u32,
    /// Matches needed before a track is reported.
    pub min_hits: u32,
}

impl Default for TrackerParams {
    fn default() -> Self {
        TrackerParams { iou_match: 0.3, max_missed: 10, min_hits: 2 }
    }
}

/// IoU tracker state for one camera.
#[derive(Debug, Default)]
pub struct Tracker {
    params: TrackerParams,
    tracks: Vec<Track>,
    next_id: u64,
}

impl Tracker {
    pub fn new(params: TrackerParams) -> Self {
        Tracker { params, tracks: Vec::new(), next_id: 1 }
    }

    /// Feeds one frame's detections at stream time `ts`; returns the confirmed tracks matched in
    /// this frame (tracks coasting through a miss are kept internally but not returned).
    pub fn update(&mut self, detections: &[Detection], ts: f64) -> Vec<Track> {
        // All (track, detection) pairs of the same class above the IoU gate, best first.
        let mut pairs: Vec<(f32, usize, usize)> = Vec::new();
        for (ti, t) in self.tracks.iter().enumerate() {
            for (di, d) in detections.iter().enumerate() {
                if t.class_id == d.class_id {
                    let iou = t.bbox.iou(&d.bbox);
                    if iou >= self.params.iou_match {
                        pairs.push((iou, ti, di));
                    }
                }
            }
        }
        pairs.sort_by(|a, b| b.0.total_cmp(&a.0));
        let mut track_used = vec![false; self.tracks.len()];
        let mut det_used = vec![false; detections.len()];
        for (_, ti, di) in pairs {
            if track_used[ti] || det_used[di] {
                continue;
            }
            track_used[ti] = true;
            det_used[di] = true;
            let t = &mut self.tracks[ti];
            let d = &detections[di];
            t.bbox = d.bbox;
            t.score = d.score;
            t.hits += 1;
            t.missed = 0;
            t.last_seen = ts;
        }
        for (ti, used) in track_used.iter().enumerate() {
            if !used {
                self.tracks[ti].missed += 1;
            }
        }
        let max_missed = self.params.max_missed;
        self.tracks.retain(|t| t.missed <= max_missed);
        for (di, d) in detections.iter().enumerate() {
            if !det_used[di] {
                self.tracks.push(Track {
                    id: self.next_id,
                    class_id: d.class_id,
                    class: d.class.clone(),
                    score: d.score,
                    bbox: d.bbox,
                    hits: 1,
                    missed: 0,
                    first_seen: ts,
                    last_seen: ts,
                });
                self.next_id += 1;
            }
        }
        self.tracks
            .iter()
            .filter(|t| t.missed == 0 && t.hits >= self.params.min_hits)
            .cloned()
            .collect()
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

    fn det(class_id: usize, x: f32) -> Detection {
        Detection { class_id, class: format!("c{class_id}"), score: 0.9, bbox: BBox::new(x, 10.0, x + 20.0, 50.0) }
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
}
