//! Which outbox entries are on the wire under which MQTT packet id. Pure state, no I/O.
//!
//! hawkeye assigns packet ids itself (1..=window) so a PubAck maps to exactly one entry, whatever
//! order rumqttc processes requests in. rumqttc drops its pending publishes when it reconnects
//! without a saved session, so on every disconnect all in-flight entries go back to the front of
//! the unsent queue and are sent again after the next ConnAck.

use std::collections::{BTreeSet, HashMap};

/// What a packet id stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PublishId {
    /// An outbox entry (deleted on PubAck).
    Entry(u64),
    /// A QoS 1 message that is not in the outbox (retained status): nothing to delete.
    Other,
}

/// In-flight bookkeeping for one MQTT connection at a time.
#[derive(Debug)]
pub struct Ledger {
    window: u16,
    unsent: BTreeSet<u64>,
    inflight: HashMap<u16, PublishId>,
    free: Vec<u16>,
}

impl Ledger {
    /// `window`: most QoS 1 messages awaiting PubAck at once (also the largest packet id used).
    pub fn new(window: u16) -> Self {
        assert!(window > 0);
        Ledger { window, unsent: BTreeSet::new(), inflight: HashMap::new(), free: (1..=window).rev().collect() }
    }

    /// A new (or reloaded) outbox entry waits to be sent.
    pub fn add(&mut self, seq: u64) {
        self.unsent.insert(seq);
    }

    /// Next entry to send with the packet id to use, oldest first, while the window has room.
    pub fn next_to_send(&mut self) -> Option<(u16, u64)> {
        if self.free.is_empty() {
            return None;
        }
        let seq = self.unsent.pop_first()?;
        let pkid = self.free.pop().unwrap();
        self.inflight.insert(pkid, PublishId::Entry(seq));
        Some((pkid, seq))
    }

    /// A packet id for a QoS 1 message outside the outbox, if the window has room.
    pub fn reserve_other(&mut self) -> Option<u16> {
        let pkid = self.free.pop()?;
        self.inflight.insert(pkid, PublishId::Other);
        Some(pkid)
    }

    /// The broker acknowledged `pkid`; returns what it stood for (unknown ids give `None`).
    pub fn ack(&mut self, pkid: u16) -> Option<PublishId> {
        let id = self.inflight.remove(&pkid)?;
        self.free.push(pkid);
        Some(id)
    }

    /// The connection dropped: every in-flight entry is unsent again; all packet ids are free.
    pub fn disconnected(&mut self) {
        for (_, id) in self.inflight.drain() {
            if let PublishId::Entry(seq) = id {
                self.unsent.insert(seq);
            }
        }
        self.free = (1..=self.window).rev().collect();
    }

    /// Entries not yet acknowledged (unsent + in flight).
    pub fn pending(&self) -> usize {
        self.unsent.len() + self.inflight.values().filter(|i| matches!(i, PublishId::Entry(_))).count()
    }

    /// True when nothing the outbox holds is waiting.
    pub fn is_idle(&self) -> bool {
        self.pending() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acks_map_to_exact_entries_in_any_order() {
        let mut l = Ledger::new(4);
        for s in 10..13 {
            l.add(s);
        }
        let sent: Vec<(u16, u64)> = std::iter::from_fn(|| l.next_to_send()).collect();
        assert_eq!(sent.iter().map(|s| s.1).collect::<Vec<_>>(), vec![10, 11, 12]);
        assert_eq!(l.ack(sent[2].0), Some(PublishId::Entry(12)));
        assert_eq!(l.ack(sent[0].0), Some(PublishId::Entry(10)));
        assert_eq!(l.ack(sent[0].0), None, "a duplicate ack deletes nothing");
        assert_eq!(l.pending(), 1);
    }

    #[test]
    fn window_limits_in_flight() {
        let mut l = Ledger::new(2);
        for s in 0..5 {
            l.add(s);
        }
        let a = l.next_to_send().unwrap();
        l.next_to_send().unwrap();
        assert!(l.next_to_send().is_none());
        l.ack(a.0);
        assert_eq!(l.next_to_send().unwrap().1, 2);
    }

    #[test]
    fn disconnect_requeues_in_order_before_newer_entries() {
        let mut l = Ledger::new(3);
        for s in 1..=5 {
            l.add(s);
        }
        let first: Vec<u64> = std::iter::from_fn(|| l.next_to_send()).map(|x| x.1).collect();
        assert_eq!(first, vec![1, 2, 3]);
        let status = {
            l.ack(1);
            l.reserve_other()
        };
        assert!(status.is_some());
        l.disconnected();
        let again: Vec<u64> = std::iter::from_fn(|| l.next_to_send()).map(|x| x.1).collect();
        assert_eq!(again, vec![2, 3, 4]);
        assert_eq!(l.pending(), 4);
    }
}
