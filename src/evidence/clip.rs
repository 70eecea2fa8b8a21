//! Event clips without re-encoding: each camera with a parsed H.264/H.265 stream keeps a ring of
//! its *encoded* access units (stamped on the camera's stream clock, like frames), and an event
//! clip is muxed from the ring into MP4 (`appsrc ! h26xparse ! mp4mux ! filesink`), starting at
//! the last keyframe at or before the requested start.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

/// One encoded access unit.
#[derive(Clone, Debug)]
pub struct Unit {
    /// Stream time (seconds), the same clock as `Frame::ts`.
    pub ts: f64,
    pub keyframe: bool,
    pub buffer: gst::Buffer,
}

/// A camera's recent encoded stream, bounded by duration and bytes, always starting on a
/// keyframe.
pub struct EncodedRing {
    max_s: f64,
    max_bytes: usize,
    inner: Mutex<RingState>,
}

#[derive(Default)]
struct RingState {
    units: VecDeque<Unit>,
    bytes: usize,
    caps: Option<gst::Caps>,
    /// Keyframe intervals as pushed (whether or not the units were kept): the stream time of
    /// the first unit, the newest unit and the newest keyframe, and the longest interval seen.
    first_seen: Option<f64>,
    latest_seen: Option<f64>,
    last_key: Option<f64>,
    max_gap: f64,
}

/// Clip problems, one line each.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ClipError {
    #[error("no encoded video in the ring for {0:.1}..{1:.1} s")]
    Empty(f64, f64),
    #[error("timed out waiting for the stream to reach {0:.1} s (it is at {1:.1} s)")]
    Timeout(f64, f64),
    #[error("clip muxing failed: {0}")]
    Mux(String),
}

/// A written clip.
#[derive(Clone, Debug)]
pub struct ClipInfo {
    pub path: PathBuf,
    /// Stream time of the first and last access unit in the file.
    pub first_ts: f64,
    pub last_ts: f64,
    pub frames: usize,
    /// The clip starts on a keyframe at or before the requested start (false: the ring began
    /// later than the request, so the clip starts at its oldest keyframe).
    pub covers_start: bool,
    pub bytes: u64,
    /// Picture size from the stream's caps (0 when the caps do not say).
    pub width: u32,
    pub height: u32,
}

impl EncodedRing {
    pub fn new(max_s: f64, max_bytes: usize) -> Self {
        EncodedRing { max_s, max_bytes, inner: Mutex::new(RingState::default()) }
    }

    /// Adds an access unit. Units before the first keyframe are dropped (they cannot start a
    /// clip); old units are evicted a whole GOP at a time.
    pub fn push(&self, unit: Unit, caps: Option<&gst::CapsRef>) {
        let mut st = self.inner.lock().unwrap();
        st.first_seen.get_or_insert(unit.ts);
        st.latest_seen = Some(unit.ts);
        if unit.keyframe {
            if let Some(k) = st.last_key {
                st.max_gap = st.max_gap.max(unit.ts - k);
            }
            st.last_key = Some(unit.ts);
        }
        if st.units.is_empty() && !unit.keyframe {
            return;
        }
        if let Some(c) = caps {
            if st.caps.as_deref() != Some(c) {
                st.caps = Some(c.to_owned());
            }
        }
        st.bytes += unit.buffer.size();
        let newest = unit.ts;
        st.units.push_back(unit);
        while st.units.len() > 1
            && (newest - st.units[0].ts > self.max_s || st.bytes > self.max_bytes)
        {
            // drop the oldest GOP: its keyframe and everything up to the next keyframe
            loop {
                let u = st.units.pop_front().unwrap();
                st.bytes -= u.buffer.size();
                if st.units.front().is_none_or(|n| n.keyframe) {
                    break;
                }
            }
        }
    }

    /// Stream time of the newest unit.
    pub fn latest_ts(&self) -> Option<f64> {
        self.inner.lock().unwrap().units.back().map(|u| u.ts)
    }

    /// Stream time of the oldest unit (always a keyframe).
    pub fn oldest_ts(&self) -> Option<f64> {
        self.inner.lock().unwrap().units.front().map(|u| u.ts)
    }

    /// The stream feeding the ring starts again (reconnect, file loop): the time until its first
    /// keyframe is not a keyframe interval, so the interval measurement starts over. The longest
    /// interval seen is kept, including the time since the last keyframe (the interval was at
    /// least that long).
    pub fn stream_restarted(&self) {
        let mut st = self.inner.lock().unwrap();
        if let (Some(latest), Some(from)) = (st.latest_seen, st.last_key.or(st.first_seen)) {
            st.max_gap = st.max_gap.max(latest - from);
        }
        st.first_seen = None;
        st.latest_seen = None;
        st.last_key = None;
    }

    /// Picture size from the stream's caps, once known.
    pub fn size(&self) -> Option<(u32, u32)> {
        let st = self.inner.lock().unwrap();
        let s = st.caps.as_ref()?.structure(0)?;
        Some((s.get::<i32>("width").ok()?.max(0) as u32, s.get::<i32>("height").ok()?.max(0) as u32))
    }

    /// The longest time between keyframes seen so far, counting the time since the newest
    /// keyframe (or, before any, since the first unit); `None` before any unit.
    pub fn keyframe_gap(&self) -> Option<f64> {
        let st = self.inner.lock().unwrap();
        let latest = st.latest_seen?;
        let since = latest - st.last_key.or(st.first_seen)?;
        Some(st.max_gap.max(since))
    }

    /// What decoding the picture at stream time `at` needs: the caps and the units from the last
    /// keyframe at or before `at` through the first unit at or after it (see [`decode_span`]).
    pub fn units_for_picture(&self, at: f64) -> Option<(gst::Caps, Vec<Unit>)> {
        let st = self.inner.lock().unwrap();
        let caps = st.caps.clone()?;
        let marks: Vec<(f64, bool)> = st.units.iter().map(|u| (u.ts, u.keyframe)).collect();
        let (from, to) = decode_span(&marks, at)?;
        Some((caps, st.units.range(from..=to).cloned().collect()))
    }

    /// Units from the last keyframe at or before `start` (or the oldest keyframe) through
    /// `end`, with the caps; `covers_start` tells which case applied.
    pub fn range(&self, start: f64, end: f64) -> Option<(gst::Caps, Vec<Unit>, bool)> {
        let st = self.inner.lock().unwrap();
        let caps = st.caps.clone()?;
        let first = st.units.iter().rposition(|u| u.keyframe && u.ts <= start);
        let (from, covers) = match first {
            Some(i) => (i, true),
            None => (st.units.iter().position(|u| u.keyframe && u.ts <= end)?, false),
        };
        let units: Vec<Unit> = st.units.iter().skip(from).take_while(|u| u.ts <= end).cloned().collect();
        (!units.is_empty()).then_some((caps, units, covers))
    }
}

/// Indexes `[from, to]` of the units (stream time, keyframe) to decode for the picture nearest
/// stream time `at`: from the last keyframe at or before `at` (a delta unit cannot be decoded
/// without it) through the first unit at or after `at` (so the nearest picture on either side
/// is decoded), or the newest unit when the stream has not reached `at` yet. `None` when no
/// keyframe is at or before `at`.
pub fn decode_span(units: &[(f64, bool)], at: f64) -> Option<(usize, usize)> {
    let from = units.iter().rposition(|(ts, key)| *key && *ts <= at)?;
    let to = units[from..].iter().position(|(ts, _)| *ts >= at).map_or(units.len() - 1, |i| from + i);
    Some((from, to))
}

/// Muxes the ring's units for `[start, end]` into an MP4 at `out` (blocking; run it off the
/// async runtime).
pub fn write_clip(ring: &EncodedRing, start: f64, end: f64, out: &Path) -> Result<ClipInfo, ClipError> {
    let (caps, units, covers_start) = ring.range(start, end).ok_or(ClipError::Empty(start, end))?;
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir).map_err(|e| ClipError::Mux(format!("{}: {e}", dir.display())))?;
    }
    let st = caps.structure(0);
    let s = st.map(|s| s.name().to_string()).unwrap_or_default();
    let dim = |k: &str| st.and_then(|s| s.get::<i32>(k).ok()).unwrap_or(0).max(0) as u32;
    let (width, height) = (dim("width"), dim("height"));
    let parser = match s.as_str() {
        "video/x-h264" => "h264parse",
        "video/x-h265" => "h265parse",
        other => return Err(ClipError::Mux(format!("cannot mux {other:?}"))),
    };
    let mux_err = |e: &dyn std::fmt::Display| ClipError::Mux(e.to_string());
    let pipeline = gst::parse::launch(&format!("appsrc name=src format=time ! {parser} ! mp4mux ! filesink name=sink"))
        .map_err(|e| mux_err(&e))?
        .downcast::<gst::Pipeline>()
        .map_err(|_| ClipError::Mux("not a pipeline".into()))?;
    let result = (|| {
        let sink = pipeline.by_name("sink").ok_or_else(|| ClipError::Mux("no filesink".into()))?;
        sink.set_property("location", out.to_str().unwrap_or_default());
        let src = pipeline
            .by_name("src")
            .and_then(|e| e.downcast::<gst_app::AppSrc>().ok())
            .ok_or_else(|| ClipError::Mux("no appsrc".into()))?;
        src.set_caps(Some(&caps));
        pipeline.set_state(gst::State::Playing).map_err(|e| mux_err(&e))?;
        let t0 = units[0].ts;
        for u in &units {
            let mut b = u.buffer.copy();
            {
                let bm = b.get_mut().expect("a fresh copy is writable");
                // the file's timeline starts at 0; these streams have no B-frames, so DTS = PTS
                let pts = gst::ClockTime::from_nseconds(((u.ts - t0).max(0.0) * 1e9) as u64);
                bm.set_pts(pts);
                bm.set_dts(pts);
            }
            src.push_buffer(b).map_err(|e| mux_err(&e))?;
        }
        src.end_of_stream().map_err(|e| mux_err(&e))?;
        let bus = pipeline.bus().ok_or_else(|| ClipError::Mux("no bus".into()))?;
        match bus.timed_pop_filtered(gst::ClockTime::from_seconds(30), &[gst::MessageType::Eos, gst::MessageType::Error]) {
            Some(m) => match m.view() {
                gst::MessageView::Eos(_) => Ok(()),
                gst::MessageView::Error(e) => Err(ClipError::Mux(e.error().to_string())),
                _ => Ok(()),
            },
            None => Err(ClipError::Mux("no end of stream within 30 s".into())),
        }
    })();
    let _ = pipeline.set_state(gst::State::Null);
    result?;
    Ok(ClipInfo {
        path: out.to_path_buf(),
        first_ts: units[0].ts,
        last_ts: units.last().unwrap().ts,
        frames: units.len(),
        covers_start,
        bytes: std::fs::metadata(out).map(|m| m.len()).unwrap_or(0),
        width,
        height,
    })
}

/// Waits (checking every 200 ms) until the ring has reached `end` — the post-event part is in
/// the future when an event starts — then writes the clip. Gives up after `deadline`, writing
/// what there is if the stream stopped.
pub async fn record_clip(ring: Arc<EncodedRing>, start: f64, end: f64, out: PathBuf, deadline: Duration) -> Result<ClipInfo, ClipError> {
    let t0 = tokio::time::Instant::now();
    loop {
        let latest = ring.latest_ts().unwrap_or(f64::NEG_INFINITY);
        if latest >= end {
            break;
        }
        if t0.elapsed() >= deadline {
            if latest > start {
                break; // the camera stopped early: keep what was recorded
            }
            return Err(ClipError::Timeout(end, latest));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::task::spawn_blocking(move || write_clip(&ring, start, end, &out))
        .await
        .map_err(|e| ClipError::Mux(e.to_string()))?
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(ts: f64, keyframe: bool) -> Unit {
        Unit { ts, keyframe, buffer: gst::Buffer::with_size(100).unwrap() }
    }

    fn caps() -> gst::Caps {
        gst::Caps::builder("video/x-h264").build()
    }

    #[test]
    fn ring_starts_on_a_keyframe_and_evicts_whole_gops() {
        gst::init().unwrap();
        let ring = EncodedRing::new(3.0, 1 << 20);
        ring.push(unit(0.0, false), Some(&*caps())); // before any keyframe: dropped
        assert_eq!(ring.oldest_ts(), None);
        for i in 1..=60 {
            let ts = i as f64 * 0.1;
            ring.push(unit(ts, i % 10 == 1), None); // keyframes at 0.1, 1.1, 2.1, …
        }
        // newest 6.0; older than 3 s evicted GOP-wise → the ring starts at the keyframe 3.1
        assert!((ring.oldest_ts().unwrap() - 3.1).abs() < 1e-9, "{:?}", ring.oldest_ts());
        assert!((ring.latest_ts().unwrap() - 6.0).abs() < 1e-9);
    }

    #[test]
    fn range_starts_at_the_keyframe_at_or_before_the_start() {
        gst::init().unwrap();
        let ring = EncodedRing::new(100.0, 1 << 20);
        for i in 0..50 {
            ring.push(unit(i as f64 * 0.1, i % 10 == 0), Some(&*caps()));
        }
        let (_, units, covers) = ring.range(2.35, 3.5).unwrap();
        assert!(covers);
        assert!((units[0].ts - 2.0).abs() < 1e-9 && units[0].keyframe);
        assert!((units.last().unwrap().ts - 3.5).abs() < 1e-9);
        // a start before the ring: the oldest keyframe, flagged
        let (_, units, covers) = ring.range(-5.0, 1.0).unwrap();
        assert!(!covers || units[0].ts <= -5.0);
        assert!(ring.range(10.0, 11.0).is_some_and(|r| r.1.last().unwrap().ts <= 11.0));
    }

    #[test]
    fn the_picture_span_starts_at_the_keyframe_before_and_ends_just_past_the_time() {
        let units: Vec<(f64, bool)> = (0..30).map(|i| (i as f64 * 0.1, i % 10 == 0)).collect();
        // 1.53: keyframe 1.0 (index 10) through 1.6 (index 16), the first unit at or after it
        assert_eq!(decode_span(&units, 1.53), Some((10, 16)));
        // exactly on a unit: that unit ends the span
        assert_eq!(decode_span(&units, 2.0), Some((20, 20)));
        // past the newest unit: everything from the last keyframe
        assert_eq!(decode_span(&units, 9.0), Some((20, 29)));
        // before the first keyframe: nothing to decode from
        assert_eq!(decode_span(&units[1..], 0.5), None);
        assert_eq!(decode_span(&[], 0.5), None);
    }

    #[test]
    fn keyframe_gap_and_size_come_from_what_was_pushed() {
        gst::init().unwrap();
        let ring = EncodedRing::new(3.0, 1 << 20);
        assert_eq!(ring.keyframe_gap(), None);
        assert_eq!(ring.size(), None);
        let caps = gst::Caps::builder("video/x-h264").field("width", 1920).field("height", 1080).build();
        ring.push(unit(0.0, true), Some(&*caps));
        for i in 1..=50 {
            ring.push(unit(i as f64 * 0.1, false), None); // no keyframe for 5 s: longer than the ring
        }
        assert!((ring.keyframe_gap().unwrap() - 5.0).abs() < 1e-9);
        assert_eq!(ring.size(), Some((1920, 1080)));
        assert!(ring.units_for_picture(4.0).is_none(), "the ring lost its only keyframe");
        // an outage is not a keyframe interval: after a restart the measurement starts over
        ring.stream_restarted();
        ring.push(unit(60.0, false), None);
        ring.push(unit(60.5, true), None);
        assert!((ring.keyframe_gap().unwrap() - 5.0).abs() < 1e-9, "the longest interval seen is kept");
    }

    #[test]
    fn a_byte_cap_also_bounds_the_ring() {
        gst::init().unwrap();
        let ring = EncodedRing::new(1000.0, 1000);
        for i in 0..40 {
            ring.push(unit(i as f64, i % 5 == 0), Some(&*caps()));
        }
        let st = ring.inner.lock().unwrap();
        assert!(st.bytes <= 1000 && st.units[0].keyframe, "{} bytes", st.bytes);
    }
}
