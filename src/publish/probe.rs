//! The ACL probe's state on one connection. Pure (time is passed in), no I/O.
//!
//! An MQTT 3.1.1 broker PubAcks a publish its ACL refuses and drops it, so a PubAck proves
//! nothing. At every connect the link publishes a token on `…/cmd/_probe`, which its own command
//! subscription receives back if, and only if, the broker delivers what this device publishes.
//! Until the echo arrives the outbox is held; without it within [`PROBE_TIMEOUT`] the link
//! reports the refusal and probes again every [`REPROBE`], so delivery resumes by itself once the
//! ACL is fixed. (MQTT 5 PubAck reason codes, e.g. 0x87 Not authorized, would be the better
//! signal, per message; rumqttc's v4 client, used here, has none.)

use std::time::Duration;

use tokio::time::Instant;

/// How long the probe waits for its echo.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(5);
/// How often a refused probe is tried again.
pub const REPROBE: Duration = Duration::from_secs(15);

#[derive(Clone, Debug, PartialEq)]
enum State {
    /// Probing is off, or not connected yet.
    Off,
    /// Sent `token`; waiting for its echo until `deadline`.
    Waiting { token: String, deadline: Instant },
    /// The broker echoed.
    Passed,
    /// No echo: probe again at `again`.
    Refused { again: Instant },
}

/// What the link must do after a [`AclProbe::tick`].
#[derive(Clone, Debug, PartialEq)]
pub enum ProbeStep {
    Nothing,
    /// The probe got no echo in time: report it (the outbox stays held).
    TimedOut,
    /// Publish this token on the probe topic.
    Send(String),
}

/// The probe of one link.
#[derive(Debug)]
pub struct AclProbe {
    enabled: bool,
    state: State,
    sent: u64,
}

impl AclProbe {
    /// `enabled`: `mqtt.acl_probe`; when off the outbox is never held.
    pub fn new(enabled: bool) -> Self {
        AclProbe { enabled, state: State::Off, sent: 0 }
    }

    /// A new connection: returns the token to publish (none when probing is off).
    pub fn connected(&mut self, now: Instant) -> Option<String> {
        self.state = State::Off;
        self.enabled.then(|| self.start(now))
    }

    fn start(&mut self, now: Instant) -> String {
        self.sent += 1;
        let token = format!("{}-{}-{}", std::process::id(), self.sent, uuid::Uuid::new_v4().simple());
        self.state = State::Waiting { token: token.clone(), deadline: now + PROBE_TIMEOUT };
        token
    }

    /// A message on the probe topic; true when it is the echo awaited (delivery may start).
    pub fn echo(&mut self, payload: &[u8]) -> bool {
        match &self.state {
            State::Waiting { token, .. } if token.as_bytes() == payload => {
                self.state = State::Passed;
                true
            }
            _ => false,
        }
    }

    /// Called every few seconds while connected.
    pub fn tick(&mut self, now: Instant) -> ProbeStep {
        match &self.state {
            State::Waiting { deadline, .. } if now >= *deadline => {
                self.state = State::Refused { again: now + REPROBE };
                ProbeStep::TimedOut
            }
            State::Refused { again } if now >= *again => ProbeStep::Send(self.start(now)),
            _ => ProbeStep::Nothing,
        }
    }

    /// True while outbox entries may be sent: probing off, or the last probe echoed.
    pub fn delivering(&self) -> bool {
        !self.enabled || self.state == State::Passed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivery_waits_for_the_echo_and_a_refusal_is_retried_until_it_echoes() {
        let t0 = Instant::now();
        let mut p = AclProbe::new(true);
        assert!(!p.delivering(), "nothing goes out before the first probe echoed");
        let token = p.connected(t0).unwrap();
        assert!(!p.delivering());
        assert_eq!(p.tick(t0 + Duration::from_secs(1)), ProbeStep::Nothing);
        assert!(!p.echo(b"someone else's token"));
        assert_eq!(p.tick(t0 + PROBE_TIMEOUT), ProbeStep::TimedOut);
        assert!(!p.echo(token.as_bytes()), "a late echo of a timed-out probe proves nothing");
        assert!(!p.delivering());
        let t1 = t0 + PROBE_TIMEOUT;
        assert_eq!(p.tick(t1 + REPROBE - Duration::from_millis(1)), ProbeStep::Nothing);
        let ProbeStep::Send(again) = p.tick(t1 + REPROBE) else { panic!("no re-probe") };
        assert_ne!(again, token);
        assert!(p.echo(again.as_bytes()));
        assert!(p.delivering());
        // a reconnect probes again
        let third = p.connected(t1 + REPROBE * 2).unwrap();
        assert!(!p.delivering());
        assert!(p.echo(third.as_bytes()));
    }

    #[test]
    fn without_probing_delivery_never_waits() {
        let mut p = AclProbe::new(false);
        assert!(p.delivering());
        assert_eq!(p.connected(Instant::now()), None);
        assert_eq!(p.tick(Instant::now() + REPROBE * 4), ProbeStep::Nothing);
        assert!(p.delivering());
    }
}
