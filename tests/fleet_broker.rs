//! A city of boxes on real brokers (issue 18), with the files in `deploy/fleet/` as they are
//! shipped (paths and ports substituted): mosquitto `central.conf`, `site.conf` (bridged to the
//! central broker) and the per-device `acl`; every box identified by a TLS client certificate
//! whose CN is its device id, made by `deploy/fleet/device-cert.sh` with a CA made by openssl.
//!
//! - A box on the site broker; the site's uplink (a TCP link the test cuts) is down for a minute
//!   while alerts are raised; afterwards every one of them is at the central subscriber, in
//!   order, repeats only of the same message; a command sent from the centre reaches the box.
//! - A box can publish only as itself and read only its own commands; a daemon that claims
//!   another id than its certificate's is refused by the broker, and says so (`/healthz`,
//!   metric) instead of losing its alerts (they wait in its outbox).

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::config::{enable_telemetry, http_get, telemetry_port};
use common::daemon::Daemon;
use common::mqtt::{alert_key, check_alerts_in_order, Subscriber};
use common::proxy::Link;
use hawkeye::tools::demo::{free_port, Mosquitto};

const LONG: Duration = Duration::from_secs(180);
const ALERTS: &str = "hawkeye/test-box/alerts";
const CONSOLE_PASSWORD: &str = "console-secret";
/// How long the site's uplink is down.
const OUTAGE: Duration = Duration::from_secs(60);

fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !cond() {
        assert!(t0.elapsed() < LONG, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn fleet_file(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/fleet").join(name)
}

/// The city's CA, a broker certificate for 127.0.0.1 (used as central.crt and site.crt), device
/// certificates for `ids` made with deploy/fleet/device-cert.sh, the bridge's (site-01), the
/// shipped ACL, and a password for the console on the brokers' plain test listener.
fn pki(ids: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    common::pki::make_ca_and_server_cert(p);
    for name in ["central", "site"] {
        std::fs::copy(p.join("server.crt"), p.join(format!("{name}.crt"))).unwrap();
        std::fs::copy(p.join("server.key"), p.join(format!("{name}.key"))).unwrap();
    }
    let script = fleet_file("device-cert.sh");
    for id in ids.iter().chain(["site-01"].iter()) {
        let out = Command::new("bash").arg(&script).args([id, p.to_str().unwrap(), "ca.crt", "ca.key"]).current_dir(p).output().unwrap();
        assert!(out.status.success(), "device-cert.sh {id}: {}", String::from_utf8_lossy(&out.stderr));
        let subject = Command::new("openssl").args(["x509", "-noout", "-subject", "-in", &format!("{id}.crt")]).current_dir(p).output().unwrap();
        assert!(String::from_utf8_lossy(&subject.stdout).contains(&format!("CN = {id}")), "{}", String::from_utf8_lossy(&subject.stdout));
    }
    std::fs::copy(p.join("site-01.crt"), p.join("bridge.crt")).unwrap();
    std::fs::copy(p.join("site-01.key"), p.join("bridge.key")).unwrap();
    std::fs::copy(fleet_file("acl"), p.join("acl")).unwrap();
    common::pki::sh(p, &["mosquitto_passwd", "-b", "-c", "passwd", "console", CONSOLE_PASSWORD]);
    dir
}

/// A broker from the shipped `file` (central.conf or site.conf): its TLS listener on `tls_port`,
/// a plain listener for the test's console (password) on the returned broker's port, the
/// bridge (site.conf) dialling 127.0.0.1:`uplink`.
fn broker(file: &str, pki: &Path, tls_port: u16, uplink: Option<u16>, persist: &Path) -> Mosquitto {
    let mut text = std::fs::read_to_string(fleet_file(file)).unwrap();
    for (from, to) in [
        ("/etc/mosquitto/hawkeye/".to_string(), format!("{}/", pki.display())),
        ("/var/lib/mosquitto/".to_string(), format!("{}/", persist.display())),
        ("listener 8883".to_string(), format!("listener {tls_port} 127.0.0.1")),
        ("address central.city.example:8883".to_string(), format!("address 127.0.0.1:{}", uplink.unwrap_or(0))),
        // the shipped back-off reaches 60 s; the test waits less for the bridge to come back
        ("restart_timeout 2 60".to_string(), "restart_timeout 1 5".to_string()),
    ] {
        assert!(text.contains(&from) || from.starts_with("address") || from.starts_with("restart"), "{file} has no {from:?}");
        text = text.replace(&from, &to);
    }
    // the password file serves the plain listener the test's console uses; boxes use certificates
    let conf = format!("password_file {}/passwd\nlog_dest file {}/mosquitto.log\nlog_type all\n{text}", pki.display(), persist.display());
    Mosquitto::start_with(free_port().unwrap(), &conf).unwrap_or_else(|e| panic!("{file}: {e:#}"))
}

/// Config of device `test-box` on the broker's TLS port with the certificate of `identity`.
fn daemon_config(dir: &Path, tls_port: u16, pki: &Path, identity: &str, model: &Path) -> PathBuf {
    let camera = common::config::vtest_camera("cam-file") + &common::config::walkway_zone(1.0, 0.5, 2.0);
    let path = common::config::write(dir, tls_port, model, &camera);
    let text = std::fs::read_to_string(&path).unwrap().replace(
        &format!("url = \"mqtt://127.0.0.1:{tls_port}\""),
        &format!(
            "url = \"mqtts://127.0.0.1:{tls_port}\"\nca_file = \"{p}/ca.crt\"\nclient_cert = \"{p}/{identity}.crt\"\nclient_key = \"{p}/{identity}.key\"",
            p = pki.display()
        ),
    );
    std::fs::write(&path, text).unwrap();
    enable_telemetry(&path);
    path
}

fn alerts(sub: &Subscriber) -> Vec<serde_json::Value> {
    sub.all().iter().filter(|m| m.topic == ALERTS).map(|m| m.json()).collect()
}

#[test]
fn alerts_raised_while_the_site_uplink_is_down_for_a_minute_reach_the_centre_in_order() {
    let Some(model) = common::model::yolox_nano("alerts_raised_while_the_site_uplink_is_down_for_a_minute_reach_the_centre_in_order") else { return };
    let pki = pki(&["test-box"]);
    let (central_tls, site_tls) = (free_port().unwrap(), free_port().unwrap());
    let (central_state, site_state) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let central = broker("central.conf", pki.path(), central_tls, None, central_state.path());
    let mut uplink = Link::start(central_tls);
    let site = broker("site.conf", pki.path(), site_tls, Some(uplink.port), site_state.path());
    let at_centre = Subscriber::with_auth(central.port, "hawkeye/test-box/#", "console", CONSOLE_PASSWORD);
    let at_site = Subscriber::with_auth(site.port, ALERTS, "console", CONSOLE_PASSWORD);
    let dir = tempfile::tempdir().unwrap();
    let cfg = daemon_config(dir.path(), site_tls, pki.path(), "test-box", &model);
    let daemon = Daemon::start_logged(&cfg, &dir.path().join("daemon.log"));
    at_centre.wait_for("a first alert at the centre, over the bridge", LONG, |m| m.topic == ALERTS);

    // a command from the centre reaches the box through the bridge, and its answer comes back
    let publish = |topic: &str, payload: &str| {
        let st = Command::new("mosquitto_pub")
            .args(["-h", "127.0.0.1", "-p", &central.port.to_string(), "-u", "console", "-P", CONSOLE_PASSWORD, "-q", "1", "-t", topic, "-m", payload])
            .status()
            .unwrap();
        assert!(st.success());
    };
    publish("hawkeye/test-box/cmd/snapshot", r#"{"camera_id":"cam-file","request_id":"from-centre-1"}"#);
    let result = at_centre.wait_for("the command's result at the centre", LONG, |m| m.topic == "hawkeye/test-box/cmd_result" && m.json()["request_id"] == "from-centre-1");
    assert_eq!(result.json()["ok"], true, "{}", result.json());

    // the uplink goes down for a minute; the box goes on raising alerts into the site broker
    uplink.cut();
    let (at_centre_before, at_site_before) = (alerts(&at_centre).len(), alerts(&at_site).len());
    std::thread::sleep(OUTAGE);
    let raised_during: Vec<serde_json::Value> = alerts(&at_site);
    let outage_alerts = raised_during.len() - at_site_before;
    // at most one already on its way to the subscriber when the link was cut
    assert!(alerts(&at_centre).len() <= at_centre_before + 1, "alerts crossed a cut link");
    uplink.restore();
    let restored = Instant::now();
    let want: BTreeSet<_> = raised_during.iter().map(alert_key).collect();
    while !want.is_subset(&alerts(&at_centre).iter().map(alert_key).collect()) {
        if restored.elapsed() > LONG {
            // the brokers' own account of the bridge, and the box's
            for (n, d) in [("central", central_state.path()), ("site", site_state.path())] {
                let log = std::fs::read_to_string(d.join("mosquitto.log")).unwrap_or_default();
                let lines: Vec<&str> = log.lines().filter(|l| !l.contains("PING") && !l.contains("PUBACK")).collect();
                eprintln!("=== {n} broker, last lines ===\n{}", lines[lines.len().saturating_sub(80)..].join("\n"));
            }
            eprintln!("=== daemon ===\n{}", std::fs::read_to_string(dir.path().join("daemon.log")).unwrap_or_default());
            panic!("alerts raised during the outage never reached the centre");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let caught_up_s = restored.elapsed().as_secs_f64();
    // in the order they were raised, repeats only of the same message
    let (distinct, repeats) = check_alerts_in_order(alerts(&at_centre));
    assert!(outage_alerts >= 3, "only {outage_alerts} alerts raised during the outage");
    println!(
        "bridge: uplink down {} s; {outage_alerts} alerts raised meanwhile, all at the centre {caught_up_s:.1} s after it came back; {} alerts in all, {repeats} repeats",
        OUTAGE.as_secs(),
        distinct
    );
    assert!(daemon.signal_and_wait("TERM").success());
}

#[test]
fn a_box_publishes_and_reads_only_as_itself_and_a_refused_box_says_so() {
    let Some(model) = common::model::yolox_nano("a_box_publishes_and_reads_only_as_itself_and_a_refused_box_says_so") else { return };
    let pki = pki(&["box-a", "box-b"]);
    let tls = free_port().unwrap();
    let state = tempfile::tempdir().unwrap();
    let central = broker("central.conf", pki.path(), tls, None, state.path());
    let console = Subscriber::with_auth(central.port, "hawkeye/#", "console", CONSOLE_PASSWORD);
    let p = pki.path();
    let as_box = |id: &str| -> Vec<String> {
        ["-h", "127.0.0.1", "-p", &tls.to_string(), "--cafile", "ca.crt", "--cert", &format!("{id}.crt"), "--key", &format!("{id}.key"), "-q", "1"].iter().map(|s| s.to_string()).collect()
    };
    let pub_as = |id: &str, topic: &str, msg: &str| {
        let out = Command::new("mosquitto_pub").args(as_box(id)).args(["-t", topic, "-m", msg]).current_dir(p).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    };

    // publishing: box-a as box-b is dropped by the broker; as itself it arrives
    pub_as("box-a", "hawkeye/box-b/alerts", "{\"forged\":true}");
    pub_as("box-a", "hawkeye/box-a/alerts", "{\"marker\":1}");
    console.wait_for("box-a's own alert", LONG, |m| m.topic == "hawkeye/box-a/alerts");
    assert!(console.all().iter().all(|m| m.topic != "hawkeye/box-b/alerts"), "box-a published as box-b");

    // reading: box-a subscribes to both boxes' commands and gets only its own
    let mut sub = Command::new("mosquitto_sub")
        .args(as_box("box-a"))
        .args(["-v", "-C", "3", "-W", "60", "-t", "hawkeye/box-b/cmd/#", "-t", "hawkeye/box-a/cmd/#"])
        .current_dir(p)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while sub.try_wait().unwrap().is_none() {
        assert!(t0.elapsed() < LONG, "box-a never got three of its commands");
        for b in ["box-b", "box-a"] {
            let st = Command::new("mosquitto_pub")
                .args(["-h", "127.0.0.1", "-p", &central.port.to_string(), "-u", "console", "-P", CONSOLE_PASSWORD, "-q", "1"])
                .args(["-t", &format!("hawkeye/{b}/cmd/ack"), "-m", &format!("{{\"event_id\":\"e-{b}\"}}")])
                .status()
                .unwrap();
            assert!(st.success());
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    let got = String::from_utf8(sub.wait_with_output().unwrap().stdout).unwrap();
    let lines: Vec<&str> = got.lines().collect();
    assert_eq!(lines.len(), 3, "{got}");
    assert!(lines.iter().all(|l| l.starts_with("hawkeye/box-a/cmd/ack ")), "box-a read another box's commands:\n{got}");

    // a daemon claiming device id test-box with box-a's certificate: refused, reported, kept
    let dir = tempfile::tempdir().unwrap();
    let cfg = daemon_config(dir.path(), tls, p, "box-a", &model);
    let daemon = Daemon::start_logged(&cfg, &dir.path().join("daemon.log"));
    let port = telemetry_port(&cfg);
    wait_until("/healthz naming the refusal", || {
        let (code, body) = http_get(port, "/healthz");
        code == 503 && body.contains("does not deliver what this device publishes")
    });
    let (_, metrics) = http_get(port, "/metrics");
    assert!(metrics.lines().any(|l| l == "hawkeye_mqtt_acl_refused 1"), "{metrics}");
    wait_until("alerts kept in the outbox", || {
        std::fs::read_dir(dir.path().join("state/outbox")).unwrap().filter_map(|e| hawkeye::outbox::read_message_file(&e.ok()?.path())).any(|e| e.topic == ALERTS)
    });
    assert!(console.all().iter().all(|m| !m.topic.starts_with("hawkeye/test-box/")), "the broker let box-a publish as test-box");
    let log = std::fs::read_to_string(dir.path().join("daemon.log")).unwrap();
    assert!(log.contains("ACL"), "the daemon's log does not say why nothing is delivered:\n{log}");
    assert!(daemon.signal_and_wait("TERM").success());
}
