//! The appsink side of a camera: samples become packed-RGB [`Frame`]s (stride padding removed,
//! pixel buffers recycled) stamped with a per-camera stream clock, then go to the frame slots.
//! Runs in GStreamer's streaming thread; it only blocks in lossless mode, by design.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use gstreamer as gst;
use gstreamer_app as gst_app;
use gstreamer_video as gst_video;
use gstreamer_video::prelude::*;
use tokio::sync::mpsc;

use crate::frame::Frame;
use crate::frame_slots::FrameSlots;

use super::camera::PipelineEvent;
use super::health::CameraHealth;

/// The per-camera stream clock: buffer PTS plus an offset chosen so that `ts` keeps increasing
/// when a pipeline is recreated (reconnect, file loop), whose PTS start again near zero.
#[derive(Debug)]
pub(crate) struct StreamClock {
    /// Live sources advance the clock by the wall time spent reconnecting (so dwell timing
    /// stays real time); files continue one frame after the last frame.
    live: bool,
    offset: Option<f64>,
    last_ts: Option<f64>,
    last_wall: Option<Instant>,
    last_pts: Option<f64>,
    /// Typical frame interval seen so far.
    step: f64,
    seq: u64,
}

impl StreamClock {
    pub(crate) fn new(live: bool) -> Self {
        StreamClock { live, offset: None, last_ts: None, last_wall: None, last_pts: None, step: 0.04, seq: 0 }
    }

    /// The current run's offset (None until its first frame), for stamping encoded units.
    pub(crate) fn offset(&self) -> Option<f64> {
        self.offset
    }

    /// Where the clock would be at `now` had a frame arrived then (None before the first frame).
    pub(crate) fn estimate(&self, now: Instant) -> Option<f64> {
        Some(self.last_ts? + now.saturating_duration_since(self.last_wall?).as_secs_f64())
    }

    /// A new pipeline starts: the next frame picks a new offset.
    pub(crate) fn new_run(&mut self) {
        self.offset = None;
        self.last_pts = None;
    }

    /// Stream time for a frame with presentation time `pts` (seconds) seen at `now`.
    fn stamp(&mut self, pts: f64, now: Instant) -> (u64, f64) {
        let offset = *self.offset.get_or_insert_with(|| match self.last_ts {
            // The very first frame: ts is the stream's own time.
            None => 0.0,
            Some(last) => {
                let gap = match (self.live, self.last_wall) {
                    (true, Some(w)) => now.duration_since(w).as_secs_f64().max(self.step),
                    _ => self.step,
                };
                last + gap - pts
            }
        });
        if let Some(prev) = self.last_pts {
            let d = pts - prev;
            if d > 0.0 && d < 5.0 {
                self.step = d;
            }
        }
        self.last_pts = Some(pts);
        let mut ts = offset + pts;
        if let Some(last) = self.last_ts {
            // Never go backwards, even if a source misbehaves within a run.
            if ts <= last {
                ts = last + 1e-6;
            }
        }
        self.last_ts = Some(ts);
        self.last_wall = Some(now);
        self.seq += 1;
        (self.seq - 1, ts)
    }
}

/// Stream time for a dual-stream camera's main-stream units (one per main-stream pipeline run),
/// on the detected (sub-)stream's clock, so that an alert frame's `ts` finds its main-stream picture in the ring.
///
/// The two streams have independent clocks; how they are aligned ([`Align`]):
/// - live sources ([`Align::Arrival`]): when a main-stream run's first unit arrives, its PTS is
///   mapped to where the sub-stream's clock stands at that wall-clock instant
///   ([`StreamClock::estimate`]); after that the unit's own PTS advance it. Both pipelines' PTS
///   are running time on the system clock, so they advance at the same rate; what remains is
///   the difference in the two streams' latency up to their appsinks (the sub-stream is also
///   decoded), tens of ms.
/// - files ([`Align::Pts`], [`Align::PacedPts`]): both files start at PTS 0 on the same
///   timeline, so a main-stream run's PTS are put on the sub-stream's run offset as it stands
///   at the run's first unit (kept for the run, so that a sub-stream looping first does not
///   make the main stream's times jump).
/// - a looping file played at its own rate ([`Align::PacedPts`]) whose main stream loops
///   *before* its sub-stream: the sub-stream's offset still belongs to the run that is ending,
///   so the new run's units would land a whole clip length in the past (and a clip ring, which
///   drops by age from its newest unit, would keep everything until its byte cap). When the
///   sub-stream's offset would put the run's first unit more than [`STALE_OFFSET_S`] behind
///   where the sub-stream's clock stands, the run is aligned by arrival instead, as a live one.
///
/// Units that arrive before the sub-stream has delivered a frame have no stream time and are
/// not kept.
pub(crate) struct MainClock {
    detect: Arc<Mutex<StreamClock>>,
    align: Align,
    offset: Option<f64>,
}

/// How a main-stream run is put on the sub-stream's clock (see [`MainClock`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Align {
    /// By wall-clock arrival (live sources).
    Arrival,
    /// By PTS on the sub-stream's run offset (files read as fast as they go).
    Pts,
    /// By PTS, or by arrival when the sub-stream's offset is a run behind (files at their own rate).
    PacedPts,
}

/// How far behind the sub-stream's clock a main-stream run may start before its sub-stream
/// offset is taken to belong to an earlier run (see [`MainClock`]).
pub(crate) const STALE_OFFSET_S: f64 = 2.0;

impl MainClock {
    pub(crate) fn new(detect: Arc<Mutex<StreamClock>>, align: Align) -> Self {
        MainClock { detect, align, offset: None }
    }

    /// Stream time of a main-stream unit with PTS `pts` (seconds) arriving at `now`.
    pub(crate) fn stamp(&mut self, pts: f64, now: Instant) -> Option<f64> {
        if self.offset.is_none() {
            let detect = self.detect.lock().unwrap_or_else(|e| e.into_inner());
            let by_arrival = detect.estimate(now).map(|t| t - pts);
            self.offset = Some(match self.align {
                Align::Arrival => by_arrival?,
                Align::Pts => detect.offset()?,
                Align::PacedPts => {
                    let by_pts = detect.offset()?;
                    match by_arrival {
                        Some(a) if by_pts < a - STALE_OFFSET_S => a,
                        _ => by_pts,
                    }
                }
            });
        }
        self.offset.map(|o| o + pts)
    }
}

/// Feeds a camera's clip ring from an `encoded` appsink: each parsed access unit is stamped by
/// `stamp(pts)` (None: no stream time yet, not kept) and pushed with its caps. `on_unit` runs
/// for every unit, kept or not (progress of a main stream).
pub(crate) fn feed_ring(
    sink: &gst_app::AppSink,
    ring: Arc<crate::evidence::EncodedRing>,
    mut stamp: impl FnMut(f64) -> Option<f64> + Send + 'static,
    mut on_unit: impl FnMut() + Send + 'static,
) {
    sink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |sink| {
                let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                on_unit();
                if let Some(buffer) = sample.buffer_owned() {
                    if let Some(ts) = buffer.pts().and_then(|pts| stamp(pts.nseconds() as f64 / 1e9)) {
                        let keyframe = !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT);
                        ring.push(crate::evidence::clip::Unit { ts, keyframe, buffer }, sample.caps());
                    }
                }
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );
}

/// The appsink's `new_sample` handler state (lives in the streaming thread's callback).
pub(crate) struct SampleToFrame {
    pub(crate) camera: usize,
    pub(crate) slots: Arc<FrameSlots>,
    pub(crate) health: Arc<CameraHealth>,
    pub(crate) lossless: bool,
    pub(crate) clock: Arc<Mutex<StreamClock>>,
    pub(crate) run_frames: Arc<AtomicU64>,
    pub(crate) tx: mpsc::UnboundedSender<PipelineEvent>,
    pub(crate) started: Instant,
    /// Video info of the current caps (re-read only when the caps change).
    pub(crate) info: Option<(gst::Caps, gst_video::VideoInfo)>,
    /// Pixel buffers the detector has let go of, reused to avoid an allocation per frame.
    pub(crate) pool: Vec<Arc<Vec<u8>>>,
    pub(crate) warned: bool,
}

/// How many pixel buffers the pool keeps.
const POOL_SIZE: usize = 4;

impl SampleToFrame {
    pub(crate) fn on_sample(&mut self, sink: &gst_app::AppSink) -> Result<gst::FlowSuccess, gst::FlowError> {
        let sample = sink.pull_sample().map_err(|_| gst::FlowError::Flushing)?;
        let frame = match self.convert(&sample) {
            Ok(f) => f,
            Err(e) => {
                if !self.warned {
                    self.warned = true;
                    tracing::warn!(camera = self.camera, error = %e, "cannot read a frame; skipping it");
                }
                return Ok(gst::FlowSuccess::Ok);
            }
        };
        self.health.count_frame();
        if self.run_frames.fetch_add(1, Ordering::Relaxed) == 0 {
            let _ = self.tx.send(PipelineEvent::FirstFrame);
        }
        if !self.slots.put(frame, self.lossless) {
            let _ = self.tx.send(PipelineEvent::SlotsClosed);
            return Err(gst::FlowError::Flushing);
        }
        Ok(gst::FlowSuccess::Ok)
    }

    fn convert(&mut self, sample: &gst::Sample) -> Result<Frame, String> {
        let buffer = sample.buffer().ok_or("sample without a buffer")?;
        let caps = sample.caps().ok_or("sample without caps")?;
        let fresh = match &self.info {
            Some((c, _)) => c.as_ptr() != caps.as_ptr() && c.as_ref() != caps,
            None => true,
        };
        if fresh {
            let info = gst_video::VideoInfo::from_caps(caps).map_err(|e| format!("bad caps {caps}: {e}"))?;
            if info.format() != gst_video::VideoFormat::Rgb {
                return Err(format!("expected RGB, got {:?}", info.format()));
            }
            self.info = Some((caps.to_owned(), info));
        }
        let info = &self.info.as_ref().ok_or("no video info")?.1;
        let frame = gst_video::VideoFrameRef::from_buffer_ref_readable(buffer, info)
            .map_err(|e| format!("cannot map buffer: {e}"))?;
        let (w, h) = (frame.width() as usize, frame.height() as usize);
        let stride = frame.plane_stride()[0] as usize;
        let data = frame.plane_data(0).map_err(|e| format!("no plane 0: {e}"))?;
        let row = w * 3;
        if stride < row || data.len() < stride * (h.saturating_sub(1)) + row {
            return Err(format!("buffer too small for {w}x{h} (stride {stride}, {} bytes)", data.len()));
        }

        let mut rgb = self.take_buffer();
        let pixels = Arc::get_mut(&mut rgb).ok_or("pooled buffer still shared")?;
        pixels.clear();
        pixels.reserve(row * h);
        if stride == row {
            pixels.extend_from_slice(&data[..row * h]);
        } else {
            // Rows are padded (RGB rows are aligned to 4 bytes): copy row by row.
            for y in 0..h {
                pixels.extend_from_slice(&data[y * stride..y * stride + row]);
            }
        }
        if self.pool.len() < POOL_SIZE {
            self.pool.push(rgb.clone());
        }

        let pts = buffer
            .pts()
            .map(|t| t.nseconds() as f64 / 1e9)
            .unwrap_or_else(|| self.started.elapsed().as_secs_f64());
        let (seq, ts) = self.clock.lock().unwrap_or_else(|e| e.into_inner()).stamp(pts, Instant::now());
        Ok(Frame { camera: self.camera, seq, ts, wall: chrono::Utc::now(), width: w as u32, height: h as u32, rgb })
    }

    /// A pixel buffer nobody else holds (taken out of the pool), or a new one.
    fn take_buffer(&mut self) -> Arc<Vec<u8>> {
        match self.pool.iter().position(|b| Arc::strong_count(b) == 1 && Arc::weak_count(b) == 0) {
            Some(i) => self.pool.swap_remove(i),
            None => Arc::new(Vec::new()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn clock_stays_monotonic_across_runs() {
        let t0 = Instant::now();
        let mut file = StreamClock::new(false);
        let (s0, a) = file.stamp(0.0, t0);
        let (_, b) = file.stamp(0.1, t0);
        assert_eq!((s0, a, b), (0, 0.0, 0.1));
        file.new_run();
        let (s2, c) = file.stamp(0.0, t0);
        assert_eq!(s2, 2);
        assert!((c - 0.2).abs() < 1e-9, "{c}");
        // a live source advances by the wall time spent reconnecting
        let mut live = StreamClock::new(true);
        live.stamp(5.0, t0);
        live.new_run();
        let (_, d) = live.stamp(0.3, t0 + Duration::from_secs(7));
        assert!((d - 12.0).abs() < 1e-9, "{d}");
        // PTS going backwards inside a run never moves ts back
        let (_, e) = live.stamp(0.1, t0 + Duration::from_secs(7));
        assert!(e > d);
    }

    #[test]
    fn main_stream_units_are_aligned_on_the_sub_stream_clock() {
        let t0 = Instant::now();
        let sub = Arc::new(Mutex::new(StreamClock::new(true)));
        let mut main = MainClock::new(sub.clone(), Align::Arrival);
        // no sub-stream frame yet: no stream time
        assert_eq!(main.stamp(3.0, t0), None);
        sub.lock().unwrap().stamp(10.0, t0); // sub frame: ts 10.0 at t0 (first run: offset 0)
        // the main stream's first unit 0.5 s later, with a PTS of its own (3.0)
        let a = main.stamp(3.0, t0 + Duration::from_millis(500)).unwrap();
        assert!((a - 10.5).abs() < 1e-9, "{a}");
        // later units follow their PTS, not their arrival
        let b = main.stamp(3.4, t0 + Duration::from_secs(9)).unwrap();
        assert!((b - 10.9).abs() < 1e-9, "{b}");
        // a reconnect of the main stream (a new pipeline, a new MainClock) aligns again
        let mut main = MainClock::new(sub.clone(), Align::Arrival);
        let c = main.stamp(0.0, t0 + Duration::from_secs(2)).unwrap();
        assert!((c - 12.0).abs() < 1e-9, "{c}");
        // files: the PTS on the sub-stream's run offset
        let file = Arc::new(Mutex::new(StreamClock::new(false)));
        let mut fm = MainClock::new(file.clone(), Align::Pts);
        assert_eq!(fm.stamp(1.0, t0), None);
        file.lock().unwrap().stamp(0.0, t0);
        assert_eq!(fm.stamp(1.25, t0 + Duration::from_secs(30)), Some(1.25));
    }

    #[test]
    fn a_paced_file_main_stream_that_loops_first_is_not_put_a_clip_length_back() {
        // a 10-s clip played at its own rate: the sub-stream's first run has offset 0
        let t0 = Instant::now();
        let at = |s: f64| t0 + Duration::from_secs_f64(s);
        let sub = Arc::new(Mutex::new(StreamClock::new(false)));
        let mut first = MainClock::new(sub.clone(), Align::PacedPts);
        sub.lock().unwrap().stamp(0.0, at(0.0));
        assert_eq!(first.stamp(0.0, at(0.02)), Some(0.0), "the first run is aligned by PTS");
        sub.lock().unwrap().stamp(9.96, at(9.96));
        // the main stream ends and starts again before the sub-stream does
        let mut second = MainClock::new(sub.clone(), Align::PacedPts);
        let a = second.stamp(0.0, at(10.0)).unwrap();
        assert!((a - 10.0).abs() < 0.05, "by arrival, where the sub-stream stands: {a}");
        // the sub-stream loops next: its clock continues where it was, and so do the main's units
        sub.lock().unwrap().new_run();
        let (_, s) = sub.lock().unwrap().stamp(0.0, at(10.05));
        let b = second.stamp(0.04, at(10.04)).unwrap();
        assert!((b - s).abs() < 0.1, "main {b} beside sub {s}");
        // a sub-stream that loops first leaves the main's run as it was, and the next run is by PTS
        sub.lock().unwrap().stamp(9.96, at(19.96));
        sub.lock().unwrap().new_run();
        sub.lock().unwrap().stamp(0.0, at(20.0));
        let mut third = MainClock::new(sub.clone(), Align::PacedPts);
        let offset = sub.lock().unwrap().offset().unwrap();
        assert_eq!(third.stamp(0.0, at(20.1)), Some(offset));
        // files read as fast as they go are never aligned by arrival
        let mut fast = MainClock::new(sub.clone(), Align::Pts);
        assert_eq!(fast.stamp(0.0, at(100.0)), Some(offset));
    }
}
