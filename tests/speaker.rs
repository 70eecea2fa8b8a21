//! Loudspeaker backends against real servers: an HTTP server in the test emulates each vendor's
//! endpoints and enforces Digest (or Basic) auth; speech comes from the real espeak-ng and is
//! decoded by GStreamer; the ONVIF backchannel goes to an in-process gstreamer-rtsp-server
//! ONVIF media factory; local audio plays through a real GStreamer sink; a command speaker runs
//! a real program. Rate limit and quiet hours run on paused tokio time.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::speaker_http::{espeak_seconds, ulaw_rms, Auth, Recorded, SpeakerServer};
use hawkeye::config::{CompiledSpeaker, MessageCfg, SpeakerCfg};
use hawkeye::speaker::{Origin, Outcome, ResultSink, SpeakRequest, SpeakResult, SpeakerStats, Speakers, WallClock};
use tokio::sync::mpsc;

const ZH: &str = "请勿占道经营";
const EN: &str = "Please do not dump rubbish here";

fn speaker(toml_text: &str) -> SpeakerCfg {
    toml::from_str(toml_text).unwrap_or_else(|e| panic!("{e}\n{toml_text}"))
}

fn messages() -> Vec<MessageCfg> {
    let text = format!(
        r#"
[[message]]
id = "no-vending"
text = "{ZH}"
lang = "zh"
volume = 80
[[message]]
id = "no-vending-soft"
text = "{ZH}"
lang = "zh"
volume = 40
[[message]]
id = "no-dumping-twice"
text = "{EN}"
lang = "en"
repeat = 2
volume = 100
[[message]]
id = "siren"
clip = "3"
volume = 70
repeat = 2
[[message]]
id = "clip-or-speech"
clip = "2"
text = "{EN}"
lang = "en"
"#
    );
    #[derive(serde::Deserialize)]
    struct M {
        message: Vec<MessageCfg>,
    }
    toml::from_str::<M>(&text).unwrap().message
}

struct Rig {
    speakers: Speakers,
    results: mpsc::UnboundedReceiver<SpeakResult>,
    stats: Arc<SpeakerStats>,
    _work: tempfile::TempDir,
}

fn rig(cfgs: &[SpeakerCfg], clock: WallClock) -> Rig {
    let (tx, results) = mpsc::unbounded_channel();
    let sink: ResultSink = Arc::new(move |r: &SpeakResult| {
        let _ = tx.send(r.clone());
    });
    let work = tempfile::tempdir().unwrap();
    let stats = Arc::new(SpeakerStats::default());
    let compiled: Vec<CompiledSpeaker> = cfgs.iter().map(|c| CompiledSpeaker::new(c.clone(), work.path()).unwrap()).collect();
    let speakers = Speakers::start(&compiled, &messages(), work.path().to_path_buf(), work.path().join("speaker"), clock, stats.clone(), sink);
    Rig { speakers, results, stats, _work: work }
}

fn operator() -> Origin {
    Origin::Operator { request_id: Some("r-1".into()), operator: Some("wang".into()) }
}

impl Rig {
    async fn play(&mut self, speaker: &str, message: &str) -> SpeakResult {
        self.speakers.request(SpeakRequest { speaker: speaker.into(), message: message.into(), origin: operator() }).unwrap();
        self.next().await
    }
    async fn next(&mut self) -> SpeakResult {
        tokio::time::timeout(Duration::from_secs(60), self.results.recv()).await.expect("a result within 60 s").expect("result channel open")
    }
}

fn http_speaker(id: &str, kind: &str, url: &str, extra: &str) -> SpeakerCfg {
    speaker(&format!("id = \"{id}\"\nkind = \"{kind}\"\nurl = \"{url}\"\nusername = \"admin\"\npassword = \"Hik12345\"\nmin_interval_s = 0\ntimeout_s = 20\n{extra}"))
}

/// The audio a speaker received is μ-law at 8 kHz of the message's length: one byte per sample,
/// `seconds` long within 3 %, not silence, and silent where espeak's output starts (a wrong
/// encoding decoded as μ-law is loud everywhere).
fn assert_mulaw_speech(body: &[u8], seconds: f64) {
    let expected = seconds * 8000.0;
    let n = body.len() as f64;
    assert!((n - expected).abs() <= expected * 0.03, "{} bytes of μ-law, expected about {expected:.0} (8 kHz x {seconds:.2} s)", body.len());
    assert!(ulaw_rms(body) > 300.0, "speech, not silence: rms {}", ulaw_rms(body));
    assert!(ulaw_rms(&body[..80]) < 100.0, "espeak-ng begins with silence: rms {}", ulaw_rms(&body[..80]));
}

fn only<'a>(reqs: &'a [Recorded], method: &str, path: &str) -> &'a Recorded {
    let found: Vec<&Recorded> = reqs.iter().filter(|r| r.method == method && r.path() == path).collect();
    assert_eq!(found.len(), 1, "one {method} {path} in {:?}", reqs.iter().map(|r| format!("{} {}", r.method, r.target)).collect::<Vec<_>>());
    found[0]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hikvision_two_way_audio_with_digest_auth() {
    let session = "<TwoWayAudioSession><sessionId>s-42</sessionId></TwoWayAudioSession>";
    let server = SpeakerServer::start(Auth::digest("admin", "Hik12345"), &[("/ISAPI/System/TwoWayAudio/channels/1/open", 200, session)]).await;
    let mut rig = rig(&[http_speaker("pole-17", "hikvision_isapi", &server.url(), "")], WallClock::system());
    let r = rig.play("pole-17", "no-vending").await;
    assert_eq!(r.outcome, Outcome::Played, "{}", r.detail);

    let all = server.requests();
    assert!(!all[0].authorized && all[0].header("authorization").is_none(), "the first request is challenged");
    let ok = server.accepted();
    let seq: Vec<String> = ok.iter().map(|r| format!("{} {}", r.method, r.target)).collect();
    assert_eq!(
        seq,
        vec![
            "PUT /ISAPI/System/TwoWayAudio/channels/1/open".to_string(),
            "PUT /ISAPI/System/TwoWayAudio/channels/1/audioData?sessionId=s-42".to_string(),
            "PUT /ISAPI/System/TwoWayAudio/channels/1/close?sessionId=s-42".to_string(),
        ]
    );
    assert!(ok.iter().all(|r| r.header("authorization").unwrap().starts_with("Digest ")));
    let data = &ok[1];
    assert_eq!(data.header("content-type"), Some("application/octet-stream"));
    assert_mulaw_speech(&data.body, espeak_seconds(ZH, "cmn"));
    assert_eq!(r.audio_bytes, data.body.len());

    // volume 40 % against 80 %: half the level
    let soft = rig.play("pole-17", "no-vending-soft").await;
    assert_eq!(soft.outcome, Outcome::Played, "{}", soft.detail);
    let soft_body = &server.accepted().iter().filter(|r| r.path().ends_with("/audioData")).nth(1).unwrap().body.clone();
    let ratio = ulaw_rms(soft_body) / ulaw_rms(&data.body);
    assert!((0.4..0.6).contains(&ratio), "volume 40 vs 80 gives an rms ratio of {ratio:.2}");
    assert_eq!(server.requests().iter().filter(|r| !r.authorized).count(), 1, "later requests answer the cached challenge up front");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hikvision_stored_clip_and_wrong_password() {
    let server = SpeakerServer::start(Auth::digest("admin", "Hik12345"), &[]).await;
    let bad = speaker(&format!("id = \"bad\"\nkind = \"hikvision_isapi\"\nurl = \"{}\"\nusername = \"admin\"\npassword = \"wrong\"\nmin_interval_s = 0\n", server.url()));
    let mut rig = rig(&[http_speaker("pole-17", "hikvision_isapi", &server.url(), ""), bad], WallClock::system());

    let r = rig.play("pole-17", "siren").await;
    assert_eq!(r.outcome, Outcome::Played, "{}", r.detail);
    let ok = server.accepted();
    let cfg = only(&ok, "PUT", "/ISAPI/Event/triggers/notifications/AudioAlarm");
    assert_eq!(cfg.query(), "format=json");
    assert_eq!(cfg.header("content-type"), Some("application/json"));
    let body: serde_json::Value = serde_json::from_slice(&cfg.body).unwrap();
    assert_eq!(body, serde_json::json!({ "AudioAlarm": { "audioID": 3, "audioVolume": 70, "alarmTimes": 2 } }));
    only(&ok, "PUT", "/ISAPI/Event/triggers/notifications/AudioAlarm/test");
    assert_eq!(r.audio_bytes, 0, "a stored clip sends no audio");

    // a message with both a clip and a text uses the clip on a device that stores clips
    let r = rig.play("pole-17", "clip-or-speech").await;
    assert_eq!(r.outcome, Outcome::Played, "{}", r.detail);
    assert!(!server.accepted().iter().any(|r| r.path().contains("TwoWayAudio")));

    let before = server.requests().len();
    let r = rig.play("bad", "siren").await;
    assert_eq!(r.outcome, Outcome::Failed);
    assert!(r.detail.contains("wrong username or password"), "{}", r.detail);
    let tried: Vec<Recorded> = server.requests().into_iter().skip(before).collect();
    assert_eq!(tried.len(), 2, "challenged, answered once, refused: no retry loop");
    assert!(tried.iter().all(|r| !r.authorized));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axis_transmit_and_playclip() {
    let server = SpeakerServer::start(Auth::digest("admin", "Hik12345"), &[]).await;
    let mut rig = rig(&[http_speaker("axis-1", "axis_vapix", &server.url(), "")], WallClock::system());
    let r = rig.play("axis-1", "no-dumping-twice").await;
    assert_eq!(r.outcome, Outcome::Played, "{}", r.detail);
    let ok = server.accepted();
    let tx = only(&ok, "POST", "/axis-cgi/audio/transmit.cgi");
    assert_eq!(tx.header("content-type"), Some("audio/basic"));
    // two repeats with half a second between them
    assert_mulaw_speech(&tx.body, 2.0 * espeak_seconds(EN, "en") + 0.5);

    let r = rig.play("axis-1", "siren").await;
    assert_eq!(r.outcome, Outcome::Played, "{}", r.detail);
    let clip = only(&server.accepted(), "GET", "/axis-cgi/playclip.cgi").clone();
    assert_eq!(clip.query(), "clip=3&repeat=1&volume=70");
    assert!(clip.body.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dahua_post_audio() {
    let server = SpeakerServer::start(Auth::digest("admin", "Hik12345"), &[]).await;
    let mut rig = rig(&[http_speaker("dahua-1", "dahua", &server.url(), "channel = 2\nrealtime = false")], WallClock::system());
    let r = rig.play("dahua-1", "no-vending").await;
    assert_eq!(r.outcome, Outcome::Played, "{}", r.detail);
    let ok = server.accepted();
    let post = only(&ok, "POST", "/cgi-bin/audio.cgi");
    assert_eq!(post.query(), "action=postAudio&httptype=singlepart&channel=2");
    assert_eq!(post.header("content-type"), Some("Audio/G.711Mu"));
    assert_mulaw_speech(&post.body, espeak_seconds(ZH, "cmn"));

    // a clip-only message cannot be played on a Dahua speaker: a clear failure, nothing sent
    let n = server.requests().len();
    let r = rig.play("dahua-1", "siren").await;
    assert_eq!(r.outcome, Outcome::Failed);
    assert!(r.detail.contains("stored clip"), "{}", r.detail);
    assert_eq!(server.requests().len(), n);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_posts_json_with_basic_auth_and_server_errors_are_reported() {
    let server = SpeakerServer::start(Auth::basic("hook", "s3cret"), &[("/broken", 500, "speaker offline")]).await;
    let hook = speaker(&format!("id = \"hook\"\nkind = \"webhook\"\nurl = \"{}/speak\"\nusername = \"hook\"\npassword = \"s3cret\"\nmin_interval_s = 0\n", server.url()));
    let broken = speaker(&format!("id = \"broken\"\nkind = \"webhook\"\nurl = \"{}/broken\"\nusername = \"hook\"\npassword = \"s3cret\"\nmin_interval_s = 0\n", server.url()));
    let mut rig = rig(&[hook, broken], WallClock::system());
    let origin = Origin::Alert { event_id: "ev-1".into(), camera_id: "cam-1".into(), zone_id: "z".into(), kind: "dumping".into(), state: "new".into() };
    rig.speakers.request(SpeakRequest { speaker: "hook".into(), message: "no-vending".into(), origin }).unwrap();
    let r = rig.next().await;
    assert_eq!(r.outcome, Outcome::Played, "{}", r.detail);
    let post = only(&server.accepted(), "POST", "/speak").clone();
    assert_eq!(post.header("content-type"), Some("application/json"));
    let v: serde_json::Value = serde_json::from_slice(&post.body).unwrap();
    assert_eq!((v["speaker"].as_str(), v["message"].as_str(), v["text"].as_str()), (Some("hook"), Some("no-vending"), Some(ZH)));
    assert_eq!((v["event_id"].as_str(), v["kind"].as_str(), v["volume"].as_u64()), (Some("ev-1"), Some("dumping"), Some(80)));

    let r = rig.play("broken", "no-vending").await;
    assert_eq!(r.outcome, Outcome::Failed);
    assert!(r.detail.contains("HTTP 500") && r.detail.contains("speaker offline"), "{}", r.detail);
    let counts = rig.stats.rows();
    assert!(counts.contains(&("hook".into(), Outcome::Played, 1)) && counts.contains(&("broken".into(), Outcome::Failed, 1)), "{counts:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_speaker_with_a_private_ca_and_a_speaker_we_do_not_trust() {
    let pki = tempfile::tempdir().unwrap();
    common::pki::make_ca_and_server_cert(pki.path());
    let read = |f: &str| std::fs::read(pki.path().join(f)).unwrap();
    let server = SpeakerServer::start_tls(Auth::digest("admin", "Hik12345"), &[], &read("server.crt"), &read("server.key")).await;
    let ca = pki.path().join("ca.crt");
    let trusted = http_speaker("axis-tls", "axis_vapix", &server.https_url(), &format!("ca_file = \"{}\"\nrealtime = false", ca.display()));
    // trusting only its own certificate as a CA does not make the server's certificate valid
    let wrong_ca = http_speaker("axis-untrusted", "axis_vapix", &server.https_url(), &format!("ca_file = \"{}\"", pki.path().join("server.crt").display()));
    let mut rig = rig(&[trusted, wrong_ca], WallClock::system());
    let r = rig.play("axis-tls", "no-vending").await;
    assert_eq!(r.outcome, Outcome::Played, "{}", r.detail);
    let tx = only(&server.accepted(), "POST", "/axis-cgi/audio/transmit.cgi").clone();
    assert_mulaw_speech(&tx.body, espeak_seconds(ZH, "cmn"));
    let n = server.requests().len();
    let r = rig.play("axis-untrusted", "siren").await;
    assert_eq!(r.outcome, Outcome::Failed);
    assert!(r.detail.contains("TLS"), "{}", r.detail);
    assert_eq!(server.requests().len(), n, "nothing reached a server whose certificate did not verify");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allow_list_refuses_unknown_speakers_and_messages_and_dead_speakers_fail_fast() {
    // nothing listens on this port
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let dead = http_speaker("dead", "hikvision_isapi", &format!("http://127.0.0.1:{port}"), "");
    let mut rig = rig(&[dead], WallClock::system());
    let e = rig.speakers.request(SpeakRequest { speaker: "nope".into(), message: "no-vending".into(), origin: operator() }).unwrap_err();
    assert!(e.contains("unknown speaker") && e.contains("dead"), "{e}");
    let e = rig.speakers.request(SpeakRequest { speaker: "dead".into(), message: "free text".into(), origin: operator() }).unwrap_err();
    assert!(e.contains("unknown message"), "{e}");
    let r = rig.play("dead", "siren").await;
    assert_eq!(r.outcome, Outcome::Failed);
    assert!(r.detail.contains("cannot connect"), "{}", r.detail);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_sink_plays_the_speech() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("played.wav");
    let local = speaker(&format!("id = \"box\"\nkind = \"local\"\nsink = \"wavenc ! filesink location={}\"\nmin_interval_s = 0\n", out.display()));
    let mut rig = rig(&[local], WallClock::system());
    let r = rig.play("box", "no-vending").await;
    assert_eq!(r.outcome, Outcome::Played, "{}", r.detail);
    let pcm = hawkeye::speaker::audio::decode_file(&out, 16000).expect("the sink wrote a WAV file");
    let expected = espeak_seconds(ZH, "cmn");
    assert!((pcm.duration_s() - expected).abs() < 0.05 * expected, "{:.2} s played, {expected:.2} s expected", pcm.duration_s());
    assert!(pcm.rms() > 300.0, "rms {}", pcm.rms());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn command_speaker_gets_the_wav_and_a_failing_command_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("copy.wav");
    let cp = speaker(&format!("id = \"cp\"\nkind = \"command\"\ncommand = [\"cp\", \"{{file}}\", \"{}\"]\nmin_interval_s = 0\n", out.display()));
    let fail = speaker("id = \"fail\"\nkind = \"command\"\ncommand = [\"sh\", \"-c\", \"echo amplifier off >&2; exit 3\"]\nmin_interval_s = 0\n");
    let mut rig = rig(&[cp, fail], WallClock::system());
    let r = rig.play("cp", "no-dumping-twice").await;
    assert_eq!(r.outcome, Outcome::Played, "{}", r.detail);
    let wav = std::fs::read(&out).unwrap();
    assert_eq!(&wav[..4], b"RIFF");
    let pcm = hawkeye::speaker::audio::decode_file(Path::new(&out), 16000).unwrap();
    let expected = 2.0 * espeak_seconds(EN, "en") + 0.5;
    assert!((pcm.duration_s() - expected).abs() < 0.05 * expected, "{:.2} s, expected {expected:.2} s", pcm.duration_s());
    let r = rig.play("fail", "no-vending").await;
    assert_eq!(r.outcome, Outcome::Failed);
    assert!(r.detail.contains("amplifier off"), "{}", r.detail);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn onvif_backchannel_receives_the_speech() {
    let options = common::onvif::Options { backchannel: true, credentials: Some(("admin".into(), "cam-pass".into())) };
    let server = tokio::task::spawn_blocking(move || common::onvif::OnvifServer::start(options)).await.unwrap();
    let cfg = speaker(&format!(
        "id = \"onvif-cam\"\nkind = \"onvif_backchannel\"\nurl = \"{}\"\nusername = \"admin\"\npassword = \"cam-pass\"\nmin_interval_s = 0\ntimeout_s = 20\n",
        server.url()
    ));
    let mut rig = rig(&[cfg], WallClock::system());
    let r = rig.play("onvif-cam", "no-vending").await;
    assert_eq!(r.outcome, Outcome::Played, "{}", r.detail);
    let expected = (espeak_seconds(ZH, "cmn") * 8000.0) as usize;
    assert!(r.audio_bytes >= expected * 97 / 100, "pushed {} of about {expected}", r.audio_bytes);
    // the server's backchannel got the audio
    let mut got = server.received();
    for _ in 0..50 {
        if got.len() >= expected * 9 / 10 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        got = server.received();
    }
    assert!(got.len() >= expected * 9 / 10, "the camera received {} of {expected} bytes", got.len());
    assert!(ulaw_rms(&got) > 300.0, "speech arrived, not silence");
}

/// Rate limit and quiet hours on paused tokio time: the webhook server runs on the same paused
/// runtime, and the speaker's wall clock starts at 21:58 (+08:00).
#[tokio::test(start_paused = true)]
async fn rate_limit_and_quiet_hours_hold_on_paused_time() {
    let server = SpeakerServer::start(Auth::None, &[]).await;
    let cfg = speaker(&format!(
        "id = \"pole\"\nkind = \"webhook\"\nurl = \"{}/speak\"\nmin_interval_s = 30\nquiet_hours = [\"mon-sun 22:00-07:00\"]\ntimezone = \"+08:00\"\n",
        server.url()
    ));
    use chrono::TimeZone;
    let start = chrono::Utc.with_ymd_and_hms(2026, 12, 1, 13, 58, 0).unwrap();
    let mut rig = rig(&[cfg], WallClock::starting_at(start));

    assert_eq!(rig.play("pole", "no-vending").await.outcome, Outcome::Played);
    tokio::time::advance(Duration::from_secs(10)).await;
    let r = rig.play("pole", "no-vending").await;
    assert_eq!(r.outcome, Outcome::RateLimited, "10 s after: {}", r.detail);
    tokio::time::advance(Duration::from_secs(21)).await;
    assert_eq!(rig.play("pole", "no-vending").await.outcome, Outcome::Played, "31 s after the first");
    tokio::time::advance(Duration::from_secs(120)).await; // 22:00:31
    let r = rig.play("pole", "no-vending").await;
    assert_eq!(r.outcome, Outcome::QuietHours, "{}", r.detail);
    tokio::time::advance(Duration::from_secs(9 * 3600)).await; // 07:00:31
    assert_eq!(rig.play("pole", "no-vending").await.outcome, Outcome::Played, "after quiet hours");
    assert_eq!(server.accepted().len(), 3, "only the played requests reached the speaker");
    let rows = rig.stats.rows();
    assert!(rows.contains(&("pole".into(), Outcome::Played, 3)) && rows.contains(&("pole".into(), Outcome::RateLimited, 1)) && rows.contains(&("pole".into(), Outcome::QuietHours, 1)), "{rows:?}");
}

/// A speaker that hangs delays only itself: requests beyond its queue are dropped and reported,
/// and a second speaker keeps playing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_speaker_never_blocks_requests_or_other_speakers() {
    // accepts connections and never answers
    let hang = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hang_url = format!("http://{}", hang.local_addr().unwrap());
    let _keep = tokio::spawn(async move {
        let mut socks = Vec::new();
        while let Ok((s, _)) = hang.accept().await {
            socks.push(s);
        }
    });
    let server = SpeakerServer::start(Auth::None, &[]).await;
    let slow = speaker(&format!("id = \"slow\"\nkind = \"webhook\"\nurl = \"{hang_url}/x\"\nmin_interval_s = 0\ntimeout_s = 5\n"));
    let fine = speaker(&format!("id = \"fine\"\nkind = \"webhook\"\nurl = \"{}/x\"\nmin_interval_s = 0\n", server.url()));
    let mut rig = rig(&[slow, fine], WallClock::system());
    let t0 = std::time::Instant::now();
    for _ in 0..(hawkeye::speaker::QUEUE_DEPTH + 3) {
        rig.speakers.request(SpeakRequest { speaker: "slow".into(), message: "siren".into(), origin: operator() }).unwrap();
    }
    assert!(t0.elapsed() < Duration::from_secs(1), "requests never wait for the speaker");
    let mut dropped = 0;
    while let Ok(r) = rig.results.try_recv() {
        assert_eq!(r.outcome, Outcome::Dropped);
        dropped += 1;
    }
    assert!(dropped >= 2, "requests beyond the queue are dropped and reported ({dropped})");
    let r = rig.play("fine", "siren").await;
    assert_eq!((r.request.speaker.as_str(), r.outcome), ("fine", Outcome::Played), "{}", r.detail);
    // the hung one times out with a clear error
    let r = rig.next().await;
    assert_eq!((r.request.speaker.as_str(), r.outcome), ("slow", Outcome::Failed));
    assert!(r.detail.contains("timed out"), "{}", r.detail);
}
