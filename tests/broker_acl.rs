//! Broker refusals (issue 13: an ACL-refused publish was PubAcked by the MQTT 3.1.1 broker and
//! taken as delivered; 0 of 4 alerts arrived, no warning). mosquitto with a password file and
//! an ACL under which the device may read its commands but publish nothing: the daemon reports
//! it (`/healthz` 503, metric) and keeps its alerts in the outbox; once the ACL is fixed and
//! mosquitto reloads it (SIGHUP), they arrive. Real mosquitto, real `hawkeye run`, real model.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::config::{http_get, telemetry_port};
use common::daemon::Daemon;
use common::mqtt::Subscriber;
use common::process::Proc;
use hawkeye::outbox::{read_message_file, Entry};

const LONG: Duration = Duration::from_secs(120);
const ALERTS: &str = "hawkeye/test-box/alerts";

fn outbox_alerts(state: &Path) -> Vec<Entry> {
    let mut v: Vec<Entry> = std::fs::read_dir(state.join("outbox"))
        .map(|rd| rd.filter_map(|e| read_message_file(&e.ok()?.path())).filter(|e| e.topic == ALERTS).collect())
        .unwrap_or_default();
    v.sort_by_key(|e| e.seq);
    v
}

fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let t0 = std::time::Instant::now();
    while !cond() {
        assert!(t0.elapsed() < LONG, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

const STRICT: &str = "user device\ntopic read hawkeye/test-box/cmd/#\n\nuser console\ntopic readwrite #\n";
const FIXED: &str = "user device\ntopic readwrite hawkeye/test-box/#\n\nuser console\ntopic readwrite #\n";

#[test]
fn an_acl_that_drops_the_devices_publishes_holds_the_outbox_until_it_is_fixed() {
    let Some(model) = common::model::yolox_nano("an_acl_that_drops_the_devices_publishes_holds_the_outbox_until_it_is_fixed") else { return };
    let dir = tempfile::tempdir().unwrap();
    let passwd = dir.path().join("passwd");
    for (i, (user, pass)) in [("device", "dev-secret"), ("console", "con-secret")].iter().enumerate() {
        let mut args = vec!["-b"];
        if i == 0 {
            args.insert(0, "-c");
        }
        assert!(Command::new("mosquitto_passwd").args(&args).arg(&passwd).args([user, pass]).status().unwrap().success());
    }
    let acl = dir.path().join("acl");
    std::fs::write(&acl, STRICT).unwrap();
    let port = hawkeye::tools::demo::free_port().unwrap();
    let conf = dir.path().join("mosquitto.conf");
    std::fs::write(
        &conf,
        format!(
            "user root\nlistener {port} 127.0.0.1\nallow_anonymous false\npersistence false\npassword_file {}\nacl_file {}\n",
            passwd.display(),
            acl.display()
        ),
    )
    .unwrap();
    let broker = Proc::spawn(Command::new("mosquitto").arg("-c").arg(&conf).stdout(Stdio::null()).stderr(Stdio::null()));
    wait_until("mosquitto listening", || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());
    let sub = Subscriber::with_auth(port, "hawkeye/test-box/#", "console", "con-secret");

    let camera = common::config::vtest_camera("cam-file") + &common::config::walkway_zone(1.0, 0.5, 2.0);
    let cfg = common::config::write(dir.path(), port, &model, &camera);
    let text = std::fs::read_to_string(&cfg).unwrap().replace("topic_prefix = ", "username = \"device\"\npassword = \"dev-secret\"\ntopic_prefix = ");
    std::fs::write(&cfg, text).unwrap();
    common::config::enable_telemetry(&cfg);
    let daemon = Daemon::start(&cfg);
    let http = telemetry_port(&cfg);
    let state = dir.path().join("state");

    // refused: reported, and the alerts wait in the outbox instead of being acked into the void
    wait_until("/healthz names the refusal", || {
        let (code, body) = http_get(http, "/healthz");
        code == 503 && body.contains("does not deliver what this device publishes")
    });
    let (_, metrics) = http_get(http, "/metrics");
    assert!(metrics.contains("hawkeye_mqtt_acl_refused 1"), "{metrics}");
    assert!(metrics.contains("hawkeye_mqtt_connected 1"), "{metrics}");
    wait_until("three alerts held in the outbox", || outbox_alerts(&state).len() >= 3);
    let held = outbox_alerts(&state);
    assert!(!sub.all().iter().any(|m| m.topic == ALERTS), "an alert got through the strict ACL");

    // the ACL is fixed and reloaded: the next probe echoes and the held alerts arrive
    std::fs::write(&acl, FIXED).unwrap();
    broker.signal("HUP");
    for e in &held {
        sub.wait_for("a held alert", LONG, |m| m.topic == ALERTS && m.payload == e.payload);
    }
    wait_until("/healthz no longer names the refusal", || !http_get(http, "/healthz").1.contains("does not deliver"));
    let (_, metrics) = http_get(http, "/metrics");
    assert!(metrics.contains("hawkeye_mqtt_acl_refused 0"), "{metrics}");
    assert!(metrics.contains("hawkeye_mqtt_connects_total 1"), "delivery resumed without a reconnect: {metrics}");
    assert!(daemon.signal_and_wait("TERM").success());
}
