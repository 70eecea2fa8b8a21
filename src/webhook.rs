//! `[[webhook]]`: alerts POSTed to city platforms that take HTTP, not MQTT.
//!
//! Every message the [`Publisher`](crate::publish::Publisher) queues for the broker passes
//! [`Webhook::offer`] first: alerts (and, with `evidence = "inline"`, evidence files) are copied
//! into the webhook's own durable queue, an [`Outbox`] in `state_dir/webhook/{id}/` (one fsync'd
//! file per message, as for MQTT). One task per webhook POSTs them in order, one at a time, and
//! deletes a message only on a 2xx answer, so nothing is lost across outages and restarts:
//!
//! - network errors, timeouts, 408, 429 and 5xx: the same message again after a back-off that
//!   doubles from `backoff_initial_s` to `backoff_max_s` (a `Retry-After` in seconds is honoured
//!   up to the maximum); counted, and `/healthz` names the failing webhook;
//! - any other 4xx (the platform refuses that message for good): the message is moved to
//!   `state_dir/webhook/{id}/rejected/{seq}.json` with the answer, counted and logged at ERROR,
//!   and the queue goes on (one bad message must not hold every later alert).
//!
//! The body of an alert is the alert JSON itself (the MQTT schema). An evidence file goes as
//! `{"device_id","event_id","name","content_type","bytes","sha256","data_base64"}`. Headers:
//! `X-Hawkeye-Device`, `X-Hawkeye-Kind` (`alert` / `evidence`), `X-Hawkeye-Delivery`
//! (`{device}/{webhook}/{seq}`, the same on every retry), `X-Hawkeye-Timestamp` (Unix seconds)
//! and `X-Hawkeye-Signature: sha256=<hex>`, the HMAC-SHA256 with the shared secret of
//! `"{timestamp}.{body}"` (the platform recomputes it and rejects stale timestamps).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::{Digest as _, Sha256};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::config::{WebhookCfg, WebhookEvidence};
use crate::outbox::{Entry, Outbox};
use crate::publish::topics::Topics;
use crate::speaker::http::{self, base64_encode, Client, Request};

/// How often an idle webhook looks at its queue anyway (messages written by `maintain` after a
/// disk refusal do not wake it).
const IDLE_POLL: Duration = Duration::from_secs(2);
/// Memory for messages while the disk refuses writes.
const MAX_MEMORY: u64 = 16 << 20;

/// Counters for `/metrics`, `/healthz` and the heartbeat.
#[derive(Debug, Default)]
pub struct WebhookStats {
    pub id: String,
    pub delivered: AtomicU64,
    pub failures: AtomicU64,
    pub rejected: AtomicU64,
    pub queue: AtomicU64,
    /// The last failure and since when the webhook fails (cleared by a delivery).
    pub failing: Mutex<Option<(Instant, String)>>,
    outbox: Mutex<Option<Arc<Outbox>>>,
}

impl WebhookStats {
    /// Messages evicted from the full queue: (evidence, alerts).
    pub fn evicted(&self) -> (u64, u64) {
        self.outbox.lock().unwrap().as_ref().map_or((0, 0), |o| o.evicted())
    }

    /// What `/healthz` says while the webhook fails.
    pub fn problem(&self) -> Option<String> {
        let failing = self.failing.lock().unwrap();
        failing.as_ref().map(|(since, e)| {
            format!("webhook {} failing for {:.0} s ({} queued): {e}", self.id, since.elapsed().as_secs_f64(), self.queue.load(Ordering::Relaxed))
        })
    }

    pub fn to_json(&self) -> serde_json::Value {
        let (ev, al) = self.evicted();
        json!({
            "delivered": self.delivered.load(Ordering::Relaxed),
            "failures": self.failures.load(Ordering::Relaxed),
            "rejected": self.rejected.load(Ordering::Relaxed),
            "queue": self.queue.load(Ordering::Relaxed),
            "evicted_evidence": ev,
            "evicted_alerts": al,
            "error": self.failing.lock().unwrap().as_ref().map(|(_, e)| e.clone()),
        })
    }
}

/// One platform: its queue, its HTTP client and its counters.
pub struct Webhook {
    cfg: WebhookCfg,
    device: String,
    alerts_topic: String,
    evidence_prefix: String,
    outbox: Arc<Outbox>,
    client: Client,
    wake: Notify,
    rejected_dir: PathBuf,
    pub stats: Arc<WebhookStats>,
}

impl Webhook {
    /// Opens (or resumes) the webhook's queue under `state_dir/webhook/{id}`. `resolve` turns the
    /// config's relative paths into absolute ones.
    pub fn open(cfg: &WebhookCfg, state_dir: &Path, device: &str, topics: &Topics, resolve: impl Fn(&Path) -> PathBuf) -> std::io::Result<Arc<Webhook>> {
        let dir = state_dir.join("webhook").join(&cfg.id);
        let outbox = Arc::new(Outbox::open_with(&dir.join("queue"), cfg.max_mb << 20, MAX_MEMORY)?);
        let tls = match &cfg.ca_file {
            Some(ca) => {
                let path = resolve(ca);
                std::fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display())).and_then(|pem| http::tls_config(&pem)).map(Some)
            }
            None => Ok(None),
        };
        let client = Client::new(cfg.username.as_deref(), cfg.password.as_deref(), Duration::from_secs_f64(cfg.timeout_s), tls);
        let stats = Arc::new(WebhookStats { id: cfg.id.clone(), ..Default::default() });
        stats.queue.store(outbox.len() as u64, Ordering::Relaxed);
        *stats.outbox.lock().unwrap() = Some(outbox.clone());
        if !outbox.is_empty() {
            tracing::info!(webhook = %cfg.id, queued = outbox.len(), "webhook: resuming the messages left from the last run");
        }
        Ok(Arc::new(Webhook {
            cfg: cfg.clone(),
            device: device.to_string(),
            alerts_topic: topics.alerts(),
            evidence_prefix: format!("{}/evidence/", topics.root()),
            outbox,
            client,
            wake: Notify::new(),
            rejected_dir: dir.join("rejected"),
            stats,
        }))
    }

    /// Takes a copy of `payload` when the webhook sends messages of this topic (alerts; evidence
    /// files with `evidence = "inline"`).
    pub fn offer(&self, topic: &str, payload: &[u8]) {
        let wanted = topic == self.alerts_topic || (self.cfg.evidence == WebhookEvidence::Inline && topic.starts_with(&self.evidence_prefix));
        if !wanted {
            return;
        }
        match self.outbox.push(topic, payload.to_vec(), false) {
            Ok(_) => {
                self.stats.queue.store(self.outbox.len() as u64, Ordering::Relaxed);
                self.wake.notify_one();
            }
            Err(e) => tracing::error!(webhook = %self.cfg.id, %topic, "WEBHOOK MESSAGE LOST: its queue refused it: {e}"),
        }
    }

    /// Sends the queue in order until `stop`; what is not delivered stays on disk.
    pub async fn run(self: Arc<Self>, stop: CancellationToken) {
        let initial = Duration::from_secs_f64(self.cfg.backoff_initial_s);
        let max = Duration::from_secs_f64(self.cfg.backoff_max_s);
        let mut backoff = initial;
        let mut last_logged: Option<String> = None;
        while !stop.is_cancelled() {
            self.outbox.maintain();
            self.stats.queue.store(self.outbox.len() as u64, Ordering::Relaxed);
            let Some(seq) = self.outbox.seqs().first().copied() else {
                tokio::select! {
                    _ = self.wake.notified() => {}
                    _ = tokio::time::sleep(IDLE_POLL) => {}
                    _ = stop.cancelled() => {}
                }
                continue;
            };
            let Some(entry) = self.outbox.get(seq) else {
                // set aside as corrupt by the outbox (counted there)
                let _ = self.outbox.ack(seq);
                continue;
            };
            let outcome = tokio::select! {
                r = self.post(&entry) => r,
                _ = stop.cancelled() => break,
            };
            let wait = match outcome {
                Outcome::Delivered => {
                    self.done(seq);
                    self.stats.delivered.fetch_add(1, Ordering::Relaxed);
                    if self.stats.failing.lock().unwrap().take().is_some() {
                        tracing::warn!(webhook = %self.cfg.id, queued = self.outbox.len(), "webhook: the platform takes alerts again");
                    }
                    last_logged = None;
                    backoff = initial;
                    continue;
                }
                Outcome::Rejected(status, body) => {
                    self.reject(&entry, status, &body);
                    self.done(seq);
                    continue;
                }
                Outcome::Retry(error, retry_after) => {
                    self.stats.failures.fetch_add(1, Ordering::Relaxed);
                    if last_logged.as_deref() != Some(error.as_str()) {
                        tracing::warn!(webhook = %self.cfg.id, queued = self.outbox.len(), "webhook: {error}; retrying (the message stays queued)");
                        last_logged = Some(error.clone());
                    }
                    let mut failing = self.stats.failing.lock().unwrap();
                    match failing.as_mut() {
                        Some((_, e)) => *e = error,
                        None => *failing = Some((Instant::now(), error)),
                    }
                    let wait = retry_after.map_or(backoff, |r| r.max(backoff)).min(max);
                    backoff = (backoff * 2).min(max);
                    wait
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stop.cancelled() => break,
            }
        }
        self.outbox.maintain();
    }

    fn done(&self, seq: u64) {
        if let Err(e) = self.outbox.ack(seq) {
            tracing::error!(webhook = %self.cfg.id, seq, "cannot delete a delivered message from the queue: {e} (it may be sent again)");
        }
        self.stats.queue.store(self.outbox.len() as u64, Ordering::Relaxed);
    }

    /// Keeps a message the platform refused for good, with the answer, and counts it.
    fn reject(&self, entry: &Entry, status: u16, answer: &str) {
        self.stats.rejected.fetch_add(1, Ordering::Relaxed);
        let (kind, body) = self.body(entry);
        let kept = serde_json::to_vec_pretty(&json!({
            "status": status,
            "answer": answer,
            "topic": entry.topic,
            "kind": kind,
            "body": serde_json::from_slice::<serde_json::Value>(&body).unwrap_or(serde_json::Value::Null),
        }))
        .expect("json");
        let path = self.rejected_dir.join(format!("{}.json", entry.seq));
        let saved = std::fs::create_dir_all(&self.rejected_dir).and_then(|()| crate::durable::write_parts(&path, &[&kept]));
        match saved {
            Ok(()) => tracing::error!(webhook = %self.cfg.id, status, %answer, kept = %path.display(), "webhook: the platform REFUSED a {kind} for good; kept on disk, the queue goes on"),
            Err(e) => tracing::error!(webhook = %self.cfg.id, status, %answer, "webhook: the platform REFUSED a {kind} for good, and it cannot be kept ({e}): {}", String::from_utf8_lossy(&body)),
        }
    }

    /// The JSON body of a queued message, and what it is.
    fn body(&self, entry: &Entry) -> (&'static str, Vec<u8>) {
        let Some(rest) = entry.topic.strip_prefix(&self.evidence_prefix) else {
            return ("alert", entry.payload.clone());
        };
        let (event_id, name) = rest.split_once('/').unwrap_or((rest, ""));
        let body = json!({
            "device_id": self.device,
            "event_id": event_id,
            "name": name,
            "content_type": content_type(name),
            "bytes": entry.payload.len(),
            "sha256": hex::encode(Sha256::digest(&entry.payload)),
            "data_base64": base64_encode(&entry.payload),
        });
        ("evidence", serde_json::to_vec(&body).expect("json"))
    }

    async fn post(&self, entry: &Entry) -> Outcome {
        let (kind, body) = self.body(entry);
        let timestamp = chrono::Utc::now().timestamp().to_string();
        let headers = [
            ("X-Hawkeye-Device", self.device.clone()),
            ("X-Hawkeye-Kind", kind.to_string()),
            ("X-Hawkeye-Delivery", format!("{}/{}/{}", self.device, self.cfg.id, entry.seq)),
            ("X-Hawkeye-Signature", format!("sha256={}", signature(self.cfg.secret.as_bytes(), &timestamp, &body))),
            ("X-Hawkeye-Timestamp", timestamp),
        ];
        let req = Request { method: "POST", url: &self.cfg.url, content_type: Some("application/json"), body: &body, pace_bytes_per_s: None, headers: &headers };
        match self.client.send(&req).await {
            Ok(r) if (200..300).contains(&r.status) => Outcome::Delivered,
            Ok(r) if r.status == 408 || r.status == 429 || r.status >= 500 => {
                let retry_after = r.header("retry-after").and_then(|v| v.trim().parse::<u64>().ok()).map(Duration::from_secs);
                Outcome::Retry(format!("HTTP {} from {}: {}", r.status, self.cfg.url, r.body_excerpt(200)), retry_after)
            }
            Ok(r) if (300..400).contains(&r.status) => {
                Outcome::Retry(format!("HTTP {} from {} (redirects are not followed; set url to {:?})", r.status, self.cfg.url, r.header("location").unwrap_or("?")), None)
            }
            Ok(r) => Outcome::Rejected(r.status, r.body_excerpt(500)),
            Err(e) => Outcome::Retry(format!("{} ({})", e, self.cfg.url), None),
        }
    }
}

enum Outcome {
    Delivered,
    /// A 4xx other than 408/429: the platform will never take this message.
    Rejected(u16, String),
    /// Try again later (the error, and the platform's `Retry-After`).
    Retry(String, Option<Duration>),
}

/// Lower-case hex HMAC-SHA256 with `secret` of `"{timestamp}.{body}"`.
pub fn signature(secret: &[u8], timestamp: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

fn content_type(name: &str) -> &'static str {
    match name.rsplit('.').next().unwrap_or("") {
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "mp4" => "video/mp4",
        "json" => "application/json",
        _ => "application/octet-stream",
    }
}

/// Opens every configured webhook (the queues' directories are created now, so a bad state
/// folder stops the start instead of losing alerts later).
pub fn open_all(cfgs: &[WebhookCfg], state_dir: &Path, device: &str, topics: &Topics, resolve: impl Fn(&Path) -> PathBuf) -> anyhow::Result<Vec<Arc<Webhook>>> {
    use anyhow::Context as _;
    cfgs.iter()
        .map(|c| Webhook::open(c, state_dir, device, topics, &resolve).with_context(|| format!("webhook {}: its queue in {}", c.id, state_dir.join("webhook").join(&c.id).display())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_hmac_sha256_of_timestamp_dot_body() {
        // expected value from Python: hmac.new(secret, b"1796601600." + body, hashlib.sha256)
        let body = br#"{"event_id":"e1","state":"raised"}"#;
        assert_eq!(signature(b"0123456789abcdef-secret", "1796601600", body), "4e396ade83b7ef997d8b070757f5577fa2127b45f70ccface887c0addd3082e7");
        // the timestamp is signed: the same body at another time signs differently
        assert_ne!(signature(b"0123456789abcdef-secret", "1796601601", body), signature(b"0123456789abcdef-secret", "1796601600", body));
    }

    #[test]
    fn content_types_by_name() {
        assert_eq!(content_type("snapshot.jpg"), "image/jpeg");
        assert_eq!(content_type("clip.mp4"), "video/mp4");
        assert_eq!(content_type("manifest.json"), "application/json");
        assert_eq!(content_type("x"), "application/octet-stream");
    }
}
