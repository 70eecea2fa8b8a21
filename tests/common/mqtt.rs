//! A real MQTT subscriber that records every message it receives, for assertions.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rumqttc::{Client, Event, MqttOptions, Packet, QoS};

/// One received message.
#[derive(Clone, Debug)]
pub struct Msg {
    pub topic: String,
    pub payload: Vec<u8>,
    pub retain: bool,
}

impl Msg {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.payload).unwrap_or_else(|e| panic!("{}: not JSON: {e}", self.topic))
    }
}

/// Subscribes to `filter` on a broker and keeps everything that arrives.
pub struct Subscriber {
    msgs: Arc<Mutex<Vec<Msg>>>,
    _client: Client,
}

impl Subscriber {
    pub fn new(port: u16, filter: &str) -> Subscriber {
        Self::connect(port, filter, true, None)
    }

    /// A clean-session subscriber that logs in with a user name and password.
    pub fn with_auth(port: u16, filter: &str, user: &str, password: &str) -> Subscriber {
        Self::connect(port, filter, true, Some((user, password)))
    }

    /// A subscriber whose session the broker keeps (clean_session = false): with a persistent
    /// broker it also receives what was published while it or the broker was down.
    pub fn persistent(port: u16, filter: &str) -> Subscriber {
        Self::connect(port, filter, false, None)
    }

    fn connect(port: u16, filter: &str, clean: bool, auth: Option<(&str, &str)>) -> Subscriber {
        let mut opts = MqttOptions::new(format!("test-sub-{}-{}", std::process::id(), port), "127.0.0.1", port);
        opts.set_max_packet_size(16 << 20, 16 << 20);
        opts.set_clean_session(clean);
        if let Some((u, p)) = auth {
            opts.set_credentials(u, p);
        }
        let (client, mut conn) = Client::new(opts, 64);
        client.subscribe(filter, QoS::AtLeastOnce).unwrap();
        let resubscribe = client.clone();
        let filter = filter.to_string();
        let msgs = Arc::new(Mutex::new(Vec::new()));
        let sink = msgs.clone();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut ready = Some(ready_tx);
            for ev in conn.iter() {
                match ev {
                    Ok(Event::Incoming(Packet::ConnAck(ack))) if !ack.session_present => {
                        // a new session has no subscription yet (first connect: already queued)
                        if ready.is_none() {
                            let _ = resubscribe.try_subscribe(filter.clone(), QoS::AtLeastOnce);
                        }
                    }
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        if let Some(r) = ready.take() {
                            let _ = r.send(());
                        }
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => sink.lock().unwrap().push(Msg {
                        topic: p.topic.clone(),
                        payload: p.payload.to_vec(),
                        retain: p.retain,
                    }),
                    Ok(_) => {}
                    Err(_) => std::thread::sleep(Duration::from_millis(200)),
                }
            }
        });
        ready_rx.recv_timeout(Duration::from_secs(10)).expect("subscription acknowledged");
        Subscriber { msgs, _client: client }
    }

    /// Everything received so far.
    pub fn all(&self) -> Vec<Msg> {
        self.msgs.lock().unwrap().clone()
    }

    /// Number of messages received so far (a mark for [`Subscriber::wait_for_after`]).
    pub fn count(&self) -> usize {
        self.msgs.lock().unwrap().len()
    }

    /// Waits until `pred` holds for some received message; returns the first such message.
    /// (`pred` must not call back into the subscriber.)
    pub fn wait_for(&self, what: &str, timeout: Duration, pred: impl Fn(&Msg) -> bool) -> Msg {
        self.wait_for_after(0, what, timeout, pred)
    }

    /// Like [`Subscriber::wait_for`], looking only at messages after the first `mark`.
    pub fn wait_for_after(&self, mark: usize, what: &str, timeout: Duration, pred: impl Fn(&Msg) -> bool) -> Msg {
        self.poll_for(mark, timeout, pred).unwrap_or_else(|| {
            let topics: Vec<String> = self.all().iter().map(|m| m.topic.clone()).collect();
            panic!("timed out after {timeout:?} waiting for {what}; received {} messages: {topics:?}", topics.len())
        })
    }

    /// The first message after the first `mark` for which `pred` holds, waiting up to
    /// `timeout`; `None` lets the caller say more than the topics when it never comes.
    pub fn poll_for(&self, mark: usize, timeout: Duration, pred: impl Fn(&Msg) -> bool) -> Option<Msg> {
        let t0 = Instant::now();
        loop {
            if let Some(m) = self.msgs.lock().unwrap().iter().skip(mark).find(|m| pred(m)) {
                return Some(m.clone());
            }
            if t0.elapsed() > timeout {
                return None;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Publishes command `cmd` (QoS 1) to device `test-box` with mosquitto_pub.
pub fn send_command(port: u16, cmd: &str, payload: &str) {
    let st = std::process::Command::new("mosquitto_pub")
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-q", "1", "-t", &format!("hawkeye/test-box/cmd/{cmd}"), "-m", payload])
        .status()
        .unwrap();
    assert!(st.success());
}

/// (event_id, state, seq) of an alert: what names one message of an event.
pub fn alert_key(v: &serde_json::Value) -> (String, String, u64) {
    (v["event_id"].as_str().unwrap().to_string(), v["state"].as_str().unwrap().to_string(), v["seq"].as_u64().unwrap())
}

/// Checks alerts as they arrived: new ones in the order they were raised (`device_seq`
/// rising), a repeat only of the very same message (QoS 1). Returns (distinct alerts, repeats).
pub fn check_alerts_in_order(alerts: impl IntoIterator<Item = serde_json::Value>) -> (usize, usize) {
    let mut seen: std::collections::BTreeMap<(String, String, u64), serde_json::Value> = std::collections::BTreeMap::new();
    let (mut last, mut repeats) = (0, 0);
    for v in alerts {
        match seen.get(&alert_key(&v)) {
            Some(before) => {
                assert_eq!(before, &v, "a repeated alert is the same message");
                repeats += 1;
            }
            None => {
                let s = v["device_seq"].as_u64().unwrap();
                assert!(s > last, "alert device_seq {s} after {last}: out of order");
                last = s;
                seen.insert(alert_key(&v), v);
            }
        }
    }
    (seen.len(), repeats)
}
