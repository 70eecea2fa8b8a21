//! A small tmpfs mounted for a test (a disk that can be made read-only or full), unmounted on
//! drop. Needs root (CI runs tests as root); elsewhere the caller skips loudly.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A mounted tmpfs.
pub struct Tmpfs {
    pub path: PathBuf,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (e.g. "64m") on `path` (created). `None` after a loud SKIPPED
    /// line when mounting is refused; panics instead when the `CI` environment variable is set.
    pub fn mount(test: &str, path: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(path).unwrap();
        let out = Command::new("mount").args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"]).arg(path).output();
        match out {
            Ok(o) if o.status.success() => Some(Tmpfs { path: path.to_path_buf() }),
            other => {
                let why = match other {
                    Ok(o) => String::from_utf8_lossy(&o.stderr).trim().to_string(),
                    Err(e) => e.to_string(),
                };
                assert!(std::env::var_os("CI").is_none(), "{test}: cannot mount a tmpfs ({why}); CI runs tests as root");
                eprintln!("\n*** SKIPPED {test}: cannot mount a tmpfs ({why}); run as root ***\n");
                None
            }
        }
    }

    /// Remounts read-only (`true`) or read-write.
    pub fn set_read_only(&self, ro: bool) {
        let opt = if ro { "remount,ro" } else { "remount,rw" };
        let st = Command::new("mount").args(["-o", opt]).arg(&self.path).status().unwrap();
        assert!(st.success(), "mount -o {opt} {}", self.path.display());
    }

    /// Fills the file system with `name` until it is full; returns its path.
    pub fn fill(&self, name: &str) -> PathBuf {
        use std::io::Write;
        let p = self.path.join(name);
        let mut f = std::fs::File::create(&p).unwrap();
        let block = vec![0xa5u8; 64 * 1024];
        while f.write_all(&block).is_ok() {}
        // the last partial block, byte by byte in small pieces
        while f.write_all(&block[..512]).is_ok() {}
        let _ = f.sync_all();
        p
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("mount").args(["-o", "remount,rw"]).arg(&self.path).status();
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}
