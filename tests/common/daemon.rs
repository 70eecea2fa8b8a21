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
        Self::spawn_env(config, stderr, &[])
    }

    /// Starts `hawkeye run CONFIG` with extra environment (e.g. `HAWKEYE_FAILPOINTS`); its log
    /// goes to `log`.
    pub fn start_env(config: &Path, log: &Path, env: &[(&str, &str)]) -> Daemon {
        Self::spawn_env(config, std::fs::File::create(log).unwrap().into(), env)
    }

    fn spawn_env(config: &Path, stderr: Stdio, env: &[(&str, &str)]) -> Daemon {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_hawkeye"));
        cmd.args(["run", config.to_str().unwrap()]).env("RUST_LOG", "warn,hawkeye=info").env("NO_COLOR", "1").stdout(Stdio::null()).stderr(stderr);
        for (k, v) in env {
            cmd.env(k, v);
        }
        Daemon(Some(cmd.spawn().expect("start hawkeye")))
    }

    /// Waits (at most `timeout`) for the process to exit by itself; `None` if it still runs.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let t0 = Instant::now();
        while t0.elapsed() < timeout {
            if let Some(st) = self.0.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                self.0 = None;
                return Some(st);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        None
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.0.as_ref().map(|c| c.id()).unwrap_or(0)
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
