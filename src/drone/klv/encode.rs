//! Writing ST 0601 packets: for tests and test-stream generators.

use super::*;

pub(super) fn write_ber_length(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
        return;
    }
    let bytes = (len as u64).to_be_bytes();
    let skip = bytes.iter().take_while(|&&b| b == 0).count();
    out.push(0x80 | (bytes.len() - skip) as u8);
    out.extend_from_slice(&bytes[skip..]);
}

pub(super) fn write_ber_oid(out: &mut Vec<u8>, tag: u32) {
    let mut groups = 1;
    while groups < 5 && tag >> (7 * groups) != 0 {
        groups += 1;
    }
    for g in (0..groups).rev() {
        let bits = ((tag >> (7 * g)) & 0x7F) as u8;
        out.push(if g == 0 { bits } else { bits | 0x80 });
    }
}

pub(super) fn put_item(out: &mut Vec<u8>, tag: u32, value: &[u8]) {
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
pub(super) fn finish_packet(items: &[u8]) -> Vec<u8> {
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
