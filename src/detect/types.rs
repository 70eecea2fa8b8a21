//! What the detector hands to the rest of hawkeye.

use serde::{Deserialize, Serialize};

/// Axis-aligned box in frame pixel coordinates (x1, y1 top-left; x2, y2 bottom-right).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct BBox {
    pub x1: f32,
    pub y1: f32,
    pub x2: f32,
    pub y2: f32,
}

impl BBox {
    pub fn new(x1: f32, y1: f32, x2: f32, y2: f32) -> Self {
        BBox { x1, y1, x2, y2 }
    }
    pub fn width(&self) -> f32 {
        (self.x2 - self.x1).max(0.0)
    }
    pub fn height(&self) -> f32 {
        (self.y2 - self.y1).max(0.0)
    }
    pub fn area(&self) -> f32 {
        self.width() * self.height()
    }
    /// Centre point.
    pub fn center(&self) -> (f32, f32) {
        ((self.x1 + self.x2) * 0.5, (self.y1 + self.y2) * 0.5)
    }
    /// Bottom-centre point: where an object stands on the ground plane.
    pub fn bottom_center(&self) -> (f32, f32) {
        ((self.x1 + self.x2) * 0.5, self.y2)
    }
    /// Intersection over union; 0 when either box is empty.
    pub fn iou(&self, other: &BBox) -> f32 {
        let ix = (self.x2.min(other.x2) - self.x1.max(other.x1)).max(0.0);
        let iy = (self.y2.min(other.y2) - self.y1.max(other.y1)).max(0.0);
        let inter = ix * iy;
        let union = self.area() + other.area() - inter;
        if union <= 0.0 {
            0.0
        } else {
            inter / union
        }
    }
}

/// One detected object.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Detection {
    /// Class index in the model manifest's class list.
    pub class_id: usize,
    /// Class name from the model manifest.
    pub class: String,
    /// Combined confidence (objectness x class score where the layout has objectness).
    pub score: f32,
    pub bbox: BBox,
}
