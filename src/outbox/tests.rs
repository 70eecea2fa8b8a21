use super::*;

fn file(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{seq:020}.msg"))
}

#[test]
fn messages_survive_reopen_in_order_until_acked() {
    let dir = tempfile::tempdir().unwrap();
    let ob = Outbox::open(dir.path()).unwrap();
    let a = ob.push("t/a", b"one".to_vec(), false).unwrap();
    let b = ob.push("t/b", vec![0, 1, 2, 255], true).unwrap();
    let c = ob.push("t/c", Vec::new(), false).unwrap();
    ob.ack(b).unwrap();
    assert!(!file(dir.path(), b).exists());
    drop(ob);
    let ob = Outbox::open(dir.path()).unwrap();
    assert_eq!(ob.seqs(), vec![a, c]);
    assert_eq!(ob.get(a).unwrap().payload, b"one");
    assert_eq!(ob.get(c).unwrap().topic, "t/c");
    let d = ob.push("t/d", b"x".to_vec(), false).unwrap();
    assert!(d > c, "sequence numbers keep growing after a restart");
}

#[test]
fn a_full_outbox_evicts_evidence_before_alerts() {
    let dir = tempfile::tempdir().unwrap();
    let ob = Outbox::open_bounded(dir.path(), 100).unwrap();
    let a1 = ob.push("h/d/alerts", vec![1; 20], false).unwrap();
    let e1 = ob.push("h/d/evidence/ev1/clean", vec![2; 40], false).unwrap();
    let a2 = ob.push("h/d/alerts", vec![3; 20], false).unwrap();
    let e2 = ob.push("h/d/evidence/ev2/clean", vec![4; 20], false).unwrap();
    assert_eq!(ob.bytes(), 100);
    // 30 more bytes: the oldest evidence (40 bytes) goes, the alerts stay
    let a3 = ob.push("h/d/alerts", vec![5; 30], false).unwrap();
    assert_eq!(ob.seqs(), vec![a1, a2, e2, a3]);
    assert_eq!(ob.evicted(), (1, 0));
    // 45 more: the remaining evidence (20) is not enough, so the oldest alert goes too
    let a4 = ob.push("h/d/alerts", vec![6; 45], false).unwrap();
    assert_eq!(ob.seqs(), vec![a2, a3, a4]);
    assert_eq!(ob.evicted(), (2, 1));
    assert!(!file(dir.path(), e1).exists());
    assert!(ob.push("h/d/alerts", vec![0; 101], false).is_err(), "larger than the whole outbox");
    drop(ob);
    assert_eq!(Outbox::open_bounded(dir.path(), 100).unwrap().bytes(), 95);
}

#[test]
fn a_damaged_file_is_set_aside_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let ob = Outbox::open(dir.path()).unwrap();
    let a = ob.push("t", b"good".to_vec(), false).unwrap();
    let b = ob.push("t", b"will be cut".to_vec(), false).unwrap();
    drop(ob);
    let p = file(dir.path(), b);
    let bytes = fs::read(&p).unwrap();
    fs::write(&p, &bytes[..bytes.len() - 3]).unwrap();
    fs::write(dir.path().join("00000000000000000099.tmp"), b"half").unwrap();
    let ob = Outbox::open(dir.path()).unwrap();
    assert_eq!(ob.seqs(), vec![a]);
    assert_eq!(ob.corrupt(), 1);
    assert!(p.with_extension("bad").exists());
    assert!(!dir.path().join("00000000000000000099.tmp").exists());
}

#[test]
fn a_flipped_bit_in_a_payload_is_never_delivered() {
    let dir = tempfile::tempdir().unwrap();
    let ob = Outbox::open(dir.path()).unwrap();
    let a = ob.push("h/d/alerts", br#"{"event_id":"e1","state":"new"}"#.to_vec(), false).unwrap();
    let b = ob.push("h/d/alerts", br#"{"event_id":"e2","state":"new"}"#.to_vec(), false).unwrap();
    // "new" → "nEw": same length, so only the CRC can tell
    let p = file(dir.path(), a);
    let mut bytes = fs::read(&p).unwrap();
    let at = bytes.windows(3).position(|w| w == b"new").unwrap() + 1;
    bytes[at] ^= 0x20;
    fs::write(&p, &bytes).unwrap();
    assert_eq!(ob.get(a), None, "damaged record delivered");
    assert_eq!(ob.corrupt(), 1);
    assert!(p.with_extension("bad").exists());
    assert_eq!(ob.seqs(), vec![b]);
    assert_eq!(ob.get(b).unwrap().payload, br#"{"event_id":"e2","state":"new"}"#);
}

#[test]
fn files_of_the_old_format_are_read_and_delivered() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(file(dir.path(), 7), record::encode_v1("h/d/alerts", br#"{"event_id":"old-1"}"#, false)).unwrap();
    fs::write(file(dir.path(), 8), record::encode_v1("h/d/evidence/old-2/clean", &[9; 50], true)).unwrap();
    let ob = Outbox::open(dir.path()).unwrap();
    assert_eq!(ob.seqs(), vec![7, 8]);
    assert_eq!(ob.bytes(), 20 + 50);
    assert_eq!(ob.get(7).unwrap(), Entry { seq: 7, topic: "h/d/alerts".into(), payload: br#"{"event_id":"old-1"}"#.to_vec(), retain: false });
    assert!(ob.get(8).unwrap().retain);
    assert_eq!(ob.pending_events(), ["old-1".to_string(), "old-2".to_string()].into_iter().collect());
    assert_eq!(ob.push("h/d/alerts", b"{}".to_vec(), false).unwrap(), 9);
}

/// Makes `dir` refuse writes (as root too): the directory is replaced by a plain file.
fn refuse_writes(dir: &Path) -> PathBuf {
    let keep = dir.with_extension("kept");
    fs::rename(dir, &keep).unwrap();
    fs::write(dir, b"not a directory").unwrap();
    keep
}

fn accept_writes(dir: &Path, kept: &Path) {
    fs::remove_file(dir).unwrap();
    fs::rename(kept, dir).unwrap();
}

#[test]
fn a_refusing_disk_holds_messages_in_memory_and_writes_them_in_order_on_recovery() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("outbox");
    let ob = Outbox::open(&dir).unwrap();
    let a = ob.push("h/d/alerts", br#"{"event_id":"e0"}"#.to_vec(), false).unwrap();
    assert!(ob.health().disk_ok);

    let kept = refuse_writes(&dir);
    let held: Vec<u64> = (1..=5).map(|i| ob.push("h/d/alerts", format!(r#"{{"event_id":"e{i}"}}"#).into_bytes(), false).unwrap()).collect();
    let h = ob.health();
    assert!(!h.disk_ok);
    // every push tries the disk once (its own write, or the oldest held one first); the ERROR
    // line is logged once for the episode
    assert_eq!((h.in_memory, h.disk_errors), (5, 5), "{h:?}");
    assert!(h.disk_error.is_some());
    // still sendable, from memory, in order
    assert_eq!(ob.seqs(), [vec![a], held.clone()].concat());
    assert_eq!(ob.get(held[2]).unwrap().payload, br#"{"event_id":"e3"}"#);
    ob.maintain();
    assert!(!ob.health().disk_ok, "still refused");
    assert!(ob.health().disk_errors >= 2);

    accept_writes(&dir, &kept);
    ob.maintain();
    let h = ob.health();
    assert!(h.disk_ok, "{h:?}");
    assert_eq!((h.in_memory, h.in_memory_bytes), (0, 0));
    for (i, s) in held.iter().enumerate() {
        assert_eq!(read_message_file(&file(&dir, *s)).unwrap().payload, format!(r#"{{"event_id":"e{}"}}"#, i + 1).into_bytes());
    }
    drop(ob);
    let ob = Outbox::open(&dir).unwrap();
    assert_eq!(ob.seqs(), [vec![a], held].concat(), "all on disk, in order");
}

#[test]
fn beyond_the_memory_bound_held_evidence_goes_before_alerts() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("outbox");
    let ob = Outbox::open_with(&dir, 1 << 20, 100).unwrap();
    let kept = refuse_writes(&dir);
    let a1 = ob.push("h/d/alerts", vec![b' '; 30], false).unwrap();
    let e1 = ob.push("h/d/evidence/x/clean", vec![1; 40], false).unwrap();
    let a2 = ob.push("h/d/alerts", vec![b' '; 30], false).unwrap();
    // 130 > 100: the evidence goes, the alerts stay
    let a3 = ob.push("h/d/alerts", vec![b' '; 30], false).unwrap();
    assert_eq!(ob.seqs(), vec![a1, a2, a3]);
    assert_eq!(ob.get(e1), None);
    assert_eq!(ob.health().lost_in_memory, 1);
    // no evidence left: the oldest alert goes
    ob.push("h/d/alerts", vec![b' '; 30], false).unwrap();
    assert!(!ob.seqs().contains(&a1));
    assert_eq!(ob.evicted(), (1, 1));
    // one message larger than the whole memory bound is refused with the reason
    let err = ob.push("h/d/alerts", vec![b' '; 101], false).unwrap_err();
    assert!(err.to_string().contains("does not fit in memory"), "{err}");
    accept_writes(&dir, &kept);
}

#[test]
fn messages_acked_from_memory_are_not_written_later() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("outbox");
    let ob = Outbox::open(&dir).unwrap();
    let kept = refuse_writes(&dir);
    let a = ob.push("t", b"x".to_vec(), false).unwrap();
    ob.ack(a).unwrap();
    assert!(ob.is_empty());
    accept_writes(&dir, &kept);
    ob.maintain();
    assert!(ob.health().disk_ok, "the scratch write shows the disk is back");
    assert!(!file(&dir, a).exists());
    assert_eq!(fs::read_dir(&dir).unwrap().count(), 0);
}

fn rss_kb() -> u64 {
    let s = fs::read_to_string("/proc/self/status").unwrap();
    s.lines().find_map(|l| l.strip_prefix("VmRSS:")).unwrap().trim().trim_end_matches("kB").trim().parse().unwrap()
}

#[test]
fn the_index_of_ten_thousand_100kb_messages_holds_no_payloads() {
    let dir = tempfile::tempdir().unwrap();
    // one real 100 kB message, hard-linked under 10 000 sequence numbers: a gigabyte of queued
    // payload that costs the disk nothing
    let ob = Outbox::open_bounded(dir.path(), 2 << 30).unwrap();
    let first = ob.push("h/d/evidence/ev/clip/chunk/0", vec![0x5a; 100_000], false).unwrap();
    drop(ob);
    for seq in first + 1..first + 10_000 {
        fs::hard_link(file(dir.path(), first), file(dir.path(), seq)).unwrap();
    }
    let before = rss_kb();
    let ob = Outbox::open_bounded(dir.path(), 2 << 30).unwrap();
    let grown = rss_kb().saturating_sub(before);
    assert_eq!(ob.len(), 10_000);
    assert_eq!(ob.bytes(), 1_000_000_000);
    assert_eq!(ob.memory_bytes(), 0);
    // a payload in RAM would be ~1 GB; the index is ~100 bytes a message
    assert!(grown < 50_000, "opening the outbox grew RSS by {grown} kB");
    assert_eq!(ob.get(first + 5_000).unwrap().payload.len(), 100_000);
    // pushing more does not keep payloads either
    for _ in 0..50 {
        ob.push("h/d/evidence/ev/clip/chunk/1", vec![1; 100_000], false).unwrap();
    }
    assert_eq!(ob.memory_bytes(), 0);
}

#[test]
fn the_outbox_is_shared_by_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Outbox>();
    let dir = tempfile::tempdir().unwrap();
    let ob = Arc::new(Outbox::open(dir.path()).unwrap());
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let ob = ob.clone();
            std::thread::spawn(move || (0..25).map(|i| ob.push("t", format!("{t}-{i}").into_bytes(), false).unwrap()).collect::<Vec<u64>>())
        })
        .collect();
    let mut all: Vec<u64> = handles.into_iter().flat_map(|h| h.join().unwrap()).collect();
    all.sort();
    assert_eq!(all, ob.seqs());
    assert_eq!(all.len(), 100);
    for s in all {
        ob.ack(s).unwrap();
    }
    ob.maintain();
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn a_producer_stuck_on_the_disk_does_not_block_the_link() {
    let dir = tempfile::tempdir().unwrap();
    let ob = Arc::new(Outbox::open(dir.path()).unwrap());
    let a = ob.push("t", b"first".to_vec(), false).unwrap();
    // a FIFO where the next message's temp file goes: the producer's open() blocks until a
    // reader comes, like a write to a disk that hangs
    let fifo = dir.path().join(format!("{:020}.tmp", a + 1));
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let producer = {
        let ob = ob.clone();
        std::thread::spawn(move || ob.push("h/d/alerts", b"{}".to_vec(), false))
    };
    for _ in 0..1000 {
        if ob.bytes() == 7 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert_eq!(ob.bytes(), 7, "the producer took its sequence number and is writing");
    // what the link does (find, read, ack) goes through while the producer waits on the disk
    assert_eq!(ob.seqs(), vec![a]);
    assert_eq!(ob.get(a).unwrap().payload, b"first");
    ob.ack(a).unwrap();
    assert!(ob.is_empty());
    assert!(!producer.is_finished(), "the producer was not blocked after all");
    // let it go on
    let mut sink = Vec::new();
    fs::File::open(&fifo).unwrap().read_to_end(&mut sink).unwrap();
    let seq = producer.join().unwrap().unwrap();
    assert_eq!(ob.seqs(), vec![seq]);
}
