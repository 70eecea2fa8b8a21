//! MISB ST 0601 "UAS Datalink Local Set" KLV packets, the metadata drones send next to their
//! video in MPEG-TS (a `meta/x-klv` stream in GStreamer).
//!
//! Pure and self-contained: bytes in, [`UasFix`] out, and the reverse ([`encode_uas_local_set`]) for
//! tests and test-stream generators. Only the items hawkeye uses are decoded; every other tag is
//! walked over and skipped.
//!
//! # Packet layout
//! ```text
//! 06 0E 2B 34 02 0B 01 01 0E 01 03 01 01 00 00 00   16-byte Universal Label key
//! 81 D2                                             BER length of the value (short or long form)
//! 02 08 00 04 60 50 58 4E 01 80                     items: BER-OID tag, BER length, value ...
//! 0D 04 55 95 B6 6D                                 ... (tag 13, sensor latitude, 4 bytes) ...
//! 01 02 AA 43                                       tag 1, the checksum, always the last item
//! ```
//!
//! # What the parser accepts
//! - The key must match [`UAS_LOCAL_SET_KEY`] byte for byte.
//! - Lengths (the packet's and every item's) are BER: short form (`< 0x80`) or long form
//!   (`0x81 nn`, `0x82 nn nn`, … up to 8 length bytes; non-minimal forms are accepted). The
//!   indefinite form `0x80` is rejected.
//! - Tags are BER-OID (one byte below 128, `0x81 0x0F` for tag 143, …).
//! - The checksum (tag 1, 2 bytes) must be present and be the last item; it is verified before any
//!   value is decoded.
//! - A zero-length item (ST 0601's "ZLI") means "unknown": the field comes back `None`. Tags 1
//!   and 2 may not be zero-length.
//! - Values of the wrong length for their tag are errors ([`KlvError::BadItemLength`]).
//! - The reserved / out-of-range integers (`0x8000` for pitch and roll, `0x8000_0000` for the
//!   latitudes and longitudes) decode to `None`.
//! - Strings (tags 3 and 10) are UTF-8; invalid sequences are replaced (U+FFFD) rather than
//!   failing the packet, and trailing NUL padding is dropped.
//! - When a tag appears twice the later item wins.

/// The 16-byte Universal Label key of the ST 0601 local set.
pub const UAS_LOCAL_SET_KEY: [u8; 16] = [
    0x06, 0x0E, 0x2B, 0x34, 0x02, 0x0B, 0x01, 0x01, 0x0E, 0x01, 0x03, 0x01, 0x01, 0x00, 0x00, 0x00,
];

/// The first four bytes every SMPTE Universal Label starts with; [`parse_all`] uses it to tell a
/// foreign KLV packet (skipped by its length) from junk (skipped by searching for the next key).
const SMPTE_UL_PREFIX: [u8; 4] = [0x06, 0x0E, 0x2B, 0x34];

/// The UAS Datalink LS version [`encode_uas_local_set`] writes in tag 65 (ST 0601.19). Every item
/// the encoder writes has the same encoding in all editions of ST 0601 that have tag 65.
pub const ENCODED_LS_VERSION: u8 = 19;

/// Local-set tags used here.
pub mod tag {
    pub const CHECKSUM: u32 = 1;
    pub const PRECISION_TIME_STAMP: u32 = 2;
    pub const MISSION_ID: u32 = 3;
    pub const PLATFORM_HEADING: u32 = 5;
    pub const PLATFORM_PITCH: u32 = 6;
    pub const PLATFORM_ROLL: u32 = 7;
    pub const PLATFORM_DESIGNATION: u32 = 10;
    pub const SENSOR_LATITUDE: u32 = 13;
    pub const SENSOR_LONGITUDE: u32 = 14;
    pub const SENSOR_TRUE_ALTITUDE: u32 = 15;
    pub const SLANT_RANGE: u32 = 21;
    pub const FRAME_CENTER_LATITUDE: u32 = 23;
    pub const FRAME_CENTER_LONGITUDE: u32 = 24;
    pub const FRAME_CENTER_ELEVATION: u32 = 25;
    pub const LS_VERSION: u32 = 65;
}

/// ST 0601 caps the string items (tags 3 and 10) at 127 bytes; the encoder cuts longer strings at
/// the last character boundary that fits.
pub const MAX_STRING_BYTES: usize = 127;

/// Values hawkeye uses from one packet (all optional: a packet may carry any subset).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct UasFix {
    /// Tag 2, Precision Time Stamp (µs since 1970-01-01T00:00:00Z, MISP time).
    pub timestamp_us: Option<u64>,
    /// Tag 3, Mission ID.
    pub mission_id: Option<String>,
    /// Tag 5, platform heading, 0..360° (uint16).
    pub platform_heading_deg: Option<f64>,
    /// Tag 6, platform pitch, ±20° (int16; `0x8000` = out of range → `None`).
    pub platform_pitch_deg: Option<f64>,
    /// Tag 7, platform roll, ±50° (int16; `0x8000` = out of range → `None`).
    pub platform_roll_deg: Option<f64>,
    /// Tag 10, Platform Designation (e.g. "MQ1-B").
    pub platform_designation: Option<String>,
    /// Tag 13, sensor latitude, ±90° WGS-84 (int32; `0x8000_0000` = reserved/error → `None`).
    pub sensor_lat: Option<f64>,
    /// Tag 14, sensor longitude, ±180° WGS-84 (int32; `0x8000_0000` → `None`).
    pub sensor_lon: Option<f64>,
    /// Tag 15, sensor true altitude (above MSL), −900..19000 m (uint16).
    pub sensor_alt_m: Option<f64>,
    /// Tag 21, slant range, 0..5,000,000 m (uint32).
    pub slant_range_m: Option<f64>,
    /// Tag 23, frame centre latitude, ±90° (int32; `0x8000_0000` → `None`).
    pub frame_center_lat: Option<f64>,
    /// Tag 24, frame centre longitude, ±180° (int32; `0x8000_0000` → `None`).
    pub frame_center_lon: Option<f64>,
    /// Tag 25, frame centre elevation (above MSL), −900..19000 m (uint16).
    pub frame_center_elev_m: Option<f64>,
}

/// Why a packet could not be parsed. Offsets are byte offsets from the start of the packet (the
/// first key byte).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum KlvError {
    /// The 16-byte key is not [`UAS_LOCAL_SET_KEY`].
    #[error("not a MISB ST 0601 UAS Datalink Local Set: key {}", hex_bytes(.found))]
    WrongKey { found: Vec<u8> },
    /// The packet ends inside `what`.
    #[error("truncated {what} at offset {offset}: need {needed} byte(s), {available} left")]
    Truncated {
        what: &'static str,
        offset: usize,
        needed: usize,
        available: usize,
    },
    /// A BER length that KLV does not allow (indefinite form, more than 8 length bytes, …).
    #[error("bad BER length at offset {offset}: {reason}")]
    BadBerLength { offset: usize, reason: &'static str },
    /// A BER-OID tag too large for 32 bits.
    #[error("bad local-set tag at offset {offset}: BER-OID value exceeds 32 bits")]
    BadTag { offset: usize },
    /// No tag 1 item in the local set.
    #[error("missing checksum (tag 1)")]
    MissingChecksum,
    /// A tag 1 item that is not the last item of the local set.
    #[error("checksum (tag 1) at offset {offset} is not the last item of the local set")]
    ChecksumNotLast { offset: usize },
    /// The checksum in the packet (`expected`) differs from the one computed over its bytes.
    #[error("checksum mismatch: packet says {expected:#06x}, bytes sum to {computed:#06x}")]
    ChecksumMismatch { expected: u16, computed: u16 },
    /// An item whose value length is not the one its tag requires.
    #[error("tag {tag}: value is {len} byte(s), expected {expected}")]
    BadItemLength { tag: u32, len: usize, expected: usize },
    /// Bytes after the end of the local set declared by the packet's BER length.
    #[error("{extra} byte(s) after the end of the local set")]
    TrailingBytes { extra: usize },
}

fn hex_bytes(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(" ")
}

// ------------------------------------------------------------------------------------------------
// Checksum

/// The ST 0601 16-bit checksum (running sum of 16-bit big-endian words over the whole packet from
/// the first key byte up to and including the checksum tag and length bytes `0x01 0x02`).
///
/// Byte `i` adds `byte << (8 * ((i + 1) % 2))`: bytes at even offsets are the high half of a word,
/// bytes at odd offsets the low half; an odd final byte is a high half with a zero low half. The
/// sum wraps modulo 2^16.
pub fn checksum(bytes: &[u8]) -> u16 {
    bytes.iter().enumerate().fold(0u16, |sum, (i, &b)| {
        let word = if i % 2 == 0 { u16::from(b) << 8 } else { u16::from(b) };
        sum.wrapping_add(word)
    })
}


mod encode;
mod maps;

pub use encode::encode_uas_local_set;
use maps::*;

// ------------------------------------------------------------------------------------------------
// Reading

/// One local-set item: its tag, where its value starts in the packet, and the value.
struct Item<'a> {
    tag: u32,
    offset: usize,
    value: &'a [u8],
}

/// A read position in a packet; every read checks the bounds first.
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn at_end(&self) -> bool {
        self.pos == self.buf.len()
    }

    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], KlvError> {
        let available = self.remaining();
        if n > available {
            return Err(KlvError::Truncated {
                what,
                offset: self.pos,
                needed: n,
                available,
            });
        }
        let bytes = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(bytes)
    }

    fn byte(&mut self, what: &'static str) -> Result<u8, KlvError> {
        Ok(self.take(1, what)?[0])
    }

    /// A BER length: short form, or `0x80 | n` followed by `n` big-endian length bytes.
    fn ber_length(&mut self, what: &'static str) -> Result<usize, KlvError> {
        let offset = self.pos;
        let first = self.byte(what)?;
        if first < 0x80 {
            return Ok(usize::from(first));
        }
        let count = usize::from(first & 0x7F);
        if count == 0 {
            return Err(KlvError::BadBerLength {
                offset,
                reason: "indefinite form (0x80) is not allowed in KLV",
            });
        }
        if count > 8 {
            return Err(KlvError::BadBerLength {
                offset,
                reason: "long form with more than 8 length bytes",
            });
        }
        let bytes = self.take(count, what)?;
        let length = bytes.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
        usize::try_from(length).map_err(|_| KlvError::BadBerLength {
            offset,
            reason: "length exceeds the address space",
        })
    }

    /// A BER-OID tag: 7 bits per byte, most significant group first, high bit set on every byte
    /// but the last.
    fn ber_oid(&mut self) -> Result<u32, KlvError> {
        let offset = self.pos;
        let mut tag: u32 = 0;
        loop {
            let b = self.byte("item tag")?;
            if tag > (u32::MAX >> 7) {
                return Err(KlvError::BadTag { offset });
            }
            tag = (tag << 7) | u32::from(b & 0x7F);
            if b & 0x80 == 0 {
                return Ok(tag);
            }
        }
    }
}

/// Checks the key (or, for a packet shorter than a key, that what is there is the key's start).
fn check_key(packet: &[u8]) -> Result<(), KlvError> {
    let n = packet.len().min(UAS_LOCAL_SET_KEY.len());
    if packet[..n] != UAS_LOCAL_SET_KEY[..n] {
        return Err(KlvError::WrongKey {
            found: packet[..n].to_vec(),
        });
    }
    if n < UAS_LOCAL_SET_KEY.len() {
        return Err(KlvError::Truncated {
            what: "key",
            offset: 0,
            needed: UAS_LOCAL_SET_KEY.len(),
            available: packet.len(),
        });
    }
    Ok(())
}

/// Walks the local set (the value of the packet) into items, up to and including the checksum.
/// `base` is the value's offset in the packet.
fn split_items(value: &[u8], base: usize) -> Result<Vec<Item<'_>>, KlvError> {
    let mut cur = Cursor { buf: value, pos: 0 };
    let mut items = Vec::new();
    while !cur.at_end() {
        let tag_offset = base + cur.pos;
        let tag = cur.ber_oid().map_err(|e| rebase(e, base))?;
        let len = cur.ber_length("item length").map_err(|e| rebase(e, base))?;
        let offset = base + cur.pos;
        let data = cur.take(len, "item value").map_err(|e| rebase(e, base))?;
        if tag == tag::CHECKSUM {
            if len != 2 {
                return Err(KlvError::BadItemLength { tag, len, expected: 2 });
            }
            if !cur.at_end() {
                return Err(KlvError::ChecksumNotLast { offset: tag_offset });
            }
        }
        items.push(Item {
            tag,
            offset,
            value: data,
        });
    }
    Ok(items)
}

/// Shifts a value-relative offset in an error to a packet-relative one.
fn rebase(err: KlvError, base: usize) -> KlvError {
    match err {
        KlvError::Truncated {
            what,
            offset,
            needed,
            available,
        } => KlvError::Truncated {
            what,
            offset: offset + base,
            needed,
            available,
        },
        KlvError::BadBerLength { offset, reason } => KlvError::BadBerLength {
            offset: offset + base,
            reason,
        },
        KlvError::BadTag { offset } => KlvError::BadTag { offset: offset + base },
        other => other,
    }
}

/// The value of a fixed-length item: `None` for a zero-length item (unknown), an error for any
/// other length than `N`.
fn fixed<const N: usize>(item: &Item<'_>) -> Result<Option<[u8; N]>, KlvError> {
    if item.value.is_empty() {
        return Ok(None);
    }
    <[u8; N]>::try_from(item.value)
        .map(Some)
        .map_err(|_| KlvError::BadItemLength {
            tag: item.tag,
            len: item.value.len(),
            expected: N,
        })
}

fn string(item: &Item<'_>) -> Option<String> {
    let text = String::from_utf8_lossy(item.value);
    let text = text.trim_end_matches('\0');
    (!text.is_empty()).then(|| text.to_owned())
}

fn decode_into(fix: &mut UasFix, item: &Item<'_>) -> Result<(), KlvError> {
    match item.tag {
        tag::PRECISION_TIME_STAMP => {
            let raw = fixed::<8>(item)?.ok_or(KlvError::BadItemLength {
                tag: item.tag,
                len: 0,
                expected: 8,
            })?;
            fix.timestamp_us = Some(u64::from_be_bytes(raw));
        }
        tag::MISSION_ID => fix.mission_id = string(item),
        tag::PLATFORM_HEADING => {
            fix.platform_heading_deg = fixed::<2>(item)?.map(|r| HEADING.decode(u64::from(u16::from_be_bytes(r))));
        }
        tag::PLATFORM_PITCH => {
            fix.platform_pitch_deg = fixed::<2>(item)?.and_then(|r| PITCH.decode(i64::from(i16::from_be_bytes(r))));
        }
        tag::PLATFORM_ROLL => {
            fix.platform_roll_deg = fixed::<2>(item)?.and_then(|r| ROLL.decode(i64::from(i16::from_be_bytes(r))));
        }
        tag::PLATFORM_DESIGNATION => fix.platform_designation = string(item),
        tag::SENSOR_LATITUDE => fix.sensor_lat = decode_i32(item, LATITUDE)?,
        tag::SENSOR_LONGITUDE => fix.sensor_lon = decode_i32(item, LONGITUDE)?,
        tag::SENSOR_TRUE_ALTITUDE => fix.sensor_alt_m = decode_u16(item, ALTITUDE)?,
        tag::SLANT_RANGE => {
            fix.slant_range_m = fixed::<4>(item)?.map(|r| SLANT_RANGE.decode(u64::from(u32::from_be_bytes(r))));
        }
        tag::FRAME_CENTER_LATITUDE => fix.frame_center_lat = decode_i32(item, LATITUDE)?,
        tag::FRAME_CENTER_LONGITUDE => fix.frame_center_lon = decode_i32(item, LONGITUDE)?,
        tag::FRAME_CENTER_ELEVATION => fix.frame_center_elev_m = decode_u16(item, ALTITUDE)?,
        _ => {} // the checksum (already verified) and every tag hawkeye does not use
    }
    Ok(())
}

fn decode_i32(item: &Item<'_>, map: SignedMap) -> Result<Option<f64>, KlvError> {
    Ok(fixed::<4>(item)?.and_then(|r| map.decode(i64::from(i32::from_be_bytes(r)))))
}

fn decode_u16(item: &Item<'_>, map: UnsignedMap) -> Result<Option<f64>, KlvError> {
    Ok(fixed::<2>(item)?.map(|r| map.decode(u64::from(u16::from_be_bytes(r)))))
}

/// Parses one packet (16-byte key, BER length, local-set items ending with tag 1 = checksum).
///
/// `packet` must hold exactly one packet: bytes after the local set are
/// [`KlvError::TrailingBytes`] (use [`parse_all`] for buffers that may hold several).
pub fn parse_uas_local_set(packet: &[u8]) -> Result<UasFix, KlvError> {
    check_key(packet)?;
    let mut cur = Cursor {
        buf: packet,
        pos: UAS_LOCAL_SET_KEY.len(),
    };
    let len = cur.ber_length("packet length")?;
    let base = cur.pos;
    let value = cur.take(len, "local set value")?;
    if !cur.at_end() {
        return Err(KlvError::TrailingBytes { extra: cur.remaining() });
    }

    let items = split_items(value, base)?;
    let sum = items
        .last()
        .filter(|item| item.tag == tag::CHECKSUM)
        .ok_or(KlvError::MissingChecksum)?;
    let expected = u16::from_be_bytes([sum.value[0], sum.value[1]]);
    let computed = checksum(&packet[..sum.offset]);
    if expected != computed {
        return Err(KlvError::ChecksumMismatch { expected, computed });
    }

    let mut fix = UasFix::default();
    for item in &items {
        decode_into(&mut fix, item)?;
    }
    Ok(fix)
}

/// The total size of the KLV packet at the start of `buf` (key, length and value), whatever its key.
fn frame_len(buf: &[u8]) -> Result<usize, KlvError> {
    let mut cur = Cursor { buf, pos: 0 };
    cur.take(UAS_LOCAL_SET_KEY.len(), "key")?;
    let len = cur.ber_length("packet length")?;
    cur.take(len, "local set value")?;
    Ok(cur.pos)
}

fn find_key(buf: &[u8], from: usize) -> Option<usize> {
    let rest = buf.get(from..)?;
    rest.windows(UAS_LOCAL_SET_KEY.len())
        .position(|w| w == UAS_LOCAL_SET_KEY)
        .map(|p| from + p)
}

/// Splits a buffer that may hold several concatenated KLV packets (as a `meta/x-klv` GStreamer
/// buffer can) and parses each ST 0601 packet; packets with other keys are skipped; returns one
/// result per ST 0601 packet.
///
/// Packets are framed by their BER length, so a packet with a bad checksum still yields its own
/// `Err` and the packets after it are parsed. Where framing is lost (bytes that are not a SMPTE
/// key, or a length running past the end of the buffer) the scan resumes at the next occurrence of
/// [`UAS_LOCAL_SET_KEY`]; an ST 0601 packet cut short by the end of the buffer gives a
/// [`KlvError::Truncated`] result.
pub fn parse_all(buf: &[u8]) -> Vec<Result<UasFix, KlvError>> {
    let mut results = Vec::new();
    let mut pos = 0;
    while pos < buf.len() {
        let rest = &buf[pos..];
        let is_uas = rest.starts_with(&UAS_LOCAL_SET_KEY) || UAS_LOCAL_SET_KEY.starts_with(rest);
        if !is_uas && !rest.starts_with(&SMPTE_UL_PREFIX) {
            // Not a KLV key at all: look for the next ST 0601 packet.
            match find_key(buf, pos + 1) {
                Some(next) => pos = next,
                None => break,
            }
            continue;
        }
        match frame_len(rest) {
            Ok(total) => {
                if is_uas {
                    results.push(parse_uas_local_set(&rest[..total]));
                }
                pos += total;
            }
            Err(err) => {
                if is_uas {
                    results.push(Err(err));
                }
                match find_key(buf, pos + 1) {
                    Some(next) => pos = next,
                    None => break,
                }
            }
        }
    }
    results
}


#[cfg(test)]
mod tests;
