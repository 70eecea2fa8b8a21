//! MQTT over TLS with a CA and server certificate generated at test time (openssl), and a
//! password file: hawkeye connects and publishes; with a wrong password it explains the refusal,
//! keeps retrying and keeps running. Real mosquitto, real `hawkeye run`.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::daemon::Daemon;
use common::mqtt::Subscriber;
use hawkeye::tools::demo::{free_port, Mosquitto};

/// CA, server certificate for 127.0.0.1 signed by it, and a password file for hawkeye/secret.
fn make_pki(dir: &Path) {
    common::pki::make_ca_and_server_cert(dir);
    common::pki::sh(dir, &["mosquitto_passwd", "-b", "-c", "passwd", "hawkeye", "secret"]);
}

/// A broker with a TLS listener (for hawkeye) and a plain one (for the test's subscriber),
/// both requiring the password.
fn tls_broker(pki: &Path) -> (Mosquitto, u16) {
    let plain = free_port().unwrap();
    let conf = format!(
        "cafile {p}/ca.crt\ncertfile {p}/server.crt\nkeyfile {p}/server.key\nlistener {plain} 127.0.0.1\nallow_anonymous false\npassword_file {p}/passwd\npersistence false\n",
        p = pki.display()
    );
    (Mosquitto::start_with(free_port().unwrap(), &conf).unwrap(), plain)
}

fn config(dir: &Path, tls_port: u16, pki: &Path, password: &str, model: &Path) -> std::path::PathBuf {
    let path = common::config::write(dir, tls_port, model, &common::config::vtest_camera("cam-file"));
    let text = std::fs::read_to_string(&path).unwrap().replace(
        &format!("url = \"mqtt://127.0.0.1:{tls_port}\""),
        &format!(
            "url = \"mqtts://127.0.0.1:{tls_port}\"\nca_file = \"{}/ca.crt\"\nusername = \"hawkeye\"\npassword = \"{password}\"",
            pki.display()
        ),
    );
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn connects_over_tls_with_password() {
    let Some(model) = common::model::yolox_nano("connects_over_tls_with_password") else { return };
    let pki = tempfile::tempdir().unwrap();
    make_pki(pki.path());
    let (broker, plain) = tls_broker(pki.path());
    let sub = Subscriber::with_auth(plain, "hawkeye/#", "hawkeye", "secret");
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), broker.port, pki.path(), "secret", &model);
    let check = Command::new(env!("CARGO_BIN_EXE_hawkeye")).args(["check", cfg.to_str().unwrap()]).output().unwrap();
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stderr));
    let daemon = Daemon::start(&cfg);
    sub.wait_for("status online over TLS", Duration::from_secs(60), |m| m.topic == "hawkeye/test-box/status" && m.payload == b"online");
    let hb = sub.wait_for("a heartbeat over TLS", Duration::from_secs(60), |m| m.topic == "hawkeye/test-box/heartbeat");
    assert!(hb.json()["mqtt"]["connects"].as_u64().unwrap() >= 1);
    assert!(daemon.signal_and_wait("TERM").success());
}

#[test]
fn a_wrong_password_is_explained_retried_and_survived() {
    let Some(model) = common::model::yolox_nano("a_wrong_password_is_explained_retried_and_survived") else { return };
    let pki = tempfile::tempdir().unwrap();
    make_pki(pki.path());
    let (broker, _plain) = tls_broker(pki.path());
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), broker.port, pki.path(), "wrong", &model);
    let log = dir.path().join("hawkeye.log");
    let mut daemon = Daemon::start_logged(&cfg, &log);
    let t0 = std::time::Instant::now();
    loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let refusals = text.matches("bad user name or password").count();
        if refusals >= 2 {
            break;
        }
        assert!(daemon.is_running(), "hawkeye exited on a wrong password:\n{text}");
        assert!(t0.elapsed() < Duration::from_secs(60), "no clear, retried refusal in the log:\n{text}");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(daemon.is_running());
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!text.contains("panicked"), "{text}");
    assert!(daemon.signal_and_wait("TERM").success());
}
