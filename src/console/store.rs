//! What the console keeps, on either backend: devices (key, heartbeat, config), every alert
//! message (idempotent on `event_id` + `seq`), one row per event with its response-time
//! milestones and integrity, evidence, manifests, chunked blobs being collected, snapshots,
//! operator commands with their results, users, sessions and the audit trail.

use anyhow::Context;
use serde_json::{json, Value};

use super::db::{Db, Row, Stmt, Val};

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS devices (
  device_id TEXT PRIMARY KEY,
  pubkey TEXT, key_source TEXT, key_alarm TEXT, pending_key TEXT,
  status TEXT, status_at TEXT,
  heartbeat TEXT, heartbeat_at TEXT,
  config TEXT, config_at TEXT
);
CREATE TABLE IF NOT EXISTS alerts (
  event_id TEXT NOT NULL, seq BIGINT NOT NULL,
  device_id TEXT NOT NULL, state TEXT NOT NULL, kind TEXT, camera_id TEXT, zone_id TEXT,
  at TEXT NOT NULL, received_at TEXT NOT NULL,
  manifest_seq BIGINT, manifest_sha256 TEXT, signature TEXT,
  body TEXT NOT NULL,
  PRIMARY KEY (event_id, seq)
);
CREATE INDEX IF NOT EXISTS alerts_device ON alerts (device_id, manifest_seq);
CREATE TABLE IF NOT EXISTS events (
  event_id TEXT PRIMARY KEY, device_id TEXT NOT NULL, camera_id TEXT, zone_id TEXT, kind TEXT,
  violation TEXT, state TEXT, level TEXT, started_at TEXT, raised_at TEXT, updated_at TEXT,
  last_seq BIGINT NOT NULL, acked_at TEXT, acked_by TEXT, ack_note TEXT,
  resolved_at TEXT, recurred_at TEXT, integrity TEXT, latest TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_updated ON events (updated_at);
CREATE TABLE IF NOT EXISTS evidence (
  event_id TEXT NOT NULL, name TEXT NOT NULL, device_id TEXT NOT NULL,
  data {BLOB} NOT NULL, sha256 TEXT NOT NULL, received_at TEXT NOT NULL,
  PRIMARY KEY (event_id, name)
);
CREATE TABLE IF NOT EXISTS manifests (
  device_id TEXT NOT NULL, seq BIGINT NOT NULL, event_id TEXT NOT NULL, sha256 TEXT NOT NULL,
  prev_sha256 TEXT, body {BLOB} NOT NULL, status TEXT, received_at TEXT NOT NULL,
  PRIMARY KEY (device_id, seq)
);
CREATE TABLE IF NOT EXISTS blob_parts (
  topic TEXT NOT NULL, part BIGINT NOT NULL, data {BLOB} NOT NULL,
  PRIMARY KEY (topic, part)
);
CREATE TABLE IF NOT EXISTS snapshots (
  device_id TEXT NOT NULL, camera_id TEXT NOT NULL, data {BLOB} NOT NULL, at TEXT NOT NULL,
  PRIMARY KEY (device_id, camera_id)
);
CREATE TABLE IF NOT EXISTS commands (
  request_id TEXT PRIMARY KEY, device_id TEXT NOT NULL, cmd TEXT NOT NULL, event_id TEXT,
  username TEXT NOT NULL, payload TEXT NOT NULL, sent_at TEXT NOT NULL,
  ok BIGINT, result TEXT, result_at TEXT, outcome TEXT
);
CREATE TABLE IF NOT EXISTS users (
  username TEXT PRIMARY KEY, hash TEXT NOT NULL, role TEXT NOT NULL, created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
  token TEXT PRIMARY KEY, username TEXT NOT NULL, csrf TEXT NOT NULL, expires_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS audit (
  id {ID}, at TEXT NOT NULL, username TEXT NOT NULL, action TEXT NOT NULL, target TEXT, detail TEXT
);
"#;

/// Milliseconds-precision UTC time as the console stores it (sorts as text).
pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The console's store.
#[derive(Clone)]
pub struct Store {
    pub db: Db,
}

/// One event as the operators' views show it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct EventRow {
    pub event_id: String,
    pub device_id: String,
    pub camera_id: String,
    pub zone_id: String,
    pub kind: String,
    pub violation: String,
    pub state: String,
    pub level: Option<String>,
    pub started_at: String,
    pub raised_at: Option<String>,
    pub updated_at: String,
    pub last_seq: i64,
    pub acked_at: Option<String>,
    pub acked_by: Option<String>,
    pub ack_note: Option<String>,
    pub resolved_at: Option<String>,
    pub recurred_at: Option<String>,
    pub integrity: Option<String>,
}

/// `SELECT` of the columns [`event_from`] reads, followed by the rest of the statement (a literal,
/// so the SQL stays `&'static str`).
macro_rules! select_events {
    ($($rest:literal),*) => {
        concat!("SELECT event_id, device_id, camera_id, zone_id, kind, violation, state, level, started_at, raised_at, updated_at, last_seq, acked_at, acked_by, ack_note, resolved_at, recurred_at, integrity FROM events ", $($rest),*)
    };
}

fn opt(v: &Val) -> Option<String> {
    v.text().map(str::to_string)
}

fn event_from(r: &Row) -> EventRow {
    EventRow {
        event_id: r[0].string(),
        device_id: r[1].string(),
        camera_id: r[2].string(),
        zone_id: r[3].string(),
        kind: r[4].string(),
        violation: r[5].string(),
        state: r[6].string(),
        level: opt(&r[7]),
        started_at: r[8].string(),
        raised_at: opt(&r[9]),
        updated_at: r[10].string(),
        last_seq: r[11].int().unwrap_or(0),
        acked_at: opt(&r[12]),
        acked_by: opt(&r[13]),
        ack_note: opt(&r[14]),
        resolved_at: opt(&r[15]),
        recurred_at: opt(&r[16]),
        integrity: opt(&r[17]),
    }
}

/// Filters of the alert list.
#[derive(Clone, Debug, Default, serde::Deserialize)]
pub struct EventFilter {
    pub kind: Option<String>,
    pub state: Option<String>,
    pub device: Option<String>,
    /// RFC 3339: events updated at or after.
    pub since: Option<String>,
    pub until: Option<String>,
    pub limit: Option<i64>,
}

impl Store {
    pub async fn open(url: &str) -> anyhow::Result<Store> {
        let db = Db::open(url).await?;
        db.migrate(SCHEMA).await.context("creating the console's tables")?;
        Ok(Store { db })
    }

    // ---- alerts and events ----

    /// Stores one alert message. Returns false when it was a duplicate (same event_id + seq).
    /// The event row is merged in the same transaction: its state, level and `latest` follow
    /// the highest seq, its milestones (raised, resolved, recurred, the device-side ack) are
    /// set once.
    pub async fn insert_alert(&self, device: &str, a: &Value) -> anyhow::Result<bool> {
        let event_id = a["event_id"].as_str().context("no event_id")?.to_string();
        let seq = a["seq"].as_i64().context("no seq")?;
        let state = a["state"].as_str().context("no state")?.to_string();
        let s = |k: &str| a[k].as_str().unwrap_or_default().to_string();
        let at = a["updated_at"].as_str().or(a["started_at"].as_str()).unwrap_or_default().to_string();
        let body = serde_json::to_string(a)?;
        // the alert and its event's merge commit together: a console killed between them would
        // otherwise keep the alert and lose the merge (the redelivered copy is a duplicate).
        // Merging a duplicate again changes nothing, so both always run.
        let insert_alert: Stmt = (
            "INSERT INTO alerts (event_id, seq, device_id, state, kind, camera_id, zone_id, at, received_at, manifest_seq, manifest_sha256, signature, body) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) ON CONFLICT (event_id, seq) DO NOTHING",
            vec![
                event_id.clone().into(),
                seq.into(),
                device.into(),
                state.clone().into(),
                s("kind").into(),
                s("camera_id").into(),
                s("zone_id").into(),
                at.clone().into(),
                now().into(),
                a["manifest"]["seq"].as_i64().into(),
                a["manifest"]["sha256"].as_str().into(),
                a["signature"].as_str().into(),
                body.clone().into(),
            ],
        );
        let old = self.event(&event_id).await?;
        let newest = old.as_ref().is_none_or(|e| seq >= e.last_seq);
        let first = |old: Option<&Option<String>>, now: Option<String>| old.cloned().flatten().or(now);
        let raised = first(old.as_ref().map(|e| &e.raised_at), (state == "new").then(|| at.clone()));
        let resolved = first(old.as_ref().map(|e| &e.resolved_at), (state == "resolved").then(|| at.clone()));
        let recurred = first(old.as_ref().map(|e| &e.recurred_at), (state == "recurred").then(|| at.clone()));
        let device_ack = a["ack"]["at"].as_str().map(|t| (t.to_string(), a["ack"]["operator"].as_str().unwrap_or_default().to_string(), a["ack"]["note"].as_str().map(str::to_string)));
        let (acked_at, acked_by, ack_note) = match (&old, device_ack) {
            (Some(e), _) if e.acked_at.is_some() => (e.acked_at.clone(), e.acked_by.clone(), e.ack_note.clone()),
            (_, Some((t, op, note))) => (Some(t), Some(op), note),
            _ => (None, None, None),
        };
        let (cur_state, level, updated, last_seq, latest) = match (&old, newest) {
            (Some(e), false) => (e.state.clone(), e.level.clone(), e.updated_at.clone(), e.last_seq, None),
            _ => (state.clone(), a["level"].as_str().map(str::to_string), at.clone(), seq, Some(body)),
        };
        let started = old.as_ref().map(|e| e.started_at.clone()).filter(|s| !s.is_empty()).unwrap_or_else(|| s("started_at"));
        let integrity = old.as_ref().and_then(|e| e.integrity.clone());
        let merge: Stmt = (
                "INSERT INTO events (event_id, device_id, camera_id, zone_id, kind, violation, state, level, started_at, raised_at, updated_at, last_seq, acked_at, acked_by, ack_note, resolved_at, recurred_at, integrity, latest) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, COALESCE($19, '{}')) \
                 ON CONFLICT (event_id) DO UPDATE SET state = excluded.state, level = excluded.level, raised_at = excluded.raised_at, \
                 updated_at = excluded.updated_at, last_seq = excluded.last_seq, acked_at = excluded.acked_at, acked_by = excluded.acked_by, \
                 ack_note = excluded.ack_note, resolved_at = excluded.resolved_at, recurred_at = excluded.recurred_at, started_at = excluded.started_at, \
                 latest = COALESCE($19, events.latest)",
                vec![
                    event_id.into(),
                    device.into(),
                    s("camera_id").into(),
                    s("zone_id").into(),
                    s("kind").into(),
                    s("violation").into(),
                    cur_state.into(),
                    level.into(),
                    started.into(),
                    raised.into(),
                    updated.into(),
                    last_seq.into(),
                    acked_at.into(),
                    acked_by.into(),
                    ack_note.into(),
                    resolved.into(),
                    recurred.into(),
                    integrity.into(),
                    latest.into(),
                ],
        );
        let n = self.db.tx(vec![insert_alert, merge]).await?;
        Ok(n[0] > 0)
    }

    pub async fn event(&self, event_id: &str) -> anyhow::Result<Option<EventRow>> {
        let rows = self.db.query(
            select_events!("WHERE event_id = $1"),
            vec![event_id.into()],
        )
        .await?;
        Ok(rows.first().map(event_from))
    }

    /// The newest alert body of an event.
    pub async fn event_latest(&self, event_id: &str) -> anyhow::Result<Option<Value>> {
        let v = self.db.scalar("SELECT latest FROM events WHERE event_id = $1", vec![event_id.into()]).await?;
        Ok(v.text().and_then(|t| serde_json::from_str(t).ok()))
    }

    /// Events, newest first, filtered.
    pub async fn events(&self, f: &EventFilter) -> anyhow::Result<Vec<EventRow>> {
        let rows = self
            .db
            .query(
                select_events!(
                    "WHERE ($1 = '' OR kind = $1) AND ($2 = '' OR state = $2) AND ($3 = '' OR device_id = $3) AND ($4 = '' OR updated_at >= $4) AND ($5 = '' OR updated_at <= $5) ",
                    "ORDER BY updated_at DESC, event_id LIMIT $6"
                ),
                vec![
                    f.kind.clone().unwrap_or_default().into(),
                    f.state.clone().unwrap_or_default().into(),
                    f.device.clone().unwrap_or_default().into(),
                    f.since.clone().unwrap_or_default().into(),
                    f.until.clone().unwrap_or_default().into(),
                    f.limit.unwrap_or(200).clamp(1, 10_000).into(),
                ],
            )
            .await?;
        Ok(rows.iter().map(event_from).collect())
    }

    /// Every event (for response times), oldest first.
    pub async fn all_events(&self) -> anyhow::Result<Vec<EventRow>> {
        let rows = self
            .db
            .query(
                select_events!("ORDER BY started_at"),
                vec![],
            )
            .await?;
        Ok(rows.iter().map(event_from).collect())
    }

    /// An event's messages in seq order: a summary of each (seq, state, at, received_at and the
    /// fields a timeline shows) with its whole body.
    pub async fn timeline(&self, event_id: &str) -> anyhow::Result<Vec<(Value, Value)>> {
        let rows = self.db.query("SELECT seq, state, at, received_at, body FROM alerts WHERE event_id = $1 ORDER BY seq", vec![event_id.into()]).await?;
        Ok(rows
            .iter()
            .map(|r| {
                let body: Value = r[4].text().and_then(|t| serde_json::from_str(t).ok()).unwrap_or(Value::Null);
                let summary = json!({ "seq": r[0].int(), "state": r[1].text(), "at": r[2].text(), "received_at": r[3].text(), "reason": body["reason"], "level": body["level"], "count": body["count"], "ack": body["ack"] });
                (summary, body)
            })
            .collect())
    }

    /// Every stored alert body of an event, in seq order.
    pub async fn timeline_bodies(&self, event_id: &str) -> anyhow::Result<Vec<Value>> {
        let rows = self.db.query("SELECT body FROM alerts WHERE event_id = $1 ORDER BY seq", vec![event_id.into()]).await?;
        Ok(rows.iter().filter_map(|r| r[0].text().and_then(|t| serde_json::from_str(t).ok())).collect())
    }

    /// Stored alert messages (one per event_id + seq: the primary key).
    pub async fn alert_count(&self) -> anyhow::Result<i64> {
        Ok(self.db.scalar("SELECT COUNT(*) FROM alerts", vec![]).await?.int().unwrap_or(0))
    }

    pub async fn set_integrity(&self, event_id: &str, integrity: &str) -> anyhow::Result<()> {
        // a failure is never overwritten by a later success
        self.db
            .exec(
                "UPDATE events SET integrity = $2 WHERE event_id = $1 AND (integrity IS NULL OR integrity NOT LIKE 'FAILED%')",
                vec![event_id.into(), integrity.into()],
            )
            .await?;
        Ok(())
    }

    pub async fn set_acked(&self, event_id: &str, at: &str, by: &str, note: Option<&str>) -> anyhow::Result<()> {
        self.db
            .exec(
                "UPDATE events SET acked_at = $2, acked_by = $3, ack_note = $4 WHERE event_id = $1 AND acked_at IS NULL",
                vec![event_id.into(), at.into(), by.into(), note.map(str::to_string).into()],
            )
            .await?;
        Ok(())
    }

    /// The alert (body) that carries manifest `seq` of a device.
    pub async fn alert_for_manifest(&self, device: &str, seq: i64) -> anyhow::Result<Option<Value>> {
        let v = self.db.scalar("SELECT body FROM alerts WHERE device_id = $1 AND manifest_seq = $2", vec![device.into(), seq.into()]).await?;
        Ok(v.text().and_then(|t| serde_json::from_str(t).ok()))
    }

    // ---- devices ----

    pub async fn device_key(&self, device: &str) -> anyhow::Result<Option<String>> {
        Ok(opt(&self.db.scalar("SELECT pubkey FROM devices WHERE device_id = $1", vec![device.into()]).await?))
    }

    async fn ensure_device(&self, device: &str) -> anyhow::Result<()> {
        self.db.exec("INSERT INTO devices (device_id) VALUES ($1) ON CONFLICT (device_id) DO NOTHING", vec![device.into()]).await?;
        Ok(())
    }

    /// Registers a trusted key (from `--keys`); replaces a learned one.
    pub async fn register_key(&self, device: &str, key: &str) -> anyhow::Result<()> {
        self.ensure_device(device).await?;
        self.db.exec("UPDATE devices SET pubkey = $2, key_source = 'registered' WHERE device_id = $1", vec![device.into(), key.into()]).await?;
        Ok(())
    }

    /// A key announced on `…/pubkey`: learned when none is known; a different one raises the
    /// device's key alarm (the known key stays the one manifests are verified with).
    pub async fn announce_key(&self, device: &str, key: &str) -> anyhow::Result<KeyOutcome> {
        self.ensure_device(device).await?;
        let known = self.device_key(device).await?;
        match known {
            None => {
                self.db.exec("UPDATE devices SET pubkey = $2, key_source = 'first-use' WHERE device_id = $1", vec![device.into(), key.into()]).await?;
                Ok(KeyOutcome::Learned)
            }
            Some(k) if k.eq_ignore_ascii_case(key) => Ok(KeyOutcome::Same),
            Some(k) => {
                let alarm = format!("{}: the device announced key {key}, not the known {k}", now());
                self.db.exec("UPDATE devices SET key_alarm = $2, pending_key = $3 WHERE device_id = $1", vec![device.into(), alarm.into(), key.into()]).await?;
                Ok(KeyOutcome::Changed)
            }
        }
    }

    /// Accepts the key the device announced last (an admin who knows why it changed, e.g. a
    /// replaced box), clearing the alarm. Returns the key, or None when no key is pending.
    pub async fn accept_new_key(&self, device: &str) -> anyhow::Result<Option<String>> {
        let Some(key) = opt(&self.db.scalar("SELECT pending_key FROM devices WHERE device_id = $1", vec![device.into()]).await?) else { return Ok(None) };
        self.db
            .exec("UPDATE devices SET pubkey = $2, key_source = 'accepted', key_alarm = NULL, pending_key = NULL WHERE device_id = $1", vec![device.into(), key.clone().into()])
            .await?;
        Ok(Some(key))
    }

    pub async fn set_device_field(&self, device: &str, field: DeviceField, value: &str) -> anyhow::Result<()> {
        self.ensure_device(device).await?;
        let sql = match field {
            DeviceField::Status => "UPDATE devices SET status = $2, status_at = $3 WHERE device_id = $1",
            DeviceField::Heartbeat => "UPDATE devices SET heartbeat = $2, heartbeat_at = $3 WHERE device_id = $1",
            DeviceField::Config => "UPDATE devices SET config = $2, config_at = $3 WHERE device_id = $1",
        };
        self.db.exec(sql, vec![device.into(), value.into(), now().into()]).await?;
        Ok(())
    }

    /// Every device with its key, status, heartbeat and config.
    pub async fn devices(&self) -> anyhow::Result<Vec<Value>> {
        let rows = self
            .db
            .query("SELECT device_id, pubkey, key_source, key_alarm, status, status_at, heartbeat, heartbeat_at, config, config_at FROM devices ORDER BY device_id", vec![])
            .await?;
        let parse = |v: &Val| v.text().and_then(|t| serde_json::from_str::<Value>(t).ok()).unwrap_or(Value::Null);
        Ok(rows
            .iter()
            .map(|r| {
                json!({ "device_id": r[0].text(), "pubkey": r[1].text(), "key_source": r[2].text(), "key_alarm": r[3].text(),
                        "status": r[4].text(), "status_at": r[5].text(), "heartbeat": parse(&r[6]), "heartbeat_at": r[7].text(),
                        "config": parse(&r[8]), "config_at": r[9].text() })
            })
            .collect())
    }

    // ---- evidence, manifests, chunks, snapshots ----

    pub async fn insert_evidence(&self, device: &str, event_id: &str, name: &str, data: Vec<u8>, sha256: &str) -> anyhow::Result<bool> {
        let n = self
            .db
            .exec(
                "INSERT INTO evidence (event_id, name, device_id, data, sha256, received_at) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (event_id, name) DO NOTHING",
                vec![event_id.into(), name.into(), device.into(), data.into(), sha256.into(), now().into()],
            )
            .await?;
        Ok(n > 0)
    }

    pub async fn evidence(&self, event_id: &str, name: &str) -> anyhow::Result<Option<Vec<u8>>> {
        Ok(self.db.scalar("SELECT data FROM evidence WHERE event_id = $1 AND name = $2", vec![event_id.into(), name.into()]).await?.blob())
    }

    pub async fn evidence_sha(&self, event_id: &str, name: &str) -> anyhow::Result<Option<String>> {
        Ok(opt(&self.db.scalar("SELECT sha256 FROM evidence WHERE event_id = $1 AND name = $2", vec![event_id.into(), name.into()]).await?))
    }

    /// Names of an event's stored evidence.
    pub async fn evidence_names(&self, event_id: &str) -> anyhow::Result<Vec<String>> {
        let rows = self.db.query("SELECT name FROM evidence WHERE event_id = $1 ORDER BY received_at, name", vec![event_id.into()]).await?;
        Ok(rows.iter().map(|r| r[0].string()).collect())
    }

    pub async fn insert_manifest(&self, device: &str, seq: i64, event_id: &str, sha256: &str, prev: Option<&str>, body: Vec<u8>) -> anyhow::Result<bool> {
        let n = self
            .db
            .exec(
                "INSERT INTO manifests (device_id, seq, event_id, sha256, prev_sha256, body, status, received_at) VALUES ($1, $2, $3, $4, $5, $6, NULL, $7) ON CONFLICT (device_id, seq) DO NOTHING",
                vec![device.into(), seq.into(), event_id.into(), sha256.into(), prev.map(str::to_string).into(), body.into(), now().into()],
            )
            .await?;
        Ok(n > 0)
    }

    /// (event_id, sha256, prev_sha256, body, status) of manifest `seq`.
    pub async fn manifest(&self, device: &str, seq: i64) -> anyhow::Result<Option<(String, String, Option<String>, Vec<u8>, Option<String>)>> {
        let rows = self.db.query("SELECT event_id, sha256, prev_sha256, body, status FROM manifests WHERE device_id = $1 AND seq = $2", vec![device.into(), seq.into()]).await?;
        Ok(rows.into_iter().next().map(|mut r| {
            let status = opt(&r[4]);
            let body = std::mem::replace(&mut r[3], Val::Null).blob().unwrap_or_default();
            (r[0].string(), r[1].string(), opt(&r[2]), body, status)
        }))
    }

    pub async fn set_manifest_status(&self, device: &str, seq: i64, status: &str) -> anyhow::Result<()> {
        self.db
            .exec(
                "UPDATE manifests SET status = $3 WHERE device_id = $1 AND seq = $2 AND (status IS NULL OR status NOT LIKE 'FAILED%')",
                vec![device.into(), seq.into(), status.into()],
            )
            .await?;
        Ok(())
    }

    /// Stores one part of a chunked blob (`-1`: its index). Returns the index and all parts
    /// once every announced part is there.
    pub async fn blob_part(&self, topic: &str, part: i64, data: Vec<u8>) -> anyhow::Result<Option<(Value, Vec<Vec<u8>>)>> {
        self.db
            .exec("INSERT INTO blob_parts (topic, part, data) VALUES ($1, $2, $3) ON CONFLICT (topic, part) DO UPDATE SET data = excluded.data", vec![topic.into(), part.into(), data.into()])
            .await?;
        let Some(index) = self.db.scalar("SELECT data FROM blob_parts WHERE topic = $1 AND part = -1", vec![topic.into()]).await?.blob() else { return Ok(None) };
        let index: Value = serde_json::from_slice(&index).context("blob index is not JSON")?;
        let chunks = index["chunks"].as_i64().context("blob index without chunks")?;
        let have = self.db.scalar("SELECT COUNT(*) FROM blob_parts WHERE topic = $1 AND part >= 0", vec![topic.into()]).await?.int().unwrap_or(0);
        if have < chunks {
            return Ok(None);
        }
        let rows = self.db.query("SELECT data FROM blob_parts WHERE topic = $1 AND part >= 0 ORDER BY part", vec![topic.into()]).await?;
        Ok(Some((index, rows.into_iter().map(|mut r| r.remove(0).blob().unwrap_or_default()).collect())))
    }

    pub async fn drop_blob_parts(&self, topic: &str) -> anyhow::Result<()> {
        self.db.exec("DELETE FROM blob_parts WHERE topic = $1", vec![topic.into()]).await?;
        Ok(())
    }

    pub async fn put_snapshot(&self, device: &str, camera: &str, data: Vec<u8>) -> anyhow::Result<()> {
        self.db
            .exec(
                "INSERT INTO snapshots (device_id, camera_id, data, at) VALUES ($1, $2, $3, $4) ON CONFLICT (device_id, camera_id) DO UPDATE SET data = excluded.data, at = excluded.at",
                vec![device.into(), camera.into(), data.into(), now().into()],
            )
            .await?;
        Ok(())
    }

    /// (jpeg, received at).
    pub async fn snapshot(&self, device: &str, camera: &str) -> anyhow::Result<Option<(Vec<u8>, String)>> {
        let rows = self.db.query("SELECT data, at FROM snapshots WHERE device_id = $1 AND camera_id = $2", vec![device.into(), camera.into()]).await?;
        Ok(rows.into_iter().next().map(|mut r| {
            let at = r[1].string();
            (r.remove(0).blob().unwrap_or_default(), at)
        }))
    }

    // ---- commands ----

    pub async fn record_command(&self, request_id: &str, device: &str, cmd: &str, event_id: Option<&str>, user: &str, payload: &str) -> anyhow::Result<()> {
        self.db
            .exec(
                "INSERT INTO commands (request_id, device_id, cmd, event_id, username, payload, sent_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                vec![request_id.into(), device.into(), cmd.into(), event_id.map(str::to_string).into(), user.into(), payload.into(), now().into()],
            )
            .await?;
        Ok(())
    }

    /// A `cmd_result` for one of the console's commands: returns the command row
    /// (cmd, event_id, username, sent_at) when it was ours.
    pub async fn command_result(&self, request_id: &str, ok: bool, result: &str) -> anyhow::Result<Option<(String, Option<String>, String, String, Option<String>)>> {
        self.db
            .exec(
                "UPDATE commands SET ok = $2, result = $3, result_at = $4 WHERE request_id = $1 AND result IS NULL",
                vec![request_id.into(), i64::from(ok).into(), result.into(), now().into()],
            )
            .await?;
        let rows = self.db.query("SELECT cmd, event_id, username, sent_at, payload FROM commands WHERE request_id = $1", vec![request_id.into()]).await?;
        Ok(rows.first().map(|r| (r[0].string(), opt(&r[1]), r[2].string(), r[3].string(), opt(&r[4]))))
    }

    pub async fn command_outcome(&self, request_id: &str, outcome: &str) -> anyhow::Result<()> {
        self.db.exec("UPDATE commands SET outcome = $2 WHERE request_id = $1", vec![request_id.into(), outcome.into()]).await?;
        Ok(())
    }

    pub async fn command(&self, request_id: &str) -> anyhow::Result<Option<Value>> {
        let rows = self
            .db
            .query("SELECT request_id, device_id, cmd, event_id, username, payload, sent_at, ok, result, result_at, outcome FROM commands WHERE request_id = $1", vec![request_id.into()])
            .await?;
        Ok(rows.first().map(command_json))
    }

    /// Commands about one event, or all recent ones.
    pub async fn commands(&self, event_id: Option<&str>) -> anyhow::Result<Vec<Value>> {
        let rows = self
            .db
            .query(
                "SELECT request_id, device_id, cmd, event_id, username, payload, sent_at, ok, result, result_at, outcome FROM commands WHERE ($1 = '' OR event_id = $1) ORDER BY sent_at DESC LIMIT 200",
                vec![event_id.unwrap_or_default().into()],
            )
            .await?;
        Ok(rows.iter().map(command_json).collect())
    }

    // ---- users, sessions, audit ----

    pub async fn user(&self, name: &str) -> anyhow::Result<Option<(String, String)>> {
        let rows = self.db.query("SELECT hash, role FROM users WHERE username = $1", vec![name.into()]).await?;
        Ok(rows.first().map(|r| (r[0].string(), r[1].string())))
    }

    pub async fn user_count(&self) -> anyhow::Result<i64> {
        Ok(self.db.scalar("SELECT COUNT(*) FROM users", vec![]).await?.int().unwrap_or(0))
    }

    pub async fn put_user(&self, name: &str, hash: &str, role: &str) -> anyhow::Result<()> {
        self.db
            .exec(
                "INSERT INTO users (username, hash, role, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT (username) DO UPDATE SET hash = excluded.hash, role = excluded.role",
                vec![name.into(), hash.into(), role.into(), now().into()],
            )
            .await?;
        Ok(())
    }

    pub async fn users(&self) -> anyhow::Result<Vec<Value>> {
        let rows = self.db.query("SELECT username, role, created_at FROM users ORDER BY username", vec![]).await?;
        Ok(rows.iter().map(|r| json!({ "username": r[0].text(), "role": r[1].text(), "created_at": r[2].text() })).collect())
    }

    pub async fn put_session(&self, token: &str, user: &str, csrf: &str, expires: &str) -> anyhow::Result<()> {
        self.db
            .exec("INSERT INTO sessions (token, username, csrf, expires_at) VALUES ($1, $2, $3, $4)", vec![token.into(), user.into(), csrf.into(), expires.into()])
            .await?;
        Ok(())
    }

    /// (user, role, csrf) of a live session.
    pub async fn session(&self, token: &str) -> anyhow::Result<Option<(String, String, String)>> {
        let rows = self
            .db
            .query(
                "SELECT s.username, u.role, s.csrf FROM sessions s JOIN users u ON u.username = s.username WHERE s.token = $1 AND s.expires_at > $2",
                vec![token.into(), now().into()],
            )
            .await?;
        Ok(rows.first().map(|r| (r[0].string(), r[1].string(), r[2].string())))
    }

    pub async fn drop_session(&self, token: &str) -> anyhow::Result<()> {
        self.db.exec("DELETE FROM sessions WHERE token = $1", vec![token.into()]).await?;
        Ok(())
    }

    pub async fn audit(&self, user: &str, action: &str, target: &str, detail: &str) -> anyhow::Result<()> {
        self.db
            .exec("INSERT INTO audit (at, username, action, target, detail) VALUES ($1, $2, $3, $4, $5)", vec![now().into(), user.into(), action.into(), target.into(), detail.into()])
            .await?;
        Ok(())
    }

    pub async fn audit_log(&self, limit: i64) -> anyhow::Result<Vec<Value>> {
        let rows = self.db.query("SELECT at, username, action, target, detail FROM audit ORDER BY id DESC LIMIT $1", vec![limit.into()]).await?;
        Ok(rows.iter().map(|r| json!({ "at": r[0].text(), "username": r[1].text(), "action": r[2].text(), "target": r[3].text(), "detail": r[4].text() })).collect())
    }

}

fn command_json(r: &Row) -> Value {
    let parse = |v: &Val| v.text().and_then(|t| serde_json::from_str::<Value>(t).ok()).unwrap_or(Value::Null);
    json!({ "request_id": r[0].text(), "device_id": r[1].text(), "cmd": r[2].text(), "event_id": r[3].text(), "username": r[4].text(),
            "payload": parse(&r[5]), "sent_at": r[6].text(), "ok": r[7].int().map(|i| i != 0), "result": parse(&r[8]), "result_at": r[9].text(),
            "outcome": parse(&r[10]) })
}

/// What a `…/pubkey` announcement did.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum KeyOutcome {
    Learned,
    Same,
    Changed,
}

#[derive(Clone, Copy, Debug)]
pub enum DeviceField {
    Status,
    Heartbeat,
    Config,
}
