//! Deployment files are checked where they can be on this machine: the systemd unit with
//! `systemd-analyze verify` (pointed at the real binary), and cross/Cross.toml parsed.

mod common;

use std::process::Command;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

#[test]
fn systemd_unit_passes_systemd_analyze_verify() {
    let unit = std::fs::read_to_string(format!("{ROOT}/deploy/hawkeye.service")).unwrap();
    assert!(unit.contains("ExecStart=/usr/bin/hawkeye run /etc/hawkeye/hawkeye.toml"));
    assert!(unit.contains("DynamicUser=yes") && unit.contains("StateDirectory=hawkeye") && unit.contains("Restart=always"));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hawkeye.service");
    std::fs::write(&path, unit.replace("/usr/bin/hawkeye", env!("CARGO_BIN_EXE_hawkeye"))).unwrap();
    let out = Command::new("systemd-analyze")
        .args(["verify", path.to_str().unwrap()])
        .output()
        .expect("systemd-analyze (package systemd, installed by scripts/setup.sh)");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && !err.contains("hawkeye.service:"), "systemd-analyze verify:\n{err}");
}

#[test]
fn cross_toml_parses_and_targets_aarch64() {
    let text = std::fs::read_to_string(format!("{ROOT}/cross/Cross.toml")).unwrap();
    let v: toml::Value = toml::from_str(&text).expect("Cross.toml is valid TOML");
    let target = &v["target"]["aarch64-unknown-linux-gnu"];
    let pre = target["pre-build"].as_array().expect("pre-build steps");
    assert!(pre.iter().any(|s| s.as_str().unwrap().contains("libgstreamer1.0-dev:$CROSS_DEB_ARCH")));
    let env = target["env"]["passthrough"].as_array().unwrap();
    assert!(env.iter().any(|s| s.as_str().unwrap().starts_with("PKG_CONFIG_PATH=/usr/lib/aarch64-linux-gnu")));
}

/// The daemon speaks systemd's notify protocol: READY=1 once running, WATCHDOG=1 from its main
/// loop at half WATCHDOG_USEC, STOPPING=1 on SIGTERM (a real unix datagram socket stands in for
/// systemd).
#[test]
fn daemon_notifies_systemd_ready_watchdog_and_stopping() {
    let Some(model) = common::model::yolox_nano("daemon_notifies_systemd") else { return };
    let broker = common::broker::mosquitto();
    let dir = tempfile::tempdir().unwrap();
    let sock_path = dir.path().join("notify.sock");
    let sock = std::os::unix::net::UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(std::time::Duration::from_secs(60))).unwrap();
    let config = common::config::write(dir.path(), broker.port, &model, &common::config::vtest_camera("cam-sd"));
    let mut child = Command::new(env!("CARGO_BIN_EXE_hawkeye"))
        .args(["run", config.to_str().unwrap()])
        .env("NOTIFY_SOCKET", &sock_path)
        .env("WATCHDOG_USEC", "400000")
        .env("RUST_LOG", "warn")
        .spawn()
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 256];
    while got.iter().filter(|m: &&String| m.as_str() == "WATCHDOG=1").count() < 3 {
        let n = sock.recv(&mut buf).expect("a notification within 60 s");
        got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    assert_eq!(got[0], "READY=1", "READY first: {got:?}");
    let st = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(st.success());
    loop {
        let n = sock.recv(&mut buf).expect("STOPPING=1 after SIGTERM");
        if &buf[..n] == b"STOPPING=1" {
            break;
        }
    }
    assert!(child.wait().unwrap().success());
}
