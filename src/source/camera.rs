//! The per-camera supervisor: builds the GStreamer pipeline, turns appsink samples into
//! [`Frame`](crate::frame::Frame)s, watches the bus and a stall timer, and restarts the pipeline with capped
//! exponential backoff. Modelled on gst-plugin-rs' fallbacksrc: `Settings` come from the config
//! and never change; the per-run state lives in `run_once` and is dropped (pipeline to Null)
//! when the run ends, whatever the reason.
//!
//! Failure policy:
//! - error, EOS on a live source, refused state change: `Failed` (with a one-line `last_error`),
//!   wait, reconnect. A stall (no frame for `stall_timeout_s`) is reported as `Stalled`.
//! - the wait starts at `backoff_initial_s`, doubles per consecutive failure, is capped at
//!   `backoff_max_s`, and starts over once a pipeline has delivered frames for [`HEALTHY_RUN`].
//! - a file source reaching EOS ends (`Ended`) or, with `loop = true`, starts again at once.
//! - RTSP transport (`transport = "auto"`): when rtspsrc sets up no stream over the transport
//!   tried (the camera answered SETUP with "unsupported transport", as VLC's server does for
//!   TCP), the description is rebuilt with the other transport and started again at once; the
//!   transport that worked is kept for later reconnects. Both refused in a row is a failure.
//! - an invalid pipeline description (bad template, unknown element or property, GStreamer
//!   missing) is `Failed` for good and `run_camera` returns: it is a deterministic function of the
//!   config, so retrying cannot fix it and would only fill the logs.
//!
//! Dual-stream cameras (`detect_url`): one supervisor owns two pipelines, each run by the policy
//! above on its own: the sub-stream (`detect_url`, decoded and detected; the camera's `state`)
//! and the main stream (`url`, parsed only into the clip ring; `main_stream` in the health). A
//! failing main stream never stops detection and a failing sub-stream never stops the ring;
//! both reconnect with the same backoff. Progress of the main stream is its access units.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::config::{Camera, Transport};
use crate::frame_slots::FrameSlots;

use super::appsink::{feed_ring, Align, MainClock, SampleToFrame, StreamClock};
use super::health::{CameraHealth, HealthState, RetryReason};
use super::template::{self, APPSINK_NAME, SCALE_CAPS_NAME, SCALE_NAME};
use crate::evidence::clip::EncodedRing;

/// Name of the optional appsink that receives parsed, still-encoded access units for clips.
pub const ENCODED_NAME: &str = "encoded";
/// Name of the optional appsink that receives `meta/x-klv` (MISB ST 0601) buffers.
pub const KLV_NAME: &str = "klv";
use super::bus::{bus_event, one_line};
use super::dual::check_dual;
use super::SourceError;

/// A pipeline that delivered frames for this long resets the backoff to its initial value.
pub const HEALTHY_RUN: Duration = Duration::from_secs(10);
/// How often the stall timer looks at the frame counter.
const STALL_CHECK: Duration = Duration::from_millis(100);

/// Everything one camera's source task needs.
pub struct SourceCtx {
    /// Index of the camera in the config (its slot in `slots`).
    pub index: usize,
    pub camera: Camera,
    /// Directory relative paths in the camera's config resolve against.
    pub base_dir: PathBuf,
    pub slots: Arc<FrameSlots>,
    pub health: Arc<CameraHealth>,
    /// Wait for the detector instead of dropping frames (files for eval/bench). The owner must
    /// `slots.close()` on shutdown so that a blocked hand-off returns.
    pub lossless: bool,
    /// Ring of encoded access units for event clips, fed by templates with an `encoded` appsink.
    pub ring: Option<Arc<EncodedRing>>,
    /// Drone positions from MISB ST 0601 KLV, fed by templates with a `klv` appsink, keyed by
    /// the same stream time as the frames.
    pub klv: Option<Arc<crate::drone::GeoTrack>>,
}

/// Which of a camera's streams a pipeline carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    /// A single-stream camera: decoded and detected, its `encoded` branch (if any) feeds the ring.
    Single,
    /// A dual-stream camera's sub-stream: decoded and detected; the ring is fed by the main stream.
    Detect,
    /// A dual-stream camera's main stream: parsed only, into the ring.
    Main,
}

impl Role {
    fn name(self) -> &'static str {
        match self {
            Role::Single => "single",
            Role::Detect => "sub",
            Role::Main => "main",
        }
    }
}

/// Reports a state (and error) of `role`'s stream: the main stream has its own part of the health.
fn report(health: &CameraHealth, role: Role, state: HealthState, error: Option<String>) {
    match (role, error) {
        (Role::Main, e) => health.set_main(state, e),
        (_, Some(e)) => health.set_error(state, e),
        (_, None) => health.set_state(state),
    }
}

/// The supervisor's view of the camera config (never changes while running).
#[derive(Clone, Debug)]
struct Settings {
    is_file: bool,
    looping: bool,
    realtime: bool,
    lossless: bool,
    stall_timeout: Duration,
    backoff_initial: Duration,
    backoff_max: Duration,
}

impl Settings {
    fn new(camera: &Camera, lossless: bool) -> Self {
        let secs = |s: f64, min: f64, dflt: f64| {
            Duration::from_secs_f64(if s.is_finite() && s > 0.0 { s.max(min) } else { dflt })
        };
        let backoff_initial = secs(camera.backoff_initial_s, 0.01, 1.0);
        Settings {
            is_file: template::is_file_source(camera),
            looping: camera.looping,
            realtime: camera.realtime,
            lossless,
            stall_timeout: secs(camera.stall_timeout_s, 0.1, 10.0),
            backoff_initial,
            backoff_max: secs(camera.backoff_max_s, 0.01, 30.0).max(backoff_initial),
        }
    }
}

/// What the pipeline reports to its supervisor (bus messages and appsink milestones).
#[derive(Debug)]
pub(crate) enum PipelineEvent {
    /// The first frame of this run reached the appsink.
    FirstFrame,
    Error(String),
    /// rtspsrc set up no stream with the transports it was allowed (RTSP 461 to every SETUP).
    NoStream(String),
    Warning(String),
    Eos,
    /// The frame slots are closed: the daemon is shutting down.
    SlotsClosed,
}

/// How one run of a pipeline ended.
#[derive(Debug)]
enum RunEnd {
    Shutdown,
    /// End of a file source.
    Eos,
    Failed { reason: RetryReason, message: String },
    /// The camera set up no stream over the transport tried (see [`PipelineEvent::NoStream`]).
    NoStream(String),
    /// The pipeline could not even be built; retrying will not help.
    Invalid(String),
}

/// Runs one camera until `shutdown` is cancelled, its file ends, or its pipeline is invalid.
/// Never panics on stream problems; health says what is going on. A dual-stream camera's two
/// pipelines run side by side, each supervised on its own (see the module doc).
pub async fn run_camera(ctx: SourceCtx, shutdown: CancellationToken) {
    let clock = Arc::new(Mutex::new(StreamClock::new(!template::is_file_source(&ctx.camera))));
    if ctx.camera.detect_url.is_none() {
        supervise(&ctx, Role::Single, &clock, &shutdown).await;
        return;
    }
    ctx.health.enable_main();
    let sub_aspect = Arc::new(Mutex::new(None));
    tokio::join!(
        supervise_with(&ctx, Role::Detect, &clock, &sub_aspect, &shutdown),
        supervise_with(&ctx, Role::Main, &clock, &sub_aspect, &shutdown),
    );
}

async fn supervise(ctx: &SourceCtx, role: Role, clock: &Arc<Mutex<StreamClock>>, shutdown: &CancellationToken) {
    supervise_with(ctx, role, clock, &Arc::new(Mutex::new(None)), shutdown).await
}

/// The camera as `role`'s stream sees it (`url` is that stream's).
fn view(camera: &Camera, role: Role) -> Camera {
    match role {
        Role::Single => camera.clone(),
        Role::Detect => template::detect_view(camera),
        Role::Main => Camera { detect_url: None, ..camera.clone() },
    }
}

/// Runs one pipeline of a camera with the failure policy of the module doc.
async fn supervise_with(
    ctx: &SourceCtx,
    role: Role,
    clock: &Arc<Mutex<StreamClock>>,
    sub_aspect: &Arc<Mutex<Option<f64>>>,
    shutdown: &CancellationToken,
) {
    let camera = view(&ctx.camera, role);
    let settings = Settings::new(&camera, ctx.lossless);
    let health = ctx.health.clone();
    // The transport in use: `auto` starts with TCP (see `Transport::protocols`).
    let mut transport = match ctx.camera.transport() {
        Transport::Udp => Transport::Udp,
        Transport::Tcp | Transport::Auto => Transport::Tcp,
    };
    let mut swapped = false;
    let launch_for = |t: Transport| {
        let mut cam = ctx.camera.clone();
        cam.transport = Some(t);
        super::init_gstreamer().and_then(|()| match role {
            Role::Main => template::main_launch_string(&cam, &ctx.base_dir)?.ok_or_else(|| SourceError::Template("no main stream".into())),
            _ => template::launch_string(&view(&cam, role), &ctx.base_dir),
        })
    };
    let launch = launch_for(transport);
    let mut launch = match launch {
        Ok(l) => l,
        Err(e) => {
            report(&health, role, HealthState::Failed, Some(one_line(&e.to_string())));
            return;
        }
    };
    tracing::debug!(camera = %ctx.camera.id, stream = role.name(), %launch, "pipeline");
    let mut delay = settings.backoff_initial;
    let mut looped = false;
    loop {
        if shutdown.is_cancelled() {
            report(&health, role, HealthState::Stopped, None);
            return;
        }
        // A file starting over is still streaming; only new connections show `Connecting`.
        if !std::mem::take(&mut looped) {
            report(&health, role, HealthState::Connecting, None);
        }
        if role != Role::Main {
            clock.lock().unwrap_or_else(|e| e.into_inner()).new_run();
        }
        if let (Role::Main | Role::Single, Some(ring)) = (role, &ctx.ring) {
            ring.stream_restarted();
        }
        let run = RunCtx { role, settings: &settings, launch: &launch, clock, sub_aspect };
        let (end, streamed) = run_once(ctx, &run, shutdown).await;
        match end {
            RunEnd::Shutdown => {
                report(&health, role, HealthState::Stopped, None);
                return;
            }
            RunEnd::Invalid(msg) => {
                report(&health, role, HealthState::Failed, Some(msg));
                return;
            }
            RunEnd::Eos if settings.is_file && settings.looping => {
                tracing::debug!(camera = %ctx.camera.id, stream = role.name(), "end of file, looping");
                looped = true;
                continue;
            }
            RunEnd::Eos if settings.is_file => {
                report(&health, role, HealthState::Ended, None);
                return;
            }
            RunEnd::Eos => {
                let reason = RetryReason::Eos;
                let message = "the stream ended (EOS from the camera)".to_string();
                delay = fail_and_wait(ctx, role, &settings, reason, message, streamed, delay, shutdown).await;
            }
            RunEnd::NoStream(message) => {
                let next = other_transport(ctx.camera.transport(), transport, swapped);
                let relaunch = next.and_then(|t| launch_for(t).ok().filter(|l| *l != launch).map(|l| (t, l)));
                if let Some((next, l)) = relaunch {
                    tracing::warn!(
                        camera = %ctx.camera.id,
                        stream = role.name(),
                        "the camera set up no stream over {}; trying {} (transport = \"auto\")",
                        transport.as_str(),
                        next.as_str()
                    );
                    (transport, launch, swapped) = (next, l, true);
                    match role {
                        Role::Main => health.count_main_retry(None),
                        _ => health.count_reconnect(),
                    }
                    continue;
                }
                let message = format!("{}: {message}", refused_hint(ctx.camera.transport(), transport));
                delay = fail_and_wait(ctx, role, &settings, RetryReason::Error, message, streamed, delay, shutdown).await;
            }
            RunEnd::Failed { reason, message } => {
                delay = fail_and_wait(ctx, role, &settings, reason, message, streamed, delay, shutdown).await;
            }
        }
        swapped = false;
        if shutdown.is_cancelled() {
            report(&health, role, HealthState::Stopped, None);
            return;
        }
        match role {
            Role::Main => health.count_main_retry(None),
            _ => health.count_reconnect(),
        }
    }
}

/// With `auto`, the transport to try next after the camera set up no stream over `current`:
/// the other one, unless this run already was the swap (then both were refused: a failure).
fn other_transport(configured: Transport, current: Transport, swapped: bool) -> Option<Transport> {
    if configured != Transport::Auto || swapped {
        return None;
    }
    Some(if current == Transport::Tcp { Transport::Udp } else { Transport::Tcp })
}

/// Put before rtspsrc's "No supported stream was found" so that `last_error` says what to change.
fn refused_hint(configured: Transport, current: Transport) -> String {
    match configured {
        Transport::Auto => "the camera set up no stream over TCP or UDP".to_string(),
        _ => {
            let other = if current == Transport::Tcp { "udp" } else { "tcp" };
            format!(
                "the camera set up no stream over {} (transport = \"{}\"; try \"{other}\" or \"auto\")",
                current.as_str().to_uppercase(),
                configured.as_str()
            )
        }
    }
}

/// What every run of one pipeline shares.
struct RunCtx<'a> {
    role: Role,
    settings: &'a Settings,
    launch: &'a str,
    clock: &'a Arc<Mutex<StreamClock>>,
    /// The sub-stream's display aspect ratio once known (dual-stream cameras), for the mismatch check.
    sub_aspect: &'a Arc<Mutex<Option<f64>>>,
}

/// Records the failure, waits out the backoff (or until shutdown) and returns the next delay.
#[allow(clippy::too_many_arguments)]
async fn fail_and_wait(
    ctx: &SourceCtx,
    role: Role,
    settings: &Settings,
    reason: RetryReason,
    message: String,
    streamed: Duration,
    delay: Duration,
    shutdown: &CancellationToken,
) -> Duration {
    let state = if reason == RetryReason::Timeout { HealthState::Stalled } else { HealthState::Failed };
    report(&ctx.health, role, state, Some(message));
    match role {
        Role::Main => ctx.health.count_main_retry(Some(reason)),
        _ => ctx.health.count_retry(reason),
    }
    let delay = if streamed >= HEALTHY_RUN { settings.backoff_initial } else { delay };
    tracing::info!(camera = %ctx.camera.id, stream = role.name(), ?reason, retry_in_s = delay.as_secs_f64(), "restarting pipeline");
    tokio::select! {
        _ = shutdown.cancelled() => {}
        _ = tokio::time::sleep(delay) => {}
    }
    (delay * 2).min(settings.backoff_max)
}

/// Sets the pipeline to Null when dropped, so every exit path (including panics and early
/// returns) releases the camera connection and the decoder.
struct NullOnDrop(Option<gst::Pipeline>);

impl NullOnDrop {
    /// Stops the pipeline off the async runtime (Null can block while rtspsrc tears down).
    async fn stop(mut self) {
        if let Some(p) = self.0.take() {
            let _ = tokio::task::spawn_blocking(move || {
                let _ = p.set_state(gst::State::Null);
                p.bus().inspect(|b| b.unset_sync_handler());
            })
            .await;
        }
    }
}

impl Drop for NullOnDrop {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = p.set_state(gst::State::Null);
            p.bus().inspect(|b| b.unset_sync_handler());
        }
    }
}

/// Builds, plays and watches one pipeline until it ends. Returns how it ended and how long it
/// delivered frames.
async fn run_once(ctx: &SourceCtx, run: &RunCtx<'_>, shutdown: &CancellationToken) -> (RunEnd, Duration) {
    let (role, settings) = (run.role, run.settings);
    let (tx, mut rx) = mpsc::unbounded_channel();
    let run_frames = Arc::new(AtomicU64::new(0));
    let pipeline = match build_pipeline(ctx, run, &run_frames, &tx) {
        Ok(p) => p,
        Err(e) => return (RunEnd::Invalid(one_line(&e.to_string())), Duration::ZERO),
    };
    let guard = NullOnDrop(Some(pipeline.clone()));
    let started = Instant::now();
    let mut first_frame: Option<Instant> = None;

    let p = pipeline.clone();
    let play = tokio::task::spawn_blocking(move || p.set_state(gst::State::Playing)).await;
    if !matches!(play, Ok(Ok(_))) {
        // The element that refused usually posted an error explaining why.
        let mut message = "the pipeline refused to start (state change failure)".to_string();
        while let Ok(ev) = rx.try_recv() {
            match ev {
                PipelineEvent::Error(e) => {
                    message = e;
                    break;
                }
                PipelineEvent::NoStream(e) => {
                    guard.stop().await;
                    return (RunEnd::NoStream(e), Duration::ZERO);
                }
                _ => {}
            }
        }
        guard.stop().await;
        let reason = RetryReason::StateChangeFailure;
        return (RunEnd::Failed { reason, message }, Duration::ZERO);
    }

    let mut tick = tokio::time::interval(STALL_CHECK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut seen = 0u64;
    let mut progress = Instant::now();
    let end = loop {
        tokio::select! {
            _ = shutdown.cancelled() => break RunEnd::Shutdown,
            ev = rx.recv() => match ev {
                Some(PipelineEvent::FirstFrame) => {
                    first_frame = Some(Instant::now());
                    report(&ctx.health, role, HealthState::Streaming, None);
                }
                Some(PipelineEvent::Warning(w)) => {
                    tracing::warn!(camera = %ctx.camera.id, stream = role.name(), warning = %w, "pipeline warning");
                }
                Some(PipelineEvent::Error(message)) => {
                    break RunEnd::Failed { reason: RetryReason::Error, message };
                }
                Some(PipelineEvent::NoStream(message)) => break RunEnd::NoStream(message),
                Some(PipelineEvent::Eos) => break RunEnd::Eos,
                Some(PipelineEvent::SlotsClosed) | None => break RunEnd::Shutdown,
            },
            _ = tick.tick() => {
                if role == Role::Main {
                    check_dual(ctx, run.sub_aspect);
                }
                let n = run_frames.load(Ordering::Relaxed);
                if n != seen {
                    seen = n;
                    progress = Instant::now();
                } else if progress.elapsed() >= settings.stall_timeout {
                    let secs = settings.stall_timeout.as_secs_f64();
                    let what = if role == Role::Main { "main-stream access unit" } else { "frame" };
                    let message = if n == 0 {
                        format!("no {what} within {secs:.1} s of starting the pipeline")
                    } else {
                        format!("no {what} for {secs:.1} s (stream stalled)")
                    };
                    break RunEnd::Failed { reason: RetryReason::Timeout, message };
                }
            }
        }
    };
    let streamed = first_frame.map(|t| t.elapsed()).unwrap_or_default();
    guard.stop().await;
    tracing::debug!(camera = %ctx.camera.id, stream = role.name(), ?end, run_s = started.elapsed().as_secs_f64(), "pipeline stopped");
    (end, streamed)
}

fn build_pipeline(
    ctx: &SourceCtx,
    run: &RunCtx<'_>,
    run_frames: &Arc<AtomicU64>,
    tx: &mpsc::UnboundedSender<PipelineEvent>,
) -> Result<gst::Pipeline, SourceError> {
    let (role, settings, clock) = (run.role, run.settings, run.clock);
    let element = gst::parse::launch_full(run.launch, None, gst::ParseFlags::FATAL_ERRORS)
        .map_err(|e| SourceError::Parse(e.to_string()))?;
    let pipeline = element
        .downcast::<gst::Pipeline>()
        .map_err(|_| SourceError::Parse("the description is a single element, not a pipeline".into()))?;
    // From here on the pipeline exists: make sure it is set to Null if we bail out.
    let guard = NullOnDrop(Some(pipeline.clone()));

    if role != Role::Main {
        let appsink = pipeline
            .by_name(APPSINK_NAME)
            .and_then(|e| e.downcast::<gst_app::AppSink>().ok())
            .ok_or_else(|| SourceError::Parse(format!("no appsink named `{APPSINK_NAME}`")))?;
        appsink.set_max_buffers(2);
        appsink.set_drop(!settings.lossless);
        appsink.set_sync(settings.is_file && settings.realtime);
        appsink.set_enable_last_sample(false);
        appsink.set_callbacks(
            gst_app::AppSinkCallbacks::builder()
                .new_sample({
                    let mut conv = SampleToFrame {
                        camera: ctx.index,
                        slots: ctx.slots.clone(),
                        health: ctx.health.clone(),
                        lossless: settings.lossless,
                        clock: clock.clone(),
                        run_frames: run_frames.clone(),
                        tx: tx.clone(),
                        started: Instant::now(),
                        info: None,
                        pool: Vec::new(),
                        warned: false,
                    };
                    move |sink| conv.on_sample(sink)
                })
                .build(),
        );
    }

    let encoded = pipeline.by_name(ENCODED_NAME).and_then(|e| e.downcast::<gst_app::AppSink>().ok());
    if role == Role::Main && encoded.is_none() {
        return Err(SourceError::Parse(format!("the main-stream pipeline has no appsink named `{ENCODED_NAME}`")));
    }
    if let Some(enc) = encoded {
        // a file main stream is paced like its sub-stream, so the two stay side by side
        enc.set_sync(role == Role::Main && settings.is_file && settings.realtime);
        enc.set_enable_last_sample(false);
        enc.set_drop(true);
        // a dual-stream camera's sub-stream keeps no clip ring: its units are dropped at once
        let ring = if role == Role::Detect { None } else { ctx.ring.clone() };
        enc.set_max_buffers(if ring.is_some() { 64 } else { 1 });
        match (role, ring) {
            (Role::Main, Some(ring)) => {
                // each run is aligned afresh (see MainClock)
                let align = match (settings.is_file, settings.realtime) {
                    (false, _) => Align::Arrival,
                    (true, false) => Align::Pts,
                    (true, true) => Align::PacedPts,
                };
                let mut mc = MainClock::new(clock.clone(), align);
                let (frames, tx, health) = (run_frames.clone(), tx.clone(), ctx.health.clone());
                feed_ring(&enc, ring, move |pts| mc.stamp(pts, Instant::now()), move || {
                    health.count_main_unit();
                    if frames.fetch_add(1, Ordering::Relaxed) == 0 {
                        let _ = tx.send(PipelineEvent::FirstFrame);
                    }
                });
            }
            (_, Some(ring)) => {
                // units before the run's first decoded frame have no stream time yet
                let clock = clock.clone();
                feed_ring(&enc, ring, move |pts| clock.lock().unwrap_or_else(|e| e.into_inner()).offset().map(|o| o + pts), || {});
            }
            (_, None) => {}
        }
    }

    if let Some(sink) = pipeline.by_name(KLV_NAME).and_then(|e| e.downcast::<gst_app::AppSink>().ok()) {
        sink.set_sync(false);
        sink.set_enable_last_sample(false);
        sink.set_drop(true);
        sink.set_max_buffers(32);
        let (clock, track, camera) = (clock.clone(), ctx.klv.clone(), ctx.camera.id.clone());
        let mut bad = 0u64;
        sink.set_callbacks(
            gst_app::AppSinkCallbacks::builder()
                .new_sample(move |sink| {
                    let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                    let (Some(track), Some(buffer)) = (&track, sample.buffer()) else { return Ok(gst::FlowSuccess::Ok) };
                    // packets before the run's first decoded frame have no stream time yet
                    let (Some(offset), Some(pts)) = (clock.lock().unwrap().offset(), buffer.pts()) else { return Ok(gst::FlowSuccess::Ok) };
                    let Ok(map) = buffer.map_readable() else { return Ok(gst::FlowSuccess::Ok) };
                    for r in crate::drone::klv::parse_all(&map) {
                        match r {
                            Ok(u) => {
                                if let Some(fix) = crate::drone::fix_from_klv(&u) {
                                    track.push(offset + pts.nseconds() as f64 / 1e9, fix);
                                }
                            }
                            Err(e) => {
                                bad += 1;
                                if bad <= 5 || bad.is_multiple_of(1000) {
                                    tracing::warn!(camera = %camera, "bad KLV packet ({bad} so far): {e}");
                                }
                            }
                        }
                    }
                    Ok(gst::FlowSuccess::Ok)
                })
                .build(),
        );
    }

    if let (Some(scale), Some(size)) = (pipeline.by_name(SCALE_NAME), pipeline.by_name(SCALE_CAPS_NAME)) {
        keep_height_even(&scale, &size, ctx.camera.frame_width.max(2) & !1, run.sub_aspect.clone());
    }

    let bus = pipeline.bus().ok_or_else(|| SourceError::Parse("pipeline has no bus".into()))?;
    let bus_tx = tx.clone();
    bus.set_sync_handler(move |_, msg| {
        if let Some(ev) = bus_event(msg) {
            let _ = bus_tx.send(ev);
        }
        // Nobody pops this bus: everything of interest went through the channel.
        gst::BusSyncReply::Drop
    });
    let mut guard = guard;
    guard.0 = None;
    Ok(pipeline)
}

/// Sets the scaler's output caps once the input size is known, so that the height follows the
/// display aspect ratio and is even (the caps alone would allow odd heights).
fn keep_height_even(scale: &gst::Element, size: &gst::Element, width: u32, aspect: Arc<Mutex<Option<f64>>>) {
    let Some(pad) = scale.static_pad("sink") else { return };
    let size = size.downgrade();
    pad.add_probe(gst::PadProbeType::EVENT_DOWNSTREAM, move |_, info| {
        if let Some(gst::PadProbeData::Event(ev)) = &info.data {
            if let gst::EventView::Caps(c) = ev.view() {
                if let (Some(s), Some(size)) = (c.caps().structure(0), size.upgrade()) {
                    let w = s.get::<i32>("width").unwrap_or(0);
                    let h = s.get::<i32>("height").unwrap_or(0);
                    let par = s.get::<gst::Fraction>("pixel-aspect-ratio").unwrap_or(gst::Fraction::new(1, 1));
                    if w > 0 && h > 0 && par.denom() > 0 {
                        let dar = w as f64 * par.numer() as f64 / (h as f64 * par.denom() as f64);
                        *aspect.lock().unwrap_or_else(|e| e.into_inner()) = Some(dar);
                    }
                    if let Some(out_h) = even_height(width, w, h, par.numer(), par.denom()) {
                        let caps = gst::Caps::builder("video/x-raw")
                            .field("width", width as i32)
                            .field("height", out_h as i32)
                            .field("pixel-aspect-ratio", gst::Fraction::new(1, 1))
                            .build();
                        size.set_property("caps", &caps);
                    }
                }
            }
        }
        gst::PadProbeReturn::Ok
    });
}

/// Output height for `out_w` keeping the display aspect ratio of `in_w`×`in_h` with pixel aspect
/// `par_n/par_d`, rounded to the nearest even number (at least 2).
fn even_height(out_w: u32, in_w: i32, in_h: i32, par_n: i32, par_d: i32) -> Option<u32> {
    if in_w <= 0 || in_h <= 0 || par_n <= 0 || par_d <= 0 || out_w == 0 {
        return None;
    }
    let h = out_w as f64 * in_h as f64 * par_d as f64 / (in_w as f64 * par_n as f64);
    Some((((h / 2.0).round() as u32) * 2).max(2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_swaps_transport_once_per_refusal_and_fixed_transports_never() {
        use crate::config::Transport::*;
        assert_eq!(other_transport(Auto, Tcp, false), Some(Udp));
        // remembered UDP refused later (camera reconfigured): back to TCP
        assert_eq!(other_transport(Auto, Udp, false), Some(Tcp));
        // the swap itself was refused: both are, that is a failure
        assert_eq!(other_transport(Auto, Udp, true), None);
        for t in [Tcp, Udp] {
            assert_eq!(other_transport(t, t, false), None);
        }
        assert_eq!(refused_hint(Tcp, Tcp), "the camera set up no stream over TCP (transport = \"tcp\"; try \"udp\" or \"auto\")");
        assert_eq!(refused_hint(Udp, Udp), "the camera set up no stream over UDP (transport = \"udp\"; try \"tcp\" or \"auto\")");
        assert_eq!(refused_hint(Auto, Tcp), "the camera set up no stream over TCP or UDP");
    }

    #[test]
    fn height_follows_aspect_and_is_even() {
        assert_eq!(even_height(640, 768, 576, 1, 1), Some(480));
        assert_eq!(even_height(640, 1920, 1080, 1, 1), Some(360));
        // 1280x534 → 267 → 268 (even)
        assert_eq!(even_height(640, 1280, 534, 1, 1), Some(268));
        // anamorphic 720x576 PAL with PAR 16/15 is 4:3 on screen → 640x480
        assert_eq!(even_height(640, 720, 576, 16, 15), Some(480));
        assert_eq!(even_height(640, 0, 576, 1, 1), None);
        for (w, h) in [(1280, 534), (720, 576), (853, 480), (333, 777)] {
            assert_eq!(even_height(416, w, h, 1, 1).unwrap() % 2, 0);
        }
    }
}
