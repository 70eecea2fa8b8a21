//! The MQTT link: rumqttc used as a transport only. Delivery is hawkeye's job: messages come
//! from the durable [`Outbox`], carry packet ids assigned by the [`Ledger`], and an outbox entry
//! is deleted only on the PubAck for its id. After any reconnect every unacknowledged entry is
//! sent again (rumqttc forgets its pending publishes when the broker kept no session), so a
//! receiver may see a duplicate, always with the same `event_id`.
//!
//! Sizes: rumqttc is never handed a packet over its limit (it would refuse it, and the link would
//! take that as a disconnect and resend it forever). Payloads over `mqtt.max_payload_kb` are
//! chunked by the [`Publisher`] (and, as a safety net for files from older versions, at send
//! time); see [`crate::outbox::blob`] for the topic scheme.
//!
//! Broker refusals: an MQTT 3.1.1 broker PubAcks a publish its ACL refuses and drops it. So at
//! every connect the link publishes a probe to a topic it is subscribed to (`…/cmd/_probe`) and
//! waits for the echo; without one it holds the outbox (entries stay on disk), reports it, and
//! probes again (see [`super::probe`], which also says why MQTT 5 would do better).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use std::path::Path;

use rumqttc::{Event, EventLoop, LastWill, MqttOptions, Outgoing, Packet, Publish, QoS, Request, SubscribeReasonCode, TlsConfiguration, Transport};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::commands::{self, DoneIds};
use super::probe::{AclProbe, ProbeStep, PROBE_TIMEOUT, REPROBE};
use super::topics::Topics;
use crate::config::Mqtt;
use crate::outbox::{push_blob, BlobRef, Ledger, Outbox, PublishId};

/// Most QoS 1 messages awaiting PubAck at once.
const WINDOW: u16 = 32;
/// Largest packet accepted from the broker: the protocol's own maximum (the largest "remaining
/// length" MQTT can encode). rumqttc treats an incoming packet over its limit as a broken
/// connection; the broker then delivers the same (retained) message again on the next
/// subscribe, so any lower limit turns one oversized retained command into a reconnect loop.
/// With the protocol maximum no well-formed packet is ever refused, and an oversized command is
/// read whole (once) and answered with a refusal instead. Cap it at the broker
/// (`max_packet_size` in mosquitto, `mqtt.max_packet_size` in EMQX) to bound that memory.
const MAX_INCOMING_PACKET: usize = 268_435_455;
/// Room for the fixed header, topic (at most 64 KiB) and packet id on top of a payload.
const PACKET_OVERHEAD: usize = 64 * 1024 + 16;
/// How often the outbox retries held messages and syncs deletions.
const MAINTAIN_EVERY: Duration = Duration::from_secs(2);

/// Counters the heartbeat and tests read.
#[derive(Debug, Default)]
pub struct LinkStats {
    pub connected: AtomicBool,
    pub connects: AtomicU64,
    pub connection_errors: AtomicU64,
    pub published: AtomicU64,
    pub acked: AtomicU64,
    pub outbox_depth: AtomicU64,
    pub evicted_evidence: AtomicU64,
    pub evicted_alerts: AtomicU64,
    /// True while the broker does not echo the ACL probe (delivery is held).
    pub acl_refused: AtomicBool,
    /// Probes that got no echo.
    pub probes_failed: AtomicU64,
    /// Commands the link refused itself (too large, retained without request_id).
    pub commands_refused: AtomicU64,
    /// Retained commands not run again (their request_id ran before).
    pub retained_skipped: AtomicU64,
    /// Entries split into chunks at send time (written whole by an older version).
    pub rechunked: AtomicU64,
    /// The outbox, for its disk state.
    pub outbox: OnceLock<Arc<Outbox>>,
}

/// Builds the heartbeat payload; called on the link's task every `heartbeat_s`.
pub type HeartbeatFn = Box<dyn Fn() -> Vec<u8> + Send>;

/// Cloneable handle that persists messages and wakes the link.
#[derive(Clone)]
pub struct Publisher {
    outbox: Arc<Outbox>,
    wake: mpsc::UnboundedSender<u64>,
    topics: Topics,
    max_payload: usize,
    /// `[[webhook]]` platforms, offered every message before the broker's outbox takes it.
    webhooks: Arc<Vec<Arc<crate::webhook::Webhook>>>,
}

impl Publisher {
    /// Writes a QoS 1 message to the outbox (durably) and queues it for sending; a payload over
    /// `mqtt.max_payload_kb` goes as chunks (see [`Publisher::enqueue_blob`]). Returns the seq of
    /// the (last) entry.
    pub fn enqueue(&self, topic: &str, payload: Vec<u8>, retain: bool) -> std::io::Result<u64> {
        for w in self.webhooks.iter() {
            w.offer(topic, &payload);
        }
        if payload.len() > self.max_payload {
            let (_, seqs) = push_blob(&self.outbox, topic, &payload, self.max_payload, retain)?;
            seqs.iter().for_each(|s| self.wake(*s));
            return Ok(*seqs.last().unwrap_or(&0));
        }
        let seq = self.outbox.push(topic, payload, retain)?;
        self.wake(seq);
        Ok(seq)
    }

    /// Queues `bytes` for `topic` whatever its size: one message when it fits in
    /// `mqtt.max_payload_kb`, else a JSON index on `{topic}/index` and chunks on
    /// `{topic}/chunk/{i}`. The reference says where a consumer finds it.
    pub fn enqueue_blob(&self, topic: &str, bytes: &[u8]) -> std::io::Result<BlobRef> {
        for w in self.webhooks.iter() {
            w.offer(topic, bytes);
        }
        let (r, seqs) = push_blob(&self.outbox, topic, bytes, self.max_payload, false)?;
        seqs.iter().for_each(|s| self.wake(*s));
        Ok(r)
    }

    /// This publisher, also offering every message to `webhooks` (set before it is cloned).
    pub fn with_webhooks(mut self, webhooks: Vec<Arc<crate::webhook::Webhook>>) -> Publisher {
        self.webhooks = Arc::new(webhooks);
        self
    }

    fn wake(&self, seq: u64) {
        // the link may already be gone at shutdown; the entry stays on disk for the next run
        let _ = self.wake.send(seq);
    }

    /// Events with messages not yet acknowledged by the broker (retention keeps them).
    pub fn pending_events(&self) -> std::collections::HashSet<String> {
        self.outbox.pending_events()
    }

    pub fn topics(&self) -> &Topics {
        &self.topics
    }

    /// The outbox behind this publisher.
    pub fn outbox(&self) -> &Arc<Outbox> {
        &self.outbox
    }

    /// Largest payload sent as one message.
    pub fn max_payload(&self) -> usize {
        self.max_payload
    }
}

/// Parses `mqtt://host:port` (default port 1883) or `mqtts://host:port` (8883) into host, port
/// and whether TLS is used.
pub fn broker_address(url: &str) -> Result<(String, u16, bool), String> {
    let u = url::Url::parse(url).map_err(|e| format!("bad MQTT URL {url:?}: {e}"))?;
    let host = u.host_str().filter(|h| !h.is_empty()).ok_or_else(|| format!("MQTT URL {url:?} has no host"))?;
    let tls = matches!(u.scheme(), "mqtts" | "ssl");
    Ok((host.trim_matches(['[', ']']).to_string(), u.port().unwrap_or(if tls { 8883 } else { 1883 }), tls))
}

/// TLS transport from the config's PEM files (paths already resolved).
fn tls_transport(ca: &Path, client: Option<(&Path, &Path)>) -> Result<Transport, String> {
    // rustls needs a process-wide crypto provider; installing it twice is harmless
    let _ = rustls::crypto::ring::default_provider().install_default();
    let read = |p: &Path| std::fs::read(p).map_err(|e| format!("cannot read {}: {e}", p.display()));
    let ca = read(ca)?;
    let client_auth = match client {
        Some((cert, key)) => Some((read(cert)?, read(key)?)),
        None => None,
    };
    Ok(Transport::tls_with_config(TlsConfiguration::Simple { ca, alpn: None, client_auth }))
}

/// A connection error as an operator reads it.
fn explain(e: &rumqttc::ConnectionError) -> String {
    use rumqttc::{ConnectReturnCode as C, ConnectionError as E};
    match e {
        E::ConnectionRefused(C::BadUserNamePassword) => {
            "broker refused the connection: bad user name or password (check mqtt.username / mqtt.password)".into()
        }
        E::ConnectionRefused(C::NotAuthorized) => {
            // mosquitto answers a wrong password with "not authorized"
            "broker refused the connection: not authorized, bad user name or password (check mqtt.username / mqtt.password)".into()
        }
        E::ConnectionRefused(code) => format!("broker refused the connection: {code:?}"),
        E::Tls(t) => format!("TLS failed: {t} (check mqtt.ca_file and the broker's certificate name)"),
        other => other.to_string(),
    }
}

/// The running link: owns rumqttc's event loop, the ledger and the heartbeat timer.
pub struct MqttLink {
    eventloop: EventLoop,
    ledger: Ledger,
    outbox: Arc<Outbox>,
    wake: mpsc::UnboundedReceiver<u64>,
    /// Queues the link's own command replies (off its task: a push writes to disk).
    replies: Publisher,
    topics: Topics,
    stats: Arc<LinkStats>,
    heartbeat_every: Duration,
    heartbeat: HeartbeatFn,
    commands: Option<mpsc::UnboundedSender<(String, Vec<u8>)>>,
    /// Retained messages (topic, payload) published on every connect, like the status.
    retained: Vec<(String, Vec<u8>)>,
    /// More subscriptions (drone telemetry), renewed on every connect; their messages go to the
    /// commands receiver too.
    also: Vec<(String, QoS)>,
    max_payload: usize,
    probe: AclProbe,
    /// Who the broker's ACL must allow, for the refusal message.
    user: String,
    /// Request ids of retained commands already run.
    done: DoneIds,
    maintaining: Option<tokio::task::JoinHandle<()>>,
}

impl MqttLink {
    /// Sets up the link (nothing connects until [`MqttLink::run`]); returns it with the
    /// publisher handle and its stats.
    /// `resolve` turns config paths (CA, client certificate) into real paths.
    pub fn new(
        cfg: &Mqtt,
        device_id: &str,
        outbox: impl Into<Arc<Outbox>>,
        heartbeat: HeartbeatFn,
        resolve: impl Fn(&Path) -> std::path::PathBuf,
    ) -> Result<(MqttLink, Publisher, Arc<LinkStats>), String> {
        let outbox: Arc<Outbox> = outbox.into();
        let (host, port, tls) = broker_address(&cfg.url)?;
        let topics = Topics::new(&cfg.topic_prefix, device_id);
        let client_id = cfg.client_id.clone().unwrap_or_else(|| format!("hawkeye-{device_id}"));
        let max_payload = (cfg.max_payload_kb.max(1) as usize).saturating_mul(1024);
        let mut opts = MqttOptions::new(client_id.clone(), host, port);
        opts.set_keep_alive(Duration::from_secs(cfg.keep_alive_s.max(5)))
            .set_clean_session(true)
            .set_inflight(WINDOW)
            .set_max_packet_size(MAX_INCOMING_PACKET, max_payload + PACKET_OVERHEAD)
            .set_last_will(LastWill::new(topics.status(), "offline", QoS::AtLeastOnce, true));
        if tls {
            let ca = cfg.ca_file.as_deref().map(&resolve).ok_or("mqtts:// needs mqtt.ca_file")?;
            let cert = cfg.client_cert.as_deref().map(&resolve);
            let key = cfg.client_key.as_deref().map(&resolve);
            let client = cert.as_deref().zip(key.as_deref());
            opts.set_transport(tls_transport(&ca, client)?);
        }
        if let Some(user) = &cfg.username {
            opts.set_credentials(user.clone(), cfg.password.clone().unwrap_or_default());
        }
        let user = match &cfg.username {
            Some(u) => format!("user {u:?} (client id {client_id:?})"),
            None => format!("anonymous client {client_id:?}"),
        };
        let eventloop = EventLoop::new(opts, 64);
        let mut ledger = Ledger::new(WINDOW);
        for seq in outbox.seqs() {
            ledger.add(seq);
        }
        if !outbox.is_empty() {
            tracing::info!(waiting = outbox.len(), "outbox: resending messages left by an earlier run");
        }
        let stats = Arc::new(LinkStats::default());
        stats.outbox_depth.store(outbox.len() as u64, Ordering::Relaxed);
        let _ = stats.outbox.set(outbox.clone());
        let (tx, rx) = mpsc::unbounded_channel();
        let publisher = Publisher { outbox: outbox.clone(), wake: tx, topics: topics.clone(), max_payload, webhooks: Arc::default() };
        let link = MqttLink {
            eventloop,
            ledger,
            outbox,
            wake: rx,
            replies: publisher.clone(),
            topics,
            stats: stats.clone(),
            heartbeat_every: Duration::from_secs_f64(cfg.heartbeat_s),
            heartbeat,
            commands: None,
            retained: Vec::new(),
            also: Vec::new(),
            max_payload,
            probe: AclProbe::new(cfg.acl_probe),
            user,
            done: DoneIds::in_memory(),
            maintaining: None,
        };
        Ok((link, publisher, stats))
    }

    /// Publishes `payload` retained on `topic` on every connection (e.g. the public key).
    pub fn retain_on_connect(&mut self, topic: String, payload: Vec<u8>) {
        self.retained.push((topic, payload));
    }

    /// Also subscribes to `filter` on every connection (messages arrive with the commands).
    pub fn subscribe_also(&mut self, filter: &str) {
        self.also.push((filter.to_string(), QoS::AtMostOnce));
    }

    /// Like [`MqttLink::subscribe_also`], at QoS 1 (messages that must not be missed).
    pub fn subscribe_also_qos1(&mut self, filter: &str) {
        self.also.push((filter.to_string(), QoS::AtLeastOnce));
    }

    /// Subscribes to `…/cmd/+` on every connection and hands each command message (topic,
    /// payload) to the returned receiver. Oversized commands, the ACL probe and retained
    /// commands that must not run (again) are answered or dropped by the link itself.
    pub fn take_commands(&mut self) -> mpsc::UnboundedReceiver<(String, Vec<u8>)> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.commands = Some(tx);
        rx
    }

    /// Remembers the request ids of retained commands already run in
    /// `state_dir/commands_done` (so they do not run again after a restart either).
    pub fn remember_commands_in(&mut self, state_dir: &Path) -> std::io::Result<()> {
        self.done = DoneIds::open(&state_dir.join("commands_done"))?;
        Ok(())
    }

    /// True while outbox entries may be sent (the probe echoed, or probing is off).
    fn delivering(&self) -> bool {
        self.probe.delivering()
    }

    /// Runs until `shutdown`; then flushes what it can within `flush_deadline`, publishes the
    /// retained `offline` status and disconnects.
    pub async fn run(mut self, shutdown: CancellationToken, flush_deadline: Duration) {
        let mut connected = false;
        let mut retry_at = Instant::now();
        let mut backoff = Duration::from_millis(500);
        let mut next_beat = Instant::now() + self.heartbeat_every;
        let mut closing_since: Option<Instant> = None;
        let mut maintain = tokio::time::interval(MAINTAIN_EVERY);
        maintain.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            if closing_since.is_some() {
                // what was queued just before the stop (the evidence workers' `end`s) may still
                // be in the wake channel: the ledger takes it before the outbox counts as flushed
                while let Ok(seq) = self.wake.try_recv() {
                    self.ledger.add(seq);
                }
                self.update_depth();
            }
            if connected && self.delivering() {
                self.send_waiting();
            }
            if let Some(t0) = closing_since {
                let flushed = self.ledger.is_idle();
                let held = connected && !self.delivering();
                if !connected || flushed || held || t0.elapsed() >= flush_deadline {
                    if !flushed {
                        tracing::warn!(
                            waiting = self.ledger.pending(),
                            "shutdown: outbox not empty; the messages stay on disk and are sent on the next start"
                        );
                    }
                    break;
                }
            }
            tokio::select! {
                biased;
                _ = shutdown.cancelled(), if closing_since.is_none() => {
                    closing_since = Some(Instant::now());
                }
                Some(seq) = self.wake.recv() => {
                    self.ledger.add(seq);
                    self.update_depth();
                }
                _ = tokio::time::sleep_until(next_beat) => {
                    next_beat = Instant::now() + self.heartbeat_every;
                    if connected {
                        let payload = (self.heartbeat)();
                        let p = Publish::new(self.topics.heartbeat(), QoS::AtMostOnce, payload);
                        self.eventloop.pending.push_back(Request::Publish(p));
                    }
                }
                _ = maintain.tick() => {
                    self.maintain_outbox();
                    if connected {
                        self.check_probe();
                    }
                    self.update_depth();
                }
                _ = tokio::time::sleep_until(retry_at), if !connected && Instant::now() < retry_at => {}
                ev = self.eventloop.poll(), if connected || Instant::now() >= retry_at => match ev {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        connected = true;
                        backoff = Duration::from_millis(500);
                        self.stats.connected.store(true, Ordering::Relaxed);
                        self.stats.connects.fetch_add(1, Ordering::Relaxed);
                        tracing::info!(waiting = self.ledger.pending(), "mqtt: connected");
                        self.publish_status("online");
                        // a clean session has no subscriptions: renew them on every connect
                        // (the commands filter also carries the ACL probe's echo)
                        let sub = rumqttc::Subscribe::new(self.topics.commands_filter(), QoS::AtLeastOnce);
                        self.eventloop.pending.push_back(Request::Subscribe(sub));
                        for (f, qos) in &self.also {
                            let sub = rumqttc::Subscribe::new(f.clone(), *qos);
                            self.eventloop.pending.push_back(Request::Subscribe(sub));
                        }
                        if let Some(token) = self.probe.connected(Instant::now()) {
                            self.send_probe(token);
                        }
                    }
                    Ok(Event::Incoming(Packet::SubAck(ack))) => {
                        if ack.return_codes.iter().any(|c| matches!(c, SubscribeReasonCode::Failure)) {
                            tracing::error!(
                                "mqtt: the broker refused a subscription of {}: commands cannot arrive and the ACL probe cannot echo; check its ACL (read {}/cmd/#)",
                                self.user,
                                self.topics.root()
                            );
                        }
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => self.incoming(p),
                    Ok(Event::Incoming(Packet::PubAck(ack))) => {
                        if let Some(PublishId::Entry(seq)) = self.ledger.ack(ack.pkid) {
                            if let Err(e) = self.outbox.ack(seq) {
                                tracing::error!(seq, "outbox: cannot delete acknowledged message: {e}");
                            }
                            self.stats.acked.fetch_add(1, Ordering::Relaxed);
                            self.update_depth();
                        }
                    }
                    Ok(Event::Outgoing(Outgoing::Publish(_))) => {
                        self.stats.published.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(_) => {}
                    Err(e) => {
                        self.stats.connection_errors.fetch_add(1, Ordering::Relaxed);
                        if connected {
                            tracing::warn!("mqtt: connection lost: {}; unacknowledged messages will be resent", explain(&e));
                        } else {
                            // at most one line per attempt, and attempts back off to one per 8 s
                            tracing::warn!("mqtt: cannot connect: {}; retrying in {:?}", explain(&e), backoff);
                        }
                        connected = false;
                        self.stats.connected.store(false, Ordering::Relaxed);
                        self.ledger.disconnected();
                        retry_at = Instant::now() + backoff;
                        backoff = (backoff * 2).min(Duration::from_secs(8));
                    }
                },
            }
        }
        if connected {
            self.publish_status("offline");
            self.eventloop.pending.push_back(Request::Disconnect(rumqttc::Disconnect));
            let _ = tokio::time::timeout(Duration::from_secs(2), async {
                loop {
                    match self.eventloop.poll().await {
                        Ok(Event::Outgoing(Outgoing::Disconnect)) | Err(_) => break,
                        _ => {}
                    }
                }
            })
            .await;
        }
        if let Some(m) = self.maintaining.take() {
            let _ = m.await;
        }
        // held messages get a last chance to reach the disk
        let ob = self.outbox.clone();
        let _ = tokio::task::spawn_blocking(move || ob.maintain()).await;
        self.stats.connected.store(false, Ordering::Relaxed);
        tracing::info!("mqtt: disconnected");
    }

    /// Retries held messages and syncs deletions on the blocking pool (one run at a time), so
    /// the link never waits for the disk.
    fn maintain_outbox(&mut self) {
        if self.maintaining.as_ref().is_some_and(|m| !m.is_finished()) {
            return;
        }
        let ob = self.outbox.clone();
        self.maintaining = Some(tokio::task::spawn_blocking(move || ob.maintain()));
    }

    /// Publishes a probe token to `…/cmd/_probe`; delivery waits for its echo.
    fn send_probe(&mut self, token: String) {
        // no packet id free: the probe times out and is tried again
        let Some(pkid) = self.ledger.reserve_other() else { return };
        let mut p = Publish::new(self.topics.probe(), QoS::AtLeastOnce, token.into_bytes());
        p.pkid = pkid;
        self.eventloop.pending.push_back(Request::Publish(p));
    }

    /// Times the probe out (hold and report) and re-probes a refused link.
    fn check_probe(&mut self) {
        match self.probe.tick(Instant::now()) {
            ProbeStep::Nothing => {}
            ProbeStep::Send(token) => self.send_probe(token),
            ProbeStep::TimedOut => {
                self.stats.probes_failed.fetch_add(1, Ordering::Relaxed);
                if !self.stats.acl_refused.swap(true, Ordering::Relaxed) {
                    tracing::error!(
                        waiting = self.ledger.pending(),
                        "mqtt: broker does not deliver what this device publishes (its probe on {} got no echo in {:?}): check its ACL for {} (publish and read under {}/); holding the outbox, probing again every {:?}",
                        self.topics.probe(),
                        PROBE_TIMEOUT,
                        self.user,
                        self.topics.root(),
                        REPROBE
                    );
                }
            }
        }
    }

    /// An incoming message: the probe's echo, a command, or a message of an extra subscription.
    fn incoming(&mut self, p: Publish) {
        if p.topic == self.topics.probe() {
            if self.probe.echo(&p.payload) && self.stats.acl_refused.swap(false, Ordering::Relaxed) {
                tracing::warn!(waiting = self.ledger.pending(), "mqtt: the broker delivers this device's messages again; resuming delivery");
            }
            return;
        }
        let Some(tx) = self.commands.clone() else { return };
        let Some(name) = commands::command_name(self.topics.root(), &p.topic).map(str::to_string) else {
            let _ = tx.send((p.topic, p.payload.to_vec()));
            return;
        };
        if p.payload.len() > commands::MAX_COMMAND_BYTES {
            let rid = commands::salvage_request_id(&p.payload);
            let why = format!(
                "payload of {} bytes is larger than the {} bytes a command may have; not executed{}",
                p.payload.len(),
                commands::MAX_COMMAND_BYTES,
                if p.retain { " (it is retained on the broker: clear it by publishing an empty retained message to its topic)" } else { "" }
            );
            self.refuse(&name, rid, why, p.retain);
            return;
        }
        if p.retain {
            // the broker hands a retained command out again on every subscribe (every reconnect):
            // run it at most once, by its request_id
            match commands::salvage_request_id(&p.payload) {
                None => {
                    let why = "a retained command needs a request_id (it would run again on every reconnect); not executed".to_string();
                    self.refuse(&name, None, why, true);
                    return;
                }
                Some(id) if self.done.contains(&id) => {
                    self.stats.retained_skipped.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(cmd = %name, request_id = %id, "retained command already executed; not run again");
                    return;
                }
                Some(id) => {
                    if let Err(e) = self.done.record(&id) {
                        tracing::warn!("cannot remember retained command {id:?}: {e}; it may run again after a restart");
                    }
                }
            }
        }
        let _ = tx.send((p.topic, p.payload.to_vec()));
    }

    /// Answers a command on `cmd_result` without running it.
    fn refuse(&mut self, name: &str, request_id: Option<String>, why: String, retained: bool) {
        self.stats.commands_refused.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(cmd = %name, retained, "command refused: {why}");
        let name: String = name.chars().take(64).collect();
        let body = commands::reply(&name, request_id.as_deref(), Err(why));
        let (replies, topic) = (self.replies.clone(), self.topics.command_result());
        tokio::task::spawn_blocking(move || {
            if let Err(e) = replies.enqueue(&topic, body, false) {
                tracing::error!("cannot queue command reply: {e}");
            }
        });
    }

    fn send_waiting(&mut self) {
        while let Some((pkid, seq)) = self.ledger.next_to_send() {
            let Some(e) = self.outbox.get(seq) else {
                // evicted or damaged while waiting: give its packet id back
                self.ledger.ack(pkid);
                continue;
            };
            if e.payload.len() > self.max_payload {
                // written whole by an older version: rumqttc would refuse the packet
                self.ledger.ack(pkid);
                self.rechunk(e);
                continue;
            }
            let mut p = Publish::new(e.topic, QoS::AtLeastOnce, e.payload);
            p.retain = e.retain;
            p.pkid = pkid;
            self.eventloop.pending.push_back(Request::Publish(p));
        }
    }

    /// Replaces an oversized entry by its chunks (new entries, sent after what is queued).
    fn rechunk(&mut self, e: crate::outbox::Entry) {
        match push_blob(&self.outbox, &e.topic, &e.payload, self.max_payload, e.retain) {
            Ok((r, seqs)) => {
                tracing::warn!(topic = %e.topic, bytes = e.payload.len(), chunks = r.chunks, "outbox: message over mqtt.max_payload_kb sent as chunks");
                self.stats.rechunked.fetch_add(1, Ordering::Relaxed);
                seqs.into_iter().for_each(|s| self.ledger.add(s));
                if let Err(err) = self.outbox.ack(e.seq) {
                    tracing::warn!(seq = e.seq, "outbox: cannot delete the rechunked message: {err}");
                }
            }
            // it stays in the outbox and is tried again after the next reconnect
            Err(err) => tracing::error!(topic = %e.topic, "outbox: cannot split an oversized message: {err}"),
        }
    }

    fn publish_status(&mut self, status: &str) {
        // retained so a command centre that subscribes later sees the device state at once
        self.publish_retained(self.topics.status(), status.as_bytes().to_vec());
        if status == "online" {
            for (topic, payload) in self.retained.clone() {
                self.publish_retained(topic, payload);
            }
        }
    }

    fn publish_retained(&mut self, topic: String, payload: Vec<u8>) {
        if let Some(pkid) = self.ledger.reserve_other() {
            let mut p = Publish::new(topic, QoS::AtLeastOnce, payload);
            p.retain = true;
            p.pkid = pkid;
            self.eventloop.pending.push_back(Request::Publish(p));
        }
    }

    fn update_depth(&self) {
        let (evidence, alerts) = self.outbox.evicted();
        self.stats.outbox_depth.store(self.outbox.len() as u64, Ordering::Relaxed);
        self.stats.evicted_evidence.store(evidence, Ordering::Relaxed);
        self.stats.evicted_alerts.store(alerts, Ordering::Relaxed);
    }
}
