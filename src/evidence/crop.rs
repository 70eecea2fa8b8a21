//! Crops of an alert's objects as evidence of their own: a parking alert's `vehicle`, cut from
//! the full-resolution picture (the main stream's on a dual-stream camera, else the frame) at
//! the alert's box of that vehicle, so that its plate is as legible as the camera allows.
//!
//! Plate masking (the camera's `privacy.plates`) would make the plate, the point of a parking
//! case, unreadable. A parking zone with `unmask_plates = true` publishes its vehicle crop with
//! the plate readable; faces in the crop (a driver behind the windscreen) are still masked when
//! `privacy.faces` is on, and the scene snapshots stay masked as the camera says. Without it the
//! crop is masked like every other picture. The unmasked original of every picture stays on the
//! device, sealed, either way.

use std::sync::Arc;

use super::job::{AlertJob, ExtraPicture, Picture};
use super::SharedMasker;
use crate::config::PrivacyCfg;

/// Margin added around the object's box on every side, as a fraction of its size (the whole
/// bumper and plate, a little of the kerb).
pub const CROP_MARGIN: f32 = 0.1;

/// A crop the camera task asks for: the alert object `track_id` cut from the job's frame.
#[derive(Clone, Debug, PartialEq)]
pub struct CropRequest {
    /// Evidence name (`vehicle`).
    pub name: String,
    pub track_id: u64,
    /// Publish it with plates readable (the zone's `unmask_plates`).
    pub keep_plates: bool,
}

/// Turns the job's crop requests into extra pictures cut from its frame, at the boxes its alert
/// gives its objects (in the frame's pixels: call it after the frame became the full-resolution
/// picture and the boxes were mapped to it). A request whose object or frame is missing is
/// skipped (logged): the alert still goes with its snapshots.
pub fn make_crops(job: &mut AlertJob) {
    let requests = std::mem::take(&mut job.crops);
    let Some(frame) = &job.frame else { return };
    if requests.is_empty() {
        return;
    }
    let (w, h) = frame.size();
    let rgb = match frame.to_rgb() {
        Ok(rgb) => rgb,
        Err(e) => {
            tracing::warn!(event = %job.alert.event_id, "no crops: {e}");
            return;
        }
    };
    for r in requests {
        let Some(o) = job.alert.objects.iter().find(|o| o.track_id == r.track_id) else {
            tracing::warn!(event = %job.alert.event_id, track = r.track_id, "no crop: the alert has no such object");
            continue;
        };
        match crop_rgb(&rgb, w, h, o.bbox, CROP_MARGIN) {
            Some((pixels, cw, ch)) => job.extra.push(ExtraPicture {
                name: r.name,
                picture: Picture::Rgb { width: cw, height: ch, rgb: Arc::new(pixels) },
                mark: None,
                keep_plates: r.keep_plates,
            }),
            None => tracing::warn!(event = %job.alert.event_id, track = r.track_id, bbox = ?o.bbox, "no crop: the box lies outside the picture"),
        }
    }
}

/// The pixels of box `b` (`[x1, y1, x2, y2]`) grown by `margin` of its size on every side and
/// clipped to the `w`×`h` picture, with their size; `None` when nothing of it is in the picture.
pub fn crop_rgb(rgb: &[u8], w: u32, h: u32, b: [f32; 4], margin: f32) -> Option<(Vec<u8>, u32, u32)> {
    if b.iter().any(|v| !v.is_finite()) || rgb.len() != (w as usize) * (h as usize) * 3 {
        return None;
    }
    let (mx, my) = ((b[2] - b[0]).max(0.0) * margin, (b[3] - b[1]).max(0.0) * margin);
    let x0 = (b[0] - mx).floor().clamp(0.0, w as f32) as u32;
    let y0 = (b[1] - my).floor().clamp(0.0, h as f32) as u32;
    let x1 = (b[2] + mx).ceil().clamp(0.0, w as f32) as u32;
    let y1 = (b[3] + my).ceil().clamp(0.0, h as f32) as u32;
    if x1 <= x0 || y1 <= y0 {
        return None;
    }
    let (cw, ch) = (x1 - x0, y1 - y0);
    let mut out = Vec::with_capacity((cw * ch * 3) as usize);
    for y in y0..y1 {
        let row = ((y * w + x0) * 3) as usize;
        out.extend_from_slice(&rgb[row..row + (cw * 3) as usize]);
    }
    Some((out, cw, ch))
}

/// A crop published with its plates readable: faces masked when the camera masks faces, plates
/// left. `None` when faces are to be masked but cannot be (the picture stays on the device).
pub fn plates_readable(privacy: &PrivacyCfg, mut rgb: Vec<u8>, w: u32, h: u32) -> Option<Vec<u8>> {
    if !privacy.faces {
        return Some(rgb);
    }
    let faces_only = PrivacyCfg { plates: false, ..privacy.clone() };
    match SharedMasker::new(&faces_only).and_then(|m| m.mask(&mut rgb, w, h)) {
        Ok(_) => Some(rgb),
        Err(e) => {
            tracing::error!("face masking of a vehicle crop failed, the crop stays on the device: {e}");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::publish::AlertObject;

    fn picture(w: u32, h: u32) -> Vec<u8> {
        (0..w * h).flat_map(|i| [(i % w) as u8, (i / w) as u8, 7]).collect()
    }

    #[test]
    fn crop_grows_by_the_margin_and_clips_to_the_picture() {
        let rgb = picture(100, 50);
        let (c, w, h) = crop_rgb(&rgb, 100, 50, [20.0, 10.0, 40.0, 30.0], 0.1).unwrap();
        assert_eq!((w, h), (24, 24));
        // the first pixel is (18, 8), the last (41, 31)
        assert_eq!(&c[..3], &[18, 8, 7]);
        assert_eq!(&c[c.len() - 3..], &[41, 31, 7]);
        // at the edge: clipped
        let (_, w, h) = crop_rgb(&rgb, 100, 50, [90.0, 40.0, 120.0, 60.0], 0.1).unwrap();
        assert_eq!((w, h), (13, 12));
        assert!(crop_rgb(&rgb, 100, 50, [200.0, 10.0, 240.0, 30.0], 0.1).is_none());
        assert!(crop_rgb(&rgb, 100, 50, [f32::NAN, 10.0, 40.0, 30.0], 0.1).is_none());
        assert!(crop_rgb(&rgb[3..], 100, 50, [20.0, 10.0, 40.0, 30.0], 0.1).is_none());
    }

    #[test]
    fn make_crops_cuts_the_named_object_and_skips_unknown_ones() {
        let mut alert: crate::publish::Alert = serde_json::from_value(serde_json::json!({
            "schema_version": "1.1", "event_id": "e", "seq": 0, "device_seq": 0, "state": "new", "kind": "parking",
            "violation": "v", "severity": "warning", "device_id": "d", "camera_id": "c", "zone_id": "z",
            "location": {"lat": null, "lon": null, "address": ""}, "started_at": "", "updated_at": "", "dwell_s": 0.0,
            "objects": [], "model": {"name": "m", "sha256": "0"}, "evidence": []
        }))
        .unwrap();
        alert.objects = vec![AlertObject { class: "car".into(), score: 0.9, bbox: [10.0, 10.0, 30.0, 20.0], track_id: 4 }];
        let mut job = AlertJob::bare(alert);
        job.frame = Some(Picture::Rgb { width: 100, height: 50, rgb: Arc::new(picture(100, 50)) });
        job.crops = vec![
            CropRequest { name: "vehicle".into(), track_id: 4, keep_plates: true },
            CropRequest { name: "vehicle-9".into(), track_id: 9, keep_plates: false },
        ];
        make_crops(&mut job);
        assert!(job.crops.is_empty());
        assert_eq!(job.extra.len(), 1);
        let e = &job.extra[0];
        assert_eq!((e.name.as_str(), e.picture.size(), e.keep_plates), ("vehicle", (24, 12), true));
        let rgb = e.picture.to_rgb().unwrap();
        assert_eq!(&rgb[..3], &[8, 9, 7]);
    }

    #[test]
    fn readable_plates_without_face_masking_leave_the_crop_as_it_is() {
        let privacy = PrivacyCfg { faces: false, plates: true, ..PrivacyCfg::default() };
        let rgb = picture(64, 32);
        assert_eq!(plates_readable(&privacy, rgb.clone(), 64, 32), Some(rgb));
    }
}
