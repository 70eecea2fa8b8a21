//! Cars that stop: a car that drives in, parks and drives off (`parked_car`), and a queue that
//! stops at a light and moves on (`queue`). Each car follows a [`CarPath`] along a ground line:
//! in from one side at a steady speed, braking over the last half second, standing still from
//! `arrive` to `leave`, then pulling away the same way to the other side. The drawn street and
//! the real-background renderer draw the same paths, and the truth ([`parking_events`]) comes
//! from them.

use serde::Deserialize;

use super::scenario::{Actor, Scenario};
use super::scene::CarLook;
use super::truth::TruthEvent;
use crate::config::Zone;
use crate::rules::Polygon;

/// Driving speed, picture widths per second (about 128 px/s at 640 px).
const SPEED: f32 = 0.2;
/// Seconds of braking before a stop and of pulling away after it.
const BRAKE_S: f32 = 0.5;
/// Normalised x beyond which a car is off the picture (its midpoint; a car is at most ~0.4
/// widths long).
const OFF_LEFT: f32 = -0.25;
const OFF_RIGHT: f32 = 1.25;
/// Seconds between the cars of a queue pulling away.
const QUEUE_PULL_S: f64 = 1.0;

/// The side of the picture a car comes from or goes to.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    #[default]
    Left,
    Right,
}

impl Side {
    fn edge(self) -> f32 {
        match self {
            Side::Left => OFF_LEFT,
            Side::Right => OFF_RIGHT,
        }
    }
}

/// One car's way through the picture.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CarPath {
    /// Ground line (normalised y) and where it stands (normalised x of its ground midpoint).
    pub y: f32,
    pub stop_x: f32,
    /// Standing still from `arrive` until `leave`.
    pub arrive: f64,
    pub leave: f64,
    pub from: Side,
    pub to: Side,
    /// Which car of its actor (0 for a parked car; the place in a queue).
    pub k: usize,
}

/// Distance (picture widths) a car covers in `dt` seconds from standing, braking or pulling
/// away over [`BRAKE_S`] and at [`SPEED`] after.
fn covered(dt: f32) -> f32 {
    if dt <= BRAKE_S {
        SPEED * dt * dt / (2.0 * BRAKE_S)
    } else {
        SPEED * (dt - BRAKE_S * 0.5)
    }
}

impl CarPath {
    /// The car's ground point at `t`, or `None` while it is off the picture.
    pub fn at(&self, t: f64) -> Option<[f32; 2]> {
        let x = if t < self.arrive {
            let d = covered((self.arrive - t) as f32);
            let dir = if self.from == Side::Left { -1.0 } else { 1.0 };
            let x = self.stop_x + dir * d;
            if (self.from == Side::Left && x < OFF_LEFT) || (self.from == Side::Right && x > OFF_RIGHT) {
                return None;
            }
            x
        } else if t < self.leave {
            self.stop_x
        } else {
            let d = covered((t - self.leave) as f32);
            let dir = if self.to == Side::Left { -1.0 } else { 1.0 };
            let x = self.stop_x + dir * d;
            if (self.to == Side::Left && x < OFF_LEFT) || (self.to == Side::Right && x > OFF_RIGHT) {
                return None;
            }
            x
        };
        Some([x, self.y])
    }

    /// The stop point (normalised ground midpoint).
    pub fn stop(&self) -> [f32; 2] {
        [self.stop_x, self.y]
    }

    /// Seconds the car needs to drive in from off the picture.
    pub fn drive_in_s(&self) -> f64 {
        let d = (self.stop_x - self.from.edge()).abs();
        (d / SPEED + BRAKE_S * 0.5) as f64
    }
}

/// The car paths of an actor (none for actors that are not stopping cars).
pub fn car_paths(a: &Actor) -> Vec<CarPath> {
    match a {
        Actor::ParkedCar { at, arrive, leave, from, to, .. } => {
            vec![CarPath { y: at[1], stop_x: at[0], arrive: *arrive, leave: *leave, from: *from, to: *to, k: 0 }]
        }
        Actor::Queue { y, stop_x, cars, arrive, leave, from, every_s, spacing } => {
            // the first car stops at the light; each next one a car length behind it, arriving
            // `every_s` later; they pull away in order, each `QUEUE_PULL_S` after the one ahead
            let back = if *from == Side::Left { -1.0 } else { 1.0 };
            let to = if *from == Side::Left { Side::Right } else { Side::Left };
            (0..*cars as usize)
                .map(|k| CarPath {
                    y: *y,
                    stop_x: stop_x + back * spacing * k as f32,
                    arrive: arrive + every_s * k as f64,
                    leave: leave + QUEUE_PULL_S * k as f64,
                    from: *from,
                    to,
                    k,
                })
                .collect()
        }
        _ => Vec::new(),
    }
}

/// The look of car `k` of an actor whose first car looks like `base` (a queue's cars differ
/// in colour and length); `van` overrides the body style.
pub fn look_of(base: CarLook, k: usize, van: Option<bool>) -> CarLook {
    const BODIES: [[u8; 3]; 6] = [[200, 200, 205], [30, 30, 35], [160, 30, 30], [40, 70, 140], [120, 125, 130], [230, 230, 230]];
    let mut look = base;
    if k > 0 {
        look.body = BODIES[(k * 5 + base.body[0] as usize) % BODIES.len()];
        look.length = 0.9 + 0.25 * ((k * 7 % 11) as f32 / 10.0);
        look.van = k % 4 == 3;
    }
    if let Some(v) = van {
        look.van = v;
    }
    look
}

/// Truth parking events of zone `z` (a parking zone) whose polygon is drawn on a `w`×`h`
/// picture: every car that stands with its ground point in the zone for at least `dwell_s` is
/// parked from `arrive + dwell_s` to `leave`; parked spells that overlap or lie within
/// `clear_s` of each other are one event (the rule's event lasts while any vehicle is parked),
/// which starts when its first car stopped.
pub fn parking_events(s: &Scenario, z: &Zone) -> Vec<TruthEvent> {
    let poly = Polygon::new(&z.polygon);
    let (w, h) = (s.width, s.height);
    let mut spells: Vec<(f64, f64)> = s
        .actors
        .iter()
        .flat_map(car_paths)
        .filter(|p| p.leave - p.arrive >= z.dwell_s && poly.contains_px(p.stop_x * w as f32, p.y * h as f32, w, h))
        .map(|p| (p.arrive, p.leave.min(s.duration_s)))
        .collect();
    spells.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut events: Vec<(f64, f64)> = Vec::new();
    for (a, b) in spells {
        match events.last_mut() {
            // parked from a + dwell; the running event is still on until its end + clear_s
            Some(last) if a + z.dwell_s <= last.1 + z.clear_s => last.1 = last.1.max(b),
            _ => events.push((a, b)),
        }
    }
    events.into_iter().map(|(start, end)| TruthEvent { kind: "parking".into(), zone: z.id.clone(), start, end, dwell_s: z.dwell_s }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario(actors: &str) -> Scenario {
        let text = format!(
            "seed = 1\nduration_s = 120\n[[zone]]\nid = \"kerb\"\nkind = \"parking\"\npolygon = [[0.3, 0.6], [0.7, 0.6], [0.7, 0.9], [0.3, 0.9]]\ndwell_s = 20\nclear_s = 5\n{actors}"
        );
        toml::from_str(&text).unwrap()
    }

    #[test]
    fn a_car_drives_in_brakes_stands_and_drives_off() {
        let p = CarPath { y: 0.8, stop_x: 0.5, arrive: 10.0, leave: 30.0, from: Side::Left, to: Side::Right, k: 0 };
        assert_eq!(p.at(10.0), Some([0.5, 0.8]));
        assert_eq!(p.at(29.9), Some([0.5, 0.8]));
        // braking: a quarter of a second before the stop it is 0.0125 widths short of it
        let x = p.at(9.75).unwrap()[0];
        assert!((0.5 - x - 0.0125).abs() < 1e-4, "{x}");
        // steady speed further out, coming from the left and leaving to the right
        assert!((p.at(8.0).unwrap()[0] - (0.5 - 0.2 * 1.75)).abs() < 1e-4);
        assert!(p.at(32.0).unwrap()[0] > 0.8);
        assert_eq!(p.at(0.0), None);
        assert_eq!(p.at(40.0), None);
        assert!((p.drive_in_s() - (0.75 / 0.2 + 0.25)).abs() < 1e-6);
    }

    #[test]
    fn a_queue_stops_nose_to_tail_and_pulls_away_in_order() {
        let s = scenario("[[actor]]\nkind = \"queue\"\ny = 0.8\nstop_x = 0.6\ncars = 3\narrive = 5\nleave = 30\nfrom = \"right\"\nspacing = 0.1\n");
        let paths = car_paths(&s.actors[0]);
        assert_eq!(paths.len(), 3);
        for (p, x) in paths.iter().zip([0.6, 0.7, 0.8]) {
            assert!((p.stop_x - x).abs() < 1e-6, "{paths:?}");
        }
        assert_eq!(paths.iter().map(|p| p.to).collect::<Vec<_>>(), vec![Side::Left; 3]);
        assert!(paths[1].arrive > paths[0].arrive && paths[1].leave > paths[0].leave);
    }

    #[test]
    fn truth_counts_stops_in_the_zone_that_last_the_dwell_merging_overlaps() {
        let s = scenario(
            "[[actor]]\nkind = \"parked_car\"\nat = [0.5, 0.8]\narrive = 10\nleave = 50\n\
             [[actor]]\nkind = \"parked_car\"\nat = [0.4, 0.7]\narrive = 30\nleave = 80\n\
             [[actor]]\nkind = \"parked_car\"\nat = [0.5, 0.8]\narrive = 85\nleave = 100\nvan = true\n\
             [[actor]]\nkind = \"parked_car\"\nat = [0.9, 0.8]\narrive = 85\nleave = 119\n\
             [[actor]]\nkind = \"queue\"\ny = 0.75\nstop_x = 0.5\ncars = 2\narrive = 100\nleave = 110\n\
             [[actor]]\nkind = \"parked_car\"\nat = [0.6, 0.8]\narrive = 90\nleave = 119\n",
        );
        let z = &s.parsed_zones().unwrap()[0];
        let ev: Vec<(f64, f64)> = parking_events(&s, z).iter().map(|e| (e.start, e.end)).collect();
        // the first two: the second is parked (50 s) before the first has been gone clear_s,
        // so one event from 10 s to 80 s; the van (15 s), the car outside the zone and the
        // queue (10 s) are not parking; the last car is parked 29 s
        assert_eq!(ev, vec![(10.0, 80.0), (90.0, 119.0)]);
        assert!(parking_events(&s, z).iter().all(|e| e.kind == "parking" && e.dwell_s == 20.0));
    }
}
