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

// ------------------------------------------------------------------------------------------------
// Value mappings (the integer encodings of ST 0601, without IMAPB)

/// `raw_max` integer steps over `min..=max`: `value = min + raw * (max - min) / raw_max`.
#[derive(Clone, Copy)]
struct UnsignedMap {
    raw_max: f64,
    min: f64,
    max: f64,
}

impl UnsignedMap {
    fn decode(self, raw: u64) -> f64 {
        self.min + raw as f64 * (self.max - self.min) / self.raw_max
    }

    /// Rounds to the nearest integer and clamps to the range; `None` for NaN (the item is omitted).
    fn encode(self, value: f64) -> Option<u64> {
        if value.is_nan() {
            return None;
        }
        let raw = ((value - self.min) * self.raw_max / (self.max - self.min)).round();
        Some(raw.clamp(0.0, self.raw_max) as u64)
    }

    #[cfg(test)]
    fn step(self) -> f64 {
        (self.max - self.min) / self.raw_max
    }
}

/// `±raw_max` integer steps over `±limit`: `value = raw * limit / raw_max`; the most negative
/// integer (`-raw_max - 1`) is the "out of range" / "reserved" value.
#[derive(Clone, Copy)]
struct SignedMap {
    raw_max: f64,
    limit: f64,
}

impl SignedMap {
    /// `None` for the reserved integer.
    fn decode(self, raw: i64) -> Option<f64> {
        if raw as f64 == -self.raw_max - 1.0 {
            return None;
        }
        Some(raw as f64 * self.limit / self.raw_max)
    }

    /// Rounds to the nearest integer; the reserved integer for NaN, infinities and values out of
    /// range.
    fn encode(self, value: f64) -> i64 {
        if value.is_nan() || value.abs() > self.limit {
            return -(self.raw_max as i64) - 1;
        }
        (value * self.raw_max / self.limit)
            .round()
            .clamp(-self.raw_max, self.raw_max) as i64
    }

    #[cfg(test)]
    fn step(self) -> f64 {
        self.limit / self.raw_max
    }
}

const U16_MAX: f64 = 65_535.0;
const U32_MAX: f64 = 4_294_967_295.0;
const I16_MAX: f64 = 32_767.0;
const I32_MAX: f64 = 2_147_483_647.0;

const HEADING: UnsignedMap = UnsignedMap {
    raw_max: U16_MAX,
    min: 0.0,
    max: 360.0,
};
const PITCH: SignedMap = SignedMap {
    raw_max: I16_MAX,
    limit: 20.0,
};
const ROLL: SignedMap = SignedMap {
    raw_max: I16_MAX,
    limit: 50.0,
};
const LATITUDE: SignedMap = SignedMap {
    raw_max: I32_MAX,
    limit: 90.0,
};
const LONGITUDE: SignedMap = SignedMap {
    raw_max: I32_MAX,
    limit: 180.0,
};
const ALTITUDE: UnsignedMap = UnsignedMap {
    raw_max: U16_MAX,
    min: -900.0,
    max: 19_000.0,
};
const SLANT_RANGE: UnsignedMap = UnsignedMap {
    raw_max: U32_MAX,
    min: 0.0,
    max: 5_000_000.0,
};

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

// ------------------------------------------------------------------------------------------------
// Writing

fn write_ber_length(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
        return;
    }
    let bytes = (len as u64).to_be_bytes();
    let skip = bytes.iter().take_while(|&&b| b == 0).count();
    out.push(0x80 | (bytes.len() - skip) as u8);
    out.extend_from_slice(&bytes[skip..]);
}

fn write_ber_oid(out: &mut Vec<u8>, tag: u32) {
    let mut groups = 1;
    while groups < 5 && tag >> (7 * groups) != 0 {
        groups += 1;
    }
    for g in (0..groups).rev() {
        let bits = ((tag >> (7 * g)) & 0x7F) as u8;
        out.push(if g == 0 { bits } else { bits | 0x80 });
    }
}

fn put_item(out: &mut Vec<u8>, tag: u32, value: &[u8]) {
    write_ber_oid(out, tag);
    write_ber_length(out, value.len());
    out.extend_from_slice(value);
}

fn put_string(out: &mut Vec<u8>, tag: u32, text: &str) {
    let mut end = text.len().min(MAX_STRING_BYTES);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    if end > 0 {
        put_item(out, tag, &text.as_bytes()[..end]);
    }
}

/// Wraps local-set items (everything but the checksum) into a packet: key, BER length, the items,
/// then the checksum item.
fn finish_packet(items: &[u8]) -> Vec<u8> {
    let value_len = items.len() + 4;
    let mut out = Vec::with_capacity(UAS_LOCAL_SET_KEY.len() + 9 + value_len);
    out.extend_from_slice(&UAS_LOCAL_SET_KEY);
    write_ber_length(&mut out, value_len);
    out.extend_from_slice(items);
    out.extend_from_slice(&[tag::CHECKSUM as u8, 2]);
    let sum = checksum(&out);
    out.extend_from_slice(&sum.to_be_bytes());
    out
}

/// Builds a valid packet from a fix (the fields that are Some), with the tag-2 timestamp first and
/// the checksum last — used by tests and by test stream generators.
///
/// Besides the fields, the packet carries tag 65 (UAS Datalink LS version, [`ENCODED_LS_VERSION`]),
/// which ST 0601 makes mandatory, right after the timestamp. Values are rounded to the nearest
/// integer step. Out-of-range pitch, roll, latitudes and longitudes (and NaN) are written as the
/// standard's out-of-range / reserved integer, so they parse back as `None`; heading is wrapped
/// into 0..360; altitudes and slant range are clamped to their ranges; NaN heading, altitude or
/// range is left out. Strings are cut to [`MAX_STRING_BYTES`]; empty strings are left out.
pub fn encode_uas_local_set(fix: &UasFix) -> Vec<u8> {
    let mut items = Vec::with_capacity(128);
    if let Some(ts) = fix.timestamp_us {
        put_item(&mut items, tag::PRECISION_TIME_STAMP, &ts.to_be_bytes());
    }
    put_item(&mut items, tag::LS_VERSION, &[ENCODED_LS_VERSION]);
    if let Some(text) = &fix.mission_id {
        put_string(&mut items, tag::MISSION_ID, text);
    }
    if let Some(deg) = fix.platform_heading_deg {
        let deg = if (0.0..=360.0).contains(&deg) {
            deg
        } else {
            deg.rem_euclid(360.0)
        };
        if let Some(raw) = HEADING.encode(deg) {
            put_item(&mut items, tag::PLATFORM_HEADING, &(raw as u16).to_be_bytes());
        }
    }
    if let Some(deg) = fix.platform_pitch_deg {
        put_item(
            &mut items,
            tag::PLATFORM_PITCH,
            &(PITCH.encode(deg) as i16).to_be_bytes(),
        );
    }
    if let Some(deg) = fix.platform_roll_deg {
        put_item(&mut items, tag::PLATFORM_ROLL, &(ROLL.encode(deg) as i16).to_be_bytes());
    }
    if let Some(text) = &fix.platform_designation {
        put_string(&mut items, tag::PLATFORM_DESIGNATION, text);
    }
    put_i32(&mut items, tag::SENSOR_LATITUDE, fix.sensor_lat, LATITUDE);
    put_i32(&mut items, tag::SENSOR_LONGITUDE, fix.sensor_lon, LONGITUDE);
    put_u16(&mut items, tag::SENSOR_TRUE_ALTITUDE, fix.sensor_alt_m, ALTITUDE);
    if let Some(raw) = fix.slant_range_m.and_then(|m| SLANT_RANGE.encode(m)) {
        put_item(&mut items, tag::SLANT_RANGE, &(raw as u32).to_be_bytes());
    }
    put_i32(&mut items, tag::FRAME_CENTER_LATITUDE, fix.frame_center_lat, LATITUDE);
    put_i32(&mut items, tag::FRAME_CENTER_LONGITUDE, fix.frame_center_lon, LONGITUDE);
    put_u16(
        &mut items,
        tag::FRAME_CENTER_ELEVATION,
        fix.frame_center_elev_m,
        ALTITUDE,
    );
    finish_packet(&items)
}

fn put_i32(out: &mut Vec<u8>, tag: u32, value: Option<f64>, map: SignedMap) {
    if let Some(v) = value {
        put_item(out, tag, &(map.encode(v) as i32).to_be_bytes());
    }
}

fn put_u16(out: &mut Vec<u8>, tag: u32, value: Option<f64>, map: UnsignedMap) {
    if let Some(raw) = value.and_then(|v| map.encode(v)) {
        put_item(out, tag, &(raw as u16).to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let digits: Vec<u8> = s.bytes().filter(u8::is_ascii_hexdigit).collect();
        assert!(digits.len().is_multiple_of(2), "odd number of hex digits");
        digits
            .chunks(2)
            .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap())
            .collect()
    }

    /// A packet from raw items (tag, value), checksum appended.
    fn packet_of(items: &[(u32, &[u8])]) -> Vec<u8> {
        let mut body = Vec::new();
        for (tag, value) in items {
            put_item(&mut body, *tag, value);
        }
        finish_packet(&body)
    }

    /// A packet with the key and BER length as given, the checksum recomputed, and nothing else
    /// checked: for feeding malformed local sets to the parser.
    fn raw_packet(ber_len: &[u8], value_without_checksum: &[u8]) -> Vec<u8> {
        let mut out = UAS_LOCAL_SET_KEY.to_vec();
        out.extend_from_slice(ber_len);
        out.extend_from_slice(value_without_checksum);
        out.extend_from_slice(&[0x01, 0x02]);
        let sum = checksum(&out);
        out.extend_from_slice(&sum.to_be_bytes());
        out
    }

    fn assert_close(actual: Option<f64>, expected: f64, tolerance: f64, what: &str) {
        let actual = actual.unwrap_or_else(|| panic!("{what}: None, expected {expected}"));
        assert!(
            (actual - expected).abs() <= tolerance,
            "{what}: {actual} vs {expected} (± {tolerance})"
        );
    }

    /// The example UAS Datalink LS packet of MISB ST 0902.5 (the MISMMS example, which is an
    /// ST 0601 packet), 228 bytes, checksum 0xAA43. The per-item values are the ones ST 0601.9
    /// uses in its own examples ("MISSION01" and "MQ1-B" aside): heading 0x71C2, pitch 0xFD3D,
    /// roll 0x08B8, sensor position 0x5595B66D / 0x5B5360C4 / 0xC221, slant range 0x03830926,
    /// frame centre 0xF101A229 / 0x14BC082B / 0x34F3. It also carries tags 11, 12, 16–20, 22,
    /// 48 (a nested security local set), 65 and 94, which the parser must skip.
    const ST0902_EXAMPLE: &str = "
        060E2B34020B01010E01030101000000 81D2
        020800046050584E0180 030A4D697373696F6E203132 050271C2 0602FD3D 070208B8
        0A085072656461746F72 0B07454F204E6F7365 0C0E47656F64657469632057475338340D045595B66D
        0E045B5360C4 0F02C221 1002CD9C 1102D917 1204724A0A20 130487F84B86 140400000000
        150403830926 16021281 1704F101A229 180414BC082B 190234F3
        301C01010102010703052F2F5553410C01070D060055005300411602000A 410106
        5E220170F592F02373364AF8AA9162C00F2EB2DA16B74341000841A0BE365B5AB96A3645
        0102AA43";

    /// A packet from a public FMV sample clip (local set 0 of `klv_metadata_test_sync.ts`, in the
    /// QGIS FMV plugin's sample media), checksum 0xFF59: an encoder other than the standard's
    /// examples, items in a different order, western longitude.
    const SAMPLE_CLIP_PACKET: &str = "
        060e2b34020b01010e0103010100000081dc02080005602866187a93480800055df6b0d09f
        d60a085072656461746f720c0e47656f64657469632057475338340502a2cf060200000702
        00460d0431d18bf60e04c7b07cec0f023aa110020acf1102081b120490c87b051304e2127e
        951404000000000b07454f204e6f73651602123b15040046461e170431d46e921804c7b830
        1119020c71030a313233343536372d38391a0207011b0205e11c02fbd31d02091f1e02f9a7
        1f02fa33200203a32102f760410106302001010102010203052f2f555341050006035553
        410c01020d0355534116020d090102ff59";

    #[test]
    fn checksum_example_from_the_standard() {
        // ST 0601's checksum section: words 060E 2B34 0200 81BB sum to B4FD.
        // 0x060E + 0x2B34 = 0x3142; + 0x0200 = 0x3342; + 0x81BB = 0xB4FD.
        assert_eq!(checksum(&hex("060E 2B34 0200 81BB")), 0xB4FD);
    }

    #[test]
    fn checksum_odd_length_and_wrap() {
        // Odd length: the last byte is a high half. 0x0102 + 0x0300 = 0x0402.
        assert_eq!(checksum(&[0x01, 0x02, 0x03]), 0x0402);
        // Wraps mod 2^16: 0xFFFF + 0x0002 = 0x1_0001 → 0x0001.
        assert_eq!(checksum(&[0xFF, 0xFF, 0x00, 0x02]), 0x0001);
        assert_eq!(checksum(&[]), 0);
    }

    #[test]
    fn st0902_example_packet_parses() {
        let packet = hex(ST0902_EXAMPLE);
        assert_eq!(packet.len(), 228);
        // The sum over everything but the checksum's value is the checksum in the packet.
        assert_eq!(checksum(&packet[..packet.len() - 2]), 0xAA43);

        let fix = parse_uas_local_set(&packet).unwrap();
        // 0x0004_6050_584E_0180 µs = 2009-01-12T22:08:22Z
        assert_eq!(fix.timestamp_us, Some(1_231_798_102_000_000));
        assert_eq!(fix.mission_id.as_deref(), Some("Mission 12"));
        assert_eq!(fix.platform_designation.as_deref(), Some("Predator"));
        // The interpretations ST 0601 prints for these octets.
        assert_close(fix.platform_heading_deg, 159.974365, 1e-6, "heading");
        assert_close(fix.platform_pitch_deg, -0.431531724, 1e-9, "pitch");
        assert_close(fix.platform_roll_deg, 3.40586566, 1e-8, "roll");
        assert_close(fix.sensor_lat, 60.176822966978335, 1e-12, "sensor lat");
        assert_close(fix.sensor_lon, 128.42675904204452, 1e-12, "sensor lon");
        assert_close(fix.sensor_alt_m, 14190.7195, 1e-4, "sensor alt");
        assert_close(fix.slant_range_m, 68590.98329874477, 1e-8, "slant range");
        assert_close(fix.frame_center_lat, -10.542388633146132, 1e-12, "frame centre lat");
        assert_close(fix.frame_center_lon, 29.15789012292302, 1e-12, "frame centre lon");
        assert_close(fix.frame_center_elev_m, 3216.0372320134275, 1e-8, "frame centre elev");
    }

    #[test]
    fn sample_clip_packet_parses() {
        let fix = parse_uas_local_set(&hex(SAMPLE_CLIP_PACKET)).unwrap();
        assert_eq!(fix.timestamp_us, Some(0x0005_6028_6618_7A93));
        assert_eq!(fix.mission_id.as_deref(), Some("1234567-89"));
        assert_eq!(fix.platform_designation.as_deref(), Some("Predator"));
        assert_close(fix.platform_pitch_deg, 0.0, 0.0, "pitch");
        // 0x31D18BF6 × 90 / 0x7FFFFFFF, 0xC7B07CEC (negative) × 180 / 0x7FFFFFFF.
        assert_close(fix.sensor_lat, 35.02866227879592, 1e-12, "sensor lat");
        assert_close(fix.sensor_lon, -79.18677262923995, 1e-12, "sensor lon");
        // 0x3AA1 × 19900 / 65535 − 900
        assert_close(fix.sensor_alt_m, 3657.55092698558, 1e-9, "sensor alt");
    }

    #[test]
    fn encoder_reproduces_the_standards_example_octets() {
        let fix = UasFix {
            timestamp_us: Some(1_224_807_209_913_000), // Oct. 24, 2008. 00:13:29.913
            mission_id: Some("MISSION01".into()),
            platform_heading_deg: Some(159.974365),
            platform_pitch_deg: Some(-0.431531724),
            platform_roll_deg: Some(3.40586566),
            platform_designation: Some("MQ1-B".into()),
            sensor_lat: Some(60.176822966978335),
            sensor_lon: Some(128.42675904204452),
            sensor_alt_m: Some(14190.7195),
            slant_range_m: Some(68590.98329874477),
            frame_center_lat: Some(-10.542388633146132),
            frame_center_lon: Some(29.15789012292302),
            frame_center_elev_m: Some(3216.0372320134275),
        };
        let mut body = hex("0208 000459F4A6AA4AA8  410113  0309 4D495353494F4E3031");
        body.extend(hex("0502 71C2  0602 FD3D  0702 08B8  0A05 4D51312D42"));
        body.extend(hex("0D04 5595B66D  0E04 5B5360C4  0F02 C221  1504 03830926"));
        body.extend(hex("1704 F101A229  1804 14BC082B  1902 34F3"));
        let packet = encode_uas_local_set(&fix);
        let header = UAS_LOCAL_SET_KEY.len() + 1;
        assert_eq!(packet[UAS_LOCAL_SET_KEY.len()] as usize, body.len() + 4);
        assert_eq!(&packet[header..packet.len() - 4], &body[..]);
        assert_eq!(&packet[packet.len() - 4..packet.len() - 2], &[0x01, 0x02]);
        assert_eq!(
            parse_uas_local_set(&packet).unwrap().mission_id.as_deref(),
            Some("MISSION01")
        );
    }

    #[test]
    fn hand_computed_minimal_packet() {
        // Timestamp 0x0000_0000_0000_0001 µs only. Value: 02 08 <8 bytes>, 41 01 13, 01 02 <sum>
        // = 10 + 3 + 4 = 17 = 0x11 bytes.
        let packet = encode_uas_local_set(&UasFix {
            timestamp_us: Some(1),
            ..UasFix::default()
        });
        let mut expected = UAS_LOCAL_SET_KEY.to_vec();
        expected.extend(hex("11 0208 0000000000000001 410113 0102"));
        // Words over those 32 bytes (key, length, items, checksum tag and length):
        //   key:   060E + 2B34 + 020B + 0101 + 0E01 + 0301 + 0100 + 0000 = 0x4650
        //   rest:  1102 + 0800 + 0000 + 0000 + 0000 + 0141 + 0113 + 0102 = 0x1C58
        //   0x4650 + 0x1C58 = 0x62A8
        expected.extend([0x62, 0xA8]);
        assert_eq!(packet, expected);
        assert_eq!(
            parse_uas_local_set(&packet).unwrap(),
            UasFix {
                timestamp_us: Some(1),
                ..UasFix::default()
            }
        );
    }

    fn full_fix() -> UasFix {
        UasFix {
            timestamp_us: Some(1_700_000_000_123_456),
            mission_id: Some("CITY-PATROL-7".into()),
            platform_heading_deg: Some(271.25),
            platform_pitch_deg: Some(-3.5),
            platform_roll_deg: Some(12.75),
            platform_designation: Some("DJI M30T".into()),
            sensor_lat: Some(52.520008),
            sensor_lon: Some(13.404954),
            sensor_alt_m: Some(152.4),
            slant_range_m: Some(412.3),
            frame_center_lat: Some(52.519),
            frame_center_lon: Some(13.4071),
            frame_center_elev_m: Some(34.0),
        }
    }

    /// `decode(encode(fix))` equals `fix` to within one quantisation step per field.
    fn assert_round_trip(fix: &UasFix) {
        let back = parse_uas_local_set(&encode_uas_local_set(fix)).unwrap();
        assert_eq!(back.timestamp_us, fix.timestamp_us);
        assert_eq!(back.mission_id, fix.mission_id);
        assert_eq!(back.platform_designation, fix.platform_designation);
        let pairs = [
            (
                "heading",
                fix.platform_heading_deg,
                back.platform_heading_deg,
                HEADING.step(),
            ),
            ("pitch", fix.platform_pitch_deg, back.platform_pitch_deg, PITCH.step()),
            ("roll", fix.platform_roll_deg, back.platform_roll_deg, ROLL.step()),
            ("sensor lat", fix.sensor_lat, back.sensor_lat, LATITUDE.step()),
            ("sensor lon", fix.sensor_lon, back.sensor_lon, LONGITUDE.step()),
            ("sensor alt", fix.sensor_alt_m, back.sensor_alt_m, ALTITUDE.step()),
            ("slant range", fix.slant_range_m, back.slant_range_m, SLANT_RANGE.step()),
            (
                "frame centre lat",
                fix.frame_center_lat,
                back.frame_center_lat,
                LATITUDE.step(),
            ),
            (
                "frame centre lon",
                fix.frame_center_lon,
                back.frame_center_lon,
                LONGITUDE.step(),
            ),
            (
                "frame centre elev",
                fix.frame_center_elev_m,
                back.frame_center_elev_m,
                ALTITUDE.step(),
            ),
        ];
        for (what, sent, got, step) in pairs {
            match sent {
                Some(v) => assert_close(got, v, step, what),
                None => assert_eq!(got, None, "{what}"),
            }
        }
    }

    #[test]
    fn round_trip_every_field() {
        assert_round_trip(&full_fix());
        assert_round_trip(&UasFix::default());
        // Each field on its own, so that no field depends on another being present.
        let full = full_fix();
        let singles = [
            UasFix {
                timestamp_us: full.timestamp_us,
                ..UasFix::default()
            },
            UasFix {
                mission_id: full.mission_id.clone(),
                ..UasFix::default()
            },
            UasFix {
                platform_heading_deg: full.platform_heading_deg,
                ..UasFix::default()
            },
            UasFix {
                platform_pitch_deg: full.platform_pitch_deg,
                ..UasFix::default()
            },
            UasFix {
                platform_roll_deg: full.platform_roll_deg,
                ..UasFix::default()
            },
            UasFix {
                platform_designation: full.platform_designation.clone(),
                ..UasFix::default()
            },
            UasFix {
                sensor_lat: full.sensor_lat,
                ..UasFix::default()
            },
            UasFix {
                sensor_lon: full.sensor_lon,
                ..UasFix::default()
            },
            UasFix {
                sensor_alt_m: full.sensor_alt_m,
                ..UasFix::default()
            },
            UasFix {
                slant_range_m: full.slant_range_m,
                ..UasFix::default()
            },
            UasFix {
                frame_center_lat: full.frame_center_lat,
                ..UasFix::default()
            },
            UasFix {
                frame_center_lon: full.frame_center_lon,
                ..UasFix::default()
            },
            UasFix {
                frame_center_elev_m: full.frame_center_elev_m,
                ..UasFix::default()
            },
        ];
        for fix in &singles {
            assert_round_trip(fix);
        }
    }

    #[test]
    fn round_trip_range_ends_and_sweeps() {
        let ends = UasFix {
            timestamp_us: Some(u64::MAX),
            platform_heading_deg: Some(360.0),
            platform_pitch_deg: Some(20.0),
            platform_roll_deg: Some(-50.0),
            sensor_lat: Some(-90.0),
            sensor_lon: Some(180.0),
            sensor_alt_m: Some(-900.0),
            slant_range_m: Some(5_000_000.0),
            frame_center_lat: Some(90.0),
            frame_center_lon: Some(-180.0),
            frame_center_elev_m: Some(19_000.0),
            ..UasFix::default()
        };
        assert_round_trip(&ends);
        for i in 0..=200 {
            let t = f64::from(i) / 200.0; // 0..=1
            let s = 2.0 * t - 1.0; // -1..=1
            assert_round_trip(&UasFix {
                timestamp_us: Some(i as u64 * 1_000_003),
                platform_heading_deg: Some(360.0 * t),
                platform_pitch_deg: Some(20.0 * s),
                platform_roll_deg: Some(50.0 * s),
                sensor_lat: Some(90.0 * s),
                sensor_lon: Some(180.0 * s),
                sensor_alt_m: Some(-900.0 + 19_900.0 * t),
                slant_range_m: Some(5_000_000.0 * t),
                frame_center_lat: Some(-90.0 * s),
                frame_center_lon: Some(-180.0 * s),
                frame_center_elev_m: Some(19_000.0 - 19_900.0 * t),
                ..UasFix::default()
            });
        }
    }

    #[test]
    fn southern_and_western_hemispheres() {
        // Rio de Janeiro and a frame centre near it.
        let fix = UasFix {
            sensor_lat: Some(-22.906847),
            sensor_lon: Some(-43.172897),
            frame_center_lat: Some(-22.9),
            frame_center_lon: Some(-43.17),
            ..UasFix::default()
        };
        assert_round_trip(&fix);
        let back = parse_uas_local_set(&encode_uas_local_set(&fix)).unwrap();
        assert!(back.sensor_lat.unwrap() < 0.0 && back.sensor_lon.unwrap() < 0.0);
        assert!(back.frame_center_lat.unwrap() < 0.0 && back.frame_center_lon.unwrap() < 0.0);
        // The standard's negative example: -10.542388633146132° ↔ 0xF101A229 (two's complement).
        let packet = packet_of(&[(tag::FRAME_CENTER_LATITUDE, &hex("F101A229"))]);
        assert_close(
            parse_uas_local_set(&packet).unwrap().frame_center_lat,
            -10.542388633146132,
            1e-12,
            "frame centre lat",
        );
        // The extremes: -(2^31 - 1) is exactly -90° / -180°.
        let packet = packet_of(&[
            (tag::SENSOR_LATITUDE, &hex("80000001")),
            (tag::SENSOR_LONGITUDE, &hex("80000001")),
        ]);
        let fix = parse_uas_local_set(&packet).unwrap();
        assert_eq!((fix.sensor_lat, fix.sensor_lon), (Some(-90.0), Some(-180.0)));
    }

    #[test]
    fn reserved_values_decode_to_none() {
        let packet = packet_of(&[
            (tag::PLATFORM_PITCH, &hex("8000")),
            (tag::PLATFORM_ROLL, &hex("8000")),
            (tag::SENSOR_LATITUDE, &hex("80000000")),
            (tag::SENSOR_LONGITUDE, &hex("80000000")),
            (tag::FRAME_CENTER_LATITUDE, &hex("80000000")),
            (tag::FRAME_CENTER_LONGITUDE, &hex("80000000")),
            (tag::SENSOR_TRUE_ALTITUDE, &hex("0000")),
        ]);
        let fix = parse_uas_local_set(&packet).unwrap();
        assert_eq!(fix.platform_pitch_deg, None);
        assert_eq!(fix.platform_roll_deg, None);
        assert_eq!(fix.sensor_lat, None);
        assert_eq!(fix.sensor_lon, None);
        assert_eq!(fix.frame_center_lat, None);
        assert_eq!(fix.frame_center_lon, None);
        assert_eq!(fix.sensor_alt_m, Some(-900.0)); // 0x0000 is an ordinary value for tag 15
    }

    #[test]
    fn encoder_writes_reserved_values_for_out_of_range_and_nan() {
        let fix = UasFix {
            platform_pitch_deg: Some(25.0),
            platform_roll_deg: Some(f64::NAN),
            sensor_lat: Some(90.5),
            sensor_lon: Some(f64::INFINITY),
            frame_center_lat: Some(f64::NAN),
            frame_center_lon: Some(-181.0),
            sensor_alt_m: Some(f64::NAN),
            slant_range_m: Some(-5.0),
            platform_heading_deg: Some(-90.0),
            frame_center_elev_m: Some(25_000.0),
            ..UasFix::default()
        };
        let packet = encode_uas_local_set(&fix);
        for (tag, value) in [
            (tag::PLATFORM_PITCH, &hex("8000")[..]),
            (tag::SENSOR_LATITUDE, &hex("80000000")[..]),
            (tag::FRAME_CENTER_LONGITUDE, &hex("80000000")[..]),
        ] {
            let mut item = vec![tag as u8, value.len() as u8];
            item.extend_from_slice(value);
            assert!(
                packet.windows(item.len()).any(|w| w == item),
                "tag {tag} not written as reserved"
            );
        }
        let back = parse_uas_local_set(&packet).unwrap();
        assert_eq!(back.platform_pitch_deg, None);
        assert_eq!(back.platform_roll_deg, None);
        assert_eq!(back.sensor_lat, None);
        assert_eq!(back.sensor_lon, None);
        assert_eq!(back.frame_center_lat, None);
        assert_eq!(back.frame_center_lon, None);
        assert_eq!(back.sensor_alt_m, None); // NaN altitude is left out
        assert_eq!(back.slant_range_m, Some(0.0)); // clamped
        assert_close(back.platform_heading_deg, 270.0, HEADING.step(), "wrapped heading");
        assert_eq!(back.frame_center_elev_m, Some(19_000.0)); // clamped
    }

    #[test]
    fn flipped_byte_anywhere_is_an_error() {
        for packet in [encode_uas_local_set(&full_fix()), hex(ST0902_EXAMPLE)] {
            assert!(parse_uas_local_set(&packet).is_ok());
            for i in 0..packet.len() {
                for mask in [0x01u8, 0x10, 0x80, 0xFF] {
                    let mut bad = packet.clone();
                    bad[i] ^= mask;
                    assert!(
                        parse_uas_local_set(&bad).is_err(),
                        "byte {i} ^ {mask:#04x} went unnoticed"
                    );
                }
            }
        }
    }

    #[test]
    fn flipped_value_byte_is_a_checksum_mismatch() {
        let packet = encode_uas_local_set(&full_fix());
        let mut bad = packet.clone();
        let i = bad.len() - 6; // inside the last value before the checksum item
        bad[i] ^= 0x01;
        let expected = u16::from_be_bytes([packet[packet.len() - 2], packet[packet.len() - 1]]);
        let computed = checksum(&bad[..bad.len() - 2]);
        assert_ne!(expected, computed);
        assert_eq!(
            parse_uas_local_set(&bad),
            Err(KlvError::ChecksumMismatch { expected, computed })
        );
    }

    #[test]
    fn truncated_at_every_length_is_an_error() {
        for packet in [
            encode_uas_local_set(&full_fix()),
            hex(ST0902_EXAMPLE),
            hex(SAMPLE_CLIP_PACKET),
        ] {
            assert!(parse_all(&[]).is_empty());
            for n in 1..packet.len() {
                let err = parse_uas_local_set(&packet[..n]).unwrap_err();
                assert!(matches!(err, KlvError::Truncated { .. }), "cut at {n}: {err:?}");
                assert_eq!(parse_all(&packet[..n]).len(), 1, "cut at {n}");
                assert!(parse_all(&packet[..n])[0].is_err());
            }
        }
    }

    #[test]
    fn local_set_cut_inside_an_item_is_an_error() {
        // The outer length agrees with the bytes, but the items (checksum included) stop short.
        for packet in [encode_uas_local_set(&full_fix()), hex(ST0902_EXAMPLE)] {
            let mut cur = Cursor {
                buf: &packet,
                pos: UAS_LOCAL_SET_KEY.len(),
            };
            let len = cur.ber_length("test").unwrap();
            let value = &packet[cur.pos..];
            assert_eq!(value.len(), len);
            for cut in 0..value.len() {
                let mut bad = UAS_LOCAL_SET_KEY.to_vec();
                write_ber_length(&mut bad, cut);
                bad.extend_from_slice(&value[..cut]);
                assert!(parse_uas_local_set(&bad).is_err(), "cut at {cut}");
            }
        }
    }

    #[test]
    fn long_form_ber_lengths() {
        // 150-byte value: 0x81 0x96.
        let long = "x".repeat(127);
        let fix = UasFix {
            timestamp_us: Some(42),
            mission_id: Some(long.clone()),
            sensor_lat: Some(1.5),
            ..UasFix::default()
        };
        let packet = encode_uas_local_set(&fix);
        assert_eq!(packet[16], 0x81);
        assert_eq!(usize::from(packet[17]), packet.len() - 18);
        assert_eq!(parse_uas_local_set(&packet).unwrap().mission_id, Some(long.clone()));

        // More than 255 bytes: 0x82 hi lo.
        let fix = UasFix {
            platform_designation: Some("y".repeat(127)),
            ..fix
        };
        let packet = encode_uas_local_set(&fix);
        assert_eq!(packet[16], 0x82);
        assert_eq!(
            usize::from(u16::from_be_bytes([packet[17], packet[18]])),
            packet.len() - 19
        );
        assert_round_trip(&fix);

        // Non-minimal long forms, for the packet and for an item (KLV allows them).
        let item = hex("0D 84 00000004 2AAAAAAA"); // tag 13, length 4 in five bytes, 0x2AAAAAAA ≈ 30°
        let packet = raw_packet(&hex("83 00 00 0E"), &item);
        assert_close(
            parse_uas_local_set(&packet).unwrap().sensor_lat,
            30.0,
            LATITUDE.step(),
            "lat",
        );

        // An unknown item longer than 255 bytes, with a 0x82 length, is skipped.
        let blob = vec![0xAB; 300];
        let packet = packet_of(&[(99, &blob), (tag::PLATFORM_HEADING, &hex("8000"))]);
        let fix = parse_uas_local_set(&packet).unwrap();
        assert_close(fix.platform_heading_deg, 180.0, HEADING.step(), "heading");
    }

    #[test]
    fn bad_ber_lengths() {
        let mut packet = UAS_LOCAL_SET_KEY.to_vec();
        packet.push(0x80); // indefinite form
        assert!(matches!(
            parse_uas_local_set(&packet),
            Err(KlvError::BadBerLength { offset: 16, .. })
        ));
        packet[16] = 0x89; // nine length bytes
        packet.extend([0; 9]);
        assert!(matches!(
            parse_uas_local_set(&packet),
            Err(KlvError::BadBerLength { offset: 16, .. })
        ));
        // An item with an indefinite length.
        let packet = raw_packet(&[0x06], &hex("05 80"));
        assert!(matches!(
            parse_uas_local_set(&packet),
            Err(KlvError::BadBerLength { offset: 18, .. })
        ));
        // A length that promises more than there is.
        let mut packet = UAS_LOCAL_SET_KEY.to_vec();
        packet.extend(hex("88 FFFFFFFFFFFFFFFF 00"));
        assert!(matches!(parse_uas_local_set(&packet), Err(KlvError::Truncated { .. })));
    }

    #[test]
    fn unknown_tags_are_skipped() {
        let packet = packet_of(&[
            (tag::PRECISION_TIME_STAMP, &7u64.to_be_bytes()),
            (tag::LS_VERSION, &[19]),
            (4, b"AF-101"),            // platform tail number
            (56, &[0x8C]),             // platform ground speed
            (143, &hex("0102030405")), // two-byte BER-OID tag 0x81 0x0F
            (0x1F_FFFF, &[]),          // three-byte tag, zero length
            (tag::SENSOR_LATITUDE, &hex("00000000")),
        ]);
        assert!(packet.windows(2).any(|w| w == [0x81, 0x0F]));
        let fix = parse_uas_local_set(&packet).unwrap();
        assert_eq!(
            fix,
            UasFix {
                timestamp_us: Some(7),
                sensor_lat: Some(0.0),
                ..UasFix::default()
            }
        );
    }

    #[test]
    fn zero_length_items_are_unknown() {
        let packet = packet_of(&[
            (tag::SENSOR_LATITUDE, &hex("2AAAAAAA")),
            (tag::SENSOR_LATITUDE, &[]), // the later item wins: now unknown
            (tag::MISSION_ID, &[]),
            (tag::SLANT_RANGE, &[]),
        ]);
        assert_eq!(parse_uas_local_set(&packet).unwrap(), UasFix::default());
        let packet = packet_of(&[(tag::PRECISION_TIME_STAMP, &[])]);
        assert_eq!(
            parse_uas_local_set(&packet),
            Err(KlvError::BadItemLength {
                tag: tag::PRECISION_TIME_STAMP,
                len: 0,
                expected: 8
            })
        );
    }

    #[test]
    fn wrong_item_lengths_are_errors() {
        let cases: [(u32, usize, usize); 8] = [
            (tag::PRECISION_TIME_STAMP, 4, 8),
            (tag::PLATFORM_HEADING, 1, 2),
            (tag::PLATFORM_PITCH, 4, 2),
            (tag::SENSOR_LATITUDE, 2, 4),
            (tag::SENSOR_LONGITUDE, 8, 4),
            (tag::SENSOR_TRUE_ALTITUDE, 3, 2),
            (tag::SLANT_RANGE, 2, 4),
            (tag::FRAME_CENTER_ELEVATION, 1, 2),
        ];
        for (tag, len, expected) in cases {
            let packet = packet_of(&[(tag, &vec![0u8; len])]);
            assert_eq!(
                parse_uas_local_set(&packet),
                Err(KlvError::BadItemLength { tag, len, expected })
            );
        }
        // A checksum item of the wrong length.
        let mut packet = UAS_LOCAL_SET_KEY.to_vec();
        packet.extend(hex("05 01 03 00 00 00"));
        assert_eq!(
            parse_uas_local_set(&packet),
            Err(KlvError::BadItemLength {
                tag: 1,
                len: 3,
                expected: 2
            })
        );
    }

    #[test]
    fn missing_or_misplaced_checksum() {
        let mut packet = UAS_LOCAL_SET_KEY.to_vec();
        packet.extend(hex("04 0F02 C221"));
        assert_eq!(parse_uas_local_set(&packet), Err(KlvError::MissingChecksum));
        // Checksum followed by another item.
        let mut packet = UAS_LOCAL_SET_KEY.to_vec();
        packet.extend(hex("08 0102 0000 0F02 C221"));
        assert_eq!(
            parse_uas_local_set(&packet),
            Err(KlvError::ChecksumNotLast { offset: 17 })
        );
        // Empty local set.
        let mut packet = UAS_LOCAL_SET_KEY.to_vec();
        packet.push(0);
        assert_eq!(parse_uas_local_set(&packet), Err(KlvError::MissingChecksum));
    }

    #[test]
    fn wrong_key_is_rejected() {
        let packet = encode_uas_local_set(&full_fix());
        let mut bad = packet.clone();
        bad[10] = 0x02;
        assert!(matches!(parse_uas_local_set(&bad), Err(KlvError::WrongKey { .. })));
        // ST 0102 security metadata key.
        let mut other = hex("060E2B34020301010E01030302000000");
        other.extend_from_slice(&packet[16..]);
        assert!(matches!(parse_uas_local_set(&other), Err(KlvError::WrongKey { .. })));
        // Short and not a prefix of the key.
        assert!(matches!(
            parse_uas_local_set(&[0x47, 0x40]),
            Err(KlvError::WrongKey { .. })
        ));
        // Short prefix of the key: truncated, not wrong.
        assert!(matches!(
            parse_uas_local_set(&packet[..5]),
            Err(KlvError::Truncated { what: "key", .. })
        ));
    }

    #[test]
    fn trailing_bytes_are_rejected() {
        let mut packet = encode_uas_local_set(&full_fix());
        packet.push(0);
        assert_eq!(parse_uas_local_set(&packet), Err(KlvError::TrailingBytes { extra: 1 }));
    }

    #[test]
    fn parse_all_two_packets_and_a_foreign_one() {
        let first = full_fix();
        let second = UasFix {
            timestamp_us: Some(1_700_000_000_623_456),
            sensor_lat: Some(-33.86),
            ..full_fix()
        };
        let mut buf = encode_uas_local_set(&first);
        // A foreign KLV packet (ST 0102 key) between them, long-form length.
        buf.extend(hex("060E2B34020301010E01030302000000 81 80"));
        buf.extend([0x55; 0x80]);
        buf.extend(encode_uas_local_set(&second));
        let results = parse_all(&buf);
        assert_eq!(results.len(), 2);
        let a = results[0].clone().unwrap();
        let b = results[1].clone().unwrap();
        assert_eq!(a, parse_uas_local_set(&encode_uas_local_set(&first)).unwrap());
        assert_eq!(b.timestamp_us, second.timestamp_us);
        assert_close(b.sensor_lat, -33.86, LATITUDE.step(), "second packet lat");
    }

    #[test]
    fn parse_all_keeps_going_past_a_bad_packet() {
        let mut bad = encode_uas_local_set(&full_fix());
        let n = bad.len();
        bad[n - 1] ^= 0x01; // wrong checksum, framing intact
        let mut buf = bad;
        buf.extend(hex(ST0902_EXAMPLE));
        buf.extend([0x00, 0x00, 0xFF]); // junk
        buf.extend(hex(SAMPLE_CLIP_PACKET));
        buf.extend(&hex(ST0902_EXAMPLE)[..40]); // cut short by the end of the buffer
        let results = parse_all(&buf);
        assert_eq!(results.len(), 4);
        assert!(matches!(results[0], Err(KlvError::ChecksumMismatch { .. })));
        assert_eq!(results[1].as_ref().unwrap().mission_id.as_deref(), Some("Mission 12"));
        assert_eq!(results[2].as_ref().unwrap().mission_id.as_deref(), Some("1234567-89"));
        assert!(matches!(results[3], Err(KlvError::Truncated { .. })));
        assert!(parse_all(&[]).is_empty());
        assert!(parse_all(&[0x47; 300]).is_empty());
    }

    #[test]
    fn strings_are_cut_at_a_char_boundary_and_lossy() {
        let text = "é".repeat(100); // 200 bytes
        let packet = encode_uas_local_set(&UasFix {
            mission_id: Some(text),
            ..UasFix::default()
        });
        let back = parse_uas_local_set(&packet).unwrap().mission_id.unwrap();
        assert_eq!(back, "é".repeat(63)); // 126 bytes, the most that fits in 127
        let packet = packet_of(&[(tag::MISSION_ID, b"AB\xFFC\0\0"), (tag::PLATFORM_DESIGNATION, b"\0")]);
        let fix = parse_uas_local_set(&packet).unwrap();
        assert_eq!(fix.mission_id.as_deref(), Some("AB\u{FFFD}C"));
        assert_eq!(fix.platform_designation, None);
    }

    #[test]
    fn ber_writers() {
        let mut out = Vec::new();
        for len in [0usize, 127, 128, 255, 256, 65_535, 65_536] {
            out.clear();
            write_ber_length(&mut out, len);
            let mut cur = Cursor { buf: &out, pos: 0 };
            assert_eq!(cur.ber_length("test").unwrap(), len);
            assert!(cur.at_end());
        }
        for tag in [1u32, 127, 128, 143, 16_383, 16_384, u32::MAX] {
            out.clear();
            write_ber_oid(&mut out, tag);
            let mut cur = Cursor { buf: &out, pos: 0 };
            assert_eq!(cur.ber_oid().unwrap(), tag);
            assert!(cur.at_end());
        }
        out.clear();
        write_ber_oid(&mut out, 143);
        assert_eq!(out, [0x81, 0x0F]);
        // Six 7-bit groups do not fit in 32 bits.
        let mut cur = Cursor {
            buf: &[0x81, 0x80, 0x80, 0x80, 0x80, 0x00],
            pos: 0,
        };
        assert!(matches!(cur.ber_oid(), Err(KlvError::BadTag { offset: 0 })));
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        // xorshift64: deterministic pseudo-random buffers, some starting with the key.
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let good = encode_uas_local_set(&full_fix());
        for round in 0..2_000 {
            let len = (next() % 300) as usize;
            let mut buf: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            if round % 2 == 0 {
                let mut keyed = UAS_LOCAL_SET_KEY.to_vec();
                keyed.push((next() % 0x84) as u8);
                keyed.extend(buf);
                buf = keyed;
            }
            if round % 3 == 0 {
                // Corrupt a few bytes of a good packet.
                buf = good.clone();
                for _ in 0..3 {
                    let i = (next() as usize) % buf.len();
                    buf[i] = next() as u8;
                }
            }
            let _ = parse_uas_local_set(&buf);
            let _ = parse_all(&buf);
        }
    }

    #[test]
    fn errors_display() {
        let err = KlvError::ChecksumMismatch {
            expected: 0xAA43,
            computed: 0x1234,
        };
        assert_eq!(
            err.to_string(),
            "checksum mismatch: packet says 0xaa43, bytes sum to 0x1234"
        );
        let err = KlvError::WrongKey {
            found: vec![0x06, 0x0E],
        };
        assert_eq!(err.to_string(), "not a MISB ST 0601 UAS Datalink Local Set: key 06 0E");
    }
}
