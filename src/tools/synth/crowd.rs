//! Where the people of a crowd or a file of walkers are at each moment (pure): the paths the
//! real-background renderer draws them along ([`super::real`]) and the truth counts them on.
//!
//! A crowd of `count` gathers at `at`: the k-th person appears `k * stagger_s` after `arrive`,
//! [`WALK_IN_S`] seconds' walk to the side of its place (alternately left and right), walks to
//! its place and stands there until `k * stagger_s` after `leave`, then walks off the other way
//! and is gone. Places fill an ellipse around `at` (half-width `spread`, half the depth: the
//! ground is seen at a slant), spaced like sunflower seeds so that no two coincide.

use super::scenario::Actor;

/// Seconds a person of a crowd takes to walk to its place, and away again.
pub const WALK_IN_S: f64 = 2.0;
/// How far to the side (picture widths) a crowd's person appears and disappears.
const WALK_IN_DX: f32 = 0.12;

/// One person of a crowd or a file of walkers: a path of `(t, point)` keys, linear in between;
/// the person is there from the first key to the last.
#[derive(Clone, Debug, PartialEq)]
pub struct Member {
    pub keys: Vec<(f64, [f32; 2])>,
}

impl Member {
    /// Ground point (normalised) at time `t`, or `None` when the person is not there.
    pub fn at(&self, t: f64) -> Option<[f32; 2]> {
        let (first, last) = (self.keys.first()?, self.keys.last()?);
        if t < first.0 || t >= last.0 {
            return None;
        }
        let k = self.keys.windows(2).find(|w| t < w[1].0)?;
        let (a, b) = (k[0], k[1]);
        let f = if b.0 > a.0 { ((t - a.0) / (b.0 - a.0)) as f32 } else { 1.0 };
        Some([a.1[0] + (b.1[0] - a.1[0]) * f, a.1[1] + (b.1[1] - a.1[1]) * f])
    }

    /// Whether the person stands still at `t` (not walking in, off or through).
    pub fn standing(&self, t: f64) -> bool {
        self.keys.windows(2).any(|w| t >= w[0].0 && t < w[1].0 && w[0].1 == w[1].1)
    }
}

/// The people of a `crowd` or `walkers` actor; none for other actors.
pub fn members(a: &Actor) -> Vec<Member> {
    match a {
        Actor::Crowd { at, count, arrive, leave, spread, stagger_s } => (0..*count as usize)
            .map(|k| {
                // sunflower spacing: radius grows with the square root, the golden angle apart
                let r = spread * ((k as f32 + 0.5) / *count as f32).sqrt();
                let th = k as f32 * 2.399_963;
                let place = [at[0] + r * th.cos(), at[1] + 0.5 * r * th.sin()];
                let side = if k % 2 == 0 { -WALK_IN_DX } else { WALK_IN_DX };
                let (come, go) = (arrive + k as f64 * stagger_s, leave + k as f64 * stagger_s);
                Member {
                    keys: vec![
                        (come, [place[0] + side, place[1]]),
                        (come + WALK_IN_S, place),
                        (go.max(come + WALK_IN_S), place),
                        (go.max(come + WALK_IN_S) + WALK_IN_S, [place[0] - side, place[1]]),
                    ],
                }
            })
            .collect(),
        Actor::Walkers { from, to, start, count, every_s, walk_s } => {
            (0..*count as usize).map(|k| Member { keys: vec![(start + k as f64 * every_s, *from), (start + k as f64 * every_s + walk_s, *to)] }).collect()
        }
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crowd(count: u32) -> Actor {
        Actor::Crowd { at: [0.3, 0.7], count, arrive: 10.0, leave: 30.0, spread: 0.06, stagger_s: 1.0 }
    }

    #[test]
    fn a_crowd_walks_in_one_by_one_stands_and_walks_off() {
        let m = members(&crowd(4));
        assert_eq!(m.len(), 4);
        // the third person appears at 12 s beside its place, stands there from 14 s to 32 s
        let p = m[2].keys[1].1;
        assert_eq!(m[2].at(11.9), None);
        assert!((m[2].at(12.0).unwrap()[0] - (p[0] - WALK_IN_DX)).abs() < 1e-6);
        assert!(!m[2].standing(13.0) && m[2].standing(14.0) && m[2].standing(31.9) && !m[2].standing(32.5));
        assert_eq!(m[2].at(20.0), Some(p));
        assert_eq!(m[2].at(34.0), None);
        // places are distinct and near the centre
        for (i, a) in m.iter().enumerate() {
            let pa = a.keys[1].1;
            assert!((pa[0] - 0.3).abs() <= 0.06 + 1e-6 && (pa[1] - 0.7).abs() <= 0.03 + 1e-6, "{pa:?}");
            for b in &m[i + 1..] {
                let pb = b.keys[1].1;
                assert!((pa[0] - pb[0]).abs() + (pa[1] - pb[1]).abs() > 0.01, "{pa:?} {pb:?}");
            }
        }
    }

    #[test]
    fn walkers_follow_each_other_along_their_line() {
        let w = Actor::Walkers { from: [0.0, 0.6], to: [0.5, 0.6], start: 5.0, count: 3, every_s: 4.0, walk_s: 10.0 };
        let m = members(&w);
        assert_eq!(m.len(), 3);
        assert_eq!(m[1].at(14.0), Some([0.25, 0.6]));
        assert!(!m[1].standing(14.0));
        assert_eq!(m[2].at(12.9), None);
        assert!(members(&Actor::WetShadow { center: [0.5, 0.5], size: [0.1, 0.1] }).is_empty());
    }
}
