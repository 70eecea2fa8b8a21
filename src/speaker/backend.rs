//! One attempt to play a message on one speaker, per device kind. Every backend returns what
//! it did (a one-line detail and the audio bytes sent) or a one-line error; none panics or
//! blocks the runtime (GStreamer work runs on the blocking pool).
//!
//! Vendor endpoints (paths as the vendors document them):
//! - Hikvision ISAPI, stored clip: `PUT /ISAPI/Event/triggers/notifications/AudioAlarm?format=json`
//!   (`{"AudioAlarm":{"audioID","audioVolume","alarmTimes"}}`) then
//!   `PUT /ISAPI/Event/triggers/notifications/AudioAlarm/test?format=json`;
//!   speech: `PUT /ISAPI/System/TwoWayAudio/channels/{ch}/open`, `PUT …/audioData`
//!   (`application/octet-stream`, G.711 μ-law 8 kHz), `PUT …/close` (always, once opened).
//! - Axis VAPIX: `GET /axis-cgi/playclip.cgi?clip=…&repeat=…&volume=…`;
//!   `POST /axis-cgi/audio/transmit.cgi` (`audio/basic`, μ-law 8 kHz).
//! - Dahua: `POST /cgi-bin/audio.cgi?action=postAudio&httptype=singlepart&channel={ch}`
//!   (`Audio/G.711Mu`).

use std::path::Path;
use std::time::Duration;

use serde_json::json;

use super::audio::{self, Pcm};
use super::http::{Client, Request, Response};
use super::Origin;
use crate::config::{MessageCfg, SpeakerCfg, SpeakerKind};

/// What an attempt did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Delivered {
    pub detail: String,
    /// Audio bytes sent to the device (0 for stored clips and webhooks).
    pub audio_bytes: usize,
    /// Seconds of audio sent.
    pub audio_s: f64,
}

/// The sample rate a speaker kind needs its audio in.
pub fn audio_rate(kind: SpeakerKind) -> u32 {
    match kind {
        SpeakerKind::Local | SpeakerKind::Command => 16000,
        _ => audio::G711_RATE,
    }
}

/// Plays `msg` on `spk`. `pcm` is the message's shaped audio at [`audio_rate`] when the message
/// has audio; `client` carries the speaker's credentials and last auth challenge.
pub async fn play(spk: &SpeakerCfg, client: &Client, msg: &MessageCfg, pcm: Option<&Pcm>, origin: &Origin, work_dir: &Path) -> Result<Delivered, String> {
    let timeout = Duration::from_secs_f64(spk.timeout_s);
    let use_clip = msg.uses_stored_clip(spk.kind);
    let need_pcm = || pcm.ok_or_else(|| format!("message {:?} has no text or file to play on a {} speaker", msg.id, spk.kind.as_str()));
    let base = spk.url.trim_end_matches('/');
    let pace = spk.realtime.then_some(audio::G711_RATE);
    match spk.kind {
        SpeakerKind::HikvisionIsapi if use_clip => {
            let clip = msg.clip.as_deref().unwrap_or_default();
            let id: serde_json::Value = clip.parse::<u64>().map(|n| json!(n)).unwrap_or_else(|_| json!(clip));
            let body = json!({ "AudioAlarm": { "audioID": id, "audioVolume": msg.volume, "alarmTimes": msg.repeat } }).to_string();
            let url = format!("{base}/ISAPI/Event/triggers/notifications/AudioAlarm?format=json");
            ok(send(client, "PUT", &url, Some("application/json"), body.as_bytes(), None).await?)?;
            let url = format!("{base}/ISAPI/Event/triggers/notifications/AudioAlarm/test?format=json");
            ok(send(client, "PUT", &url, Some("application/json"), b"", None).await?)?;
            Ok(Delivered { detail: format!("stored clip {clip} x{}", msg.repeat), ..Default::default() })
        }
        SpeakerKind::HikvisionIsapi => {
            let mulaw = need_pcm()?.to_mulaw();
            let ch = format!("{base}/ISAPI/System/TwoWayAudio/channels/{}", spk.channel);
            let opened = ok(send(client, "PUT", &format!("{ch}/open"), Some("application/xml"), b"", None).await?)?;
            // newer firmware hands out a session that the data and close requests name
            let session = xml_value(&opened.body, "sessionId").map(|s| format!("?sessionId={s}")).unwrap_or_default();
            let sent = send(client, "PUT", &format!("{ch}/audioData{session}"), Some("application/octet-stream"), &mulaw, pace).await.and_then(ok);
            let closed = send(client, "PUT", &format!("{ch}/close{session}"), Some("application/xml"), b"", None).await.and_then(ok);
            sent?;
            closed?;
            Ok(delivered("two-way audio", mulaw.len(), audio::G711_RATE))
        }
        SpeakerKind::AxisVapix if use_clip => {
            let clip = msg.clip.as_deref().unwrap_or_default();
            let url = format!("{base}/axis-cgi/playclip.cgi?clip={}&repeat={}&volume={}", enc(clip), msg.repeat - 1, msg.volume);
            ok(send(client, "GET", &url, None, b"", None).await?)?;
            Ok(Delivered { detail: format!("stored clip {clip} x{}", msg.repeat), ..Default::default() })
        }
        SpeakerKind::AxisVapix => {
            let mulaw = need_pcm()?.to_mulaw();
            ok(send(client, "POST", &format!("{base}/axis-cgi/audio/transmit.cgi"), Some("audio/basic"), &mulaw, pace).await?)?;
            Ok(delivered("audio transmit", mulaw.len(), audio::G711_RATE))
        }
        SpeakerKind::Dahua => {
            let mulaw = need_pcm()?.to_mulaw();
            let url = format!("{base}/cgi-bin/audio.cgi?action=postAudio&httptype=singlepart&channel={}", spk.channel);
            ok(send(client, "POST", &url, Some("Audio/G.711Mu"), &mulaw, pace).await?)?;
            Ok(delivered("postAudio", mulaw.len(), audio::G711_RATE))
        }
        SpeakerKind::Webhook => {
            let mut body = json!({
                "speaker": spk.id, "message": msg.id, "text": msg.text, "lang": msg.lang, "clip": msg.clip,
                "volume": msg.volume, "repeat": msg.repeat, "ts": crate::publish::rfc3339(chrono::Utc::now()),
            });
            origin.add_to(&mut body);
            ok(send(client, "POST", &spk.url, Some("application/json"), body.to_string().as_bytes(), None).await?)?;
            Ok(Delivered { detail: "webhook".into(), ..Default::default() })
        }
        SpeakerKind::OnvifBackchannel => {
            let mulaw = need_pcm()?.to_mulaw();
            let (url, user, pass) = (spk.url.clone(), spk.username.clone(), spk.password.clone());
            let n = tokio::task::spawn_blocking(move || super::onvif::send_backchannel(&url, user.as_deref(), pass.as_deref(), &mulaw, timeout))
                .await
                .map_err(|e| format!("backchannel task: {e}"))?
                .map_err(|e| e.to_string())?;
            Ok(delivered("ONVIF backchannel", n, audio::G711_RATE))
        }
        SpeakerKind::Local => {
            let pcm = need_pcm()?.clone();
            let sink = spk.sink.clone();
            // the sink plays at real time: allow the audio's length on top of the timeout
            let limit = timeout + Duration::from_secs_f64(pcm.duration_s());
            let (n, secs) = (pcm.samples.len() * 2, pcm.duration_s());
            tokio::task::spawn_blocking(move || audio::play_local(&pcm, &sink, limit)).await.map_err(|e| format!("audio task: {e}"))??;
            Ok(Delivered { detail: format!("local sink {}", spk.sink), audio_bytes: n, audio_s: secs })
        }
        SpeakerKind::Command => run_command(spk, msg, pcm, origin, work_dir, timeout).await,
    }
}

fn delivered(how: &str, bytes: usize, rate: u32) -> Delivered {
    Delivered { detail: how.into(), audio_bytes: bytes, audio_s: bytes as f64 / rate as f64 }
}

async fn send(client: &Client, method: &str, url: &str, content_type: Option<&str>, body: &[u8], pace: Option<u32>) -> Result<Response, String> {
    let req = Request { method, url, content_type, body, pace_bytes_per_s: pace, headers: &[] };
    client.send(&req).await.map_err(|e| format!("{method} {}: {e}", path_of(url)))
}

/// A 2xx response, else an error naming the request and what the device said.
fn ok(r: Response) -> Result<Response, String> {
    if (200..300).contains(&r.status) {
        Ok(r)
    } else {
        Err(format!("HTTP {}: {}", r.status, r.body_excerpt(200)))
    }
}

fn path_of(url: &str) -> String {
    url::Url::parse(url).map(|u| u.path().to_string()).unwrap_or_else(|_| url.to_string())
}

/// Percent-encodes a query value.
fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// The text of the first `<tag>…</tag>` in an XML body (namespaces ignored).
fn xml_value(body: &[u8], tag: &str) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    let open = format!("<{tag}>");
    let start = text.find(&open)? + open.len();
    let end = text[start..].find("</")? + start;
    Some(text[start..end].trim().to_string()).filter(|s| !s.is_empty())
}

/// `command` speakers: the message's WAV is written to the work dir for `{file}`; the program
/// runs without a shell, its exit status is the outcome.
async fn run_command(spk: &SpeakerCfg, msg: &MessageCfg, pcm: Option<&Pcm>, origin: &Origin, work_dir: &Path, timeout: Duration) -> Result<Delivered, String> {
    let needs_file = spk.command.iter().any(|a| a.contains("{file}"));
    let mut wav_file = None;
    if needs_file {
        let pcm = pcm.ok_or_else(|| format!("message {:?} has no text or file, but the command wants {{file}}", msg.id))?;
        std::fs::create_dir_all(work_dir).map_err(|e| format!("{}: {e}", work_dir.display()))?;
        let f = tempfile::Builder::new().prefix("speak-").suffix(".wav").tempfile_in(work_dir).map_err(|e| format!("temporary WAV: {e}"))?;
        std::fs::write(f.path(), pcm.to_wav()).map_err(|e| format!("{}: {e}", f.path().display()))?;
        wav_file = Some(f);
    }
    let file = wav_file.as_ref().map(|f| f.path().display().to_string()).unwrap_or_default();
    let event = origin.event_id().unwrap_or_default();
    let fill = |a: &str| {
        a.replace("{file}", &file)
            .replace("{text}", msg.text.as_deref().unwrap_or_default())
            .replace("{clip}", msg.clip.as_deref().unwrap_or_default())
            .replace("{message}", &msg.id)
            .replace("{speaker}", &spk.id)
            .replace("{event_id}", event)
    };
    let args: Vec<String> = spk.command.iter().map(|a| fill(a)).collect();
    let mut cmd = tokio::process::Command::new(&args[0]);
    cmd.args(&args[1..]).stdin(std::process::Stdio::null()).kill_on_drop(true);
    let out = tokio::time::timeout(timeout, cmd.output())
        .await
        .map_err(|_| format!("{} did not finish within {:.0} s", args[0], timeout.as_secs_f64()))?
        .map_err(|e| format!("cannot run {}: {e}", args[0]))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(format!("{} exited with {}: {}", args[0], out.status, err.trim().chars().take(200).collect::<String>()));
    }
    let (bytes, secs) = pcm.filter(|_| needs_file).map_or((0, 0.0), |p| (p.samples.len() * 2, p.duration_s()));
    Ok(Delivered { detail: format!("command {}", args[0]), audio_bytes: bytes, audio_s: secs })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_values_and_query_encoding() {
        let body = br#"<?xml version="1.0"?><TwoWayAudioSession xmlns="x"><sessionId> 42ab </sessionId></TwoWayAudioSession>"#;
        assert_eq!(xml_value(body, "sessionId").as_deref(), Some("42ab"));
        assert_eq!(xml_value(b"<ResponseStatus/>", "sessionId"), None);
        assert_eq!(enc("clip 1&x"), "clip+1%26x");
        assert_eq!(path_of("http://h:8/a/b?c=d"), "/a/b");
    }
}
