//! An in-process RTSP server for tests (gstreamer-rtsp-server): its own glib `MainContext` and
//! `MainLoop` in a thread, one factory mounted at `/cam`.
//!
//! The factory is not shared: every client (and every reconnect) gets its own media pipeline,
//! so a client that reconnects after a restart gets a stream from the start again.
#![allow(dead_code)]

use std::sync::mpsc;
use std::thread::JoinHandle;

use gstreamer_rtsp_server as rtsp;
use rtsp::glib;
use rtsp::prelude::*;

/// Sample street scene (768x576, 10 fps, ~80 s).
pub const VTEST: &str = "/usr/share/doc/opencv-doc/examples/data/vtest.avi";

/// A running RTSP server; dropped or [`stop`](RtspServer::stop)ped, it closes every client.
pub struct RtspServer {
    server: ServerThread,
}

/// What a server thread reports once it listens: the bound port and its loop (to quit it).
pub type Started = mpsc::Sender<Result<(u16, glib::MainLoop), String>>;

/// A server running its own glib main loop on a thread (the RTSP and ONVIF test servers).
pub struct ServerThread {
    pub port: u16,
    main_loop: glib::MainLoop,
    thread: Option<JoinHandle<()>>,
}

impl ServerThread {
    /// Runs `serve` on a thread named `name` and waits until it reports the bound port.
    /// Panics when the server cannot start (tests only).
    pub fn spawn(name: &str, serve: impl FnOnce(Started) + Send + 'static) -> ServerThread {
        gstreamer::init().expect("gstreamer init");
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::Builder::new().name(name.to_string()).spawn(move || serve(tx)).expect("spawn server thread");
        match rx.recv() {
            Ok(Ok((port, main_loop))) => ServerThread { port, main_loop, thread: Some(thread) },
            Ok(Err(e)) => {
                let _ = thread.join();
                panic!("{name} did not start: {e}");
            }
            Err(_) => {
                let _ = thread.join();
                panic!("{name} died before starting");
            }
        }
    }

    /// Quits the loop (the thread closes every client and stops listening) and joins it.
    pub fn shutdown(&mut self) {
        if let Some(t) = self.thread.take() {
            self.main_loop.quit();
            let _ = t.join();
        }
    }
}

impl Drop for ServerThread {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl RtspServer {
    /// Serves `launch` (a `( … name=pay0 pt=96 )` description) at `rtsp://127.0.0.1:PORT/cam`;
    /// `port` 0 picks a free port. Panics when the server cannot start (tests only).
    pub fn start(launch: &str, port: u16) -> RtspServer {
        let launch = launch.to_string();
        RtspServer { server: ServerThread::spawn(&format!("rtsp-server-{port}"), move |tx| serve(&launch, port, tx)) }
    }

    /// `rtsp://127.0.0.1:PORT/cam`.
    pub fn url(&self) -> String {
        format!("rtsp://127.0.0.1:{}/cam", self.server.port)
    }

    /// The port actually bound.
    pub fn port(&self) -> u16 {
        self.server.port
    }

    /// Closes every client session, stops listening and joins the server thread, so a connected
    /// client sees its stream die and the port can be bound again at once.
    pub fn stop(mut self) {
        self.server.shutdown();
    }
}

/// The server thread: sets up, reports the bound port, runs the loop, then tears down in the
/// same context so no callback outlives the server.
fn serve(launch: &str, port: u16, tx: Started) {
    let ctx = glib::MainContext::new();
    let main_loop = glib::MainLoop::new(Some(&ctx), false);
    let run = ctx.with_thread_default(|| {
        let server = rtsp::RTSPServer::new();
        server.set_address("127.0.0.1");
        server.set_service(&port.to_string());
        let Some(mounts) = server.mount_points() else {
            let _ = tx.send(Err("server has no mount points".into()));
            return;
        };
        let factory = rtsp::RTSPMediaFactory::new();
        factory.set_launch(launch);
        factory.set_shared(false);
        mounts.add_factory("/cam", factory);
        attach_and_run(&server, &ctx, &main_loop, &tx);
    });
    if let Err(e) = run {
        let _ = tx.send(Err(format!("cannot own the server's main context: {e}")));
    }
}

/// Attaches `server` to `ctx`, reports the bound port (and the loop, to quit it) on `tx`, runs
/// `main_loop` until it is quit, then closes every client and session and stops listening, in
/// the same context so no callback outlives the server. Shared by the RTSP and ONVIF servers.
pub fn attach_and_run(
    server: &impl IsA<rtsp::RTSPServer>,
    ctx: &glib::MainContext,
    main_loop: &glib::MainLoop,
    tx: &Started,
) {
    let source = match server.attach(Some(ctx)) {
        Ok(id) => id,
        Err(e) => {
            let _ = tx.send(Err(format!("attach failed (port in use?): {e}")));
            return;
        }
    };
    let bound = server.bound_port();
    // The source lives in our context, not the global default one: destroy it there.
    let stop_listening = || {
        if let Some(s) = ctx.find_source_by_id(&source) {
            s.destroy();
        }
    };
    if tx.send(Ok((bound as u16, main_loop.clone()))).is_err() {
        stop_listening();
        return;
    }
    main_loop.run();

    // Close every client connection (and its sessions/media), then stop listening.
    server.client_filter(Some(&mut |_, _| rtsp::RTSPFilterResult::Remove));
    stop_listening();
    if let Some(pool) = server.session_pool() {
        pool.filter(Some(&mut |_, _| rtsp::RTSPFilterResult::Remove));
    }
    // Let pending teardown callbacks run before the context goes away.
    while ctx.iteration(false) {}
}

/// H.264 RTP payload of vtest.avi (768x576, 10 fps, real time, ~80 s).
pub fn h264_launch() -> String {
    format!(
        "( filesrc location={VTEST} ! decodebin ! videoconvert ! video/x-raw,format=I420 \
         ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=10 \
         ! rtph264pay name=pay0 pt=96 config-interval=-1 )"
    )
}

/// H.265 RTP payload of vtest.avi (768x576, 10 fps, real time, ~80 s).
pub fn h265_launch() -> String {
    format!(
        "( filesrc location={VTEST} ! decodebin ! videoconvert ! video/x-raw,format=I420 \
         ! x265enc tune=zerolatency speed-preset=ultrafast key-int-max=10 \
         ! rtph265pay name=pay0 pt=96 config-interval=-1 )"
    )
}

/// Synthetic live H.264 stream (bouncing ball, 320x240, 15 fps, endless).
pub fn synthetic_h264_launch() -> String {
    "( videotestsrc pattern=ball is-live=true ! video/x-raw,width=320,height=240,framerate=15/1 \
     ! videoconvert ! video/x-raw,format=I420 \
     ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=15 \
     ! rtph264pay name=pay0 pt=96 config-interval=-1 )"
        .to_string()
}
