//! Crash-safe file writes shared by the outbox, the evidence store and the sealer.

use std::fs;
use std::io::{self, Write};
use std::path::Path;

/// Writes `bytes` to `path` completely and durably: to `<path>.tmp` first (extension replaced),
/// fsync'd, renamed into place, and the directory fsync'd, so a crash leaves either the whole
/// file or none of it, and a file that was reported written is still there after a power cut.
/// A failed write leaves no `.tmp` behind (on a full disk it would only take more space).
pub fn write_file(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_parts(path, &[bytes])
}

/// [`write_file`] of the concatenation of `parts` (a header, a payload and a checksum written
/// without first copying them into one buffer).
pub fn write_parts(path: &Path, parts: &[&[u8]]) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    let result = (|| {
        let mut f = fs::File::create(&tmp)?;
        for p in parts {
            f.write_all(p)?;
        }
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    // the rename lives in the directory: without this a power cut may undo it
    sync_dir(path.parent().unwrap_or(Path::new(".")))
}

/// Fsyncs a directory, making renames and deletions in it durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    let dir = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
    fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_whole_files_and_leaves_no_temp_on_failure() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.msg");
        write_file(&p, b"hello").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"hello");
        // a path whose parent does not exist cannot be written: an error, and no .tmp
        let bad = dir.path().join("missing/b.msg");
        assert!(write_file(&bad, b"x").is_err());
        assert!(!dir.path().join("missing/b.tmp").exists());
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
