//! Unit tests of the ST 0601 reader and writer: the standard's examples, a real clip's packet,
//! round trips.

mod malformed;

use super::encode::{finish_packet, put_item, write_ber_length, write_ber_oid};
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
