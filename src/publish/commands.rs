//! Commands from the command centre on `{prefix}/{device}/cmd/{name}`, answered on
//! `{prefix}/{device}/cmd_result`. Parsing is pure and total: any payload gives either a
//! [`Command`] or a [`CommandError`] that is sent back to the operator, never a panic.
//!
//! Payloads are JSON objects; every command may carry a `request_id` (string) that the reply
//! echoes. An empty payload is accepted where a command needs no arguments (`reload`).
//!
//! Retained commands (delivered again by the broker on every subscribe, i.e. every reconnect)
//! run at most once: only with a `request_id`, and only if that id is not in [`DoneIds`], the
//! ids already run, remembered on disk. The MQTT link applies this before the app sees them.

use serde::Deserialize;
use serde_json::{json, Value};

/// Largest command payload accepted.
pub const MAX_COMMAND_BYTES: usize = 64 * 1024;

/// A parsed command.
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    /// An operator acknowledges an event (it is being handled).
    Ack { event_id: String, operator: Option<String>, note: Option<String> },
    /// Publish a fresh snapshot of a camera now.
    Snapshot { camera_id: String },
    /// Re-read the config file; apply it if valid, else keep the running one.
    Reload,
    /// Re-examine an event's zone now and report `resolved` or `recurred` (回头看).
    Recheck { event_id: String },
    /// Play a configured message on a configured loudspeaker (远程喊话).
    Speak { speaker: String, message: String, operator: Option<String> },
    /// Replace a camera's zones (a zone editor): checked like `hawkeye check`, kept in the
    /// config's zones drop-in and applied by reload. `zones` is a JSON array of zone tables.
    Zones { camera_id: String, zones: Value },
}

impl Command {
    pub fn name(&self) -> &'static str {
        match self {
            Command::Ack { .. } => "ack",
            Command::Snapshot { .. } => "snapshot",
            Command::Reload => "reload",
            Command::Recheck { .. } => "recheck",
            Command::Speak { .. } => "speak",
            Command::Zones { .. } => "zones",
        }
    }
}

/// A command that cannot be carried out, with what the reply should say.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct CommandError {
    pub name: String,
    pub message: String,
}

/// A command together with the request id to echo.
#[derive(Clone, Debug, PartialEq)]
pub struct Request {
    pub command: Command,
    pub request_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AckBody {
    event_id: String,
    operator: Option<String>,
    note: Option<String>,
    request_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SnapshotBody {
    camera_id: String,
    request_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EventBody {
    event_id: String,
    request_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SpeakBody {
    speaker: String,
    message: String,
    operator: Option<String>,
    request_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ZonesBody {
    camera_id: String,
    zones: Value,
    request_id: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct EmptyBody {
    request_id: Option<String>,
}

/// The command name from a topic `…/cmd/{name}` under `root`, if it is one.
pub fn command_name<'a>(root: &str, topic: &'a str) -> Option<&'a str> {
    topic.strip_prefix(root)?.strip_prefix("/cmd/").filter(|n| !n.is_empty() && !n.contains('/'))
}

/// Parses a command payload for command `name`.
pub fn parse(name: &str, payload: &[u8]) -> Result<Request, CommandError> {
    let err = |message: String| CommandError { name: name.chars().take(64).collect(), message };
    if payload.len() > MAX_COMMAND_BYTES {
        return Err(err(format!("payload of {} bytes is larger than {MAX_COMMAND_BYTES}", payload.len())));
    }
    let text = std::str::from_utf8(payload).map_err(|_| err("payload is not UTF-8 text".into()))?;
    let text = if text.trim().is_empty() { "{}" } else { text };
    fn body<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, String> {
        serde_json::from_str(text).map_err(|e| format!("bad payload: {e}"))
    }
    let nonempty = |field: &str, v: &str| -> Result<(), CommandError> {
        if v.trim().is_empty() {
            Err(err(format!("`{field}` must not be empty")))
        } else {
            Ok(())
        }
    };
    match name {
        "ack" => {
            let b: AckBody = body(text).map_err(err)?;
            nonempty("event_id", &b.event_id)?;
            Ok(Request {
                command: Command::Ack { event_id: b.event_id, operator: b.operator, note: b.note },
                request_id: b.request_id,
            })
        }
        "snapshot" => {
            let b: SnapshotBody = body(text).map_err(err)?;
            nonempty("camera_id", &b.camera_id)?;
            Ok(Request { command: Command::Snapshot { camera_id: b.camera_id }, request_id: b.request_id })
        }
        "recheck" => {
            let b: EventBody = body(text).map_err(err)?;
            nonempty("event_id", &b.event_id)?;
            Ok(Request { command: Command::Recheck { event_id: b.event_id }, request_id: b.request_id })
        }
        "reload" => {
            let b: EmptyBody = body(text).map_err(err)?;
            Ok(Request { command: Command::Reload, request_id: b.request_id })
        }
        "speak" => {
            let b: SpeakBody = body(text).map_err(err)?;
            nonempty("speaker", &b.speaker)?;
            nonempty("message", &b.message)?;
            Ok(Request { command: Command::Speak { speaker: b.speaker, message: b.message, operator: b.operator }, request_id: b.request_id })
        }
        "zones" => {
            let b: ZonesBody = body(text).map_err(err)?;
            nonempty("camera_id", &b.camera_id)?;
            if !b.zones.is_array() {
                return Err(err("`zones` must be an array of zone tables".into()));
            }
            Ok(Request { command: Command::Zones { camera_id: b.camera_id, zones: b.zones }, request_id: b.request_id })
        }
        other => Err(err(format!("unknown command {other:?} (known: ack, snapshot, reload, recheck, speak, zones)"))),
    }
}

/// Name of the link's ACL probe under `…/cmd/` (never a command; the link consumes it).
pub const PROBE: &str = "_probe";

/// Best-effort request id from a payload that failed to parse, so even an error reply can be
/// matched to its request. A payload too large to parse whole is searched for
/// `"request_id": "…"` in its first 64 KiB only.
pub fn salvage_request_id(payload: &[u8]) -> Option<String> {
    if payload.len() <= MAX_COMMAND_BYTES {
        let v: Value = serde_json::from_slice(payload).ok()?;
        return v.get("request_id")?.as_str().map(str::to_string);
    }
    let head = &payload[..MAX_COMMAND_BYTES];
    let at = head.windows(12).position(|w| w == b"\"request_id\"")? + 12;
    let rest = std::str::from_utf8(&head[at..]).ok().or_else(|| {
        // cut inside a multi-byte character: use the valid prefix
        let e = std::str::from_utf8(&head[at..]).unwrap_err().valid_up_to();
        std::str::from_utf8(&head[at..at + e]).ok()
    })?;
    let rest = rest.trim_start().strip_prefix(':')?.trim_start();
    // a JSON string: parse just that token
    let mut de = serde_json::Deserializer::from_str(rest).into_iter::<String>();
    de.next()?.ok().filter(|id| id.len() <= 256)
}

/// Request ids of retained commands already run, on disk (one per line, newest last), bounded
/// to the last [`DoneIds::KEEP`].
#[derive(Debug)]
pub struct DoneIds {
    path: Option<std::path::PathBuf>,
    ids: std::collections::VecDeque<String>,
    /// Lines in the file (it is compacted when it grows to twice the bound).
    lines: usize,
}

impl DoneIds {
    /// How many ids are remembered.
    pub const KEEP: usize = 1000;

    /// Ids kept in memory only (a restart forgets them).
    pub fn in_memory() -> DoneIds {
        DoneIds { path: None, ids: Default::default(), lines: 0 }
    }

    /// Loads (or starts) the list in `path`.
    pub fn open(path: &std::path::Path) -> std::io::Result<DoneIds> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(e),
        };
        let all: Vec<&str> = text.lines().filter(|l| !l.is_empty()).collect();
        let ids = all[all.len().saturating_sub(Self::KEEP)..].iter().map(|s| s.to_string()).collect();
        Ok(DoneIds { path: Some(path.to_path_buf()), ids, lines: all.len() })
    }

    /// True when `id` was run before.
    pub fn contains(&self, id: &str) -> bool {
        self.ids.iter().any(|x| x == id)
    }

    /// Remembers `id` (before it runs: at most once, even across a crash mid-command).
    pub fn record(&mut self, id: &str) -> std::io::Result<()> {
        // one id per line: a request id with a line break could not be told apart
        let id: String = id.chars().filter(|c| *c != '\n' && *c != '\r').collect();
        self.ids.push_back(id.clone());
        while self.ids.len() > Self::KEEP {
            self.ids.pop_front();
        }
        let Some(path) = &self.path else { return Ok(()) };
        if self.lines + 1 >= 2 * Self::KEEP {
            let text: String = self.ids.iter().map(|i| format!("{i}\n")).collect();
            crate::durable::write_file(path, text.as_bytes())?;
            self.lines = self.ids.len();
        } else {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
            f.write_all(format!("{id}\n").as_bytes())?;
            f.sync_data()?;
            self.lines += 1;
        }
        Ok(())
    }
}

/// The reply JSON for `cmd_result`.
pub fn reply(name: &str, request_id: Option<&str>, result: Result<Value, String>) -> Vec<u8> {
    let mut v = match result {
        Ok(details) => {
            let mut v = json!({ "ok": true });
            if let (Some(o), Value::Object(d)) = (v.as_object_mut(), details) {
                o.extend(d);
            }
            v
        }
        Err(e) => json!({ "ok": false, "error": e }),
    };
    v["cmd"] = json!(name);
    v["request_id"] = json!(request_id);
    v["ts"] = json!(super::rfc3339(chrono::Utc::now()));
    serde_json::to_vec(&v).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_formed_commands_parse() {
        assert_eq!(
            parse("ack", br#"{"event_id":"e1","operator":"li","request_id":"r9"}"#).unwrap(),
            Request { command: Command::Ack { event_id: "e1".into(), operator: Some("li".into()), note: None }, request_id: Some("r9".into()) }
        );
        assert_eq!(parse("snapshot", br#"{"camera_id":"cam-1"}"#).unwrap().command, Command::Snapshot { camera_id: "cam-1".into() });
        assert_eq!(parse("reload", b"").unwrap().command, Command::Reload);
        assert_eq!(parse("reload", br#"{"request_id":"x"}"#).unwrap().request_id.as_deref(), Some("x"));
        let z = parse("zones", br#"{"camera_id":"cam-1","zones":[{"id":"z"}],"request_id":"r"}"#).unwrap();
        assert_eq!(z.command, Command::Zones { camera_id: "cam-1".into(), zones: json!([{ "id": "z" }]) });
        assert!(parse("zones", br#"{"camera_id":"cam-1","zones":{"id":"z"}}"#).unwrap_err().message.contains("array"));
        assert!(parse("zones", br#"{"camera_id":"","zones":[]}"#).is_err());
        assert_eq!(parse("recheck", br#"{"event_id":"e1"}"#).unwrap().command, Command::Recheck { event_id: "e1".into() });
        assert_eq!(
            parse("speak", br#"{"speaker":"pole-17","message":"no-vending","operator":"wang"}"#).unwrap().command,
            Command::Speak { speaker: "pole-17".into(), message: "no-vending".into(), operator: Some("wang".into()) }
        );
    }

    #[test]
    fn malformed_commands_are_explained() {
        let e = parse("ack", b"{not json").unwrap_err();
        assert!(e.message.starts_with("bad payload"), "{e}");
        assert!(parse("ack", br#"{"event_id":""}"#).unwrap_err().message.contains("event_id"));
        assert!(parse("ack", br#"{"event_id":"e","colour":1}"#).unwrap_err().message.contains("unknown field"));
        assert!(parse("snapshot", br#"{"camera_id":5}"#).is_err());
        assert!(parse("launch", b"{}").unwrap_err().message.contains("unknown command"));
        assert!(parse("speak", br#"{"speaker":"pole-17"}"#).unwrap_err().message.contains("message"));
        assert!(parse("speak", br#"{"speaker":"","message":"m"}"#).unwrap_err().message.contains("speaker"));
        assert!(parse("speak", br#"{"speaker":"s","message":"m","text":"free text is not allowed"}"#).unwrap_err().message.contains("unknown field"));
        assert!(parse("ack", &[0xff, 0xfe]).unwrap_err().message.contains("UTF-8"));
        assert!(parse("reload", &vec![b' '; MAX_COMMAND_BYTES + 1]).is_err());
    }

    #[test]
    fn command_names_come_from_the_topic() {
        assert_eq!(command_name("hawkeye/box", "hawkeye/box/cmd/ack"), Some("ack"));
        assert_eq!(command_name("hawkeye/box", "hawkeye/box/cmd/"), None);
        assert_eq!(command_name("hawkeye/box", "hawkeye/box/cmd/a/b"), None);
        assert_eq!(command_name("hawkeye/box", "hawkeye/other/cmd/ack"), None);
    }

    #[test]
    fn replies_echo_the_request_and_the_outcome() {
        let ok: Value = serde_json::from_slice(&reply("ack", Some("r1"), Ok(json!({"event_id": "e"})))).unwrap();
        assert_eq!((ok["ok"].as_bool(), ok["cmd"].as_str(), ok["request_id"].as_str(), ok["event_id"].as_str()), (Some(true), Some("ack"), Some("r1"), Some("e")));
        let bad: Value = serde_json::from_slice(&reply("ack", None, Err("no such event".into()))).unwrap();
        assert_eq!((bad["ok"].as_bool(), bad["error"].as_str()), (Some(false), Some("no such event")));
        assert_eq!(salvage_request_id(br#"{"request_id":"r2","event_id":3}"#).as_deref(), Some("r2"));
    }

    #[test]
    fn request_ids_are_salvaged_from_huge_payloads() {
        let mut big = br#"{"request_id" : "big-1", "note": ""#.to_vec();
        big.extend(std::iter::repeat_n(b'x', 17 << 20));
        big.extend(br#""}"#);
        assert_eq!(salvage_request_id(&big).as_deref(), Some("big-1"));
        assert_eq!(salvage_request_id(&vec![b'x'; MAX_COMMAND_BYTES + 1]), None);
    }

    #[test]
    fn done_ids_survive_a_restart_and_stay_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("commands_done");
        let mut d = DoneIds::open(&path).unwrap();
        assert!(!d.contains("r1"));
        d.record("r1").unwrap();
        assert!(d.contains("r1"));
        assert!(DoneIds::open(&path).unwrap().contains("r1"));
        for i in 0..2100 {
            d.record(&format!("n{i}")).unwrap();
        }
        let d = DoneIds::open(&path).unwrap();
        assert!(!d.contains("r1") && !d.contains("n1099"), "only the last 1000 are kept");
        assert!(d.contains("n1100") && d.contains("n2099"));
        assert!(std::fs::read_to_string(&path).unwrap().lines().count() < 2 * DoneIds::KEEP);
    }
}
