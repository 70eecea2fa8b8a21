//! Which detector classes answer for which truth class. Truth boxes carry hawkeye's classes
//! (person, goods, garbage, water, bicycle, vehicle); a detector may name them differently: the
//! COCO-based urban model has no "vehicle" but `car`, `bus` and `truck`, and many classes no
//! truth box ever has (chair, umbrella, …). Detection scores are per truth class: a detection
//! counts under the truth class its model class maps to here, and one whose class maps to none
//! is not scored at all (counted as `unscored`), since no truth says whether it is right.
//!
//! | truth class | model classes |
//! |---|---|
//! | person | person |
//! | goods | goods |
//! | garbage | garbage |
//! | water | water (the old detector's boxes; the new model's water is a mask) |
//! | bicycle | bicycle |
//! | vehicle | vehicle (the old detector), car, bus, truck |

/// Truth class → the model classes that count for it.
pub const CLASS_MAP: [(&str, &[&str]); 6] = [
    ("person", &["person"]),
    ("goods", &["goods"]),
    ("garbage", &["garbage"]),
    ("water", &["water"]),
    ("bicycle", &["bicycle"]),
    ("vehicle", &["vehicle", "car", "bus", "truck"]),
];

/// The truth class a detection of `model_class` is scored as, if any.
pub fn truth_class(model_class: &str) -> Option<&'static str> {
    CLASS_MAP.iter().find(|(_, models)| models.contains(&model_class)).map(|(truth, _)| *truth)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coco_vehicles_count_as_vehicle_and_strangers_not_at_all() {
        for c in ["car", "bus", "truck", "vehicle"] {
            assert_eq!(truth_class(c), Some("vehicle"), "{c}");
        }
        for c in ["person", "goods", "garbage", "bicycle", "water"] {
            assert_eq!(truth_class(c), Some(c));
        }
        for c in ["chair", "motorcycle", "umbrella", "Person"] {
            assert_eq!(truth_class(c), None, "{c}");
        }
    }

    #[test]
    fn a_car_detection_finds_a_vehicle_truth_box() {
        use crate::tools::eval::metrics::{detection_report, Det, DetFrame};
        use crate::tools::synth::truth::{FrameTruth, Truth, TruthBox};
        let b = [10.0, 10.0, 90.0, 50.0];
        let truth = Truth { fps: 10.0, frames: vec![FrameTruth { t: 0.0, boxes: vec![TruthBox { class: "vehicle".into(), id: 1, bbox: b }] }], ..Default::default() };
        let det = |class: &str, score| Det { class: class.into(), score, bbox: b, track_id: None };
        let frames = [DetFrame { t: 0.0, dets: vec![det("car", 0.9), det("chair", 0.8), det("truck", 0.4)] }];
        let r = detection_report(&truth, &frames, 0.5, 0.3);
        let v = r.classes.iter().find(|c| c.class == "vehicle").unwrap();
        // the car matches; the truck on the same box is a duplicate, so a false positive
        assert_eq!((v.gt, v.dets, v.tp, v.fp), (1, 2, 1, 1));
        assert_eq!(r.unscored_dets, 1);
        assert!(r.classes.iter().all(|c| c.class != "chair" && c.class != "car"));
    }

    #[test]
    fn classes_the_truth_does_not_label_are_not_scored() {
        use crate::tools::eval::metrics::{detection_report, Det, DetFrame};
        use crate::tools::synth::truth::{FrameTruth, Truth, TruthBox};
        let bag = [10.0, 10.0, 30.0, 30.0];
        let boxes = vec![TruthBox { class: "garbage".into(), id: 1, bbox: bag }];
        let truth = Truth { fps: 10.0, frames: vec![FrameTruth { t: 0.0, boxes }], labelled: Some(vec!["goods".into(), "garbage".into()]), ..Default::default() };
        let det = |class: &str, b| Det { class: class.into(), score: 0.9, bbox: b, track_id: None };
        // a real passer-by and a real car: right or wrong, no truth says
        let frames = [DetFrame { t: 0.0, dets: vec![det("garbage", bag), det("person", [50.0, 0.0, 70.0, 60.0]), det("car", [100.0, 0.0, 200.0, 60.0])] }];
        let r = detection_report(&truth, &frames, 0.5, 0.3);
        assert_eq!(r.unscored_dets, 2);
        let person = r.classes.iter().find(|c| c.class == "person").unwrap();
        assert_eq!((person.dets, person.fp), (0, 0));
        let g = r.classes.iter().find(|c| c.class == "garbage").unwrap();
        assert_eq!((g.tp, g.fp), (1, 0));
    }
}
