//! Cars on a real background: the drawn street's car (see [`super::super::scene::car`]) cut
//! out once per car and placed anew each frame where its [`CarPath`] puts it, sized by the
//! ground plane. A real car is about 1.5 m tall (a van 2 m) against a person's 1.7 m, and about
//! three times as long as tall (4.5 m; a van 5 m): the cut-out's proportions are set to that,
//! and its height to that share of a person standing at the same place.

use super::super::canvas::Rng;
use super::super::render;
use super::super::scenario::{Actor, Scenario};
use super::super::scene::{self, CarLook};
use super::super::traffic::{self, CarPath};
use super::composite::{cut_out, Layer};
use super::GroundPlane;

/// A standing person's height, and a car's and a van's, in metres.
const PERSON_M: f32 = 1.7;
const CAR_M: f32 = 1.5;
const VAN_M: f32 = 2.0;
/// `CarLook::length` that makes the drawn car three times as long as tall (4.5 m by 1.5 m:
/// its body is 0.6·L units long and 0.245 units tall) and the van two and a half (5 m by 2 m:
/// 0.285 units tall).
const CAR_LENGTH: f32 = 3.0 * 0.245 / 0.6;
const VAN_LENGTH: f32 = 2.5 * 0.285 / 0.6;

/// One car of a scenario on a real background.
pub(super) struct Car {
    id: u32,
    /// The cut-out with its "person height" set so that the car gets its real height.
    cut: (u32, u32, Vec<[f32; 4]>, f32),
    path: CarPath,
}

/// The cars of actor `i` (a parked car or a queue). Their looks come from a generator of their
/// own, so adding cars changes nothing else of a scenario.
pub(super) fn of_actor(s: &Scenario, i: usize, a: &Actor) -> Vec<Car> {
    let mut rng = Rng::new(s.seed ^ (0xCA5 + i as u64 * 7919));
    let base = CarLook::random(&mut rng);
    let van = if let Actor::ParkedCar { van, .. } = a { *van } else { None };
    traffic::car_paths(a)
        .into_iter()
        .map(|path| {
            let mut look = traffic::look_of(base, path.k, van);
            look.length = if look.van { VAN_LENGTH } else { CAR_LENGTH };
            let (cw, ch, px, _) = cut_out(|c, x, y| {
                scene::car(c, x, y, &look);
            });
            let metres = if look.van { VAN_M } else { CAR_M };
            Car { id: render::object_id(i, 1 + path.k), cut: (cw, ch, px, ch as f32 * PERSON_M / metres), path }
        })
        .collect()
}

impl Car {
    /// The car's layer at time `t`, or `None` while it is off the picture.
    pub(super) fn layer_at(&self, t: f64, ground: &GroundPlane, median: &[u8], w: u32, h: u32) -> Option<Layer> {
        let [x, y] = self.path.at(t)?;
        Some(Layer::place(self.id, "vehicle", &self.cut, x * w as f32, y * h as f32, ground, median, w, h))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_car_is_sized_against_a_person_standing_where_it_stands() {
        let text = "seed = 3\nduration_s = 40\n[background]\nvideo = \"vtest\"\nstart_frame = 400\nend_frame = 500\n[[actor]]\nkind = \"parked_car\"\nat = [0.5, 0.7]\narrive = 5\nleave = 20\nvan = false\n";
        let s: Scenario = toml::from_str(text).unwrap();
        let cars = of_actor(&s, 0, &s.actors[0]);
        assert_eq!(cars.len(), 1);
        let (cw, ch, _, person) = &cars[0].cut;
        // 1.5 m of 1.7 m; three times as long as tall (the wheels and mirrors make it a bit more)
        assert!((*ch as f32 / person - CAR_M / PERSON_M).abs() < 1e-3);
        let aspect = *cw as f32 / *ch as f32;
        assert!((2.8..3.3).contains(&aspect), "{aspect}");
        let g = GroundPlane { k: super::super::VTEST_GROUND[0], c: super::super::VTEST_GROUND[1] };
        let (w, h) = (64u32, 48u32);
        let median = vec![128u8; (w * h * 3) as usize];
        assert!(cars[0].layer_at(0.0, &g, &median, w, h).is_none());
        let l = cars[0].layer_at(10.0, &g, &median, w, h).unwrap();
        assert_eq!(l.base, 0.7 * 48.0);
    }
}
