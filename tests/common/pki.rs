//! Test certificates made with the real openssl: a CA and a server certificate for 127.0.0.1
//! (and localhost) signed by it, in a directory (`ca.crt`, `server.crt`, `server.key`).

use std::path::Path;
use std::process::Command;

/// Runs a command in `dir`, panicking with its stderr when it fails.
pub fn sh(dir: &Path, args: &[&str]) {
    let out = Command::new(args[0]).args(&args[1..]).current_dir(dir).output().expect(args[0]);
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// Writes `ca.crt`/`ca.key` and `server.crt`/`server.key` (SAN IP:127.0.0.1, DNS:localhost).
pub fn make_ca_and_server_cert(dir: &Path) {
    sh(dir, &["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=hawkeye test CA"]);
    sh(dir, &["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost"]);
    std::fs::write(dir.join("san.ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n").unwrap();
    sh(dir, &["openssl", "x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-out", "server.crt", "-days", "2", "-extfile", "san.ext"]);
}
