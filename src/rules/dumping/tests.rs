//! Unit tests of the dumping rule, one per clause of its semantics.

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
