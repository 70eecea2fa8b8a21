//! Writes rendered RGB frames as an H.264 MP4 through GStreamer
//! (`appsrc ! videoconvert ! x264enc ! h264parse ! mp4mux ! filesink`).

use std::path::Path;

use anyhow::{bail, Context};
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

/// An MP4 being written; call [`Mp4Writer::finish`] to close it properly.
pub struct Mp4Writer {
    pipeline: gst::Pipeline,
    src: gst_app::AppSrc,
    fps: u32,
    frames: u64,
    frame_bytes: usize,
}

impl Mp4Writer {
    /// Starts writing `path`: `width`×`height` RGB frames at `fps`, H.264 at `bitrate_kbps`.
    pub fn create(path: &Path, width: u32, height: u32, fps: u32, bitrate_kbps: u32) -> anyhow::Result<Mp4Writer> {
        crate::source::init_gstreamer()?;
        let launch = format!(
            "appsrc name=src format=time block=true max-bytes={max} \
             caps=video/x-raw,format=RGB,width={width},height={height},framerate={fps}/1 \
             ! videoconvert ! video/x-raw,format=I420 \
             ! x264enc speed-preset=veryfast bitrate={bitrate_kbps} key-int-max={gop} bframes=0 \
             ! h264parse ! mp4mux ! filesink location={loc}",
            max = width * height * 3 * 8,
            gop = fps * 2,
            loc = crate::source::template::quote(&path.display().to_string()),
        );
        let pipeline = gst::parse::launch(&launch)
            .context("x264enc/mp4mux pipeline (gstreamer1.0-plugins-ugly/good)")?
            .downcast::<gst::Pipeline>()
            .map_err(|_| anyhow::anyhow!("not a pipeline"))?;
        let src = pipeline
            .by_name("src")
            .context("no appsrc")?
            .downcast::<gst_app::AppSrc>()
            .map_err(|_| anyhow::anyhow!("not an appsrc"))?;
        pipeline.set_state(gst::State::Playing).context("start the MP4 writer")?;
        Ok(Mp4Writer { pipeline, src, fps, frames: 0, frame_bytes: (width * height * 3) as usize })
    }

    /// Appends one packed RGB frame.
    pub fn push(&mut self, rgb: &[u8]) -> anyhow::Result<()> {
        if rgb.len() != self.frame_bytes {
            bail!("frame has {} bytes, expected {}", rgb.len(), self.frame_bytes);
        }
        let mut buffer = gst::Buffer::from_slice(rgb.to_vec());
        {
            let b = buffer.get_mut().expect("a new buffer is writable");
            let ns = |i: u64| gst::ClockTime::from_nseconds(i * 1_000_000_000 / self.fps as u64);
            b.set_pts(ns(self.frames));
            b.set_duration(ns(self.frames + 1) - ns(self.frames));
        }
        self.src.push_buffer(buffer).map_err(|e| anyhow::anyhow!("MP4 writer refused a frame: {e:?}"))?;
        self.frames += 1;
        Ok(())
    }

    /// Ends the stream and waits until the file is complete.
    pub fn finish(self) -> anyhow::Result<u64> {
        self.src.end_of_stream().map_err(|e| anyhow::anyhow!("end of stream: {e:?}"))?;
        let bus = self.pipeline.bus().context("pipeline without bus")?;
        let result = loop {
            let Some(msg) = bus.timed_pop(gst::ClockTime::from_seconds(120)) else {
                break Err(anyhow::anyhow!("MP4 writer did not finish within 120 s"));
            };
            match msg.view() {
                gst::MessageView::Eos(_) => break Ok(self.frames),
                gst::MessageView::Error(e) => break Err(anyhow::anyhow!("MP4 writer: {} ({:?})", e.error(), e.debug())),
                _ => {}
            }
        };
        let _ = self.pipeline.set_state(gst::State::Null);
        result
    }
}
