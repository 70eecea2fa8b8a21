//! Child processes the tests start themselves (a second daemon, a broker with an ACL), with
//! their PID at hand for signals; killed by PID on drop.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

/// A child process killed (by its PID) when dropped.
pub struct Proc(pub Child);

impl Proc {
    pub fn spawn(cmd: &mut Command) -> Proc {
        Proc(cmd.spawn().unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}")))
    }

    pub fn pid(&self) -> u32 {
        self.0.id()
    }

    /// Sends `signal` ("HUP", "TERM", …) by PID.
    pub fn signal(&self, signal: &str) {
        assert!(Command::new("kill").args([&format!("-{signal}"), &self.pid().to_string()]).status().unwrap().success());
    }

    /// True while it runs.
    pub fn is_running(&mut self) -> bool {
        matches!(self.0.try_wait(), Ok(None))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `hawkeye run CONFIG` with stdout and stderr captured, waited for at most `timeout`.
pub fn hawkeye_run_to_end(config: &Path, timeout: Duration) -> Output {
    let child = Command::new(env!("CARGO_BIN_EXE_hawkeye"))
        .args(["run", config.to_str().unwrap()])
        .env("RUST_LOG", "warn,hawkeye=info")
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    // read the pipes while waiting (a full pipe would block the child)
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(timeout) {
        Ok(out) => out.unwrap(),
        Err(_) => {
            let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
            panic!("hawkeye run did not end within {timeout:?}");
        }
    }
}

/// `hawkeye run CONFIG` left running (log to the test's stderr), with its PID.
pub fn hawkeye_run(config: &Path) -> Proc {
    Proc::spawn(
        Command::new(env!("CARGO_BIN_EXE_hawkeye"))
            .args(["run", config.to_str().unwrap()])
            .env("RUST_LOG", "warn,hawkeye=info")
            .env("NO_COLOR", "1")
            .stdout(Stdio::null()),
    )
}
