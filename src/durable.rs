//! Crash-safe file writes shared by the outbox, the evidence store and the sealer.

use std::fs;
use std::io::{self, Write};
use std::path::Path;

/// Writes `bytes` to `path` completely and durably: to `<path>.tmp` first (extension replaced),
/// fsync'd, then renamed into place, so a crash leaves either the whole file or none of it.
pub fn write_file(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    fs::rename(&tmp, path)
}
