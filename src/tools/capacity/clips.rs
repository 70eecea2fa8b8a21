//! The clips the capacity bench plays: a camera's 1920×1080 main stream and 640×360 sub-stream
//! (H.264, 25 fps, MP4) made from a real clip, and a quiet scene (the clip's street with the
//! people taken out: the per-pixel median of frames spread over the clip, with sensor noise
//! added frame by frame). Made once with GStreamer and kept in a cache directory.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

/// A stream size the bench plays.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamSize {
    pub width: u32,
    pub height: u32,
}

/// Main stream of a typical IPC.
pub const MAIN: StreamSize = StreamSize { width: 1920, height: 1080 };
/// Sub-stream of a typical IPC.
pub const SUB: StreamSize = StreamSize { width: 640, height: 360 };
/// Frame rate of the made clips.
pub const FPS: u32 = 25;
/// Seconds of the quiet clip.
const QUIET_S: u32 = 40;

/// The clip `input` re-encoded at `size`, 25 fps, H.264 (key frame every 2 s), in `cache`.
pub fn encoded(input: &Path, size: StreamSize, cache: &Path) -> anyhow::Result<PathBuf> {
    let stem = input.file_stem().and_then(|s| s.to_str()).unwrap_or("clip");
    let out = cache.join(format!("{stem}-{}x{}-{FPS}.mp4", size.width, size.height));
    if out.is_file() {
        return Ok(out);
    }
    std::fs::create_dir_all(cache).with_context(|| format!("create {}", cache.display()))?;
    let tmp = out.with_extension("part");
    let desc = format!(
        "filesrc location={} ! decodebin ! videoconvert ! videoscale ! videorate \
         ! video/x-raw,format=I420,width={},height={},framerate={FPS}/1,pixel-aspect-ratio=1/1 \
         ! x264enc speed-preset=veryfast key-int-max={} bitrate={} \
         ! video/x-h264,profile=main ! h264parse ! mp4mux ! filesink location={}",
        crate::source::template::quote(&input.display().to_string()),
        size.width,
        size.height,
        2 * FPS,
        // kbit/s in the range IPCs use: 4 Mbit/s main, 512 kbit/s sub
        if size.width >= 1280 { 4000 } else { 512 },
        crate::source::template::quote(&tmp.display().to_string()),
    );
    eprintln!("bench: making {} (once; kept in {})", out.display(), cache.display());
    run_to_eos(&desc)?;
    std::fs::rename(&tmp, &out)?;
    Ok(out)
}

/// The quiet scene made from `input` (its median background, noise added), in `cache`, at the
/// input's own size; `encoded` then makes its main and sub streams.
pub fn quiet(input: &Path, cache: &Path) -> anyhow::Result<PathBuf> {
    let stem = input.file_stem().and_then(|s| s.to_str()).unwrap_or("clip");
    let out = cache.join(format!("{stem}-quiet.mp4"));
    if out.is_file() {
        return Ok(out);
    }
    std::fs::create_dir_all(cache)?;
    eprintln!("bench: making the quiet scene {} (median of {stem}'s frames, once)", out.display());
    let (w, h, frames) = sample_frames(input, 41)?;
    let background = median(&frames);
    let tmp = out.with_extension("part");
    let desc = format!(
        "appsrc name=src format=time is-live=false block=true \
         caps=video/x-raw,format=RGB,width={w},height={h},framerate={FPS}/1 \
         ! videoconvert ! x264enc speed-preset=veryfast key-int-max={} bitrate=3000 ! h264parse ! mp4mux \
         ! filesink location={}",
        2 * FPS,
        crate::source::template::quote(&tmp.display().to_string())
    );
    let pipeline = gst::parse::launch(&desc)?.downcast::<gst::Pipeline>().map_err(|_| anyhow::anyhow!("not a pipeline"))?;
    let src = pipeline.by_name("src").context("appsrc")?.downcast::<gst_app::AppSrc>().map_err(|_| anyhow::anyhow!("appsrc"))?;
    pipeline.set_state(gst::State::Playing)?;
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let n = QUIET_S * FPS;
    for i in 0..n {
        // sensor noise: a few grey levels, new every frame, as a real still scene has
        let mut px = background.clone();
        for v in px.iter_mut() {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            *v = (*v as i32 + (rng % 7) as i32 - 3).clamp(0, 255) as u8;
        }
        let mut buf = gst::Buffer::from_mut_slice(px);
        {
            let b = buf.get_mut().expect("fresh buffer");
            b.set_pts(gst::ClockTime::from_nseconds(i as u64 * 1_000_000_000 / FPS as u64));
            b.set_duration(gst::ClockTime::from_nseconds(1_000_000_000 / FPS as u64));
        }
        if src.push_buffer(buf).is_err() {
            bail!("the quiet clip's encoder stopped");
        }
    }
    let _ = src.end_of_stream();
    wait_eos(&pipeline)?;
    std::fs::rename(&tmp, &out)?;
    Ok(out)
}

/// `n` RGB frames spread evenly over the clip (decoded once, every k-th kept).
fn sample_frames(input: &Path, n: usize) -> anyhow::Result<(u32, u32, Vec<Vec<u8>>)> {
    let desc = format!(
        "filesrc location={} ! decodebin ! videoconvert ! video/x-raw,format=RGB ! appsink name=sink sync=false",
        crate::source::template::quote(&input.display().to_string())
    );
    let pipeline = gst::parse::launch(&desc)?.downcast::<gst::Pipeline>().map_err(|_| anyhow::anyhow!("not a pipeline"))?;
    let sink = pipeline.by_name("sink").context("appsink")?.downcast::<gst_app::AppSink>().map_err(|_| anyhow::anyhow!("appsink"))?;
    pipeline.set_state(gst::State::Playing)?;
    let mut all = Vec::new();
    let mut dims = (0, 0);
    // every 10th frame is kept while decoding, then n of those spread over the clip
    let mut k = 0usize;
    while let Ok(sample) = sink.pull_sample() {
        if k.is_multiple_of(10) {
            let caps = sample.caps().context("caps")?;
            let info = gstreamer_video::VideoInfo::from_caps(caps)?;
            let buf = sample.buffer().context("buffer")?;
            let map = buf.map_readable()?;
            let (w, h, stride) = (info.width() as usize, info.height() as usize, info.stride()[0] as usize);
            let mut rgb = Vec::with_capacity(w * h * 3);
            for y in 0..h {
                rgb.extend_from_slice(&map[y * stride..y * stride + w * 3]);
            }
            dims = (w as u32, h as u32);
            all.push(rgb);
        }
        k += 1;
    }
    pipeline.set_state(gst::State::Null)?;
    if all.len() < 5 {
        bail!("{}: only {} frames decoded", input.display(), k);
    }
    let step = (all.len() as f64 / n as f64).max(1.0);
    let picked = (0..n).map(|i| (i as f64 * step) as usize).take_while(|i| *i < all.len()).map(|i| all[i].clone()).collect();
    Ok((dims.0, dims.1, picked))
}

/// Per-value median of equally long buffers.
fn median(frames: &[Vec<u8>]) -> Vec<u8> {
    let mut column = vec![0u8; frames.len()];
    (0..frames[0].len())
        .map(|i| {
            for (c, f) in column.iter_mut().zip(frames) {
                *c = f[i];
            }
            column.sort_unstable();
            column[column.len() / 2]
        })
        .collect()
}

fn run_to_eos(desc: &str) -> anyhow::Result<()> {
    let pipeline = gst::parse::launch(desc)?.downcast::<gst::Pipeline>().map_err(|_| anyhow::anyhow!("not a pipeline"))?;
    pipeline.set_state(gst::State::Playing)?;
    wait_eos(&pipeline)
}

fn wait_eos(pipeline: &gst::Pipeline) -> anyhow::Result<()> {
    let bus = pipeline.bus().context("bus")?;
    let result = loop {
        let Some(msg) = bus.timed_pop(gst::ClockTime::from_seconds(600)) else { break Err(anyhow::anyhow!("encoding took over 10 minutes")) };
        match msg.view() {
            gst::MessageView::Eos(_) => break Ok(()),
            gst::MessageView::Error(e) => break Err(anyhow::anyhow!("{}: {}", e.error(), e.debug().map(|d| d.to_string()).unwrap_or_default())),
            _ => {}
        }
    };
    pipeline.set_state(gst::State::Null)?;
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_takes_out_what_passes_by() {
        let frames = vec![vec![10, 200], vec![10, 50], vec![250, 52], vec![11, 51], vec![9, 49]];
        assert_eq!(median(&frames), vec![10, 51]);
    }
}
