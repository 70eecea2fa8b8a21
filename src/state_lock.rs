//! One daemon per `state_dir`: two instances on one directory would share an outbox, kick each
//! other off the broker (same client id) and raise every alert twice. The lock is an exclusive
//! `flock` on `state_dir/hawkeye.lock`, held for the life of the process (the kernel drops it
//! when the process dies, even on SIGKILL, so a stale file never blocks a restart). The file
//! names the holder (pid, host, start time) for the refusal message.

use std::fs;
use std::io::{Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// The held lock; released when dropped (or when the process exits).
#[derive(Debug)]
pub struct StateLock {
    file: fs::File,
    path: PathBuf,
}

/// Name of the lock file inside `state_dir`.
pub const LOCK_FILE: &str = "hawkeye.lock";

impl StateLock {
    /// Takes the lock on `state_dir` (created if missing), or explains who holds it.
    pub fn acquire(state_dir: &Path) -> Result<StateLock, String> {
        fs::create_dir_all(state_dir).map_err(|e| format!("cannot create state_dir {}: {e}", state_dir.display()))?;
        let path = state_dir.join(LOCK_FILE);
        let mut file = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        // SAFETY: flock on a descriptor this function owns; no memory is passed.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            let err = std::io::Error::last_os_error();
            if err.raw_os_error() != Some(libc::EWOULDBLOCK) {
                return Err(format!("cannot lock {}: {err}", path.display()));
            }
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            return Err(format!(
                "state_dir {} is in use by {}; stop it or use another device.state_dir",
                state_dir.display(),
                describe(holder.trim())
            ));
        }
        let host = hostname();
        let line = format!("hawkeye pid {} on host {host} since {}\n", std::process::id(), crate::publish::rfc3339(chrono::Utc::now()));
        let written = file.set_len(0).and_then(|()| file.rewind()).and_then(|()| file.write_all(line.as_bytes())).and_then(|()| file.sync_all());
        if let Err(e) = written {
            // the lock holds anyway; only the holder's description is missing
            tracing::warn!("cannot write {}: {e}", path.display());
        }
        Ok(StateLock { file, path })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for StateLock {
    fn drop(&mut self) {
        // the description would be stale; the file itself stays (removing it would race with a
        // newcomer that already opened it)
        let _ = self.file.set_len(0);
        // SAFETY: unlocks the descriptor this struct owns.
        unsafe { libc::flock(self.file.as_raw_fd(), libc::LOCK_UN) };
    }
}

fn describe(holder: &str) -> String {
    if holder.is_empty() {
        "another hawkeye (it has not written its pid yet)".into()
    } else {
        holder.to_string()
    }
}

fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into buf.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "?".into();
    }
    let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_with_the_first_ones_pid_until_it_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let first = StateLock::acquire(&state).unwrap();
        let text = fs::read_to_string(first.path()).unwrap();
        assert!(text.contains(&format!("pid {}", std::process::id())), "{text}");
        // flock locks belong to the open file description: a second open in this process
        // conflicts just like another process would
        let err = StateLock::acquire(&state).unwrap_err();
        assert!(err.contains(&format!("hawkeye pid {} on host", std::process::id())), "{err}");
        assert!(err.contains("use another device.state_dir"), "{err}");
        drop(first);
        let again = StateLock::acquire(&state).unwrap();
        drop(again);
    }
}
