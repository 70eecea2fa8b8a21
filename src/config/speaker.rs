// `!(x > 0.0)` is deliberate: unlike `x <= 0.0` it also rejects NaN.
#![allow(clippy::neg_cmp_op_on_partial_ord)]

//! Loudspeaker config (远程喊话): `[[speaker]]` devices, `[[message]]` warnings (the allow-list
//! both automatic triggers and `cmd/speak` draw from), and a zone's `[camera.zone.speak]`
//! trigger; with their checks.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::compile::CompiledSpeaker;
use super::Config;
use crate::speaker::GateParams;

/// How a speaker is driven.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum SpeakerKind {
    /// Hikvision ISAPI: stored alarm clip (AudioAlarm) or two-way audio (G.711 μ-law).
    HikvisionIsapi,
    /// Axis VAPIX: `playclip.cgi` for stored clips, `audio/transmit.cgi` for speech.
    AxisVapix,
    /// Dahua CGI: `audio.cgi?action=postAudio` (G.711 μ-law).
    Dahua,
    /// ONVIF audio backchannel over RTSP (G.711 μ-law, RTP PCMU).
    OnvifBackchannel,
    /// A JSON POST to an HTTP endpoint (a loudspeaker controller or a bridge).
    Webhook,
    /// A GStreamer audio sink on the edge box itself.
    Local,
    /// An external program, given the message's WAV file and text.
    Command,
}

impl SpeakerKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            SpeakerKind::HikvisionIsapi => "hikvision_isapi",
            SpeakerKind::AxisVapix => "axis_vapix",
            SpeakerKind::Dahua => "dahua",
            SpeakerKind::OnvifBackchannel => "onvif_backchannel",
            SpeakerKind::Webhook => "webhook",
            SpeakerKind::Local => "local",
            SpeakerKind::Command => "command",
        }
    }
    /// Whether the device can play a clip stored on it by name (no audio sent).
    pub fn plays_stored_clips(&self) -> bool {
        matches!(self, SpeakerKind::HikvisionIsapi | SpeakerKind::AxisVapix | SpeakerKind::Webhook | SpeakerKind::Command)
    }
    /// Whether the device needs audio from hawkeye when the message has no usable clip.
    pub fn needs_audio(&self) -> bool {
        !matches!(self, SpeakerKind::Webhook)
    }
    fn needs_url(&self) -> Option<&'static [&'static str]> {
        match self {
            SpeakerKind::HikvisionIsapi | SpeakerKind::AxisVapix | SpeakerKind::Dahua | SpeakerKind::Webhook => Some(&["http", "https"]),
            SpeakerKind::OnvifBackchannel => Some(&["rtsp", "rtsps"]),
            SpeakerKind::Local | SpeakerKind::Command => None,
        }
    }
}

/// One loudspeaker.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct SpeakerCfg {
    pub id: String,
    pub kind: SpeakerKind,
    /// `http://camera` (vendors, webhook) or `rtsp://camera/stream` (ONVIF backchannel).
    #[serde(default)]
    pub url: String,
    pub username: Option<String>,
    pub password: Option<String>,
    /// `https://` speakers: the CA certificate (PEM) that signed the speaker's certificate (a
    /// self-signed camera certificate is its own CA).
    pub ca_file: Option<PathBuf>,
    /// Audio channel on the device (Hikvision two-way audio, Dahua).
    #[serde(default = "default_channel")]
    pub channel: u32,
    /// `local`: GStreamer sink description.
    #[serde(default = "default_sink")]
    pub sink: String,
    /// `command`: program and arguments; `{file}` (WAV of the message), `{text}`, `{clip}`,
    /// `{message}`, `{speaker}`, `{event_id}` are replaced (no shell is involved).
    #[serde(default)]
    pub command: Vec<String>,
    /// Two attempts on this speaker are at least this far apart; closer ones are skipped.
    #[serde(default = "default_min_interval")]
    pub min_interval_s: f64,
    /// Weekly windows in which the speaker stays silent ("mon-sun 22:00-07:00").
    #[serde(default)]
    pub quiet_hours: Vec<String>,
    /// UTC offset of `quiet_hours`.
    #[serde(default = "super::default_timezone")]
    pub timezone: String,
    /// One attempt (connect, send, play) may take this long.
    #[serde(default = "default_timeout")]
    pub timeout_s: f64,
    /// Send audio at real time (true) rather than as fast as the network takes it.
    #[serde(default = "super::default_true")]
    pub realtime: bool,
}

/// One warning message.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct MessageCfg {
    pub id: String,
    /// Spoken with espeak-ng in `lang`.
    pub text: Option<String>,
    /// `zh` (Mandarin) or `en`.
    #[serde(default = "default_lang")]
    pub lang: String,
    /// An audio file to play instead of speech (any format GStreamer decodes).
    pub file: Option<PathBuf>,
    /// The name or number of a clip stored on the speaker (Hikvision audio id, Axis clip);
    /// speakers that play stored clips use it, the others speak `text` / play `file`.
    pub clip: Option<String>,
    /// 0..=100 %.
    #[serde(default = "default_volume")]
    pub volume: u8,
    /// How many times the message is played per attempt.
    #[serde(default = "default_repeat")]
    pub repeat: u32,
}

impl MessageCfg {
    /// Whether hawkeye can make audio for the message (speech or a file).
    pub fn has_audio(&self) -> bool {
        self.text.is_some() || self.file.is_some()
    }
    /// Whether a `kind` speaker plays this message's stored clip (rather than audio from hawkeye).
    pub fn uses_stored_clip(&self, kind: SpeakerKind) -> bool {
        self.clip.is_some() && kind.plays_stored_clips()
    }
    /// Whether `kind` can deliver this message.
    pub fn playable_on(&self, kind: SpeakerKind) -> bool {
        self.has_audio() || !kind.needs_audio() || self.uses_stored_clip(kind)
    }
    /// Whether hawkeye must make audio for this message on a `kind` speaker.
    pub fn needs_audio_on(&self, kind: SpeakerKind) -> bool {
        self.has_audio() && kind.needs_audio() && !self.uses_stored_clip(kind)
    }
}

/// A zone's automatic warning.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct ZoneSpeak {
    pub speaker: String,
    pub message: String,
    /// Alert states that trigger it: `new`, `update`, `end`, `resolved`, `recurred`.
    #[serde(default = "default_on")]
    pub on: Vec<String>,
    /// While the event stays active, warn again this often.
    pub again_after_s: Option<f64>,
}

pub const SPEAK_STATES: [&str; 5] = ["new", "update", "end", "resolved", "recurred"];

fn default_channel() -> u32 {
    1
}
fn default_sink() -> String {
    "autoaudiosink".into()
}
fn default_min_interval() -> f64 {
    30.0
}
fn default_timeout() -> f64 {
    30.0
}
fn default_lang() -> String {
    "zh".into()
}
fn default_volume() -> u8 {
    80
}
fn default_repeat() -> u32 {
    1
}
fn default_on() -> Vec<String> {
    vec!["new".into()]
}

/// Checks `[[speaker]]`, `[[message]]` and every zone's `speak`; returns the speakers that
/// passed their checks, compiled.
pub(super) fn check(cfg: &Config, errs: &mut Vec<String>) -> Vec<CompiledSpeaker> {
    let mut ids = HashSet::new();
    let mut compiled = Vec::new();
    for (i, s) in cfg.speakers.iter().enumerate() {
        let p = format!("speaker[{i}]");
        if !ids.insert(s.id.as_str()) {
            errs.push(format!("{p}.id: duplicate speaker id {:?}", s.id));
        }
        compiled.extend(check_speaker(s, &p, &cfg.base_dir, errs));
    }
    let mut mids = HashSet::new();
    let mut speech = false;
    for (i, m) in cfg.messages.iter().enumerate() {
        let p = format!("message[{i}]");
        super::validate::check_id(&m.id, &format!("{p}.id"), errs);
        if !mids.insert(m.id.as_str()) {
            errs.push(format!("{p}.id: duplicate message id {:?}", m.id));
        }
        match (&m.text, &m.file, &m.clip) {
            (None, None, None) => errs.push(format!("{p}: give text (spoken), file (played) or clip (stored on the speaker)")),
            (Some(_), Some(_), _) => errs.push(format!("{p}: give text or file, not both")),
            _ => {}
        }
        if let Some(t) = &m.text {
            speech = true;
            if t.trim().is_empty() {
                errs.push(format!("{p}.text: must not be empty"));
            }
            if crate::speaker::audio::espeak_voice(&m.lang).is_none() {
                errs.push(format!("{p}.lang: {:?} is not supported (zh, en)", m.lang));
            }
        }
        if let Some(f) = &m.file {
            let path = cfg.resolve(f);
            if !path.is_file() {
                errs.push(format!("{p}.file: {} does not exist", path.display()));
            }
        }
        if m.clip.as_deref().is_some_and(|c| c.trim().is_empty()) {
            errs.push(format!("{p}.clip: must not be empty"));
        }
        if m.volume > 100 {
            errs.push(format!("{p}.volume: {} must be in 0..=100", m.volume));
        }
        if !(1..=10).contains(&m.repeat) {
            errs.push(format!("{p}.repeat: {} must be in 1..=10", m.repeat));
        }
    }
    if speech && !crate::speaker::audio::espeak_available() {
        errs.push("message: text messages need espeak-ng, which cannot be run (apt install espeak-ng)".into());
    }
    for (c, cam) in cfg.cameras.iter().enumerate() {
        for (z, zone) in cam.zones.iter().enumerate() {
            let Some(sp) = &zone.speak else { continue };
            let p = format!("camera[{c}].zone[{z}].speak");
            let speaker = cfg.speakers.iter().find(|s| s.id == sp.speaker);
            let message = cfg.messages.iter().find(|m| m.id == sp.message);
            if speaker.is_none() {
                errs.push(format!("{p}.speaker: no [[speaker]] with id {:?}", sp.speaker));
            }
            if message.is_none() {
                errs.push(format!("{p}.message: no [[message]] with id {:?}", sp.message));
            }
            if let (Some(s), Some(m)) = (speaker, message) {
                if !m.playable_on(s.kind) {
                    errs.push(format!(
                        "{p}: message {:?} has only a stored clip, which a {} speaker cannot play; give it text or file",
                        m.id,
                        s.kind.as_str()
                    ));
                }
            }
            if sp.on.is_empty() {
                errs.push(format!("{p}.on: name at least one state ({})", SPEAK_STATES.join(", ")));
            }
            for (k, st) in sp.on.iter().enumerate() {
                if !SPEAK_STATES.contains(&st.as_str()) {
                    errs.push(format!("{p}.on[{k}]: {st:?} is not an alert state ({})", SPEAK_STATES.join(", ")));
                }
            }
            if let Some(a) = sp.again_after_s {
                if !(a > 0.0) || !a.is_finite() {
                    errs.push(format!("{p}.again_after_s: {a} must be > 0"));
                }
            }
        }
    }
    compiled
}

/// Checks one `[[speaker]]` at `p`; returns it compiled when it passed every check.
pub(super) fn check_speaker(s: &SpeakerCfg, p: &str, base_dir: &Path, errs: &mut Vec<String>) -> Option<CompiledSpeaker> {
    let errs_before = errs.len();
    super::validate::check_id(&s.id, &format!("{p}.id"), errs);
    match s.kind.needs_url() {
        Some(schemes) => match url::Url::parse(&s.url) {
            Err(e) => errs.push(format!("{p}.url: {:?} is not a URL: {e} ({} needs {}://…)", s.url, s.kind.as_str(), schemes[0])),
            Ok(u) if !schemes.contains(&u.scheme()) => {
                errs.push(format!("{p}.url: {} needs a {}:// URL, not {}://", s.kind.as_str(), schemes.join("/"), u.scheme()))
            }
            Ok(u) if u.host_str().unwrap_or("").is_empty() => errs.push(format!("{p}.url: {:?} has no host", s.url)),
            Ok(_) => {}
        },
        None if !s.url.is_empty() => errs.push(format!("{p}.url: a {} speaker has no URL", s.kind.as_str())),
        None => {}
    }
    if s.kind == SpeakerKind::Command && s.command.first().is_none_or(|c| c.trim().is_empty()) {
        errs.push(format!("{p}.command: a command speaker needs the program to run, e.g. [\"aplay\", \"{{file}}\"]"));
    }
    if s.kind != SpeakerKind::Command && !s.command.is_empty() {
        errs.push(format!("{p}.command: only for kind = \"command\""));
    }
    if s.kind == SpeakerKind::Local && s.sink.trim().is_empty() {
        errs.push(format!("{p}.sink: must name a GStreamer audio sink (e.g. \"autoaudiosink\")"));
    }
    if s.password.is_some() && s.username.is_none() {
        errs.push(format!("{p}.password: needs username"));
    }
    let https = s.url.starts_with("https://");
    match &s.ca_file {
        None if https => errs.push(format!("{p}.ca_file: an https:// speaker needs the CA certificate (PEM) that signed its certificate")),
        Some(_) if !https => errs.push(format!("{p}.ca_file: only for https:// URLs")),
        Some(f) if !super::resolve_path(base_dir, f).is_file() => errs.push(format!("{p}.ca_file: {} does not exist", super::resolve_path(base_dir, f).display())),
        _ => {}
    }
    if !(s.min_interval_s >= 0.0) || !s.min_interval_s.is_finite() {
        errs.push(format!("{p}.min_interval_s: {} must be a number >= 0", s.min_interval_s));
    }
    if !(s.timeout_s > 0.0 && s.timeout_s <= 600.0) {
        errs.push(format!("{p}.timeout_s: {} must be in (0, 600]", s.timeout_s));
    }
    let quiet = super::validate::check_schedule(&s.quiet_hours, &s.timezone, p, "quiet_hours", errs);
    let min_interval = std::time::Duration::try_from_secs_f64(s.min_interval_s).ok();
    if let (Some(quiet), Some(min_interval), true) = (quiet, min_interval, errs.len() == errs_before) {
        // no windows: never quiet (a zone's empty schedule means the opposite, "always")
        let quiet_hours = (!s.quiet_hours.is_empty()).then_some(quiet);
        return Some(CompiledSpeaker { cfg: s.clone(), gate: GateParams { min_interval, quiet_hours } });
    }
    None
}
