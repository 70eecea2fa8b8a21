//! Audio to a camera's loudspeaker over the ONVIF RTSP audio backchannel (ONVIF Streaming Spec
//! §5.3): the client plays an ordinary RTSP stream with `Require: www.onvif.org/ver20/backchannel`,
//! the camera's SDP then lists an extra `a=sendonly` audio stream, and whatever RTP the client
//! sends on that stream comes out of the speaker.
//!
//! # Flow
//! 1. **Connect**: a pipeline holding only `rtspsrc backchannel=onvif` (it adds the `Require`
//!    header to DESCRIBE, SETUP and PLAY; `user-id`/`user-pw` answer basic or digest auth).
//! 2. **Select**: rtspsrc emits `select-stream` once per SDP stream. Backchannel streams carry an
//!    `a-sendonly` caps field. We accept the first one whose codec is PCMU at 8 kHz and decline
//!    the other backchannels. The camera's normal streams are set up as well, and what they send
//!    is dropped in fakesinks. Declining them would save that bandwidth, but gst-rtsp-server 1.22
//!    then leaves a declined stream's payloader unlinked: its source stops with `not-linked`, the
//!    whole media (backchannel included) goes into error, and in about one run in five no audio
//!    arrived at all. Setting everything up works with every server; the cost is receiving the
//!    camera's stream for the seconds the clip plays.
//! 3. **Wait for PLAY**: rtspsrc silently drops backchannel samples until its RTSP state is
//!    PLAYING (the push still returns `OK`), so nothing is sent before the progress message
//!    `complete / request` ("Sent PLAY request") that rtspsrc posts once the PLAY reply is in.
//! 4. **Payload**: a second, private pipeline `appsrc ! rtppcmupay ! appsink` turns the μ-law
//!    bytes into 20 ms RTP packets with the payload type the camera offered. It runs as fast as
//!    it can; the audio is in memory already, so its packets are too (about 1.1 × the input).
//! 5. **Send, at real time**: each packet is handed to rtspsrc with the action signal
//!    `push-backchannel-sample (guint stream_id, GstSample *sample) -> GstFlowReturn`, no earlier
//!    than its own timestamp after the first one: a camera's jitter buffer holds a few packets,
//!    and a burst of seconds of audio would overrun it (the start of the clip plays, the rest is
//!    dropped). rtspsrc writes the packet to the interleaved TCP channel or to its own UDP path.
//! 6. **Teardown**: a short drain so the last packets leave the socket and the camera plays them
//!    out, then both pipelines go to `Null` — rtspsrc sends TEARDOWN on the way down (it waits
//!    up to `teardown-timeout` for the reply). A guard does this on every exit path.
//!
//! Success is "every byte was pushed": RTP over UDP has no acknowledgement, and an ONVIF camera
//! reports nothing about what it played.
//!
//! # GStreamer 1.22
//! rtspsrc has two action signals taking a `GstSample` (RTP caps + one RTP packet), not a
//! `GstBuffer`, despite the older one's name: `push-backchannel-buffer` (deprecated in 1.22; its
//! handler *unrefs the sample it was given*, so a binding that keeps ownership double-frees) and
//! `push-backchannel-sample` (since 1.22, borrows the sample like any signal argument). We use the
//! latter; only where it is missing (GStreamer < 1.22) we use the former and hand it a reference
//! of its own to consume.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gstreamer as gst;
use gstreamer::glib;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

/// G.711 sample rate (Hz); one μ-law byte per sample.
pub const SAMPLE_RATE: u32 = 8000;
/// Audio per RTP packet: 20 ms, the G.711 default packetisation every camera accepts.
pub const PACKET_DURATION: Duration = Duration::from_millis(20);
/// μ-law bytes per packet.
const PACKET_BYTES: usize = (SAMPLE_RATE as usize) * 20 / 1000;
/// Wait after the last packet before TEARDOWN, so it leaves the socket (rtspsrc's UDP path is
/// asynchronous) and the camera plays its jitter buffer out instead of cutting the tail.
const DRAIN: Duration = Duration::from_millis(250);
/// Longest wait for the TEARDOWN reply on the way down (rtspsrc's default is 100 ms).
const TEARDOWN_TIMEOUT: Duration = Duration::from_secs(1);
/// The caps field rtspsrc derives from the SDP's `a=sendonly` attribute.
const SENDONLY_FIELD: &str = "a-sendonly";
/// Size of an RTP header without CSRCs or extension (RFC 3550 §5.1).
const RTP_HEADER_LEN: usize = 12;

/// Why audio could not be sent over the backchannel.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BackchannelError {
    /// GStreamer is missing, or an element (rtspsrc, rtppcmupay, appsrc/appsink) is not installed.
    #[error("cannot build the backchannel pipeline: {0}")]
    Pipeline(String),
    /// Connecting or talking RTSP to the camera failed (GStreamer's error text).
    #[error("RTSP error: {0}")]
    Connection(String),
    /// The camera refused the credentials (or none were given and it wants some).
    #[error("RTSP authentication failed: {0}")]
    Unauthorized(String),
    /// The camera's SDP has no `a=sendonly` stream, or it refuses the ONVIF backchannel option.
    #[error("the camera offers no ONVIF audio backchannel (no a-sendonly stream)")]
    NoBackchannel,
    /// The camera has a backchannel, but not for G.711 μ-law at 8 kHz.
    #[error("the camera's backchannel does not take PCMU/8000 (it offers {0})")]
    UnsupportedCodec(String),
    /// No answer in time while connecting, or the payloader stalled.
    #[error("timed out after {after:?} {stage}")]
    Timeout { after: Duration, stage: &'static str },
    /// rtspsrc refused a packet, or the session died while the audio was being sent.
    #[error("pushing audio to the backchannel failed: {0}")]
    Push(String),
}

/// Sends G.711 μ-law audio (8 kHz mono, one byte per sample) to the ONVIF audio backchannel
/// of the RTSP stream at `url`. Returns the number of audio bytes pushed.
///
/// Blocks for the connection, then for the audio's own duration (it is paced at real time), then
/// for the TEARDOWN; call it from `spawn_blocking`. `timeout` bounds the connection (up to the
/// PLAY reply) and every later wait, not the audio's duration. Empty audio returns `Ok(0)`
/// without connecting.
pub fn send_backchannel(
    url: &str,
    username: Option<&str>,
    password: Option<&str>,
    mulaw: &[u8],
    timeout: std::time::Duration,
) -> Result<usize, BackchannelError> {
    if mulaw.is_empty() {
        return Ok(0);
    }
    gst::init().map_err(|e| BackchannelError::Pipeline(format!("GStreamer initialisation: {e}")))?;

    let session = Session::connect(url, username, password, timeout)?;
    let payloader = Payloader::start(mulaw, session.backchannel.payload_type)?;
    let pushed = session.send(&payloader, timeout)?;
    tracing::debug!(bytes = pushed, "backchannel audio sent");
    Ok(pushed)
    // `payloader` and `session` drop here: both pipelines to Null, TEARDOWN on the way.
}

/// The backchannel stream rtspsrc set up for us.
#[derive(Clone, Debug)]
struct Backchannel {
    /// rtspsrc's stream number (the `select-stream` index), the id `push-backchannel-*` takes.
    stream_id: u32,
    /// RTP payload type the camera gave PCMU in its SDP (usually the static 0).
    payload_type: u32,
}

/// What `select-stream` saw, shared with rtspsrc's thread.
#[derive(Debug, Default)]
struct Selection {
    chosen: Option<Backchannel>,
    /// `encoding-name/clock-rate` of each backchannel stream that was declined.
    declined: Vec<String>,
}

/// How one SDP stream is treated.
#[derive(Debug, PartialEq, Eq)]
enum StreamKind {
    /// A normal (camera → client) stream: set up, its packets dropped.
    Media,
    /// A backchannel that takes PCMU at 8 kHz, with its payload type.
    PcmuBackchannel { payload_type: u32 },
    /// A backchannel for another codec or rate, e.g. `MPEG4-GENERIC/16000`.
    OtherBackchannel(String),
}

/// Classifies a stream from the caps rtspsrc built out of its SDP media section.
fn classify(s: &gst::StructureRef) -> StreamKind {
    if !s.has_field(SENDONLY_FIELD) {
        return StreamKind::Media;
    }
    let encoding = s.get::<&str>("encoding-name").unwrap_or("?");
    // PCMU's clock rate is fixed by RFC 3551; an SDP may leave it out for the static type 0.
    let clock_rate = s.get::<i32>("clock-rate").unwrap_or(SAMPLE_RATE as i32);
    let payload = s.get::<i32>("payload").ok().and_then(|p| u32::try_from(p).ok());
    match payload {
        Some(payload_type) if encoding.eq_ignore_ascii_case("PCMU") && clock_rate == SAMPLE_RATE as i32 => {
            StreamKind::PcmuBackchannel { payload_type }
        }
        _ => StreamKind::OtherBackchannel(format!("{encoding}/{clock_rate}")),
    }
}

/// Sets a pipeline to `Null` when dropped, whichever way the send ends.
struct NullOnDrop(gst::Pipeline);

impl Drop for NullOnDrop {
    fn drop(&mut self) {
        let _ = self.0.set_state(gst::State::Null);
    }
}

/// The RTSP side: rtspsrc, PLAYING, with the backchannel stream set up.
struct Session {
    _pipeline: NullOnDrop,
    rtspsrc: gst::Element,
    bus: gst::Bus,
    backchannel: Backchannel,
}

impl Session {
    /// DESCRIBE, SETUP of the backchannel stream alone, PLAY; returns once the PLAY reply is in.
    fn connect(
        url: &str,
        username: Option<&str>,
        password: Option<&str>,
        timeout: Duration,
    ) -> Result<Session, BackchannelError> {
        let timeout_us = u64::try_from(timeout.as_micros()).unwrap_or(u64::MAX).max(1);
        let rtspsrc = gst::ElementFactory::make("rtspsrc")
            .property("location", url)
            // rtspsrc gives up connecting and waiting for replies when we do.
            .property("tcp-timeout", timeout_us)
            // The UDP timeout retries over TCP when no media arrives; we never receive media.
            .property("timeout", 0u64)
            .property("teardown-timeout", TEARDOWN_TIMEOUT.as_nanos() as u64)
            .property_from_str("backchannel", "onvif")
            .build()
            .map_err(|e| BackchannelError::Pipeline(format!("rtspsrc: {e}")))?;
        if let Some(user) = username {
            rtspsrc.set_property("user-id", user);
        }
        if let Some(pw) = password {
            rtspsrc.set_property("user-pw", pw);
        }

        let selection = Arc::new(Mutex::new(Selection::default()));
        let sel = Arc::clone(&selection);
        rtspsrc.connect("select-stream", false, move |args| {
            let id = args.get(1).and_then(|v| v.get::<u32>().ok());
            let caps = args.get(2).and_then(|v| v.get::<gst::Caps>().ok());
            let (Some(id), Some(caps)) = (id, caps) else {
                return Some(false.to_value());
            };
            let kind = caps.structure(0).map(classify).unwrap_or(StreamKind::Media);
            let mut sel = sel.lock().unwrap_or_else(|p| p.into_inner());
            let take = match kind {
                StreamKind::PcmuBackchannel { payload_type } if sel.chosen.is_none() => {
                    sel.chosen = Some(Backchannel { stream_id: id, payload_type });
                    true
                }
                StreamKind::PcmuBackchannel { .. } => false,
                StreamKind::OtherBackchannel(codec) => {
                    sel.declined.push(codec);
                    false
                }
                StreamKind::Media => true,
            };
            tracing::debug!(stream = id, %caps, take, "rtspsrc select-stream");
            Some(take.to_value())
        });

        let pipeline = gst::Pipeline::with_name("onvif-backchannel");
        let guard = NullOnDrop(pipeline.clone());
        pipeline.add(&rtspsrc).map_err(|e| BackchannelError::Pipeline(e.to_string()))?;
        // The camera's own streams: drop what arrives (an unlinked pad would fail the pipeline).
        let weak = pipeline.downgrade();
        rtspsrc.connect_pad_added(move |_, pad| {
            let Some(pipeline) = weak.upgrade() else { return };
            if let Err(e) = drop_stream(&pipeline, pad) {
                tracing::warn!(error = %e, pad = %pad.name(), "cannot drop a camera stream");
            }
        });
        let bus = pipeline.bus().ok_or_else(|| BackchannelError::Pipeline("pipeline has no bus".into()))?;
        pipeline
            .set_state(gst::State::Playing)
            .map_err(|_| BackchannelError::Connection(format!("rtspsrc refused to start for {url}")))?;

        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(BackchannelError::Timeout { after: timeout, stage: "waiting for the PLAY reply" });
            }
            let Some(msg) = bus.timed_pop(gst::ClockTime::from_nseconds(left.as_nanos() as u64)) else {
                continue;
            };
            match msg.view() {
                gst::MessageView::Error(err) => {
                    let sel = selection.lock().unwrap_or_else(|p| p.into_inner());
                    return Err(connect_error(&err.error(), err.debug().as_deref(), &sel));
                }
                gst::MessageView::Eos(_) => {
                    return Err(BackchannelError::Connection("the camera ended the session".into()));
                }
                gst::MessageView::Progress(p) => {
                    let (kind, code, text) = p.get();
                    tracing::trace!(?kind, code, text, "rtspsrc progress");
                    // PLAY is the only request rtspsrc completes while we wait for PLAYING.
                    if kind == gst::ProgressType::Complete && code == "request" {
                        break;
                    }
                }
                _ => {}
            }
        }
        // The camera's normal streams played, but no backchannel was among the streams.
        let backchannel = {
            let sel = selection.lock().unwrap_or_else(|p| p.into_inner());
            match (&sel.chosen, sel.declined.is_empty()) {
                (Some(chosen), _) => chosen.clone(),
                (None, true) => return Err(BackchannelError::NoBackchannel),
                (None, false) => return Err(BackchannelError::UnsupportedCodec(sel.declined.join(", "))),
            }
        };
        Ok(Session { _pipeline: guard, rtspsrc, bus, backchannel })
    }

    /// Pushes every packet at real time, then drains. Returns the audio bytes pushed.
    fn send(&self, payloader: &Payloader, timeout: Duration) -> Result<usize, BackchannelError> {
        let mut pushed = 0usize;
        let mut start: Option<(Instant, gst::ClockTime)> = None;
        loop {
            let Some(sample) = payloader.next(timeout)? else { break };
            let buffer = sample.buffer().ok_or_else(|| BackchannelError::Push("RTP sample without buffer".into()))?;
            let audio_bytes = {
                let map = buffer.map_readable().map_err(|e| BackchannelError::Push(e.to_string()))?;
                rtp_payload_len(&map).ok_or_else(|| BackchannelError::Push("payloader made a bad RTP packet".into()))?
            };
            // Real-time pacing: packet n leaves no earlier than its timestamp after packet 0.
            let pts = buffer.pts().unwrap_or(gst::ClockTime::ZERO);
            let (t0, pts0) = *start.get_or_insert((Instant::now(), pts));
            let due = t0 + Duration::from_nanos(pts.saturating_sub(pts0).nseconds());
            let wait = due.saturating_duration_since(Instant::now());
            if !wait.is_zero() {
                std::thread::sleep(wait);
            }
            self.check_bus()?;
            let flow = push_sample(&self.rtspsrc, self.backchannel.stream_id, &sample);
            if let Err(e) = flow.into_result() {
                return Err(BackchannelError::Push(format!("rtspsrc returned {e:?}")));
            }
            pushed += audio_bytes;
        }
        // Drain; an error now cannot unsend the audio, so it is only logged.
        if let Some(msg) = self
            .bus
            .timed_pop_filtered(gst::ClockTime::from_nseconds(DRAIN.as_nanos() as u64), &[gst::MessageType::Error])
        {
            if let gst::MessageView::Error(err) = msg.view() {
                tracing::debug!(error = %err.error(), "backchannel error after the last packet");
            }
        }
        Ok(pushed)
    }

    /// Fails if rtspsrc reported an error (or the session ended) since the last look.
    fn check_bus(&self) -> Result<(), BackchannelError> {
        while let Some(msg) = self.bus.pop_filtered(&[gst::MessageType::Error, gst::MessageType::Eos]) {
            match msg.view() {
                gst::MessageView::Error(err) => {
                    let detail = err.debug().map(|d| format!(" ({d})")).unwrap_or_default();
                    return Err(BackchannelError::Push(format!("{}{detail}", err.error())));
                }
                gst::MessageView::Eos(_) => {
                    return Err(BackchannelError::Push("the camera ended the session".into()));
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// Links one of rtspsrc's source pads (a camera stream we do not use) to a fakesink.
fn drop_stream(pipeline: &gst::Pipeline, pad: &gst::Pad) -> Result<(), glib::BoolError> {
    let sink = gst::ElementFactory::make("fakesink").property("sync", false).property("async", false).build()?;
    pipeline.add(&sink)?;
    let sinkpad = sink.static_pad("sink").ok_or_else(|| glib::bool_error!("fakesink without sink pad"))?;
    pad.link(&sinkpad).map_err(|e| glib::bool_error!("link: {e:?}"))?;
    sink.sync_state_with_parent()?;
    Ok(())
}

/// Maps an rtspsrc error before PLAY to our error, using what `select-stream` saw.
fn connect_error(err: &glib::Error, debug: Option<&str>, sel: &Selection) -> BackchannelError {
    let text = match debug {
        Some(d) if !d.is_empty() => format!("{err} ({d})"),
        _ => err.to_string(),
    };
    if err.matches(gst::ResourceError::NotAuthorized) {
        return BackchannelError::Unauthorized(text);
    }
    // A server without the backchannel answers our DESCRIBE (it carries the Require header) with
    // "551 Option Not Supported"; rtspsrc then marks DESCRIBE unsupported and reports only this.
    // The OPTIONS reply before it listed DESCRIBE, so the Require header is what was refused.
    if text.to_ascii_lowercase().contains("can not provide an sdp") {
        return BackchannelError::NoBackchannel;
    }
    // Every stream was declined: rtspsrc fails with "no supported stream was found".
    if sel.chosen.is_none() {
        if !sel.declined.is_empty() {
            return BackchannelError::UnsupportedCodec(sel.declined.join(", "));
        }
        if text.to_ascii_lowercase().contains("no supported stream") {
            return BackchannelError::NoBackchannel;
        }
    }
    BackchannelError::Connection(text)
}

/// Hands rtspsrc one RTP packet for backchannel stream `stream_id`.
///
/// `push-backchannel-buffer` takes a `GstSample` and unrefs it, on every version since 1.14
/// (documented so since 1.22, which deprecates it). `push-backchannel-sample`, added in 1.22 to
/// borrow the sample instead, still unrefs it in 1.22.0 (measured on this system; later releases
/// fixed it), so its ownership depends on the point release. The old signal's is stable: it gets
/// a reference of its own to consume, on top of the one the signal's argument holds and releases.
fn push_sample(rtspsrc: &gst::Element, stream_id: u32, sample: &gst::Sample) -> gst::FlowReturn {
    let consumed = sample.clone();
    let flow = rtspsrc.emit_by_name::<gst::FlowReturn>("push-backchannel-buffer", &[&stream_id, sample]);
    std::mem::forget(consumed);
    flow
}

/// `appsrc ! rtppcmupay ! appsink`: μ-law bytes in, 20 ms RTP packets out, as fast as it goes.
struct Payloader {
    _pipeline: NullOnDrop,
    appsink: gst_app::AppSink,
}

impl Payloader {
    /// Queues all of `mulaw` (timestamped from 0) and starts payloading with `payload_type`.
    fn start(mulaw: &[u8], payload_type: u32) -> Result<Payloader, BackchannelError> {
        let build = |e: glib::BoolError| BackchannelError::Pipeline(e.to_string());
        let audio_caps =
            gst::Caps::builder("audio/x-mulaw").field("rate", SAMPLE_RATE as i32).field("channels", 1i32).build();
        // The caps the camera offered, without rtspsrc's `a-*` SDP attributes.
        let rtp_caps = gst::Caps::builder("application/x-rtp")
            .field("media", "audio")
            .field("payload", payload_type as i32)
            .field("clock-rate", SAMPLE_RATE as i32)
            .field("encoding-name", "PCMU")
            .build();
        let appsrc = gst_app::AppSrc::builder()
            .caps(&audio_caps)
            .format(gst::Format::Time)
            // Everything is queued before the pipeline runs: the audio is in memory anyway.
            .max_bytes(0)
            .block(false)
            .build();
        let pay = gst::ElementFactory::make("rtppcmupay")
            .property("pt", payload_type)
            .property("min-ptime", PACKET_DURATION.as_nanos() as i64)
            .property("max-ptime", PACKET_DURATION.as_nanos() as i64)
            .build()
            .map_err(build)?;
        let appsink = gst_app::AppSink::builder().caps(&rtp_caps).sync(false).build();

        let pipeline = gst::Pipeline::with_name("onvif-payloader");
        let guard = NullOnDrop(pipeline.clone());
        pipeline.add_many([appsrc.upcast_ref(), &pay, appsink.upcast_ref()]).map_err(build)?;
        gst::Element::link_many([appsrc.upcast_ref(), &pay, appsink.upcast_ref()]).map_err(build)?;
        // appsrc accepts buffers once started (READY → PAUSED); the preroll completes with them.
        pipeline
            .set_state(gst::State::Paused)
            .map_err(|_| BackchannelError::Pipeline("payloader refused to start".into()))?;

        for (i, chunk) in mulaw.chunks(PACKET_BYTES).enumerate() {
            let mut buffer = gst::Buffer::from_slice(chunk.to_vec());
            let buf = buffer.get_mut().expect("a new buffer is writable");
            buf.set_pts(samples_to_time((i * PACKET_BYTES) as u64));
            buf.set_duration(samples_to_time(chunk.len() as u64));
            appsrc.push_buffer(buffer).map_err(|e| BackchannelError::Pipeline(format!("appsrc: {e:?}")))?;
        }
        appsrc.end_of_stream().map_err(|e| BackchannelError::Pipeline(format!("appsrc EOS: {e:?}")))?;
        pipeline
            .set_state(gst::State::Playing)
            .map_err(|_| BackchannelError::Pipeline("payloader refused to play".into()))?;
        Ok(Payloader { _pipeline: guard, appsink })
    }

    /// The next RTP packet, `None` after the last one.
    fn next(&self, timeout: Duration) -> Result<Option<gst::Sample>, BackchannelError> {
        let wait = gst::ClockTime::from_nseconds(timeout.as_nanos() as u64);
        match self.appsink.try_pull_sample(wait) {
            Some(sample) => Ok(Some(sample)),
            None if self.appsink.is_eos() => Ok(None),
            None => Err(BackchannelError::Timeout { after: timeout, stage: "waiting for the RTP payloader" }),
        }
    }
}

/// Duration of `samples` μ-law samples.
fn samples_to_time(samples: u64) -> gst::ClockTime {
    gst::ClockTime::from_nseconds(samples * 1_000_000_000 / SAMPLE_RATE as u64)
}

/// Payload length of an RTP packet (RFC 3550 §5.1: fixed header, CSRCs, optional extension,
/// optional padding), or `None` when the packet is malformed.
fn rtp_payload_len(packet: &[u8]) -> Option<usize> {
    let first = *packet.first()?;
    if first >> 6 != 2 {
        return None;
    }
    let csrc_count = usize::from(first & 0x0f);
    let mut header = RTP_HEADER_LEN + 4 * csrc_count;
    if first & 0x10 != 0 {
        // Extension: 16-bit profile id, 16-bit length in 32-bit words, then the words.
        let len_at = header + 2;
        let words = u16::from_be_bytes([*packet.get(len_at)?, *packet.get(len_at + 1)?]);
        header += 4 + 4 * usize::from(words);
    }
    let padding = if first & 0x20 != 0 { usize::from(*packet.last()?) } else { 0 };
    packet.len().checked_sub(header)?.checked_sub(padding)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn structure(s: &str) -> gst::Structure {
        gst::init().unwrap();
        s.parse().unwrap()
    }

    #[test]
    fn rtp_payload_len_handles_csrc_extension_and_padding() {
        let mut plain = vec![0x80, 0x00, 0, 1, 0, 0, 0, 160, 1, 2, 3, 4];
        plain.extend([0xffu8; 160]);
        assert_eq!(rtp_payload_len(&plain), Some(160));

        // One CSRC, an extension of one word, 3 bytes of padding (last byte says 3).
        let mut full = vec![0xb1, 0x00, 0, 1, 0, 0, 0, 0, 1, 2, 3, 4, 9, 9, 9, 9, 0xbe, 0xde, 0, 1, 7, 7, 7, 7];
        full.extend([0x55u8; 10]);
        full.extend([0, 0, 3]);
        assert_eq!(rtp_payload_len(&full), Some(10));

        assert_eq!(rtp_payload_len(&[]), None);
        assert_eq!(rtp_payload_len(&[0x40; 20]), None, "version 1");
        assert_eq!(rtp_payload_len(&[0x80; 8]), None, "shorter than a header");
    }

    #[test]
    fn classify_picks_pcmu_sendonly_streams() {
        let video = structure("application/x-rtp, media=video, payload=96, clock-rate=90000, encoding-name=H264");
        assert_eq!(classify(&video), StreamKind::Media);
        let back = structure(
            "application/x-rtp, media=audio, payload=0, clock-rate=8000, encoding-name=PCMU, a-sendonly=(string)\"\"",
        );
        assert_eq!(classify(&back), StreamKind::PcmuBackchannel { payload_type: 0 });
        let dynamic =
            structure("application/x-rtp, media=audio, payload=97, encoding-name=pcmu, a-sendonly=(string)\"\"");
        assert_eq!(classify(&dynamic), StreamKind::PcmuBackchannel { payload_type: 97 });
        let aac = structure(
            "application/x-rtp, media=audio, payload=96, clock-rate=16000, encoding-name=MPEG4-GENERIC, \
             a-sendonly=(string)\"\"",
        );
        assert_eq!(classify(&aac), StreamKind::OtherBackchannel("MPEG4-GENERIC/16000".into()));
    }

    #[test]
    fn connect_errors_name_the_missing_backchannel() {
        gst::init().unwrap();
        let none = Selection::default();
        let refused = glib::Error::new(gst::ResourceError::Settings, "Could not get/set settings from/on resource.");
        let describe =
            "gstrtspsrc.c(8374): gst_rtspsrc_retrieve_sdp (): /GstRTSPSrc:rtspsrc0:\nServer can not provide an SDP.";
        assert_eq!(connect_error(&refused, Some(describe), &none), BackchannelError::NoBackchannel);
        let no_stream = glib::Error::new(gst::StreamError::Format, "No supported stream was found.");
        assert_eq!(connect_error(&no_stream, None, &none), BackchannelError::NoBackchannel);
        let aac = Selection { chosen: None, declined: vec!["MPEG4-GENERIC/16000".into()] };
        assert_eq!(
            connect_error(&no_stream, None, &aac),
            BackchannelError::UnsupportedCodec("MPEG4-GENERIC/16000".into())
        );
        let auth = glib::Error::new(gst::ResourceError::NotAuthorized, "Unauthorized");
        assert!(matches!(connect_error(&auth, None, &none), BackchannelError::Unauthorized(_)));
        let closed = glib::Error::new(gst::ResourceError::OpenReadWrite, "Could not open resource");
        assert!(matches!(
            connect_error(&closed, Some("Failed to connect."), &none),
            BackchannelError::Connection(t) if t.contains("Failed to connect")
        ));
    }
}
