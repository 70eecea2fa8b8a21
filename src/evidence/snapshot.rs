//! Snapshot encoding and the on-disk evidence store.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use image::codecs::jpeg::JpegEncoder;
use image::ExtendedColorType;

/// JPEG quality of snapshots: enough to read a scene, small enough for MQTT.
pub const JPEG_QUALITY: u8 = 85;

/// One encoded, stored snapshot.
#[derive(Clone, Debug)]
pub struct Snapshot {
    pub name: String,
    pub jpeg: Vec<u8>,
    pub sha256: String,
    pub width: u32,
    pub height: u32,
    pub path: PathBuf,
}

/// Encodes packed RGB as JPEG.
pub fn encode_jpeg(rgb: &[u8], width: u32, height: u32) -> Result<Vec<u8>, image::ImageError> {
    let mut out = Vec::with_capacity((width * height / 4) as usize);
    JpegEncoder::new_with_quality(&mut out, JPEG_QUALITY).encode(rgb, width, height, ExtendedColorType::Rgb8)?;
    Ok(out)
}

/// Where evidence files are kept.
#[derive(Clone, Debug)]
pub struct EvidenceStore {
    dir: PathBuf,
}

impl EvidenceStore {
    pub fn new(dir: &Path) -> Self {
        EvidenceStore { dir: dir.to_path_buf() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Encodes and stores `<event_id>/<name>.jpg`, returning the snapshot with its hash.
    pub fn save_jpeg(&self, event_id: &str, name: &str, rgb: &[u8], width: u32, height: u32) -> io::Result<Snapshot> {
        let jpeg = encode_jpeg(rgb, width, height).map_err(io::Error::other)?;
        let sha256 = super::seal::sha256_hex(&jpeg);
        let dir = self.dir.join(event_id);
        fs::create_dir_all(&dir)?;
        let path = dir.join(format!("{name}.jpg"));
        crate::durable::write_file(&path, &jpeg)?;
        Ok(Snapshot { name: name.to_string(), jpeg, sha256, width, height, path })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_snapshot_decodes_and_hash_matches_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = EvidenceStore::new(dir.path());
        let (w, h) = (64u32, 48u32);
        let rgb: Vec<u8> = (0..w * h * 3).map(|i| (i % 251) as u8).collect();
        let s = store.save_jpeg("ev-1", "clean", &rgb, w, h).unwrap();
        let bytes = fs::read(&s.path).unwrap();
        assert_eq!(crate::evidence::seal::sha256_hex(&bytes), s.sha256);
        let img = image::load_from_memory(&bytes).unwrap();
        assert_eq!((img.width(), img.height()), (w, h));
    }
}
