//! Letterboxing: resize a packed RGB frame keeping its aspect ratio into the model's NCHW f32
//! input, pad the rest, and map boxes from model coordinates back to frame pixels.
//!
//! The resize samples the source at `(d + 0.5) / scale - 0.5` (pixel-centre aligned bilinear,
//! like OpenCV's `INTER_LINEAR`) using the same single `scale` that [`Letterbox::to_frame`]
//! inverts, so the mapping back to the frame is exact rather than off by rounding.

use super::manifest::{Alignment, ColorOrder, Manifest};
use super::types::BBox;

/// Mapping between frame pixels and model-input pixels: `model = frame * scale + pad`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Letterbox {
    pub scale: f32,
    pub pad_x: f32,
    pub pad_y: f32,
    pub frame_width: u32,
    pub frame_height: u32,
}

impl Letterbox {
    /// Geometry for a `frame_w`×`frame_h` frame in an `input_w`×`input_h` model input.
    pub fn new(frame_w: u32, frame_h: u32, input_w: u32, input_h: u32, align: Alignment) -> Self {
        let scale = (input_w as f32 / frame_w as f32).min(input_h as f32 / frame_h as f32);
        let (rw, rh) = resized_size(frame_w, frame_h, input_w, input_h, scale);
        let (pad_x, pad_y) = match align {
            Alignment::TopLeft => (0, 0),
            Alignment::Center => ((input_w - rw) / 2, (input_h - rh) / 2),
        };
        Letterbox {
            scale,
            pad_x: pad_x as f32,
            pad_y: pad_y as f32,
            frame_width: frame_w,
            frame_height: frame_h,
        }
    }

    /// Maps a box in model-input pixels to frame pixels, clamped to the frame.
    pub fn to_frame(&self, b: &BBox) -> BBox {
        let (w, h) = (self.frame_width as f32, self.frame_height as f32);
        let fx = |x: f32| ((x - self.pad_x) / self.scale).clamp(0.0, w);
        let fy = |y: f32| ((y - self.pad_y) / self.scale).clamp(0.0, h);
        BBox::new(fx(b.x1), fy(b.y1), fx(b.x2), fy(b.y2))
    }

    /// Maps a box in frame pixels to model-input pixels (the inverse of [`Letterbox::to_frame`]).
    pub fn to_model(&self, b: &BBox) -> BBox {
        BBox::new(
            b.x1 * self.scale + self.pad_x,
            b.y1 * self.scale + self.pad_y,
            b.x2 * self.scale + self.pad_x,
            b.y2 * self.scale + self.pad_y,
        )
    }
}

/// Size of the resized image inside the input, never larger than the input.
fn resized_size(frame_w: u32, frame_h: u32, input_w: u32, input_h: u32, scale: f32) -> (u32, u32) {
    let rw = ((frame_w as f32 * scale).round() as u32).clamp(1, input_w);
    let rh = ((frame_h as f32 * scale).round() as u32).clamp(1, input_h);
    (rw, rh)
}

/// Why a frame could not be letterboxed.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum LetterboxError {
    #[error("frame {width}x{height} needs {expected} RGB bytes but got {got}")]
    FrameSize {
        width: u32,
        height: u32,
        expected: usize,
        got: usize,
    },
    #[error("model input buffer holds {got} values but {expected} are needed")]
    InputSize { expected: usize, got: usize },
}

/// Interpolation weights are fixed point with 11 fractional bits (as OpenCV's resize).
const WEIGHT_BITS: u32 = 11;
const ONE: u32 = 1 << WEIGHT_BITS;

/// One output column or row: the two source samples and the weight of the second (0..=ONE).
#[derive(Clone, Copy, Debug, Default)]
struct Tap {
    i0: u32,
    i1: u32,
    w1: u32,
}

/// Reusable letterboxer for one model input; caches its interpolation tables per frame size so
/// the per-frame path does no allocation.
#[derive(Debug)]
pub struct Letterboxer {
    input_w: u32,
    input_h: u32,
    align: Alignment,
    /// Which source channel (0=R, 1=G, 2=B) feeds each output plane.
    channel_of_plane: [usize; 3],
    value_scale: f32,
    pad_value: f32,
    /// Frame size the tables below were built for.
    cached: Option<(u32, u32)>,
    geometry: Option<Letterbox>,
    xs: Vec<Tap>,
    ys: Vec<Tap>,
    /// Every column tap lands exactly on a source pixel (no horizontal blending needed).
    whole_x: bool,
}

impl Letterboxer {
    /// A letterboxer for the model described by `manifest`.
    pub fn new(manifest: &Manifest) -> Self {
        Letterboxer {
            input_w: manifest.input_width,
            input_h: manifest.input_height,
            align: manifest.letterbox,
            channel_of_plane: match manifest.color {
                ColorOrder::Rgb => [0, 1, 2],
                ColorOrder::Bgr => [2, 1, 0],
            },
            value_scale: manifest.scale,
            pad_value: manifest.pad_value as f32 * manifest.scale,
            cached: None,
            geometry: None,
            xs: Vec::with_capacity(manifest.input_width as usize),
            ys: Vec::with_capacity(manifest.input_height as usize),
            whole_x: false,
        }
    }

    /// Number of f32 values in the NCHW input (`3 * height * width`).
    pub fn input_len(&self) -> usize {
        3 * self.input_w as usize * self.input_h as usize
    }

    /// Builds the interpolation tables for a frame size (only when it changes).
    fn prepare(&mut self, frame_w: u32, frame_h: u32) -> Letterbox {
        if self.cached == Some((frame_w, frame_h)) {
            if let Some(g) = self.geometry {
                return g;
            }
        }
        let g = Letterbox::new(frame_w, frame_h, self.input_w, self.input_h, self.align);
        let (rw, rh) = resized_size(frame_w, frame_h, self.input_w, self.input_h, g.scale);
        fill_taps(&mut self.xs, rw, frame_w, g.scale);
        fill_taps(&mut self.ys, rh, frame_h, g.scale);
        self.whole_x = self.xs.iter().all(|t| t.w1 == 0);
        self.cached = Some((frame_w, frame_h));
        self.geometry = Some(g);
        g
    }

    /// Letterboxes `rgb` (packed rows, `width*height*3` bytes) into `out` (NCHW, one image).
    pub fn run(
        &mut self,
        rgb: &[u8],
        width: u32,
        height: u32,
        out: &mut [f32],
    ) -> Result<Letterbox, LetterboxError> {
        let expected = width as usize * height as usize * 3;
        if width == 0 || height == 0 || rgb.len() != expected {
            return Err(LetterboxError::FrameSize {
                width,
                height,
                expected,
                got: rgb.len(),
            });
        }
        if out.len() != self.input_len() {
            return Err(LetterboxError::InputSize {
                expected: self.input_len(),
                got: out.len(),
            });
        }
        let g = self.prepare(width, height);
        let (iw, ih) = (self.input_w as usize, self.input_h as usize);
        let plane = iw * ih;
        let (px, py) = (g.pad_x as usize, g.pad_y as usize);
        let (rw, rh) = (self.xs.len(), self.ys.len());
        let stride = width as usize * 3;
        let (vs, pad) = (self.value_scale / (ONE * ONE) as f32, self.pad_value);
        let [c0, c1, c2] = self.channel_of_plane;
        let (p0, rest) = out.split_at_mut(plane);
        let (p1, p2) = rest.split_at_mut(plane);

        for oy in 0..ih {
            let row = oy * iw..(oy + 1) * iw;
            let (r0, r1, r2) = (&mut p0[row.clone()], &mut p1[row.clone()], &mut p2[row]);
            if oy < py || oy >= py + rh {
                r0.fill(pad);
                r1.fill(pad);
                r2.fill(pad);
                continue;
            }
            r0[..px].fill(pad);
            r1[..px].fill(pad);
            r2[..px].fill(pad);
            r0[px + rw..].fill(pad);
            r1[px + rw..].fill(pad);
            r2[px + rw..].fill(pad);

            let ty = self.ys[oy - py];
            let top = &rgb[ty.i0 as usize * stride..][..stride];
            let bot = &rgb[ty.i1 as usize * stride..][..stride];
            let (v0, v1) = (ONE - ty.w1, ty.w1);
            let dst = (
                &mut r0[px..px + rw],
                &mut r1[px..px + rw],
                &mut r2[px..px + rw],
            );
            if self.whole_x && ty.w1 == 0 {
                // Every sample falls on a source pixel (scale 1, e.g. a frame GStreamer already
                // scaled to the input width): a plain copy, a third of the work.
                let vs1 = self.value_scale;
                for (k, tx) in self.xs.iter().enumerate() {
                    let a = tx.i0 as usize * 3;
                    let p = &top[a..a + 3];
                    dst.0[k] = p[c0] as f32 * vs1;
                    dst.1[k] = p[c1] as f32 * vs1;
                    dst.2[k] = p[c2] as f32 * vs1;
                }
                continue;
            }
            for (k, tx) in self.xs.iter().enumerate() {
                let (a, b) = (tx.i0 as usize * 3, tx.i1 as usize * 3);
                // The four neighbours: top-left, top-right, bottom-left, bottom-right.
                let (tl, tr) = (&top[a..a + 3], &top[b..b + 3]);
                let (bl, br) = (&bot[a..a + 3], &bot[b..b + 3]);
                let (h0, h1) = (ONE - tx.w1, tx.w1);
                // Fixed point: weights are Q11, so a sample is Q22; 255 << 22 fits in u32.
                let sample = |c: usize| {
                    let upper = tl[c] as u32 * h0 + tr[c] as u32 * h1;
                    let lower = bl[c] as u32 * h0 + br[c] as u32 * h1;
                    (upper * v0 + lower * v1) as f32 * vs
                };
                dst.0[k] = sample(c0);
                dst.1[k] = sample(c1);
                dst.2[k] = sample(c2);
            }
        }
        Ok(g)
    }
}

/// Bilinear taps for `n` output samples over a source of `len` samples at `scale`.
fn fill_taps(taps: &mut Vec<Tap>, n: u32, len: u32, scale: f32) {
    taps.clear();
    let last = (len - 1) as f32;
    for d in 0..n {
        let s = ((d as f32 + 0.5) / scale - 0.5).clamp(0.0, last);
        let i0 = s.floor();
        let i1 = (i0 + 1.0).min(last);
        taps.push(Tap {
            i0: i0 as u32,
            i1: i1 as u32,
            w1: ((s - i0) * ONE as f32).round() as u32,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::manifest::{Layout, Manifest};

    fn manifest(w: u32, h: u32, color: ColorOrder, align: Alignment, scale: f32) -> Manifest {
        Manifest {
            name: "t".into(),
            kind: Default::default(),
            layout: Layout::Yolov8,
            input_width: w,
            input_height: h,
            color,
            scale,
            pad_value: 114,
            letterbox: align,
            strides: vec![8, 16, 32],
            classes: vec!["a".into()],
            sha256: None,
            license: None,
            source: None,
        }
    }

    fn close(a: &BBox, b: &BBox) -> bool {
        (a.x1 - b.x1).abs() < 1e-3
            && (a.y1 - b.y1).abs() < 1e-3
            && (a.x2 - b.x2).abs() < 1e-3
            && (a.y2 - b.y2).abs() < 1e-3
    }

    #[test]
    fn geometry_for_both_alignments() {
        let g = Letterbox::new(640, 480, 416, 416, Alignment::TopLeft);
        assert!((g.scale - 0.65).abs() < 1e-6);
        assert_eq!((g.pad_x, g.pad_y), (0.0, 0.0));
        let g = Letterbox::new(640, 480, 416, 416, Alignment::Center);
        assert_eq!((g.pad_x, g.pad_y), (0.0, 52.0)); // 416 - 312 = 104, half each side
        let g = Letterbox::new(333, 777, 320, 320, Alignment::Center);
        assert_eq!(g.pad_y, 0.0);
        assert!(g.pad_x > 0.0);
    }

    #[test]
    fn round_trip_odd_sizes_both_alignments() {
        for align in [Alignment::TopLeft, Alignment::Center] {
            for (fw, fh, iw, ih) in [(333, 777, 320, 320), (1921, 1079, 416, 416), (7, 5, 64, 32)] {
                let g = Letterbox::new(fw, fh, iw, ih, align);
                let b = BBox::new(1.5, 2.25, fw as f32 - 3.0, fh as f32 - 1.0);
                let back = g.to_frame(&g.to_model(&b));
                assert!(close(&b, &back), "{align:?} {fw}x{fh}: {b:?} -> {back:?}");
            }
        }
    }

    #[test]
    fn to_frame_clamps_to_the_frame() {
        let g = Letterbox::new(640, 480, 416, 416, Alignment::Center);
        let b = g.to_frame(&BBox::new(-10.0, 0.0, 500.0, 416.0));
        assert_eq!(b, BBox::new(0.0, 0.0, 640.0, 480.0));
    }

    #[test]
    fn fills_pad_and_orders_channels() {
        // 4x2 frame, uniform colour, into an 8x8 input: 8x4 image then padding.
        let rgb: Vec<u8> = [10u8, 20, 30].repeat(8);
        for (color, first) in [(ColorOrder::Rgb, 10.0), (ColorOrder::Bgr, 30.0)] {
            let m = manifest(8, 8, color, Alignment::TopLeft, 0.5);
            let mut lb = Letterboxer::new(&m);
            let mut out = vec![0.0; lb.input_len()];
            let g = lb.run(&rgb, 4, 2, &mut out).unwrap();
            assert_eq!(g.scale, 2.0);
            // Plane 0, image area.
            assert!((out[0] - first * 0.5).abs() < 1e-4);
            assert!((out[3 * 8 + 7] - first * 0.5).abs() < 1e-4);
            // Green plane middle.
            assert!((out[64 + 8 + 3] - 10.0).abs() < 1e-4);
            // Padding rows 4..8.
            assert!(out[4 * 8..8 * 8].iter().all(|v| (*v - 57.0).abs() < 1e-4));
        }
    }

    #[test]
    fn centre_alignment_pads_both_sides() {
        let rgb: Vec<u8> = [200u8, 100, 0].repeat(4 * 2);
        let m = manifest(8, 8, ColorOrder::Rgb, Alignment::Center, 1.0);
        let mut lb = Letterboxer::new(&m);
        let mut out = vec![0.0; lb.input_len()];
        let g = lb.run(&rgb, 4, 2, &mut out).unwrap();
        assert_eq!((g.pad_x, g.pad_y), (0.0, 2.0));
        assert!(out[..16].iter().all(|v| *v == 114.0));
        assert!(out[16..48].iter().all(|v| (*v - 200.0).abs() < 1e-3));
        assert!(out[48..64].iter().all(|v| *v == 114.0));
    }

    #[test]
    fn bilinear_interpolates_a_gradient() {
        // Horizontal ramp 0,100 upscaled 2x: centres sample at 0.25 and 0.75 between pixels.
        let rgb = vec![0u8, 0, 0, 100, 100, 100];
        let m = manifest(4, 2, ColorOrder::Rgb, Alignment::TopLeft, 1.0);
        let mut lb = Letterboxer::new(&m);
        let mut out = vec![0.0; lb.input_len()];
        lb.run(&rgb, 2, 1, &mut out).unwrap();
        assert_eq!(&out[..4], &[0.0, 25.0, 75.0, 100.0]);
    }

    #[test]
    fn unscaled_frames_are_copied_exactly() {
        // 5x3 frame into 5x5 input: scale 1, so the image is the frame itself.
        let rgb: Vec<u8> = (0..45).map(|i| (i * 5) as u8).collect();
        let m = manifest(5, 5, ColorOrder::Bgr, Alignment::Center, 1.0);
        let mut lb = Letterboxer::new(&m);
        let mut out = vec![0.0; lb.input_len()];
        let g = lb.run(&rgb, 5, 3, &mut out).unwrap();
        assert_eq!((g.scale, g.pad_x, g.pad_y), (1.0, 0.0, 1.0));
        for y in 0..3 {
            for x in 0..5 {
                let src = (y * 5 + x) * 3;
                let dst = (y + 1) * 5 + x;
                assert_eq!(out[dst], rgb[src + 2] as f32); // B plane first
                assert_eq!(out[25 + dst], rgb[src + 1] as f32);
                assert_eq!(out[50 + dst], rgb[src] as f32);
            }
        }
    }

    #[test]
    fn rejects_wrong_sizes() {
        let m = manifest(8, 8, ColorOrder::Rgb, Alignment::TopLeft, 1.0);
        let mut lb = Letterboxer::new(&m);
        let mut out = vec![0.0; lb.input_len()];
        assert!(matches!(
            lb.run(&[0u8; 10], 2, 2, &mut out),
            Err(LetterboxError::FrameSize { expected: 12, .. })
        ));
        let mut short = vec![0.0; 3];
        assert!(lb.run(&[0u8; 12], 2, 2, &mut short).is_err());
    }
}
