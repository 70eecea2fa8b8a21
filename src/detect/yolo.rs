//! Pure decoders for YOLO-family output tensors: raw `&[f32]` + shape in, candidate boxes in
//! model-input pixels out. No I/O and no ONNX Runtime here, so every layout is unit-tested with
//! hand-built tensors.

use super::manifest::{Layout, Manifest};
use super::types::BBox;

/// A box before NMS, in model-input pixel coordinates.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Candidate {
    pub class_id: usize,
    pub score: f32,
    pub bbox: BBox,
}

/// What a decoder needs to know about the model.
#[derive(Clone, Debug, PartialEq)]
pub struct DecodeSpec {
    pub layout: Layout,
    pub num_classes: usize,
    pub input_width: u32,
    pub input_height: u32,
    /// YOLOX grid strides, in output order.
    pub strides: Vec<u32>,
}

impl DecodeSpec {
    /// The decode parameters a manifest implies.
    pub fn from_manifest(m: &Manifest) -> Self {
        DecodeSpec {
            layout: m.layout,
            num_classes: m.classes.len(),
            input_width: m.input_width,
            input_height: m.input_height,
            strides: m.strides.clone(),
        }
    }

    /// Number of YOLOX anchor points: one per grid cell over all strides.
    fn yolox_anchors(&self) -> usize {
        self.strides
            .iter()
            .map(|s| (self.input_width / s) as usize * (self.input_height / s) as usize)
            .sum()
    }

    /// The output shape this spec expects; `None` in a dimension means "any".
    pub fn expected_shape(&self) -> [Option<usize>; 3] {
        let c = self.num_classes;
        match self.layout {
            Layout::Yolox => [Some(1), Some(self.yolox_anchors()), Some(5 + c)],
            Layout::Yolov5 => [Some(1), None, Some(5 + c)],
            Layout::Yolov8 => [Some(1), Some(4 + c), None],
        }
    }

    /// Checks a (possibly partly dynamic: negative dims) output shape against the layout.
    pub fn check_shape(&self, shape: &[i64]) -> Result<(), DecodeError> {
        let expected = self.expected_shape();
        let ok = shape.len() == 3
            && shape.iter().zip(expected).all(|(got, want)| match want {
                _ if *got < 0 => true,
                Some(w) => *got as usize == w,
                None => *got > 0,
            });
        if ok {
            Ok(())
        } else {
            Err(DecodeError::ShapeMismatch {
                shape: format_shape(shape),
                layout: self.layout,
                num_classes: self.num_classes,
                expected: format!(
                    "[{}]",
                    expected
                        .iter()
                        .map(|d| d.map_or("N".to_string(), |v| v.to_string()))
                        .collect::<Vec<_>>()
                        .join(",")
                ),
            })
        }
    }
}

/// Why an output tensor cannot be decoded.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum DecodeError {
    #[error(
        "model output {shape} does not match layout {layout} with {num_classes} classes \
         (expected {expected}); check the manifest's layout and classes"
    )]
    ShapeMismatch {
        shape: String,
        layout: Layout,
        num_classes: usize,
        expected: String,
    },
    #[error("model output holds {got} values but its shape {shape} needs {expected}")]
    DataLength {
        shape: String,
        expected: usize,
        got: usize,
    },
}

/// `[1,3549,85]` style, as people write shapes.
pub fn format_shape(shape: &[i64]) -> String {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    format!("[{}]", dims.join(","))
}

/// Decodes `data` (with `shape`) into `out` (cleared first), keeping only candidates whose
/// score reaches `score_threshold`. Each anchor yields at most one candidate, its best class.
pub fn decode(
    spec: &DecodeSpec,
    data: &[f32],
    shape: &[i64],
    score_threshold: f32,
    out: &mut Vec<Candidate>,
) -> Result<(), DecodeError> {
    out.clear();
    spec.check_shape(shape)?;
    let expected: usize = shape.iter().map(|d| *d as usize).product();
    if data.len() != expected {
        return Err(DecodeError::DataLength {
            shape: format_shape(shape),
            expected,
            got: data.len(),
        });
    }
    let c = spec.num_classes;
    match spec.layout {
        Layout::Yolox => decode_yolox(spec, data, c, score_threshold, out),
        Layout::Yolov5 => decode_yolov5(data, c, score_threshold, out),
        Layout::Yolov8 => decode_yolov8(data, shape[2] as usize, c, score_threshold, out),
    }
    Ok(())
}

/// Highest class score and its index.
fn best_class(scores: &[f32]) -> (usize, f32) {
    let mut best = (0, f32::MIN);
    for (i, s) in scores.iter().enumerate() {
        if *s > best.1 {
            best = (i, *s);
        }
    }
    best
}

fn from_center(cx: f32, cy: f32, w: f32, h: f32) -> BBox {
    BBox::new(cx - w * 0.5, cy - h * 0.5, cx + w * 0.5, cy + h * 0.5)
}

fn decode_yolox(spec: &DecodeSpec, data: &[f32], c: usize, thr: f32, out: &mut Vec<Candidate>) {
    // Layout [1, N, 5+C], row i = [raw_cx, raw_cy, raw_w, raw_h, obj, cls_0 .. cls_{C-1}].
    // Rows run over strides in order; within a stride, over grid rows (y) then columns (x):
    //   cx = (raw_cx + gx) * stride, cy = (raw_cy + gy) * stride,
    //   w = exp(raw_w) * stride,     h = exp(raw_h) * stride,   score = obj * cls.
    let row_len = 5 + c;
    let mut rows = data.chunks_exact(row_len);
    for &stride in &spec.strides {
        let (gw, gh) = (spec.input_width / stride, spec.input_height / stride);
        let s = stride as f32;
        for gy in 0..gh {
            for gx in 0..gw {
                let Some(r) = rows.next() else { return };
                let obj = r[4];
                // score = obj * cls <= obj, so most anchors stop here.
                if obj < thr {
                    continue;
                }
                let (class_id, cls) = best_class(&r[5..]);
                let score = obj * cls;
                if score < thr {
                    continue;
                }
                let cx = (r[0] + gx as f32) * s;
                let cy = (r[1] + gy as f32) * s;
                let (w, h) = (r[2].exp() * s, r[3].exp() * s);
                out.push(Candidate {
                    class_id,
                    score,
                    bbox: from_center(cx, cy, w, h),
                });
            }
        }
    }
}

fn decode_yolov5(data: &[f32], c: usize, thr: f32, out: &mut Vec<Candidate>) {
    // Layout [1, N, 5+C], row i = [cx, cy, w, h, obj, cls_0 .. cls_{C-1}], boxes already in
    // input pixels; score = obj * cls.
    for r in data.chunks_exact(5 + c) {
        let obj = r[4];
        if obj < thr {
            continue;
        }
        let (class_id, cls) = best_class(&r[5..]);
        let score = obj * cls;
        if score >= thr {
            out.push(Candidate {
                class_id,
                score,
                bbox: from_center(r[0], r[1], r[2], r[3]),
            });
        }
    }
}

fn decode_yolov8(data: &[f32], n: usize, c: usize, thr: f32, out: &mut Vec<Candidate>) {
    // Layout [1, 4+C, N] (channels first): value (k, i) at data[k * N + i], where
    // k = 0..4 is cx, cy, w, h in input pixels and k = 4 + j the score of class j.
    // No objectness: score = max_j cls_j.
    let at = |k: usize, i: usize| data[k * n + i];
    for i in 0..n {
        let mut best = (0usize, f32::MIN);
        for j in 0..c {
            let s = at(4 + j, i);
            if s > best.1 {
                best = (j, s);
            }
        }
        if best.1 >= thr {
            out.push(Candidate {
                class_id: best.0,
                score: best.1,
                bbox: from_center(at(0, i), at(1, i), at(2, i), at(3, i)),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(layout: Layout, c: usize, w: u32, h: u32, strides: &[u32]) -> DecodeSpec {
        DecodeSpec {
            layout,
            num_classes: c,
            input_width: w,
            input_height: h,
            strides: strides.to_vec(),
        }
    }

    fn approx(a: &BBox, b: &BBox) -> bool {
        [(a.x1, b.x1), (a.y1, b.y1), (a.x2, b.x2), (a.y2, b.y2)]
            .iter()
            .all(|(p, q)| (p - q).abs() < 1e-4)
    }

    #[test]
    fn yolox_grid_decoding() {
        // 32x16 input, strides 8 and 16: grids 4x2 (8 rows) then 2x1 (2 rows); 2 classes.
        let s = spec(Layout::Yolox, 2, 32, 16, &[8, 16]);
        let mut data = vec![0.0f32; 10 * 7];
        // Stride 8, cell (gx=3, gy=1) is row 1*4+3 = 7.
        let r = &mut data[7 * 7..8 * 7];
        r.copy_from_slice(&[0.5, 0.25, 0.0, 2f32.ln(), 0.9, 0.1, 0.8]);
        // Stride 16, cell (gx=1, gy=0) is row 8 + 1 = 9; below threshold after obj*cls.
        data[9 * 7..10 * 7].copy_from_slice(&[0.0, 0.0, 0.0, 0.0, 0.5, 0.5, 0.0]);
        let mut out = Vec::new();
        decode(&s, &data, &[1, 10, 7], 0.3, &mut out).unwrap();
        assert_eq!(out.len(), 1);
        let c = out[0];
        assert_eq!(c.class_id, 1);
        assert!((c.score - 0.72).abs() < 1e-6);
        // cx = (0.5+3)*8 = 28, cy = (0.25+1)*8 = 10, w = 1*8, h = 2*8.
        assert!(
            approx(&c.bbox, &BBox::new(24.0, 2.0, 32.0, 18.0)),
            "{:?}",
            c.bbox
        );

        // Lower threshold admits the stride-16 anchor: cx = (0+1)*16, w = h = 16.
        decode(&s, &data, &[1, 10, 7], 0.2, &mut out).unwrap();
        assert_eq!(out.len(), 2);
        assert!(approx(&out[1].bbox, &BBox::new(8.0, -8.0, 24.0, 8.0)));
    }

    #[test]
    fn yolov5_rows_are_decoded_boxes() {
        let s = spec(Layout::Yolov5, 3, 64, 64, &[]);
        #[rustfmt::skip]
        let data = [
            10.0, 20.0, 4.0, 8.0, 0.8, 0.1, 0.2, 0.9,
            30.0, 30.0, 2.0, 2.0, 0.1, 0.9, 0.9, 0.9,
        ];
        let mut out = Vec::new();
        decode(&s, &data, &[1, 2, 8], 0.25, &mut out).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].class_id, 2);
        assert!((out[0].score - 0.72).abs() < 1e-6);
        assert!(approx(&out[0].bbox, &BBox::new(8.0, 16.0, 12.0, 24.0)));
    }

    #[test]
    fn yolov8_is_channels_first() {
        // 2 classes, 3 anchors: tensor [1, 6, 3], one row per channel.
        let s = spec(Layout::Yolov8, 2, 64, 64, &[]);
        #[rustfmt::skip]
        let data = [
            10.0, 40.0, 50.0, // cx
            10.0, 40.0, 50.0, // cy
             4.0,  6.0,  2.0, // w
             2.0,  6.0,  2.0, // h
             0.1,  0.3,  0.0, // class 0
             0.7,  0.2,  0.1, // class 1
        ];
        let mut out = Vec::new();
        decode(&s, &data, &[1, 6, 3], 0.25, &mut out).unwrap();
        assert_eq!(out.len(), 2);
        assert_eq!((out[0].class_id, out[0].score), (1, 0.7));
        assert!(approx(&out[0].bbox, &BBox::new(8.0, 9.0, 12.0, 11.0)));
        assert_eq!((out[1].class_id, out[1].score), (0, 0.3));
        assert!(approx(&out[1].bbox, &BBox::new(37.0, 37.0, 43.0, 43.0)));
    }

    #[test]
    fn shape_mismatch_is_explained() {
        let s = spec(Layout::Yolov8, 80, 416, 416, &[8, 16, 32]);
        let e = s.check_shape(&[1, 3549, 85]).unwrap_err().to_string();
        assert!(
            e.starts_with("model output [1,3549,85] does not match layout yolov8 with 80 classes"),
            "{e}"
        );
        let x = spec(Layout::Yolox, 80, 416, 416, &[8, 16, 32]);
        x.check_shape(&[1, 3549, 85]).unwrap();
        x.check_shape(&[-1, -1, 85]).unwrap();
        let e = x.check_shape(&[1, 3549, 84]).unwrap_err().to_string();
        assert!(e.contains("expected [1,3549,85]"), "{e}");
        assert!(spec(Layout::Yolov5, 80, 640, 640, &[])
            .check_shape(&[1, 25200, 85])
            .is_ok());
        assert!(spec(Layout::Yolov8, 80, 640, 640, &[])
            .check_shape(&[1, 84, 8400])
            .is_ok());
        assert!(spec(Layout::Yolov8, 80, 640, 640, &[])
            .check_shape(&[1, 8400, 84])
            .is_err());
    }

    #[test]
    fn data_length_must_match_shape() {
        let s = spec(Layout::Yolov5, 1, 8, 8, &[]);
        let mut out = Vec::new();
        let e = decode(&s, &[0.0; 5], &[1, 2, 6], 0.5, &mut out).unwrap_err();
        assert!(matches!(
            e,
            DecodeError::DataLength {
                expected: 12,
                got: 5,
                ..
            }
        ));
    }
}
