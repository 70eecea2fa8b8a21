//! The real `hawkeye run` binary as a child process.

use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A running daemon; killed if the test ends (or fails) before it was stopped.
pub struct Daemon(Option<Child>);

impl Daemon {
    /// Starts `hawkeye run CONFIG`; its log goes to the test's stderr.
    pub fn start(config: &Path) -> Daemon {
        Self::spawn(config, Stdio::inherit())
    }

    /// Starts `hawkeye run CONFIG` with its log written to `log`.
    pub fn start_logged(config: &Path, log: &Path) -> Daemon {
        Self::spawn(config, std::fs::File::create(log).unwrap().into())
    }

    fn spawn(config: &Path, stderr: Stdio) -> Daemon {
        let child = Command::new(env!("CARGO_BIN_EXE_hawkeye"))
            .args(["run", config.to_str().unwrap()])
            .env("RUST_LOG", "warn,hawkeye=info")
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("start hawkeye");
        Daemon(Some(child))
    }

    /// True while the process runs.
    pub fn is_running(&mut self) -> bool {
        matches!(self.0.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    /// Sends `signal` (e.g. "TERM", "KILL") and waits for the exit.
    pub fn signal_and_wait(mut self, signal: &str) -> ExitStatus {
        let mut child = self.0.take().unwrap();
        let ok = Command::new("kill").args([&format!("-{signal}"), &child.id().to_string()]).status().unwrap();
        assert!(ok.success());
        let t0 = Instant::now();
        loop {
            if let Some(st) = child.try_wait().unwrap() {
                return st;
            }
            if t0.elapsed() > Duration::from_secs(20) {
                let _ = child.kill();
                let _ = child.wait();
                panic!("hawkeye did not exit within 20 s of SIG{signal}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(c) = self.0.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
