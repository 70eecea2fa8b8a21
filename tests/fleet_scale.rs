//! Scale (issue 18): 20 real `hawkeye run` daemons, each a box with one camera (vtest.avi in a
//! loop, in real time, detecting at 2 fps with the real model, one ONNX thread) and a zone that
//! raises alerts every few seconds, against one real mosquitto. Every alert every box raised
//! arrives (each box's `device_seq` seen without a gap, and nothing left in its outbox after a
//! clean stop), heartbeats of all 20 are seen; the broker's CPU, each daemon's RSS and the
//! message and byte rates per camera are printed (figures, not asserted: README, "Fleet").

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use common::daemon::Daemon;
use common::mqtt::Subscriber;

const BOXES: usize = 20;
const WINDOW: Duration = Duration::from_secs(60);

/// utime + stime of a process, in seconds.
fn cpu_s(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap().split_whitespace().collect();
    // after the command: state is field 3, utime 14 and stime 15 (1-based in proc(5))
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    ticks / 100.0
}

fn rss_mb(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: f64 = status.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok()).unwrap();
    kb / 1024.0
}

#[test]
fn twenty_daemons_on_one_broker_deliver_every_alert_and_heartbeat() {
    let Some(model) = common::model::yolox_nano("twenty_daemons_on_one_broker_deliver_every_alert_and_heartbeat") else { return };
    let broker = common::broker::mosquitto();
    let broker_pid = broker.pid().unwrap();
    let sub = Subscriber::new(broker.port, "hawkeye/#");
    let dirs: Vec<tempfile::TempDir> = (0..BOXES).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut daemons = Vec::new();
    for (i, dir) in dirs.iter().enumerate() {
        let camera = common::config::vtest_camera("cam-1").replace("detect_fps = 5", "detect_fps = 2") + &common::config::walkway_zone(1.0, 0.5, 5.0);
        let path = common::config::write(dir.path(), broker.port, &model, &camera);
        let text = std::fs::read_to_string(&path).unwrap().replace("id = \"test-box\"", &format!("id = \"box-{i:02}\"")).replace("heartbeat_s = 1", "heartbeat_s = 10").replace("score_threshold = 0.35", "score_threshold = 0.35\nthreads = 1");
        std::fs::write(&path, text).unwrap();
        daemons.push(Daemon::start_logged(&path, &dir.path().join("daemon.log")));
    }
    let ids: BTreeSet<String> = (0..BOXES).map(|i| format!("box-{i:02}")).collect();
    let device_of = |topic: &str| topic.split('/').nth(1).unwrap_or_default().to_string();
    let t0 = Instant::now();
    loop {
        let online: BTreeSet<String> = sub.all().iter().filter(|m| m.topic.ends_with("/alerts")).map(|m| device_of(&m.topic)).collect();
        if online == ids {
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(300), "boxes without an alert after 5 min: {:?}", ids.difference(&online).collect::<Vec<_>>());
        std::thread::sleep(Duration::from_millis(500));
    }
    println!("all {BOXES} boxes raised an alert within {:.0} s of starting", t0.elapsed().as_secs_f64());

    // a measured window
    let (mark, broker_cpu0, w0) = (sub.count(), cpu_s(broker_pid), Instant::now());
    std::thread::sleep(WINDOW);
    let secs = w0.elapsed().as_secs_f64();
    let broker_cpu = (cpu_s(broker_pid) - broker_cpu0) / secs * 100.0;
    let rss: Vec<f64> = daemons.iter().map(|d| rss_mb(d.pid())).collect();
    let window: Vec<_> = sub.all().into_iter().skip(mark).collect();
    let mut by_kind: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for m in &window {
        let kind = match m.topic.split('/').nth(2).unwrap_or_default() {
            "alerts" => "alerts",
            "evidence" => "evidence",
            "heartbeat" => "heartbeat",
            _ => "other",
        };
        let e = by_kind.entry(kind).or_default();
        e.0 += 1;
        e.1 += m.payload.len();
    }
    let heartbeats: BTreeSet<String> = window.iter().filter(|m| m.topic.ends_with("/heartbeat")).map(|m| device_of(&m.topic)).collect();
    assert_eq!(heartbeats, ids, "heartbeats of every box in the window");

    // every box stops at once (SIGTERM: the evidence workers end open events, the link flushes for
    // up to 3 s); an alert the flush did not get out waits in the outbox for the next run
    let stop_all = |daemons: &mut Vec<Daemon>| {
        for d in daemons.iter() {
            assert!(std::process::Command::new("kill").args(["-TERM", &d.pid().to_string()]).status().unwrap().success());
        }
        for d in daemons.iter_mut() {
            let st = d.wait_exit(Duration::from_secs(60)).expect("a daemon exits within 60 s of SIGTERM");
            assert!(st.success(), "{st}");
        }
        daemons.clear();
    };
    stop_all(&mut daemons);
    std::thread::sleep(Duration::from_secs(2));
    let received = || {
        let mut seqs: BTreeMap<String, BTreeSet<u64>> = BTreeMap::new();
        for m in sub.all().iter().filter(|m| m.topic.ends_with("/alerts")) {
            seqs.entry(device_of(&m.topic)).or_default().insert(m.json()["device_seq"].as_u64().unwrap());
        }
        seqs
    };
    let left_in = |i: usize| -> Vec<u64> {
        std::fs::read_dir(dirs[i].path().join("state/outbox"))
            .unwrap()
            .filter_map(|e| hawkeye::outbox::read_message_file(&e.ok()?.path()))
            .filter(|e| e.topic.ends_with("/alerts"))
            .map(|e| serde_json::from_slice::<serde_json::Value>(&e.payload).unwrap()["device_seq"].as_u64().unwrap())
            .collect()
    };
    // what each box raised is what the broker got plus what waits in its outbox, without a gap
    let seqs = received();
    let mut waiting: BTreeMap<usize, Vec<u64>> = BTreeMap::new();
    for i in 0..BOXES {
        let id = format!("box-{i:02}");
        let left = left_in(i);
        let all: BTreeSet<u64> = seqs[&id].iter().copied().chain(left.iter().copied()).collect();
        let hi = *all.last().unwrap();
        assert_eq!(all, (1..=hi).collect::<BTreeSet<u64>>(), "{id}: alerts missing from 1..={hi} (received {:?}, in the outbox {left:?})", seqs[&id]);
        if !left.is_empty() {
            // why the stop's flush left them: the daemon's own shutdown lines
            let log = std::fs::read_to_string(dirs[i].path().join("daemon.log")).unwrap_or_default();
            let why: Vec<&str> = log.lines().filter(|l| l.contains("shutdown") || l.contains("mqtt:") || l.contains("hawkeye stopped")).collect();
            println!("fleet: {id} kept {} alert(s); its shutdown:\n  {}", left.len(), why[why.len().saturating_sub(6)..].join("\n  "));
            waiting.insert(i, left);
        }
    }
    // the boxes that kept some start again and deliver them
    let restarted = waiting.len();
    for i in waiting.keys() {
        daemons.push(Daemon::start_logged(&dirs[*i].path().join("hawkeye.toml"), &dirs[*i].path().join("daemon2.log")));
    }
    let t1 = Instant::now();
    while waiting.iter().any(|(i, left)| left.iter().any(|s| !received()[&format!("box-{i:02}")].contains(s))) {
        assert!(t1.elapsed() < Duration::from_secs(120), "the restarted boxes did not deliver what waited in their outboxes: {waiting:?}");
        std::thread::sleep(Duration::from_millis(500));
    }
    stop_all(&mut daemons);
    let total: usize = received().values().map(BTreeSet::len).sum();
    println!("fleet: {} alerts waited in {restarted} outboxes after the stop and were delivered by the next run", waiting.values().map(Vec::len).sum::<usize>());
    let per_cam = |kind: &str| by_kind.get(kind).map_or((0.0, 0.0), |(n, b)| (*n as f64 / secs / BOXES as f64, *b as f64 / secs / BOXES as f64));
    let (all_n, all_b) = by_kind.values().fold((0usize, 0usize), |a, (n, b)| (a.0 + n, a.1 + b));
    println!("fleet: {BOXES} daemons × 1 camera, {total} alerts in all, every one delivered (no device_seq gap, outboxes empty)");
    println!(
        "fleet: broker CPU {broker_cpu:.1} % of one core over {secs:.0} s; daemon RSS {:.0}–{:.0} MB (mean {:.0})",
        rss.iter().cloned().fold(f64::MAX, f64::min),
        rss.iter().cloned().fold(0.0, f64::max),
        rss.iter().sum::<f64>() / rss.len() as f64
    );
    for kind in ["alerts", "evidence", "heartbeat", "other"] {
        let (n, b) = per_cam(kind);
        println!("fleet: per camera {kind}: {n:.3} msg/s, {:.0} B/s", b);
    }
    println!("fleet: per camera total: {:.3} msg/s, {:.0} B/s", all_n as f64 / secs / BOXES as f64, all_b as f64 / secs / BOXES as f64);
}
