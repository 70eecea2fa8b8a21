//! Event clips without re-encoding: each camera with a parsed H.264/H.265 stream keeps a ring of
//! its *encoded* access units (stamped on the camera's stream clock, like frames), and an event
//! clip is muxed from the ring into MP4 (`appsrc ! h26xparse ! mp4mux ! filesink`), starting at
//! the last keyframe at or before the requested start. An event's clip is recorded live
//! ([`LiveClip`]): its pre-roll comes from the ring, the rest is handed to its muxer as the
//! units arrive, so the ring holds only the pre-roll.

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
    /// Clips being recorded: each is handed the units pushed after its pre-roll, up to its end.
    recordings: Vec<Recording>,
    next_recording: u64,
}

/// A clip being recorded (see [`LiveClip`]): its muxer's input and what it was given so far.
struct Recording {
    id: u64,
    end: f64,
    /// Stream time of the clip's first unit (the file's time 0).
    t0: f64,
    src: gst_app::AppSrc,
    last_ts: f64,
    frames: usize,
    /// The end was reached (or the muxer refused a unit): no more units, end of stream sent.
    done: bool,
    error: Option<String>,
}

impl Recording {
    /// Hands one unit to the muxer, or ends the clip when the unit is past its end.
    fn take(&mut self, u: &Unit) {
        if self.done || u.ts < self.last_ts {
            return; // finished, or a unit older than the clip's newest (a stream restart)
        }
        if u.ts > self.end {
            self.finish();
            return;
        }
        match self.src.push_buffer(retimed(u, self.t0)) {
            Ok(_) => {
                self.last_ts = u.ts;
                self.frames += 1;
                if u.ts >= self.end {
                    self.finish();
                }
            }
            Err(e) => {
                self.error = Some(format!("the muxer refused a unit: {e:?}"));
                self.finish();
            }
        }
    }

    fn finish(&mut self) {
        if !self.done {
            self.done = true;
            let _ = self.src.end_of_stream();
        }
    }
}

/// A unit's buffer on a clip's timeline, which starts at `t0` (a shallow copy: the encoded data
/// is shared with the ring). These streams have no B-frames, so DTS = PTS.
fn retimed(u: &Unit, t0: f64) -> gst::Buffer {
    let mut b = u.buffer.copy();
    {
        let bm = b.get_mut().expect("a fresh copy is writable");
        let pts = gst::ClockTime::from_nseconds(((u.ts - t0).max(0.0) * 1e9) as u64);
        bm.set_pts(pts);
        bm.set_dts(pts);
    }
    b
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
        for r in &mut st.recordings {
            r.take(&unit);
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

    /// What the ring holds now: seconds of stream from its oldest unit to its newest, and bytes.
    pub fn held(&self) -> (f64, usize) {
        let st = self.inner.lock().unwrap();
        let span = match (st.units.front(), st.units.back()) {
            (Some(a), Some(b)) => b.ts - a.ts,
            _ => 0.0,
        };
        (span, st.bytes)
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
        let (from, covers) = clip_start(&st.units, start, end)?;
        let units: Vec<Unit> = st.units.iter().skip(from).take_while(|u| u.ts <= end).cloned().collect();
        (!units.is_empty()).then_some((caps, units, covers))
    }
}

/// Where a clip `[start, end]` starts in `units`: the last keyframe at or before `start`
/// (`true`: the start is covered), else the oldest keyframe at or before `end` (`false`).
fn clip_start(units: &VecDeque<Unit>, start: f64, end: f64) -> Option<(usize, bool)> {
    match units.iter().rposition(|u| u.keyframe && u.ts <= start) {
        Some(i) => Some((i, true)),
        None => units.iter().position(|u| u.keyframe && u.ts <= end).map(|i| (i, false)),
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

/// An MP4 muxing pipeline for `caps` writing to `out`: `appsrc ! h26xparse ! mp4mux !
/// filesink`, playing. Returns it with its appsrc and the picture size from the caps.
fn mux_pipeline(caps: &gst::Caps, out: &Path) -> Result<(gst::Pipeline, gst_app::AppSrc, u32, u32), ClipError> {
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
    let started = (|| {
        let sink = pipeline.by_name("sink").ok_or_else(|| ClipError::Mux("no filesink".into()))?;
        sink.set_property("location", out.to_str().unwrap_or_default());
        let src = pipeline
            .by_name("src")
            .and_then(|e| e.downcast::<gst_app::AppSrc>().ok())
            .ok_or_else(|| ClipError::Mux("no appsrc".into()))?;
        src.set_caps(Some(caps));
        pipeline.set_state(gst::State::Playing).map_err(|e| mux_err(&e))?;
        Ok(src)
    })();
    match started {
        Ok(src) => Ok((pipeline, src, width, height)),
        Err(e) => {
            let _ = pipeline.set_state(gst::State::Null);
            Err(e)
        }
    }
}

/// Waits (up to 30 s) for a muxing pipeline whose appsrc has had its end of stream to write
/// the file out, then stops it.
fn mux_finished(pipeline: &gst::Pipeline) -> Result<(), ClipError> {
    let result = match pipeline.bus() {
        None => Err(ClipError::Mux("no bus".into())),
        Some(bus) => match bus.timed_pop_filtered(gst::ClockTime::from_seconds(30), &[gst::MessageType::Eos, gst::MessageType::Error]) {
            Some(m) => match m.view() {
                gst::MessageView::Error(e) => Err(ClipError::Mux(e.error().to_string())),
                _ => Ok(()),
            },
            None => Err(ClipError::Mux("no end of stream within 30 s".into())),
        },
    };
    let _ = pipeline.set_state(gst::State::Null);
    result
}

/// Muxes the ring's units for `[start, end]` into an MP4 at `out` (blocking; run it off the
/// async runtime). The whole window must still be in the ring; an event's clip, whose
/// post-event part is still to come, is recorded with [`record_clip`] instead.
pub fn write_clip(ring: &EncodedRing, start: f64, end: f64, out: &Path) -> Result<ClipInfo, ClipError> {
    let (caps, units, covers_start) = ring.range(start, end).ok_or(ClipError::Empty(start, end))?;
    let (pipeline, src, width, height) = mux_pipeline(&caps, out)?;
    let t0 = units[0].ts;
    for u in &units {
        if let Err(e) = src.push_buffer(retimed(u, t0)) {
            let _ = pipeline.set_state(gst::State::Null);
            return Err(ClipError::Mux(format!("{e:?}")));
        }
    }
    let _ = src.end_of_stream();
    mux_finished(&pipeline)?;
    Ok(ClipInfo {
        path: out.to_path_buf(),
        first_ts: t0,
        last_ts: units.last().unwrap().ts,
        frames: units.len(),
        covers_start,
        bytes: std::fs::metadata(out).map(|m| m.len()).unwrap_or(0),
        width,
        height,
    })
}

/// An event clip being recorded. Its pre-roll (from the last keyframe at or before its start)
/// is taken from the ring when it starts; from then on the ring hands it every unit it is
/// pushed, up to the clip's end, and the muxer writes them to a `.part` file beside the clip as
/// they come. So the ring only needs to hold the pre-roll, not the whole clip: a camera's
/// memory for clips is `clip_ring_s` of its stream however long `clip_post_s` is.
///
/// Dropped before [`LiveClip::finish`] (a stop, an aborted task), the recording is given up and
/// its part file removed.
pub struct LiveClip {
    ring: Arc<EncodedRing>,
    id: u64,
    pipeline: gst::Pipeline,
    part: PathBuf,
    out: PathBuf,
    covers_start: bool,
    width: u32,
    height: u32,
    finished: bool,
}

/// How far a [`LiveClip`] is: stream time of its newest unit, and whether its end was reached.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LiveProgress {
    pub last_ts: f64,
    pub done: bool,
}

impl EncodedRing {
    /// Starts recording the clip `[start, end]` into `out`: `Ok(None)` when the ring has no
    /// keyframe at or before `end` yet (try again once it has). When the ring already holds
    /// the end, the clip is complete at once.
    pub fn start_clip(self: &Arc<Self>, start: f64, end: f64, out: &Path) -> Result<Option<LiveClip>, ClipError> {
        let caps = {
            let st = self.inner.lock().unwrap();
            match &st.caps {
                Some(c) if clip_start(&st.units, start, end).is_some() => c.clone(),
                _ => return Ok(None),
            }
        };
        let part = PathBuf::from(format!("{}.part", out.display()));
        let (pipeline, src, width, height) = mux_pipeline(&caps, &part)?;
        let mut st = self.inner.lock().unwrap();
        // the pre-roll, from the clip's starting keyframe
        let Some((from, covers_start)) = clip_start(&st.units, start, end) else {
            drop(st);
            let _ = pipeline.set_state(gst::State::Null);
            let _ = std::fs::remove_file(&part);
            return Ok(None);
        };
        let t0 = st.units[from].ts;
        let id = st.next_recording;
        st.next_recording += 1;
        let mut rec = Recording { id, end, t0, src, last_ts: f64::NEG_INFINITY, frames: 0, done: false, error: None };
        for u in st.units.range(from..) {
            rec.take(u);
        }
        if st.units.back().is_some_and(|u| u.ts >= end) {
            rec.finish(); // the whole clip was in the ring
        }
        st.recordings.push(rec);
        Ok(Some(LiveClip { ring: self.clone(), id, pipeline, part, out: out.to_path_buf(), covers_start, width, height, finished: false }))
    }

    /// The recording's progress (`None` once it was taken out of the ring).
    fn recording(&self, id: u64) -> Option<LiveProgress> {
        let st = self.inner.lock().unwrap();
        st.recordings.iter().find(|r| r.id == id).map(|r| LiveProgress { last_ts: r.last_ts, done: r.done })
    }

    /// Takes a recording out of the ring, ending its stream if its end was not reached.
    fn stop_recording(&self, id: u64) -> Option<Recording> {
        let mut st = self.inner.lock().unwrap();
        let i = st.recordings.iter().position(|r| r.id == id)?;
        let mut r = st.recordings.swap_remove(i);
        r.finish();
        Some(r)
    }
}

impl LiveClip {
    pub fn progress(&self) -> LiveProgress {
        self.ring.recording(self.id).unwrap_or(LiveProgress { last_ts: f64::NEG_INFINITY, done: true })
    }

    /// Ends the recording (where it is, if its end was not reached), waits for the muxer to
    /// write the file and moves it into place. Blocking: run it off the async runtime.
    pub fn finish(mut self) -> Result<ClipInfo, ClipError> {
        self.finished = true;
        let rec = self.ring.stop_recording(self.id).ok_or_else(|| ClipError::Mux("the recording was lost".into()));
        let result = rec.and_then(|rec| {
            if rec.frames == 0 {
                return Err(ClipError::Empty(rec.t0, rec.end));
            }
            mux_finished(&self.pipeline)?;
            if let Some(e) = rec.error {
                return Err(ClipError::Mux(e));
            }
            std::fs::rename(&self.part, &self.out).map_err(|e| ClipError::Mux(format!("{}: {e}", self.out.display())))?;
            Ok(ClipInfo {
                path: self.out.clone(),
                first_ts: rec.t0,
                last_ts: rec.last_ts,
                frames: rec.frames,
                covers_start: self.covers_start,
                bytes: std::fs::metadata(&self.out).map(|m| m.len()).unwrap_or(0),
                width: self.width,
                height: self.height,
            })
        });
        if result.is_err() {
            let _ = self.pipeline.set_state(gst::State::Null);
            let _ = std::fs::remove_file(&self.part);
        }
        result
    }
}

impl Drop for LiveClip {
    fn drop(&mut self) {
        if !self.finished {
            self.ring.stop_recording(self.id);
            let _ = self.pipeline.set_state(gst::State::Null);
            let _ = std::fs::remove_file(&self.part);
        }
    }
}

/// Records an event clip `[start, end]` (see [`LiveClip`]): starts it from the ring's pre-roll
/// at once, waits (checking every 200 ms) until the stream reaches `end`, then finishes the
/// file. Gives up after `deadline`, keeping what was recorded if the stream stopped early.
pub async fn record_clip(ring: Arc<EncodedRing>, start: f64, end: f64, out: PathBuf, deadline: Duration) -> Result<ClipInfo, ClipError> {
    let t0 = tokio::time::Instant::now();
    let mut live = None;
    loop {
        if live.is_none() {
            live = ring.start_clip(start, end, &out)?;
        }
        match &live {
            Some(l) if l.progress().done => break,
            _ => {}
        }
        if t0.elapsed() >= deadline {
            let latest = ring.latest_ts().unwrap_or(f64::NEG_INFINITY);
            match &live {
                Some(l) if l.progress().last_ts > start => break, // the camera stopped early: keep what was recorded
                _ => return Err(ClipError::Timeout(end, latest)),
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let live = live.expect("the loop leaves with a recording");
    tokio::task::spawn_blocking(move || live.finish())
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
