//! Full-resolution snapshots of dual-stream cameras: the camera detects on its sub-stream, and
//! at alert time the evidence worker decodes the main-stream picture nearest the alert frame
//! from the camera's clip ring (the last keyframe at or before it and the units up to it:
//! `appsrc ! h26xparse ! avdec_h26x ! videoconvert ! RGB appsink`, blocking, in the worker),
//! then maps the sub-stream's boxes onto it by the ratio of the two resolutions.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use gstreamer_video as gst_video;
use gstreamer_video::prelude::*;

use super::clip::EncodedRing;

/// How long the worker waits for the main stream to reach the alert frame's time (its units
/// may arrive a little after the sub-stream's decoded frame).
pub const MAIN_WAIT: Duration = Duration::from_millis(1500);
/// How long one decode may take before it is given up.
const DECODE_TIMEOUT_S: u64 = 20;

/// A decoded main-stream picture.
#[derive(Clone, Debug)]
pub struct MainPicture {
    /// Packed RGB, `width * height * 3` bytes.
    pub rgb: Vec<u8>,
    pub width: u32,
    pub height: u32,
    /// Stream time of the picture (the nearest to the one asked for).
    pub ts: f64,
}

/// Why no main-stream picture could be made (the sub-stream frame is used instead).
#[derive(Debug, Clone, thiserror::Error)]
pub enum MainPictureError {
    #[error("the main-stream ring has no keyframe at or before {0:.2} s")]
    NoKeyframe(f64),
    #[error("cannot decode {0:?} from the main stream")]
    Codec(String),
    #[error("decoding the main stream failed: {0}")]
    Decode(String),
}

/// Scale factors `(x, y)` from a `sub_w`×`sub_h` picture to a `main_w`×`main_h` one.
pub fn scale_between(sub: (u32, u32), main: (u32, u32)) -> Option<(f32, f32)> {
    let ((sw, sh), (mw, mh)) = (sub, main);
    (sw > 0 && sh > 0 && mw > 0 && mh > 0).then(|| (mw as f32 / sw as f32, mh as f32 / sh as f32))
}

/// `[x1, y1, x2, y2]` in sub-stream pixels → main-stream pixels.
pub fn map_box(b: [f32; 4], (sx, sy): (f32, f32)) -> [f32; 4] {
    [b[0] * sx, b[1] * sy, b[2] * sx, b[3] * sy]
}

/// Waits (up to [`MAIN_WAIT`]) until the ring has reached stream time `at`, then decodes the
/// picture nearest to it. Blocking: run it in the evidence worker.
pub fn picture_at(ring: &EncodedRing, at: f64) -> Result<MainPicture, MainPictureError> {
    let t0 = Instant::now();
    while ring.latest_ts().is_none_or(|t| t < at) && t0.elapsed() < MAIN_WAIT {
        std::thread::sleep(Duration::from_millis(50));
    }
    decode_at(ring, at)
}

/// Decodes the picture nearest stream time `at` from the ring's units (no waiting).
pub fn decode_at(ring: &EncodedRing, at: f64) -> Result<MainPicture, MainPictureError> {
    let (caps, units) = ring.units_for_picture(at).ok_or(MainPictureError::NoKeyframe(at))?;
    let codec = caps.structure(0).map(|s| s.name().to_string()).unwrap_or_default();
    let (parser, decoder) = match codec.as_str() {
        "video/x-h264" => ("h264parse", "avdec_h264"),
        "video/x-h265" => ("h265parse", "avdec_h265"),
        _ => return Err(MainPictureError::Codec(codec)),
    };
    let err = |e: &dyn std::fmt::Display| MainPictureError::Decode(e.to_string());
    let launch = format!("appsrc name=src format=time ! {parser} ! {decoder} ! videoconvert ! video/x-raw,format=RGB ! appsink name=sink sync=false");
    let pipeline = gst::parse::launch(&launch)
        .map_err(|e| err(&e))?
        .downcast::<gst::Pipeline>()
        .map_err(|_| MainPictureError::Decode("not a pipeline".into()))?;
    let t0 = units[0].ts;
    let target = at - t0;
    // only the best picture so far is kept: a GOP of 1080p RGB would be hundreds of MB
    let best: Arc<Mutex<Option<(f64, gst::Sample)>>> = Arc::new(Mutex::new(None));
    let result = (|| {
        let src = pipeline
            .by_name("src")
            .and_then(|e| e.downcast::<gst_app::AppSrc>().ok())
            .ok_or_else(|| MainPictureError::Decode("no appsrc".into()))?;
        let sink = pipeline
            .by_name("sink")
            .and_then(|e| e.downcast::<gst_app::AppSink>().ok())
            .ok_or_else(|| MainPictureError::Decode("no appsink".into()))?;
        src.set_caps(Some(&caps));
        let keep = best.clone();
        sink.set_callbacks(
            gst_app::AppSinkCallbacks::builder()
                .new_sample(move |sink| {
                    let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                    if let Some(pts) = sample.buffer().and_then(|b| b.pts()) {
                        let d = (pts.nseconds() as f64 / 1e9 - target).abs();
                        let mut k = keep.lock().unwrap();
                        if k.as_ref().is_none_or(|(bd, _)| d < *bd) {
                            *k = Some((d, sample));
                        }
                    }
                    Ok(gst::FlowSuccess::Ok)
                })
                .build(),
        );
        pipeline.set_state(gst::State::Playing).map_err(|e| err(&e))?;
        for u in &units {
            let mut b = u.buffer.copy();
            {
                let bm = b.get_mut().expect("a fresh copy is writable");
                // the units' own stream times, from 0 at the keyframe; DTS left to the parser
                bm.set_pts(gst::ClockTime::from_nseconds(((u.ts - t0).max(0.0) * 1e9) as u64));
                bm.set_dts(gst::ClockTime::NONE);
            }
            src.push_buffer(b).map_err(|e| err(&e))?;
        }
        src.end_of_stream().map_err(|e| err(&e))?;
        let bus = pipeline.bus().ok_or_else(|| MainPictureError::Decode("no bus".into()))?;
        match bus.timed_pop_filtered(gst::ClockTime::from_seconds(DECODE_TIMEOUT_S), &[gst::MessageType::Eos, gst::MessageType::Error]) {
            Some(m) => match m.view() {
                gst::MessageView::Error(e) => Err(MainPictureError::Decode(e.error().to_string())),
                _ => Ok(()),
            },
            None => Err(MainPictureError::Decode(format!("no end of stream within {DECODE_TIMEOUT_S} s"))),
        }
    })();
    let _ = pipeline.set_state(gst::State::Null);
    result?;
    let (_, sample) = best.lock().unwrap().take().ok_or_else(|| MainPictureError::Decode("the decoder gave no picture".into()))?;
    let mut pic = to_rgb(&sample)?;
    pic.ts = t0 + sample.buffer().and_then(|b| b.pts()).map_or(0.0, |p| p.nseconds() as f64 / 1e9);
    Ok(pic)
}

/// Packed RGB of a decoded sample (row padding removed).
fn to_rgb(sample: &gst::Sample) -> Result<MainPicture, MainPictureError> {
    let caps = sample.caps().ok_or_else(|| MainPictureError::Decode("sample without caps".into()))?;
    let info = gst_video::VideoInfo::from_caps(caps).map_err(|e| MainPictureError::Decode(format!("bad caps {caps}: {e}")))?;
    let buffer = sample.buffer().ok_or_else(|| MainPictureError::Decode("sample without a buffer".into()))?;
    let frame = gst_video::VideoFrameRef::from_buffer_ref_readable(buffer, &info).map_err(|e| MainPictureError::Decode(e.to_string()))?;
    let (w, h) = (frame.width() as usize, frame.height() as usize);
    let stride = frame.plane_stride()[0] as usize;
    let data = frame.plane_data(0).map_err(|e| MainPictureError::Decode(e.to_string()))?;
    let row = w * 3;
    if stride < row || data.len() < stride * h.saturating_sub(1) + row {
        return Err(MainPictureError::Decode(format!("buffer too small for {w}x{h}")));
    }
    let mut rgb = Vec::with_capacity(row * h);
    for y in 0..h {
        rgb.extend_from_slice(&data[y * stride..y * stride + row]);
    }
    Ok(MainPicture { rgb, width: w as u32, height: h as u32, ts: 0.0 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boxes_scale_by_the_ratio_of_the_resolutions() {
        let s = scale_between((640, 360), (1920, 1080)).unwrap();
        assert_eq!(s, (3.0, 3.0));
        assert_eq!(map_box([10.0, 20.0, 110.0, 220.0], s), [30.0, 60.0, 330.0, 660.0]);
        // a 4:3 main stream behind a 16:9 sub-stream: x and y scale differently
        let s = scale_between((640, 360), (1280, 960)).unwrap();
        assert_eq!(map_box([640.0, 360.0, 640.0, 360.0], s), [1280.0, 960.0, 1280.0, 960.0]);
        assert_eq!(scale_between((0, 360), (1920, 1080)), None);
    }

    #[test]
    fn an_empty_ring_gives_no_keyframe() {
        gst::init().unwrap();
        let ring = EncodedRing::new(10.0, 1 << 20);
        assert!(matches!(decode_at(&ring, 1.0), Err(MainPictureError::NoKeyframe(_))));
    }

    /// Encodes 30 frames of a moving test pattern at 1280x720 (keyframe every 10), feeds the
    /// parsed units to a ring, and decodes the picture at 1.55 s: full size, nearest time.
    #[test]
    fn decodes_the_nearest_main_stream_picture_from_the_ring() {
        gst::init().unwrap();
        let launch = "videotestsrc num-buffers=30 pattern=ball ! video/x-raw,width=1280,height=720,framerate=10/1 \
                      ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=10 ! h264parse \
                      ! video/x-h264,stream-format=byte-stream,alignment=au ! appsink name=sink sync=false";
        let pipeline = gst::parse::launch(launch).unwrap().downcast::<gst::Pipeline>().unwrap();
        let sink = pipeline.by_name("sink").unwrap().downcast::<gst_app::AppSink>().unwrap();
        let ring = EncodedRing::new(100.0, 64 << 20);
        pipeline.set_state(gst::State::Playing).unwrap();
        while let Ok(sample) = sink.pull_sample() {
            let buffer = sample.buffer_owned().unwrap();
            let ts = buffer.pts().unwrap().nseconds() as f64 / 1e9;
            let keyframe = !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT);
            ring.push(super::super::clip::Unit { ts, keyframe, buffer }, sample.caps());
        }
        pipeline.set_state(gst::State::Null).unwrap();
        // the encoder may shift the timeline: times are taken from the first unit
        let t0 = ring.oldest_ts().unwrap();
        assert!((ring.latest_ts().unwrap() - t0 - 2.9).abs() < 1e-6, "{:?} {t0}", ring.latest_ts());
        let pic = decode_at(&ring, t0 + 1.53).unwrap();
        assert_eq!((pic.width, pic.height, pic.rgb.len()), (1280, 720, 1280 * 720 * 3));
        assert!((pic.ts - t0 - 1.5).abs() < 1e-6, "nearest picture to 1.53 is 1.5, got {}", pic.ts - t0);
        // the frame is a real picture, not a blank: the test pattern's ball moves over a
        // black background, so both dark and bright pixels are present
        assert!(pic.rgb.iter().any(|&v| v > 200) && pic.rgb.iter().any(|&v| v < 30));
        // past the newest unit: the newest picture
        assert!((decode_at(&ring, t0 + 50.0).unwrap().ts - t0 - 2.9).abs() < 1e-6);
    }
}
