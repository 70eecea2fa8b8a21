//! Ingest: one persistent MQTT session (QoS 1, `clean_session = false`, manual acks) on
//! `{prefix}/+/#`. A message is acknowledged to the broker only after it is committed to the
//! store, so a console killed at any moment gets every unacknowledged message again from the
//! broker when it comes back; inserts are idempotent (alerts on `event_id` + `seq`, evidence
//! on `event_id` + name, manifests on device + seq), so a redelivery changes nothing.
//!
//! Integrity is checked as messages arrive: a manifest must be signed (the signature rides in
//! its alert) by the device's key — registered with `--keys`, or learned from the device's
//! first `…/pubkey` (trust on first use; a later different key raises the device's key alarm
//! and is not used) — must hash to what its alert says, must link to the manifest before it
//! (`prev_manifest_sha256`), and every evidence file must hash to what the manifest and the
//! alert list. An alert whose body names another device than its topic is refused. A failure
//! marks the event `FAILED: …`, which the views show, and is never overwritten by a success.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, Publish, QoS};
use serde_json::{json, Value};
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;

use super::store::{DeviceField, KeyOutcome, Store};
use crate::evidence::seal::sha256_hex;

/// Counters for `/metrics`.
#[derive(Default)]
pub struct IngestStats {
    pub messages: AtomicU64,
    pub alerts: AtomicU64,
    pub duplicates: AtomicU64,
    pub evidence: AtomicU64,
    pub rejected: AtomicU64,
    pub integrity_failures: AtomicU64,
    pub store_errors: AtomicU64,
    pub connected: AtomicU64,
}

/// The broker the console reads.
#[derive(Clone, Debug)]
pub struct BrokerCfg {
    pub host: String,
    pub port: u16,
    pub prefix: String,
    pub client_id: String,
    pub username: Option<String>,
    pub password: Option<String>,
}

/// Publishes the console's commands (QoS 1) through the ingest session's client.
#[derive(Clone)]
pub struct Commander {
    client: AsyncClient,
    prefix: String,
}

impl Commander {
    pub async fn send(&self, device: &str, cmd: &str, payload: &Value) -> anyhow::Result<()> {
        let topic = format!("{}/{device}/cmd/{cmd}", self.prefix);
        self.client.publish(topic, QoS::AtLeastOnce, false, serde_json::to_vec(payload)?).await?;
        Ok(())
    }
}

/// Connects and starts the ingest loop; returns the command publisher.
pub fn start(cfg: BrokerCfg, store: Store, live: broadcast::Sender<Value>, stats: Arc<IngestStats>, stop: CancellationToken) -> Commander {
    let mut o = MqttOptions::new(&cfg.client_id, &cfg.host, cfg.port);
    o.set_clean_session(false);
    o.set_manual_acks(true);
    o.set_keep_alive(Duration::from_secs(15));
    o.set_max_packet_size(256 << 20, 256 << 10);
    if let (Some(u), Some(p)) = (&cfg.username, &cfg.password) {
        o.set_credentials(u, p);
    }
    let (client, mut eventloop) = AsyncClient::new(o, 256);
    let filter = format!("{}/+/#", cfg.prefix);
    // unbounded, so the event loop never waits for the store: it must keep polling to send the
    // acks the store's task queues (a bounded channel deadlocks once both sides are full). The
    // broker bounds it: with manual acks it sends at most its in-flight window unacknowledged.
    let (tx, mut rx) = mpsc::unbounded_channel::<Publish>();
    let poll_stop = stop.clone();
    let poll_client = client.clone();
    let poll_stats = stats.clone();
    tokio::spawn(async move {
        let mut backoff = Duration::from_millis(200);
        loop {
            let ev = tokio::select! {
                _ = poll_stop.cancelled() => break,
                ev = eventloop.poll() => ev,
            };
            match ev {
                Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                    backoff = Duration::from_millis(200);
                    poll_stats.connected.store(1, Ordering::Relaxed);
                    tracing::info!(session_present = ack.session_present, "console: connected to the broker");
                    // subscribing again is harmless with a present session and needed without one
                    let c = poll_client.clone();
                    let f = filter.clone();
                    tokio::spawn(async move {
                        if let Err(e) = c.subscribe(f, QoS::AtLeastOnce).await {
                            tracing::error!("console: cannot subscribe: {e}");
                        }
                    });
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    if tx.send(p).is_err() {
                        break;
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    poll_stats.connected.store(0, Ordering::Relaxed);
                    tracing::warn!("console: broker connection: {e}; retrying in {backoff:?}");
                    tokio::select! {
                        _ = poll_stop.cancelled() => break,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                }
            }
        }
    });
    let ack_client = client.clone();
    let prefix = cfg.prefix.clone();
    tokio::spawn(async move {
        let ingest = Ingest { store, live, stats, prefix };
        while let Some(p) = rx.recv().await {
            // a store error leaves the message unacknowledged: the broker delivers it again
            // after the next reconnect (the session is persistent)
            match ingest.handle(&p.topic, &p.payload).await {
                Ok(()) => {
                    if let Err(e) = ack_client.ack(&p).await {
                        tracing::warn!("console: cannot acknowledge: {e}");
                    }
                }
                Err(e) => {
                    ingest.stats.store_errors.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(topic = %p.topic, "console: not stored (the broker will deliver it again): {e:#}");
                }
            }
        }
    });
    Commander { client, prefix: cfg.prefix }
}

/// Handles one message; an `Err` means "not stored, do not acknowledge".
pub struct Ingest {
    pub store: Store,
    pub live: broadcast::Sender<Value>,
    pub stats: Arc<IngestStats>,
    pub prefix: String,
}

impl Ingest {
    pub async fn handle(&self, topic: &str, payload: &[u8]) -> anyhow::Result<()> {
        self.stats.messages.fetch_add(1, Ordering::Relaxed);
        let Some(rest) = topic.strip_prefix(&self.prefix).and_then(|r| r.strip_prefix('/')) else { return Ok(()) };
        let Some((device, what)) = rest.split_once('/') else { return Ok(()) };
        if device.is_empty() {
            return Ok(());
        }
        // chunked blobs: collect, then handle the whole as if it came on its own topic
        if let Some(base) = what.strip_suffix("/index") {
            return self.part(device, &format!("{device}/{base}"), -1, payload).await;
        }
        if let Some((base, i)) = what.rsplit_once("/chunk/") {
            let Ok(i) = i.parse::<i64>() else { return self.reject(topic, "bad chunk number") };
            return self.part(device, &format!("{device}/{base}"), i, payload).await;
        }
        self.whole(device, what, payload.to_vec()).await
    }

    fn reject(&self, topic: &str, why: &str) -> anyhow::Result<()> {
        self.stats.rejected.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(topic, "console: message refused: {why}");
        Ok(())
    }

    async fn part(&self, device: &str, key: &str, part: i64, payload: &[u8]) -> anyhow::Result<()> {
        let Some((index, chunks)) = self.store.blob_part(key, part, payload.to_vec()).await? else { return Ok(()) };
        let whole: Vec<u8> = chunks.concat();
        let what = key.strip_prefix(device).and_then(|k| k.strip_prefix('/')).unwrap_or_default().to_string();
        if index["sha256"].as_str() != Some(sha256_hex(&whole).as_str()) || index["bytes"].as_u64() != Some(whole.len() as u64) {
            self.store.drop_blob_parts(key).await?;
            return self.reject(key, "chunked blob does not match its index (size or sha256)");
        }
        self.whole(device, &what, whole).await?;
        self.store.drop_blob_parts(key).await
    }

    async fn whole(&self, device: &str, what: &str, payload: Vec<u8>) -> anyhow::Result<()> {
        let text = || String::from_utf8_lossy(&payload).trim().to_string();
        match what {
            "alerts" => self.alert(device, &payload).await,
            "status" => self.store.set_device_field(device, DeviceField::Status, &text()).await.map(|()| self.push(json!({"type": "device", "device_id": device}))),
            "heartbeat" | "applied_config" => {
                if serde_json::from_slice::<Value>(&payload).is_err() {
                    return self.reject(what, "not JSON");
                }
                let field = if what == "applied_config" { DeviceField::Config } else { DeviceField::Heartbeat };
                self.store.set_device_field(device, field, &text()).await?;
                self.push(json!({"type": "device", "device_id": device}));
                Ok(())
            }
            "pubkey" => {
                let key = text().to_ascii_lowercase();
                if key.len() != 64 || !key.bytes().all(|c| c.is_ascii_hexdigit()) {
                    return self.reject(what, "public key is not 64 hex digits");
                }
                if self.store.announce_key(device, &key).await? == KeyOutcome::Changed {
                    self.stats.integrity_failures.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(device, "console: the device announced a different public key; manifests stay checked against the known one");
                    self.push(json!({"type": "device", "device_id": device, "key_alarm": true}));
                }
                Ok(())
            }
            "cmd_result" => self.command_result(&payload).await,
            "speaker_result" => {
                let v: Value = serde_json::from_slice(&payload).unwrap_or(Value::Null);
                if let Some(rid) = v["request_id"].as_str() {
                    self.store.command_outcome(rid, &v.to_string()).await?;
                    self.push(json!({"type": "command", "request_id": rid}));
                }
                Ok(())
            }
            w if w.starts_with("cmd/") => Ok(()),
            w if w.starts_with("snapshot/") => {
                let camera = &w["snapshot/".len()..];
                self.store.put_snapshot(device, camera, payload).await?;
                self.push(json!({"type": "snapshot", "device_id": device, "camera_id": camera}));
                Ok(())
            }
            w if w.starts_with("evidence/") => {
                let Some((event_id, name)) = w["evidence/".len()..].split_once('/') else { return self.reject(w, "evidence topic without a name") };
                if let Some(seq) = name.strip_prefix("manifest-") {
                    let Ok(seq) = seq.parse::<i64>() else { return self.reject(w, "manifest without a seq") };
                    self.manifest(device, event_id, seq, payload).await
                } else {
                    self.evidence(device, event_id, name, payload).await
                }
            }
            _ => Ok(()),
        }
    }

    fn push(&self, v: Value) {
        // nobody listening is fine
        let _ = self.live.send(v);
    }

    async fn alert(&self, device: &str, payload: &[u8]) -> anyhow::Result<()> {
        let Ok(a) = serde_json::from_slice::<Value>(payload) else { return self.reject("alerts", "alert is not JSON") };
        if a["event_id"].as_str().is_none() || a["seq"].as_i64().is_none() || a["state"].as_str().is_none() {
            return self.reject("alerts", "alert without event_id, seq or state");
        }
        if a["device_id"].as_str().is_some_and(|d| d != device) {
            self.stats.integrity_failures.fetch_add(1, Ordering::Relaxed);
            return self.reject("alerts", &format!("alert names device {:?} but came on {device}'s topic", a["device_id"].as_str().unwrap_or_default()));
        }
        // a duplicate is checked again below (idempotent): the first copy may have been
        // stored by a console killed before it could check it
        let fresh = self.store.insert_alert(device, &a).await?;
        let counter = if fresh { &self.stats.alerts } else { &self.stats.duplicates };
        counter.fetch_add(1, Ordering::Relaxed);
        let event_id = a["event_id"].as_str().unwrap_or_default();
        // the manifest may have come first (a redelivery after a restart): check it now
        // (nothing to do when it has not)
        if let Some(seq) = a["manifest"]["seq"].as_i64() {
            self.verify_manifest(device, seq).await?;
        }
        // evidence already here is checked against the alert's list
        if let Some(list) = a["evidence"].as_array() {
            for e in list {
                let (Some(name), Some(sha)) = (e["name"].as_str(), e["sha256"].as_str()) else { continue };
                if let Some(have) = self.store.evidence_sha(event_id, name).await? {
                    if have != sha {
                        self.fail(event_id, &format!("evidence {name} does not hash to what the alert says")).await?;
                    }
                }
            }
        }
        if fresh {
            self.push(json!({"type": "alert", "event_id": event_id, "seq": a["seq"], "state": a["state"], "kind": a["kind"], "device_id": device, "camera_id": a["camera_id"]}));
        }
        Ok(())
    }

    async fn fail(&self, event_id: &str, why: &str) -> anyhow::Result<()> {
        self.stats.integrity_failures.fetch_add(1, Ordering::Relaxed);
        tracing::error!(event_id, "console: integrity: {why}");
        self.store.set_integrity(event_id, &format!("FAILED: {why}")).await?;
        self.push(json!({"type": "alert", "event_id": event_id, "integrity": "failed"}));
        Ok(())
    }

    async fn evidence(&self, device: &str, event_id: &str, name: &str, data: Vec<u8>) -> anyhow::Result<()> {
        let sha = sha256_hex(&data);
        let fresh = self.store.insert_evidence(device, event_id, name, data, &sha).await?;
        if fresh {
            self.stats.evidence.fetch_add(1, Ordering::Relaxed);
        }
        // checked again for a duplicate: the first copy's check may not have happened
        // against the alert that listed it (any seq of the event)
        for row in self.store.timeline_bodies(event_id).await? {
            if let Some(e) = row["evidence"].as_array().and_then(|l| l.iter().find(|e| e["name"].as_str() == Some(name))) {
                if e["sha256"].as_str().is_some_and(|s| s != sha) {
                    self.fail(event_id, &format!("evidence {name} does not hash to what the alert says")).await?;
                }
            }
        }
        self.push(json!({"type": "evidence", "event_id": event_id, "name": name}));
        Ok(())
    }

    async fn manifest(&self, device: &str, event_id: &str, seq: i64, body: Vec<u8>) -> anyhow::Result<()> {
        let sha = sha256_hex(&body);
        let m: Value = match serde_json::from_slice(&body) {
            Ok(m) => m,
            Err(_) => return self.fail(event_id, &format!("manifest {seq} is not JSON")).await,
        };
        let prev = m["prev_manifest_sha256"].as_str().map(str::to_string);
        // a duplicate is verified again (idempotent), in case the first copy's check was cut off
        self.store.insert_manifest(device, seq, event_id, &sha, prev.as_deref(), body).await?;
        self.verify_manifest(device, seq).await?;
        // the next manifest, if it came first, links to this one
        self.verify_manifest(device, seq + 1).await
    }

    /// Checks manifest `seq` of `device` with everything known now; records the outcome on the
    /// manifest and its event. Parts not here yet (its alert) leave it pending.
    async fn verify_manifest(&self, device: &str, seq: i64) -> anyhow::Result<()> {
        let Some((event_id, sha, prev, body, _)) = self.store.manifest(device, seq).await? else { return Ok(()) };
        let m: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let mut problems = Vec::new();
        if m["seq"].as_i64() != Some(seq) || m["event_id"].as_str() != Some(event_id.as_str()) {
            problems.push(format!("manifest {seq}: its seq or event does not match its topic"));
        }
        if m["device_id"].as_str() != Some(device) {
            problems.push(format!("manifest {seq} names another device"));
        }
        let key = self.store.device_key(device).await?;
        match &key {
            None => problems.push(format!("manifest {seq}: no public key known for {device}")),
            Some(k) if m["public_key"].as_str().is_some_and(|pk| !pk.eq_ignore_ascii_case(k)) => {
                problems.push(format!("manifest {seq} was made with another key than {device}'s known one"))
            }
            _ => {}
        }
        // the signature rides in the alert that published the manifest
        let alert = self.store.alert_for_manifest(device, seq).await?;
        let mut pending = false;
        match (&alert, &key) {
            (Some(a), Some(k)) => {
                if a["manifest"]["sha256"].as_str() != Some(sha.as_str()) {
                    problems.push(format!("manifest {seq} does not hash to what its alert says"));
                }
                match a["signature"].as_str() {
                    None => problems.push(format!("manifest {seq}: its alert carries no signature")),
                    Some(sig) => {
                        if let Err(e) = crate::evidence::keys::verify_signature(k, &body, sig) {
                            problems.push(format!("manifest {seq}: {e}"));
                        }
                    }
                }
            }
            (None, _) => pending = true,
            _ => {}
        }
        // the chain: the manifest before this one (when the console has it)
        if let Some((_, prev_sha, _, _, _)) = self.store.manifest(device, seq - 1).await? {
            if prev.as_deref() != Some(prev_sha.as_str()) {
                problems.push(format!("chain broken: manifest {seq} does not link to manifest {}", seq - 1));
            }
        }
        // the files it lists, against what arrived
        for f in m["files"].as_array().into_iter().flatten() {
            let (Some(name), Some(fsha)) = (f["name"].as_str(), f["sha256"].as_str()) else { continue };
            if let Some(have) = self.store.evidence_sha(&event_id, name).await? {
                if have != fsha {
                    problems.push(format!("evidence {name} does not hash to what manifest {seq} says"));
                }
            }
        }
        if !problems.is_empty() {
            let why = problems.join("; ");
            self.store.set_manifest_status(device, seq, &format!("FAILED: {why}")).await?;
            return self.fail(&event_id, &why).await;
        }
        if !pending {
            self.store.set_manifest_status(device, seq, "verified").await?;
            self.store.set_integrity(&event_id, "verified").await?;
            self.push(json!({"type": "alert", "event_id": event_id, "integrity": "verified"}));
        }
        Ok(())
    }

    async fn command_result(&self, payload: &[u8]) -> anyhow::Result<()> {
        let Ok(v) = serde_json::from_slice::<Value>(payload) else { return self.reject("cmd_result", "not JSON") };
        let Some(rid) = v["request_id"].as_str() else { return Ok(()) };
        let ok = v["ok"].as_bool().unwrap_or(false);
        if let Some((cmd, event_id, user, sent_at, payload)) = self.store.command_result(rid, ok, &v.to_string()).await? {
            if cmd == "ack" && ok {
                if let Some(e) = &event_id {
                    let note = payload.as_deref().and_then(|p| serde_json::from_str::<Value>(p).ok()).and_then(|p| p["note"].as_str().map(str::to_string));
                    self.store.set_acked(e, &sent_at, &user, note.as_deref()).await?;
                }
            }
            self.push(json!({"type": "command", "request_id": rid, "cmd": cmd, "ok": ok, "event_id": event_id}));
        }
        Ok(())
    }
}
