//! What the evidence worker remembers of a camera's events across restarts: each event's last
//! alert (so its next message gets the next `seq`), whether it is still open, and its
//! acknowledgement. One JSON file per camera, `<state_dir>/events/<camera_id>.json`, rewritten
//! durably whenever it changes; and the device-wide alert counter, `<state_dir>/alert.seq`.
//!
//! Events found open when the daemon starts were not closed by a clean stop (a crash, a power
//! cut): the worker ends them with reason `restart` before anything else. A clean stop ends
//! every open event with reason `shutdown`. So a consumer never keeps an event open for ever.

use std::collections::VecDeque;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::publish::{Alert, AlertAck};

/// Closed events remembered per camera (for their `resolved` / `recurred` after a re-check).
pub const REMEMBERED_CLOSED: usize = 64;

/// One event as remembered.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct EventEntry {
    /// The event's latest alert, without objects, evidence or seal.
    pub last: Alert,
    pub open: bool,
}

#[derive(Default, Serialize, Deserialize)]
struct RegistryFile {
    events: Vec<EventEntry>,
}

/// A camera's events, oldest first.
#[derive(Debug)]
pub struct Registry {
    path: PathBuf,
    events: VecDeque<EventEntry>,
}

impl Registry {
    /// Loads the registry at `path` (empty when absent). A damaged file is moved aside as
    /// `.bad` and reported; the registry then starts empty (its open events get no `end`).
    pub fn load(path: &Path) -> Registry {
        let events = match std::fs::read(path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => VecDeque::new(),
            Err(e) => {
                tracing::error!(file = %path.display(), "cannot read the event registry: {e}; open events of the last run get no end");
                VecDeque::new()
            }
            Ok(bytes) => match serde_json::from_slice::<RegistryFile>(&bytes) {
                Ok(f) => f.events.into(),
                Err(e) => {
                    let bad = path.with_extension("json.bad");
                    tracing::error!(file = %path.display(), moved_to = %bad.display(), "damaged event registry: {e}; open events of the last run get no end");
                    let _ = std::fs::rename(path, &bad);
                    VecDeque::new()
                }
            },
        };
        Registry { path: path.to_path_buf(), events }
    }

    /// Gives `alert` its event's next `seq` (1 for an event not seen before) and remembers it:
    /// open after `new`, closed after `end`; `update`, `resolved` and `recurred` keep the
    /// event's state. Call [`Registry::save`] afterwards.
    pub fn assign(&mut self, alert: &mut Alert) {
        let pos = self.events.iter().position(|e| e.last.event_id == alert.event_id);
        let (seq, was_open) = pos.map_or((1, false), |i| (self.events[i].last.seq + 1, self.events[i].open));
        alert.seq = seq;
        // a clip's `update` may come after the event ended: it does not reopen it
        let open = match alert.state.as_str() {
            "new" => true,
            "update" => was_open || pos.is_none(),
            "end" => false,
            _ => was_open,
        };
        let mut last = alert.clone();
        last.objects.clear();
        last.evidence.clear();
        last.manifest = None;
        last.prev_hash = None;
        last.signature = None;
        if let Some(i) = pos {
            self.events.remove(i);
        }
        self.events.push_back(EventEntry { last, open });
        // forget the oldest closed events beyond the bound; open ones are always kept
        while self.events.iter().filter(|e| !e.open).count() > REMEMBERED_CLOSED {
            if let Some(i) = self.events.iter().position(|e| !e.open) {
                self.events.remove(i);
            }
        }
    }

    /// Records an operator's acknowledgement; false for an unknown event.
    pub fn ack(&mut self, event_id: &str, ack: AlertAck) -> bool {
        match self.events.iter_mut().find(|e| e.last.event_id == event_id) {
            Some(e) => {
                e.last.ack = Some(ack);
                true
            }
            None => false,
        }
    }

    /// The latest alert of every open event, oldest first.
    pub fn open_events(&self) -> Vec<Alert> {
        self.events.iter().filter(|e| e.open).map(|e| e.last.clone()).collect()
    }

    /// Every remembered event, oldest first.
    pub fn entries(&self) -> Vec<EventEntry> {
        self.events.iter().cloned().collect()
    }

    /// A remembered event's latest alert.
    pub fn get(&self, event_id: &str) -> Option<&EventEntry> {
        self.events.iter().find(|e| e.last.event_id == event_id)
    }

    /// Writes the registry durably.
    pub fn save(&self) -> io::Result<()> {
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let f = RegistryFile { events: self.events.iter().cloned().collect() };
        crate::durable::write_file(&self.path, &serde_json::to_vec(&f).map_err(io::Error::other)?)
    }
}

/// The device-wide alert counter (`device_seq`): strictly increasing across restarts. Numbers
/// are reserved on disk in blocks, so a restart skips the unused rest of a block instead of
/// writing the counter for every alert.
#[derive(Debug)]
pub struct DeviceSeq {
    path: PathBuf,
    /// (last number given, highest number reserved on disk)
    state: Mutex<(u64, u64)>,
}

/// Numbers reserved per write of `alert.seq`.
const SEQ_BLOCK: u64 = 1000;

impl DeviceSeq {
    /// Opens the counter at `path`; it continues after everything an earlier run may have given.
    pub fn open(path: &Path) -> DeviceSeq {
        let reserved = std::fs::read_to_string(path).ok().and_then(|s| s.trim().parse::<u64>().ok()).unwrap_or(0);
        DeviceSeq { path: path.to_path_buf(), state: Mutex::new((reserved, reserved)) }
    }

    /// The next number.
    pub fn next(&self) -> u64 {
        let mut st = self.state.lock().unwrap();
        if st.0 >= st.1 {
            let reserved = st.0 + SEQ_BLOCK;
            // on a disk that refuses writes the counter goes on in memory; after a restart it
            // then starts below numbers already used, which the error says
            match crate::durable::write_file(&self.path, format!("{reserved}\n").as_bytes()) {
                Ok(()) => st.1 = reserved,
                Err(e) => {
                    tracing::error!(file = %self.path.display(), "cannot reserve alert numbers: {e}; device_seq may repeat after a restart");
                    st.1 = st.0 + 1;
                }
            }
        }
        st.0 += 1;
        st.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::publish::{AlertContext, ModelRef};

    fn alert(event: &str, state: &str) -> Alert {
        let z: crate::config::Zone = toml::from_str("id = \"z\"\nkind = \"flooding\"\npolygon = [[0.0,0.0],[1.0,0.0],[1.0,1.0]]\nclasses = [\"water\"]\ndwell_s = 1.0").unwrap();
        let t = crate::rules::Transition {
            state: crate::rules::EventState::New,
            event_id: event.into(),
            zone: 0,
            zone_id: z.id.clone(),
            kind: z.kind,
            started_ts: 0.0,
            ts: 1.0,
            started_at: chrono::Utc::now(),
            dwell_s: 1.0,
            objects: Vec::new(),
            ack: None,
            flood: None,
            geo: None,
            dumped: None,
            crowd: None,
        };
        let ctx = AlertContext { device_id: "d".into(), camera_id: "c".into(), location: Default::default(), model: ModelRef { name: "m".into(), sha256: "0".into() } };
        let mut a = Alert::from_transition(&t, crate::rules::EventState::New, &ctx, chrono::Utc::now());
        a.state = state.into();
        a
    }

    #[test]
    fn seq_counts_an_events_messages_and_survives_a_reload() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events/cam.json");
        let mut r = Registry::load(&path);
        let mut seqs = Vec::new();
        for (ev, st) in [("a", "new"), ("b", "new"), ("a", "update"), ("a", "update"), ("b", "end")] {
            let mut x = alert(ev, st);
            r.assign(&mut x);
            seqs.push(x.seq);
        }
        assert_eq!(seqs, vec![1, 1, 2, 3, 2]);
        r.save().unwrap();
        let mut r = Registry::load(&path);
        assert_eq!(r.open_events().iter().map(|a| a.event_id.as_str()).collect::<Vec<_>>(), vec!["a"]);
        let mut x = alert("a", "end");
        r.assign(&mut x);
        assert_eq!(x.seq, 4);
        assert!(r.open_events().is_empty());
        // a re-check after the end keeps the event closed and counts on
        let mut x = alert("a", "resolved");
        r.assign(&mut x);
        assert_eq!(x.seq, 5);
        assert!(r.open_events().is_empty());
    }

    #[test]
    fn acks_are_remembered_and_closed_events_are_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.json");
        let mut r = Registry::load(&path);
        let mut a = alert("open-one", "new");
        r.assign(&mut a);
        assert!(r.ack("open-one", AlertAck { operator: Some("li".into()), note: None, at: "2026-12-01T00:00:00.000Z".into() }));
        assert!(!r.ack("nope", AlertAck { operator: None, note: None, at: String::new() }));
        for i in 0..(REMEMBERED_CLOSED + 10) {
            let (mut n, mut e) = (alert(&format!("e{i}"), "new"), alert(&format!("e{i}"), "end"));
            r.assign(&mut n);
            r.assign(&mut e);
        }
        r.save().unwrap();
        let r = Registry::load(&path);
        assert_eq!(r.events.len(), REMEMBERED_CLOSED + 1);
        assert_eq!(r.open_events()[0].ack.as_ref().unwrap().operator.as_deref(), Some("li"));
        assert!(r.get("e0").is_none() && r.get(&format!("e{}", REMEMBERED_CLOSED + 9)).is_some());
    }

    #[test]
    fn a_damaged_registry_is_set_aside() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.json");
        std::fs::write(&path, b"{\"events\": [tru").unwrap();
        let r = Registry::load(&path);
        assert!(r.open_events().is_empty());
        assert!(dir.path().join("c.json.bad").exists());
    }

    #[test]
    fn device_seq_only_grows_across_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("alert.seq");
        let s = DeviceSeq::open(&path);
        let first: Vec<u64> = (0..5).map(|_| s.next()).collect();
        assert_eq!(first, vec![1, 2, 3, 4, 5]);
        drop(s);
        let s = DeviceSeq::open(&path);
        let after = s.next();
        assert!(after > 5, "{after}");
        let many: Vec<u64> = (0..2500).map(|_| s.next()).collect();
        assert!(many.windows(2).all(|w| w[1] == w[0] + 1));
        let last = *many.last().unwrap();
        drop(s);
        assert!(DeviceSeq::open(&path).next() > last);
    }
}
