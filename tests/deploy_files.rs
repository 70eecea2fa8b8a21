//! Deployment files are checked where they can be on this machine: the systemd unit with
//! `systemd-analyze verify` (pointed at the real binary), and cross/Cross.toml parsed.

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
