//! The outbox's file format, one message per file. Pure encoding and decoding, no I/O.
//!
//! `HKO2` (written since outbox v2), all integers little-endian:
//!
//! ```text
//! "HKO2" | flags u8 | topic_len u16 | event_len u16 | payload_len u32 | topic | event_id | payload | crc32 u32
//! ```
//!
//! `flags`: bit 0 retain, bits 1–2 the kind (0 other, 1 alert, 2 evidence). The CRC32 covers
//! every byte before it, so a flipped bit anywhere is caught. The fixed header, topic and event
//! id come first so the index can be rebuilt at start-up without reading payloads.
//!
//! `HKO1` (earlier versions, read only): `"HKO1" | retain u8 | topic_len u32 | topic |
//! payload_len u32 | payload`, no checksum.

/// What a message is, for eviction order and for retention (which keeps undelivered events).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// cmd_result, snapshots, speaker results, manifests outside an event.
    Other,
    /// Alert JSON on `…/alerts`.
    Alert,
    /// Evidence on `…/evidence/{event_id}/…`.
    Evidence,
}

pub const MAGIC_V1: &[u8; 4] = b"HKO1";
pub const MAGIC_V2: &[u8; 4] = b"HKO2";
/// Bytes before the topic in an `HKO2` record.
pub const HEADER_V2: usize = 13;

/// The index fields of a record: everything but the payload.
#[derive(Clone, Debug, PartialEq)]
pub struct Header {
    pub topic: String,
    pub retain: bool,
    pub kind: Kind,
    pub event_id: Option<String>,
    pub payload_len: u32,
}

impl Header {
    /// Bytes of the whole `HKO2` record.
    pub fn record_len(&self) -> u64 {
        (HEADER_V2 + self.topic.len() + self.event_id.as_deref().map_or(0, str::len)) as u64 + self.payload_len as u64 + 4
    }
}

/// Kind and event id of a message, from its topic (and an alert's JSON).
pub fn classify(topic: &str, payload: &[u8]) -> (Kind, Option<String>) {
    if let Some((_, rest)) = topic.split_once("/evidence/") {
        let id = rest.split('/').next().unwrap_or_default();
        return (Kind::Evidence, (!id.is_empty()).then(|| id.to_string()));
    }
    if topic.ends_with("/alerts") {
        let id = serde_json::from_slice::<serde_json::Value>(payload).ok().and_then(|v| v["event_id"].as_str().map(str::to_string));
        return (Kind::Alert, id);
    }
    (Kind::Other, None)
}

/// The bytes before and after the payload of an `HKO2` record (written around the payload, so
/// the payload itself is never copied). Topics over 64 KiB are refused by MQTT anyway.
pub fn encode_v2(h: &Header, payload: &[u8]) -> (Vec<u8>, [u8; 4]) {
    let event = h.event_id.as_deref().unwrap_or("");
    let mut head = Vec::with_capacity(HEADER_V2 + h.topic.len() + event.len());
    head.extend_from_slice(MAGIC_V2);
    let kind = match h.kind {
        Kind::Other => 0u8,
        Kind::Alert => 1,
        Kind::Evidence => 2,
    };
    head.push(h.retain as u8 | kind << 1);
    head.extend_from_slice(&(h.topic.len() as u16).to_le_bytes());
    head.extend_from_slice(&(event.len() as u16).to_le_bytes());
    head.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    head.extend_from_slice(h.topic.as_bytes());
    head.extend_from_slice(event.as_bytes());
    let mut crc = crc32fast::Hasher::new();
    crc.update(&head);
    crc.update(payload);
    (head, crc.finalize().to_le_bytes())
}

/// Parses the header of an `HKO2` record from its first bytes (at least the fixed header, the
/// topic and the event id). `None` when the bytes are not such a header.
pub fn decode_header_v2(b: &[u8]) -> Option<Header> {
    if b.len() < HEADER_V2 || &b[..4] != MAGIC_V2 {
        return None;
    }
    let flags = b[4];
    let tl = u16::from_le_bytes([b[5], b[6]]) as usize;
    let el = u16::from_le_bytes([b[7], b[8]]) as usize;
    let payload_len = u32::from_le_bytes(b[9..13].try_into().ok()?);
    let topic = std::str::from_utf8(b.get(HEADER_V2..HEADER_V2 + tl)?).ok()?.to_string();
    let event = std::str::from_utf8(b.get(HEADER_V2 + tl..HEADER_V2 + tl + el)?).ok()?;
    let kind = match flags >> 1 {
        0 => Kind::Other,
        1 => Kind::Alert,
        2 => Kind::Evidence,
        _ => return None,
    };
    Some(Header { topic, retain: flags & 1 != 0, kind, event_id: (!event.is_empty()).then(|| event.to_string()), payload_len })
}

/// Decodes a whole record of either version; `None` when its length, magic or CRC is wrong.
pub fn decode(b: &[u8]) -> Option<(Header, Vec<u8>)> {
    match b.get(..4)? {
        m if m == MAGIC_V2 => {
            let h = decode_header_v2(b)?;
            if b.len() as u64 != h.record_len() {
                return None;
            }
            let (body, crc) = b.split_at(b.len() - 4);
            if crc32fast::hash(body).to_le_bytes() != crc {
                return None;
            }
            let p0 = body.len() - h.payload_len as usize;
            let payload = body[p0..].to_vec();
            Some((h, payload))
        }
        m if m == MAGIC_V1 => decode_v1(b),
        _ => None,
    }
}

// HKO1: MAGIC, retain u8, topic_len u32 LE, topic, payload_len u32 LE, payload.
fn decode_v1(b: &[u8]) -> Option<(Header, Vec<u8>)> {
    if b.len() < 13 {
        return None;
    }
    let retain = b[4] != 0;
    let tl = u32::from_le_bytes(b[5..9].try_into().ok()?) as usize;
    let topic = std::str::from_utf8(b.get(9..9 + tl)?).ok()?.to_string();
    let p0 = 9 + tl;
    let pl = u32::from_le_bytes(b.get(p0..p0 + 4)?.try_into().ok()?) as usize;
    let payload = b.get(p0 + 4..p0 + 4 + pl)?.to_vec();
    if p0 + 4 + pl != b.len() {
        return None;
    }
    let (kind, event_id) = classify(&topic, &payload);
    Some((Header { topic, retain, kind, event_id, payload_len: pl as u32 }, payload))
}

/// An `HKO1` record, as versions before the outbox v2 wrote them (for tests of the upgrade).
pub fn encode_v1(topic: &str, payload: &[u8], retain: bool) -> Vec<u8> {
    let mut b = Vec::with_capacity(13 + topic.len() + payload.len());
    b.extend_from_slice(MAGIC_V1);
    b.push(retain as u8);
    b.extend_from_slice(&(topic.len() as u32).to_le_bytes());
    b.extend_from_slice(topic.as_bytes());
    b.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    b.extend_from_slice(payload);
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(topic: &str, payload: &[u8], retain: bool) -> Vec<u8> {
        let (kind, event_id) = classify(topic, payload);
        let h = Header { topic: topic.into(), retain, kind, event_id, payload_len: payload.len() as u32 };
        let (head, crc) = encode_v2(&h, payload);
        [head.as_slice(), payload, &crc].concat()
    }

    #[test]
    fn records_round_trip_with_kind_and_event() {
        let r = record("h/d/alerts", br#"{"event_id":"ev-9","state":"new"}"#, false);
        let (h, p) = decode(&r).unwrap();
        assert_eq!((h.kind, h.event_id.as_deref(), h.retain), (Kind::Alert, Some("ev-9"), false));
        assert_eq!(p, br#"{"event_id":"ev-9","state":"new"}"#);
        assert_eq!(decode_header_v2(&r[..40]).unwrap(), h);
        let (h, _) = decode(&record("h/d/evidence/ev-3/clip/chunk/2", &[7; 10], true)).unwrap();
        assert_eq!((h.kind, h.event_id.as_deref(), h.retain), (Kind::Evidence, Some("ev-3"), true));
        assert_eq!(decode(&record("h/d/cmd_result", b"", false)).unwrap().0.kind, Kind::Other);
    }

    #[test]
    fn a_flipped_bit_or_a_cut_is_caught() {
        let r = record("h/d/alerts", br#"{"event_id":"e","state":"new"}"#, false);
        for i in 0..r.len() {
            for bit in 0..8 {
                let mut bad = r.clone();
                bad[i] ^= 1 << bit;
                assert!(decode(&bad).is_none(), "bit {bit} of byte {i} flipped went unnoticed");
            }
        }
        assert!(decode(&r[..r.len() - 1]).is_none());
        assert!(decode(&[r.as_slice(), b"x"].concat()).is_none());
    }

    #[test]
    fn old_records_are_still_read() {
        let (h, p) = decode(&encode_v1("h/d/alerts", br#"{"event_id":"old"}"#, true)).unwrap();
        assert_eq!((h.topic.as_str(), h.kind, h.event_id.as_deref(), h.retain), ("h/d/alerts", Kind::Alert, Some("old"), true));
        assert_eq!(p, br#"{"event_id":"old"}"#);
        assert!(decode(&encode_v1("t", b"abc", false)[..15]).is_none());
    }
}
