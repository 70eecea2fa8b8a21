//! The MQTT link: rumqttc used as a transport only. Delivery is hawkeye's job: messages come
//! from the durable [`Outbox`], carry packet ids assigned by the [`Ledger`], and an outbox entry
//! is deleted only on the PubAck for its id. After any reconnect every unacknowledged entry is
//! sent again (rumqttc forgets its pending publishes when the broker kept no session), so a
//! receiver may see a duplicate, always with the same `event_id`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use std::path::Path;

use rumqttc::{Event, EventLoop, LastWill, MqttOptions, Outgoing, Packet, Publish, QoS, Request, TlsConfiguration, Transport};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::topics::Topics;
use crate::config::Mqtt;
use crate::outbox::{Ledger, Outbox, PublishId};

/// Most QoS 1 messages awaiting PubAck at once.
const WINDOW: u16 = 32;
/// Largest message accepted (snapshots are JPEGs of a few hundred kB at most).
const MAX_PACKET: usize = 16 * 1024 * 1024;

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
}

/// Builds the heartbeat payload; called on the link's task every `heartbeat_s`.
pub type HeartbeatFn = Box<dyn Fn() -> Vec<u8> + Send>;

/// Cloneable handle that persists messages and wakes the link.
#[derive(Clone)]
pub struct Publisher {
    outbox: Arc<Mutex<Outbox>>,
    wake: mpsc::UnboundedSender<u64>,
    topics: Topics,
}

impl Publisher {
    /// Writes a QoS 1 message to the outbox (durably) and queues it for sending.
    pub fn enqueue(&self, topic: &str, payload: Vec<u8>, retain: bool) -> std::io::Result<u64> {
        let seq = self.outbox.lock().unwrap().push(topic, payload, retain)?;
        // the link may already be gone at shutdown; the entry stays on disk for the next run
        let _ = self.wake.send(seq);
        Ok(seq)
    }

    /// Events with messages not yet acknowledged by the broker (retention keeps them).
    pub fn pending_events(&self) -> std::collections::HashSet<String> {
        self.outbox.lock().unwrap().pending_events()
    }

    pub fn topics(&self) -> &Topics {
        &self.topics
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
    outbox: Arc<Mutex<Outbox>>,
    wake: mpsc::UnboundedReceiver<u64>,
    topics: Topics,
    stats: Arc<LinkStats>,
    heartbeat_every: Duration,
    heartbeat: HeartbeatFn,
    commands: Option<mpsc::UnboundedSender<(String, Vec<u8>)>>,
    /// Retained messages (topic, payload) published on every connect, like the status.
    retained: Vec<(String, Vec<u8>)>,
    /// More subscriptions (drone telemetry), renewed on every connect; their messages go to the
    /// commands receiver too.
    also: Vec<String>,
}

impl MqttLink {
    /// Sets up the link (nothing connects until [`MqttLink::run`]); returns it with the
    /// publisher handle and its stats.
    /// `resolve` turns config paths (CA, client certificate) into real paths.
    pub fn new(
        cfg: &Mqtt,
        device_id: &str,
        outbox: Outbox,
        heartbeat: HeartbeatFn,
        resolve: impl Fn(&Path) -> std::path::PathBuf,
    ) -> Result<(MqttLink, Publisher, Arc<LinkStats>), String> {
        let (host, port, tls) = broker_address(&cfg.url)?;
        let topics = Topics::new(&cfg.topic_prefix, device_id);
        let client_id = cfg.client_id.clone().unwrap_or_else(|| format!("hawkeye-{device_id}"));
        let mut opts = MqttOptions::new(client_id, host, port);
        opts.set_keep_alive(Duration::from_secs(cfg.keep_alive_s.max(5)))
            .set_clean_session(true)
            .set_inflight(WINDOW)
            .set_max_packet_size(MAX_PACKET, MAX_PACKET)
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
        let outbox = Arc::new(Mutex::new(outbox));
        let (tx, rx) = mpsc::unbounded_channel();
        let publisher = Publisher { outbox: outbox.clone(), wake: tx, topics: topics.clone() };
        let link = MqttLink {
            eventloop,
            ledger,
            outbox,
            wake: rx,
            topics,
            stats: stats.clone(),
            heartbeat_every: Duration::from_secs_f64(cfg.heartbeat_s),
            heartbeat,
            commands: None,
            retained: Vec::new(),
            also: Vec::new(),
        };
        Ok((link, publisher, stats))
    }

    /// Publishes `payload` retained on `topic` on every connection (e.g. the public key).
    pub fn retain_on_connect(&mut self, topic: String, payload: Vec<u8>) {
        self.retained.push((topic, payload));
    }

    /// Also subscribes to `filter` on every connection (messages arrive with the commands).
    pub fn subscribe_also(&mut self, filter: &str) {
        self.also.push(filter.to_string());
    }

    /// Subscribes to `…/cmd/+` on every connection and hands each command message (topic,
    /// payload) to the returned receiver.
    pub fn take_commands(&mut self) -> mpsc::UnboundedReceiver<(String, Vec<u8>)> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.commands = Some(tx);
        rx
    }

    /// Runs until `shutdown`; then flushes what it can within `flush_deadline`, publishes the
    /// retained `offline` status and disconnects.
    pub async fn run(mut self, shutdown: CancellationToken, flush_deadline: Duration) {
        let mut connected = false;
        let mut retry_at = Instant::now();
        let mut backoff = Duration::from_millis(500);
        let mut next_beat = Instant::now() + self.heartbeat_every;
        let mut closing_since: Option<Instant> = None;
        loop {
            if connected {
                self.send_waiting();
            }
            if let Some(t0) = closing_since {
                let flushed = self.ledger.is_idle();
                if !connected || flushed || t0.elapsed() >= flush_deadline {
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
                _ = tokio::time::sleep_until(retry_at), if !connected && Instant::now() < retry_at => {}
                ev = self.eventloop.poll(), if connected || Instant::now() >= retry_at => match ev {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        connected = true;
                        backoff = Duration::from_millis(500);
                        self.stats.connected.store(true, Ordering::Relaxed);
                        self.stats.connects.fetch_add(1, Ordering::Relaxed);
                        tracing::info!(waiting = self.ledger.pending(), "mqtt: connected");
                        self.publish_status("online");
                        if self.commands.is_some() {
                            // a clean session has no subscriptions: renew them on every connect
                            let sub = rumqttc::Subscribe::new(self.topics.commands_filter(), QoS::AtLeastOnce);
                            self.eventloop.pending.push_back(Request::Subscribe(sub));
                            for f in &self.also {
                                let sub = rumqttc::Subscribe::new(f.clone(), QoS::AtMostOnce);
                                self.eventloop.pending.push_back(Request::Subscribe(sub));
                            }
                        }
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        if let Some(tx) = &self.commands {
                            let _ = tx.send((p.topic.clone(), p.payload.to_vec()));
                        }
                    }
                    Ok(Event::Incoming(Packet::PubAck(ack))) => {
                        if let Some(PublishId::Entry(seq)) = self.ledger.ack(ack.pkid) {
                            if let Err(e) = self.outbox.lock().unwrap().ack(seq) {
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
        self.stats.connected.store(false, Ordering::Relaxed);
        tracing::info!("mqtt: disconnected");
    }

    fn send_waiting(&mut self) {
        let outbox = self.outbox.lock().unwrap();
        while let Some((pkid, seq)) = self.ledger.next_to_send() {
            let Some(e) = outbox.get(seq) else {
                // evicted while waiting: give its packet id back
                self.ledger.ack(pkid);
                continue;
            };
            let mut p = Publish::new(e.topic.clone(), QoS::AtLeastOnce, e.payload.clone());
            p.retain = e.retain;
            p.pkid = pkid;
            self.eventloop.pending.push_back(Request::Publish(p));
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
        let ob = self.outbox.lock().unwrap();
        let (evidence, alerts) = ob.evicted();
        self.stats.outbox_depth.store(ob.len() as u64, Ordering::Relaxed);
        self.stats.evicted_evidence.store(evidence, Ordering::Relaxed);
        self.stats.evicted_alerts.store(alerts, Ordering::Relaxed);
    }
}
