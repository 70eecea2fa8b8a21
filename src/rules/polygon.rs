//! Zone polygons in normalised image coordinates.

/// A simple polygon with vertices in normalised (0..1) image coordinates.
#[derive(Clone, Debug, PartialEq)]
pub struct Polygon {
    pts: Vec<(f64, f64)>,
}

impl Polygon {
    pub fn new(points: &[[f64; 2]]) -> Self {
        Polygon { pts: points.iter().map(|p| (p[0], p[1])).collect() }
    }

    /// Vertices in normalised coordinates.
    pub fn points(&self) -> &[(f64, f64)] {
        &self.pts
    }

    /// Absolute area (shoelace formula), in normalised units.
    pub fn area(&self) -> f64 {
        let n = self.pts.len();
        let mut s = 0.0;
        for i in 0..n {
            let (x1, y1) = self.pts[i];
            let (x2, y2) = self.pts[(i + 1) % n];
            s += x1 * y2 - x2 * y1;
        }
        (s * 0.5).abs()
    }

    /// Even-odd ray-casting test for a normalised point.
    pub fn contains(&self, x: f64, y: f64) -> bool {
        let n = self.pts.len();
        let mut inside = false;
        let mut j = n.wrapping_sub(1);
        for i in 0..n {
            let (xi, yi) = self.pts[i];
            let (xj, yj) = self.pts[j];
            if (yi > y) != (yj > y) && x < (xj - xi) * (y - yi) / (yj - yi) + xi {
                inside = !inside;
            }
            j = i;
        }
        inside
    }

    /// Whether a point given in pixels of a `w`×`h` frame lies inside.
    pub fn contains_px(&self, x: f32, y: f32, w: u32, h: u32) -> bool {
        self.contains(x as f64 / w as f64, y as f64 / h as f64)
    }

    /// Vertices scaled to a `w`×`h` frame, in pixels.
    pub fn to_pixels(&self, w: u32, h: u32) -> Vec<(f32, f32)> {
        self.pts.iter().map(|&(x, y)| ((x * w as f64) as f32, (y * h as f64) as f32)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn square_contains_inside_points_only() {
        let p = Polygon::new(&[[0.1, 0.1], [0.5, 0.1], [0.5, 0.5], [0.1, 0.5]]);
        assert!(p.contains(0.3, 0.3));
        assert!(!p.contains(0.6, 0.3));
        assert!(!p.contains(0.05, 0.05));
        assert!((p.area() - 0.16).abs() < 1e-9);
    }

    #[test]
    fn concave_polygon() {
        // a "U": the notch between the arms is outside
        let p = Polygon::new(&[[0.0, 0.0], [0.3, 0.0], [0.3, 0.6], [0.6, 0.6], [0.6, 0.0], [0.9, 0.0], [0.9, 0.9], [0.0, 0.9]]);
        assert!(p.contains(0.1, 0.3));
        assert!(!p.contains(0.45, 0.3));
        assert!(p.contains(0.45, 0.8));
    }

    #[test]
    fn pixel_coordinates_scale() {
        let p = Polygon::new(&[[0.5, 0.5], [1.0, 0.5], [1.0, 1.0], [0.5, 1.0]]);
        assert!(p.contains_px(500.0, 400.0, 640, 480));
        assert!(!p.contains_px(100.0, 400.0, 640, 480));
        assert_eq!(p.to_pixels(640, 480)[0], (320.0, 240.0));
    }

    #[test]
    fn collinear_points_have_no_area() {
        assert_eq!(Polygon::new(&[[0.1, 0.1], [0.2, 0.2], [0.3, 0.3]]).area(), 0.0);
    }
}
