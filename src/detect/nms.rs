//! Greedy per-class non-maximum suppression, done in place (no allocation per frame).

use super::yolo::Candidate;

/// Keeps, per class, the highest-scoring boxes that overlap no better-scoring kept box of the
/// same class by more than `iou_threshold`. Boxes of different classes never suppress each
/// other. `cands` ends up holding the kept boxes, best score first, at most `max_keep` of them.
pub fn nms_per_class(cands: &mut Vec<Candidate>, iou_threshold: f32, max_keep: usize) {
    cands.sort_unstable_by(|a, b| b.score.total_cmp(&a.score));
    let mut kept = 0;
    for i in 0..cands.len() {
        if kept == max_keep {
            break;
        }
        let c = cands[i];
        let suppressed = cands[..kept]
            .iter()
            .any(|k| k.class_id == c.class_id && k.bbox.iou(&c.bbox) > iou_threshold);
        if !suppressed {
            cands[kept] = c;
            kept += 1;
        }
    }
    cands.truncate(kept);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::BBox;

    fn cand(class_id: usize, score: f32, x1: f32, y1: f32, x2: f32, y2: f32) -> Candidate {
        Candidate {
            class_id,
            score,
            bbox: BBox::new(x1, y1, x2, y2),
        }
    }

    #[test]
    fn iou_of_known_boxes() {
        let a = BBox::new(0.0, 0.0, 10.0, 10.0);
        assert_eq!(a.iou(&a), 1.0);
        assert_eq!(a.iou(&BBox::new(20.0, 20.0, 30.0, 30.0)), 0.0);
        // Half overlap: 50 / 150.
        assert!((a.iou(&BBox::new(5.0, 0.0, 15.0, 10.0)) - 1.0 / 3.0).abs() < 1e-6);
        assert_eq!(a.iou(&BBox::new(3.0, 3.0, 3.0, 9.0)), 0.0);
    }

    #[test]
    fn suppresses_within_a_class_only() {
        let mut c = vec![
            cand(0, 0.6, 1.0, 1.0, 11.0, 11.0), // overlaps the best person → dropped
            cand(0, 0.9, 0.0, 0.0, 10.0, 10.0), // best person
            cand(2, 0.5, 0.0, 0.0, 10.0, 10.0), // same place, other class → kept
            cand(0, 0.7, 50.0, 50.0, 60.0, 60.0), // far away person → kept
        ];
        nms_per_class(&mut c, 0.45, 100);
        let got: Vec<(usize, f32)> = c.iter().map(|k| (k.class_id, k.score)).collect();
        assert_eq!(got, vec![(0, 0.9), (0, 0.7), (2, 0.5)]);
    }

    #[test]
    fn threshold_is_strict_and_cap_applies() {
        // IoU exactly 1/3: kept at threshold 1/3 + epsilon, dropped below it.
        let base = vec![
            cand(1, 0.9, 0.0, 0.0, 10.0, 10.0),
            cand(1, 0.8, 5.0, 0.0, 15.0, 10.0),
        ];
        let mut c = base.clone();
        nms_per_class(&mut c, 0.34, 10);
        assert_eq!(c.len(), 2);
        let mut c = base.clone();
        nms_per_class(&mut c, 0.3, 10);
        assert_eq!(c.len(), 1);
        let mut c = base;
        nms_per_class(&mut c, 0.9, 1);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].score, 0.9);
    }
}
