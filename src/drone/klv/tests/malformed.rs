//! Malformed, truncated and hostile packets: every one is an error, none panics.

use super::*;

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
