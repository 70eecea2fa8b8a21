//! The ONVIF audio backchannel against real servers: an in-process ONVIF RTSP server that keeps
//! what reaches its "loudspeaker", a plain RTSP server without backchannel, a closed port, and
//! digest authentication.

mod common;

use std::net::TcpListener;
use std::time::{Duration, Instant};

use common::onvif::{OnvifServer, Options};
use common::rtsp::RtspServer;
use hawkeye::speaker::onvif::{send_backchannel, BackchannelError};

/// Generous for a local server; a hang would exceed it by far.
const TIMEOUT: Duration = Duration::from_secs(5);
const RATE: usize = 8000;
/// Bytes per 20 ms RTP packet.
const PACKET: usize = 160;

/// G.711 μ-law encoding of one 16-bit linear sample (ITU-T G.711, with the usual 0x84 bias).
fn mulaw_encode(sample: i16) -> u8 {
    const BIAS: i32 = 0x84;
    const CLIP: i32 = 32635;
    let mut s = i32::from(sample);
    let sign = if s < 0 { 0x80 } else { 0 };
    if s < 0 {
        s = -s;
    }
    s = s.min(CLIP) + BIAS;
    // Segment: position of the highest set bit above bit 7 (0..=7).
    let exponent = (7 - (s.leading_zeros() as i32 - 17)).clamp(0, 7);
    let mantissa = (s >> (exponent + 3)) & 0x0f;
    !((sign | (exponent << 4) | mantissa) as u8)
}

/// Inverse of [`mulaw_encode`] (to the centre of the quantisation step).
fn mulaw_decode(byte: u8) -> i16 {
    let u = !byte;
    let exponent = i32::from((u >> 4) & 0x07);
    let mantissa = i32::from(u & 0x0f);
    let magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84;
    (if u & 0x80 != 0 { -magnitude } else { magnitude }) as i16
}

/// `seconds` of a sine at `freq` Hz, half of full scale, μ-law encoded.
fn tone(freq: f64, seconds: f64) -> Vec<u8> {
    let n = (seconds * RATE as f64) as usize;
    (0..n)
        .map(|i| {
            let v = (2.0 * std::f64::consts::PI * freq * i as f64 / RATE as f64).sin() * 16384.0;
            mulaw_encode(v as i16)
        })
        .collect()
}

fn rms(mulaw: &[u8]) -> f64 {
    let sum: f64 = mulaw.iter().map(|&b| f64::from(mulaw_decode(b)).powi(2)).sum();
    (sum / mulaw.len().max(1) as f64).sqrt()
}

/// Polls until the server holds at least `want` bytes or `within` passes; returns what it holds.
fn wait_received(server: &OnvifServer, want: usize, within: Duration) -> Vec<u8> {
    let deadline = Instant::now() + within;
    loop {
        let got = server.received();
        if got.len() >= want || Instant::now() >= deadline {
            return got;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// True when `received` is made of whole packets of `sent`, in order (packets may be missing).
fn packets_in_order(sent: &[u8], received: &[u8]) -> bool {
    let mut sent_packets = sent.chunks(PACKET);
    received.chunks(PACKET).all(|p| sent_packets.any(|s| s == p))
}

#[test]
fn mulaw_codec_round_trips() {
    assert_eq!(mulaw_encode(0), 0xff);
    assert_eq!(mulaw_encode(-1), 0x7f);
    assert_eq!(mulaw_encode(i16::MAX), 0x80);
    assert_eq!(mulaw_encode(i16::MIN), 0x00);
    for v in [-30000i16, -1000, -100, 0, 100, 1000, 30000] {
        let back = mulaw_decode(mulaw_encode(v));
        // μ-law keeps about 4 significant bits: the error is within 1/16 of the value (+ bias).
        assert!((i32::from(back) - i32::from(v)).abs() <= i32::from(v).abs() / 16 + 8, "{v} -> {back}");
    }
}

#[test]
fn tone_reaches_the_loudspeaker() {
    let server = OnvifServer::start(Options::default());
    let audio = tone(440.0, 1.5);
    assert!(rms(&audio) > 10000.0, "the test tone itself is loud");

    let started = Instant::now();
    let pushed = send_backchannel(&server.url(), None, None, &audio, TIMEOUT).expect("backchannel send");
    let took = started.elapsed();
    assert_eq!(pushed, audio.len());
    // Paced at real time: 1.5 s of audio cannot have been sent in much less.
    assert!(took >= Duration::from_millis(1400), "sent 1.5 s of audio in {took:?}: not paced");

    let got = wait_received(&server, audio.len(), Duration::from_secs(2));
    assert!(got.len() * 10 >= audio.len() * 9, "server got {} of {} bytes", got.len(), audio.len());
    assert!(packets_in_order(&audio, &got), "received bytes are not the sent packets in order");
    let level = rms(&got);
    assert!(level > 10000.0, "received audio is (near) silence: RMS {level:.0}");
}

#[test]
fn plain_rtsp_server_has_no_backchannel() {
    let server = RtspServer::start(
        "( audiotestsrc is-live=true ! audio/x-raw,rate=8000,channels=1 ! mulawenc ! rtppcmupay name=pay0 pt=0 )",
        0,
    );
    let started = Instant::now();
    let res = send_backchannel(&server.url(), None, None, &tone(440.0, 0.2), TIMEOUT);
    assert_eq!(res, Err(BackchannelError::NoBackchannel));
    assert!(started.elapsed() < TIMEOUT + Duration::from_secs(1), "took {:?}", started.elapsed());
}

#[test]
fn onvif_stream_without_backchannel_is_reported() {
    let server = OnvifServer::start(Options { backchannel: false, ..Options::default() });
    let started = Instant::now();
    let res = send_backchannel(&server.url(), None, None, &tone(440.0, 0.2), TIMEOUT);
    assert_eq!(res, Err(BackchannelError::NoBackchannel));
    assert!(started.elapsed() < TIMEOUT + Duration::from_secs(1), "took {:?}", started.elapsed());
    assert!(server.received().is_empty());
}

#[test]
fn nothing_listening_is_a_connection_error() {
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let started = Instant::now();
    let res = send_backchannel(&format!("rtsp://127.0.0.1:{port}/onvif"), None, None, &tone(440.0, 0.2), TIMEOUT);
    assert!(matches!(res, Err(BackchannelError::Connection(_))), "{res:?}");
    assert!(started.elapsed() < TIMEOUT + Duration::from_secs(1), "took {:?}", started.elapsed());
}

#[test]
fn digest_credentials_are_checked() {
    let server =
        OnvifServer::start(Options { credentials: Some(("installer".into(), "s3cret".into())), ..Options::default() });
    let audio = tone(660.0, 0.4);

    let wrong = send_backchannel(&server.url(), Some("installer"), Some("wrong"), &audio, TIMEOUT);
    assert!(matches!(wrong, Err(BackchannelError::Unauthorized(_))), "{wrong:?}");
    let missing = send_backchannel(&server.url(), None, None, &audio, TIMEOUT);
    assert!(matches!(missing, Err(BackchannelError::Unauthorized(_))), "{missing:?}");
    assert!(server.received().is_empty(), "audio got through without valid credentials");

    let pushed = send_backchannel(&server.url(), Some("installer"), Some("s3cret"), &audio, TIMEOUT)
        .expect("send with the right password");
    assert_eq!(pushed, audio.len());
    let got = wait_received(&server, audio.len(), Duration::from_secs(2));
    assert!(got.len() * 10 >= audio.len() * 9, "server got {} of {} bytes", got.len(), audio.len());
}

#[test]
fn empty_audio_sends_nothing() {
    // No server at all: empty audio must not even connect.
    assert_eq!(send_backchannel("rtsp://127.0.0.1:9/none", None, None, &[], TIMEOUT), Ok(0));
}
