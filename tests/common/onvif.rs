//! An in-process ONVIF RTSP server for tests (gstreamer-rtsp-server's `RTSPOnvifServer`): its
//! own glib `MainContext` and `MainLoop` in a thread, one factory mounted at `/onvif`, serving a
//! live μ-law test tone and, optionally, an audio backchannel whose μ-law bytes it keeps so the
//! test can read back what reached the "loudspeaker".
//!
//! The backchannel is what the ONVIF factory builds for a client that sends
//! `Require: www.onvif.org/ver20/backchannel`: a bin `onvif-backchannel` with an element named
//! `depay_backchannel` whose caps say what the camera accepts (PCMU/8000 here), then
//! `rtppcmudepay ! appsink`. Every client gets its own media (not shared).
#![allow(dead_code)]

use std::sync::{Arc, Mutex};

use gstreamer_app as gst_app;
use gstreamer_rtsp_server as rtsp;
use rtsp::glib;
use rtsp::gst;
use rtsp::prelude::*;

use super::rtsp::{ServerThread, Started};

/// Mount path of the stream.
pub const PATH: &str = "/onvif";
/// Name of the appsink at the end of the backchannel bin.
const SPEAKER_SINK: &str = "speaker";
/// Role the authenticated user gets, allowed to access and construct the factory's media.
const ROLE: &str = "speaker";

/// How the server is set up.
#[derive(Clone, Debug)]
pub struct Options {
    /// Offer the audio backchannel (an `a=sendonly` PCMU stream) to ONVIF clients.
    pub backchannel: bool,
    /// Require RTSP digest authentication with this user and password.
    pub credentials: Option<(String, String)>,
}

impl Default for Options {
    fn default() -> Self {
        Options { backchannel: true, credentials: None }
    }
}

/// A running ONVIF server; dropped or [`stop`](OnvifServer::stop)ped, it closes every client.
pub struct OnvifServer {
    server: ServerThread,
    received: Arc<Mutex<Vec<u8>>>,
}

impl OnvifServer {
    /// Starts the server on a free port. Panics when it cannot start (tests only).
    pub fn start(options: Options) -> OnvifServer {
        let received = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&received);
        OnvifServer { server: ServerThread::spawn("onvif-server", move |tx| serve(&options, sink, tx)), received }
    }

    /// `rtsp://127.0.0.1:PORT/onvif`.
    pub fn url(&self) -> String {
        format!("rtsp://127.0.0.1:{}{PATH}", self.server.port)
    }

    /// The port actually bound.
    pub fn port(&self) -> u16 {
        self.server.port
    }

    /// Every μ-law byte that arrived on the backchannel so far, over all clients, in order.
    pub fn received(&self) -> Vec<u8> {
        self.received.lock().unwrap().clone()
    }

    /// Closes every client session, stops listening and joins the server thread.
    pub fn stop(mut self) {
        self.server.shutdown();
    }
}

/// The stream every client can PLAY: a live 440 Hz tone, μ-law, 8 kHz.
const MEDIA_LAUNCH: &str = "( audiotestsrc is-live=true freq=440 ! audio/x-raw,rate=8000,channels=1 \
                            ! mulawenc ! rtppcmupay name=pay0 pt=0 )";

/// The backchannel: what arrives as PCMU RTP is depayloaded into the appsink.
fn backchannel_launch() -> String {
    format!(
        "( capsfilter name=depay_backchannel \
           caps=\"application/x-rtp,media=audio,payload=0,clock-rate=8000,encoding-name=PCMU\" \
         ! rtppcmudepay ! appsink name={SPEAKER_SINK} sync=false async=false )"
    )
}

/// The server thread: sets up, reports the bound port, runs the loop, then tears down in the
/// same context so no callback outlives the server.
fn serve(options: &Options, received: Arc<Mutex<Vec<u8>>>, tx: Started) {
    let ctx = glib::MainContext::new();
    let main_loop = glib::MainLoop::new(Some(&ctx), false);
    let run = ctx.with_thread_default(|| {
        let server = rtsp::RTSPOnvifServer::new();
        server.set_address("127.0.0.1");
        server.set_service("0");
        let Some(mounts) = server.mount_points() else {
            let _ = tx.send(Err("server has no mount points".into()));
            return;
        };
        let factory = rtsp::RTSPOnvifMediaFactory::new();
        factory.set_launch(MEDIA_LAUNCH);
        factory.set_shared(false);
        // The ONVIF factory only builds media of this type (else it constructs nothing).
        factory.set_media_gtype(rtsp::RTSPOnvifMedia::static_type());
        if options.backchannel {
            factory.set_backchannel_launch(Some(&backchannel_launch()));
        }
        factory.connect_media_configure(move |_, media| collect_backchannel(media, &received));
        if let Some((user, pass)) = &options.credentials {
            let auth = rtsp::RTSPAuth::new();
            auth.set_supported_methods(rtsp::gst_rtsp::RTSPAuthMethod::Digest);
            let token = rtsp::RTSPToken::builder().field(rtsp::RTSP_TOKEN_MEDIA_FACTORY_ROLE, ROLE).build();
            auth.add_digest(user, pass, &token);
            server.set_auth(Some(&auth));
            let role = gst::Structure::builder(ROLE)
                .field(rtsp::RTSP_PERM_MEDIA_FACTORY_ACCESS, true)
                .field(rtsp::RTSP_PERM_MEDIA_FACTORY_CONSTRUCT, true)
                .build();
            factory.add_role_from_structure(&role);
        }
        mounts.add_factory(PATH, factory);
        super::rtsp::attach_and_run(&server, &ctx, &main_loop, &tx);
    });
    if let Err(e) = run {
        let _ = tx.send(Err(format!("cannot own the server's main context: {e}")));
    }
}

/// Hooks the backchannel's appsink (present only when the client asked for the backchannel) so
/// every depayloaded μ-law byte lands in `received`.
fn collect_backchannel(media: &rtsp::RTSPMedia, received: &Arc<Mutex<Vec<u8>>>) {
    let Ok(bin) = media.element().downcast::<gst::Bin>() else { return };
    let Some(sink) = bin.by_name(SPEAKER_SINK) else { return };
    let Ok(sink) = sink.downcast::<gst_app::AppSink>() else { return };
    let received = Arc::clone(received);
    sink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |sink| {
                let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                if let Some(buffer) = sample.buffer() {
                    let map = buffer.map_readable().map_err(|_| gst::FlowError::Error)?;
                    received.lock().unwrap().extend_from_slice(&map);
                }
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );
}
