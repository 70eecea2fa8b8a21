//! The evidence worker's journal: an alert job with pictures is written here, durably, before
//! any evidence is made from it, and removed once its alert and evidence are in the outbox. A
//! crash anywhere in between (saving, masking, sealing, queueing) leaves the record, and the next
//! start does the job again from it, with the same `seq`: at-least-once for every transition,
//! `new` included, never evidence without its alert.
//!
//! One file per job, `<state_dir>/journal/<camera_id>/<device_seq>.job`:
//! `HKJ1`, header length (u32 LE), header JSON, the pictures' JPEG bytes back to back, CRC32 of
//! everything before it (u32 LE). Pictures are stored as JPEG (quality 95): the unmasked frame,
//! as the device keeps it anyway.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::job::{AlertJob, Annotation, ExtraPicture, MarkedBox, Picture};
use crate::publish::Alert;

const MAGIC: &[u8; 4] = b"HKJ1";
/// JPEG quality of journaled pictures (they may become evidence on a replay).
const JOURNAL_JPEG_QUALITY: u8 = 95;

#[derive(Serialize, Deserialize)]
struct PictureHeader {
    name: String,
    width: u32,
    height: u32,
    bytes: usize,
    mark: Option<MarkedBox>,
    #[serde(default)]
    keep_plates: bool,
}

#[derive(Serialize, Deserialize)]
struct Header {
    alert: Alert,
    names: Option<(String, String)>,
    annotation: Annotation,
    /// The frame first (named `frame`) when there is one, then the extra pictures.
    pictures: Vec<PictureHeader>,
}

fn jpeg_of(p: &Picture) -> io::Result<Arc<Vec<u8>>> {
    match p {
        Picture::Jpeg { jpeg, .. } => Ok(jpeg.clone()),
        Picture::Rgb { width, height, rgb } => {
            let mut out = Vec::with_capacity(rgb.len() / 6);
            image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, JOURNAL_JPEG_QUALITY)
                .encode(rgb, *width, *height, image::ExtendedColorType::Rgb8)
                .map_err(io::Error::other)?;
            Ok(Arc::new(out))
        }
    }
}

/// The bytes of a journal record for `job`.
pub fn encode(job: &AlertJob) -> io::Result<Vec<u8>> {
    let mut pictures = Vec::new();
    let mut blobs = Vec::new();
    let all = job.frame.iter().map(|f| ("frame".to_string(), f, None, false)).chain(job.extra.iter().map(|e| (e.name.clone(), &e.picture, e.mark.clone(), e.keep_plates)));
    for (name, p, mark, keep_plates) in all {
        let jpeg = jpeg_of(p)?;
        let (width, height) = p.size();
        pictures.push(PictureHeader { name, width, height, bytes: jpeg.len(), mark, keep_plates });
        blobs.push(jpeg);
    }
    let header = serde_json::to_vec(&Header { alert: job.alert.clone(), names: job.names.clone(), annotation: job.annotation.clone(), pictures }).map_err(io::Error::other)?;
    let mut b = Vec::with_capacity(12 + header.len() + blobs.iter().map(|j| j.len()).sum::<usize>());
    b.extend_from_slice(MAGIC);
    b.extend_from_slice(&(header.len() as u32).to_le_bytes());
    b.extend_from_slice(&header);
    for j in &blobs {
        b.extend_from_slice(j);
    }
    let crc = crc32fast::hash(&b);
    b.extend_from_slice(&crc.to_le_bytes());
    Ok(b)
}

/// The job a record holds (pictures as JPEG); `None` when it is damaged.
pub fn decode(b: &[u8]) -> Option<AlertJob> {
    if b.len() < 12 || &b[..4] != MAGIC {
        return None;
    }
    let (body, crc) = b.split_at(b.len() - 4);
    if crc32fast::hash(body) != u32::from_le_bytes(crc.try_into().ok()?) {
        return None;
    }
    let hl = u32::from_le_bytes(body[4..8].try_into().ok()?) as usize;
    let header: Header = serde_json::from_slice(body.get(8..8 + hl)?).ok()?;
    let mut at = 8 + hl;
    let mut frame = None;
    let mut extra = Vec::new();
    for (i, p) in header.pictures.into_iter().enumerate() {
        let jpeg = Arc::new(body.get(at..at + p.bytes)?.to_vec());
        at += p.bytes;
        let picture = Picture::Jpeg { width: p.width, height: p.height, jpeg };
        if i == 0 && p.name == "frame" {
            frame = Some(picture);
        } else {
            extra.push(ExtraPicture { name: p.name, picture, mark: p.mark, keep_plates: p.keep_plates });
        }
    }
    (at == body.len()).then_some(AlertJob { alert: header.alert, names: header.names, frame, frame_ts: None, annotation: header.annotation, extra, crops: Vec::new(), search: None })
}

/// A camera's journal directory.
#[derive(Clone, Debug)]
pub struct Journal {
    dir: PathBuf,
}

impl Journal {
    pub fn new(dir: &Path) -> Journal {
        Journal { dir: dir.to_path_buf() }
    }

    /// Writes the record of `job` (numbered by its `device_seq`) durably; returns its path.
    pub fn write(&self, job: &AlertJob) -> io::Result<PathBuf> {
        std::fs::create_dir_all(&self.dir)?;
        let path = self.dir.join(format!("{:020}.job", job.alert.device_seq));
        crate::durable::write_file(&path, &encode(job)?)?;
        Ok(path)
    }

    /// The jobs left by an earlier run, oldest first. Damaged records are moved aside as `.bad`
    /// and reported (their alert cannot be rebuilt).
    pub fn pending(&self) -> Vec<(PathBuf, AlertJob)> {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|d| d.path())
            .filter(|p| p.extension().is_some_and(|e| e == "job"))
            .collect();
        paths.sort();
        let mut out = Vec::new();
        for p in paths {
            match std::fs::read(&p).ok().as_deref().and_then(decode) {
                Some(job) => out.push((p, job)),
                None => {
                    tracing::error!(file = %p.display(), "damaged evidence journal record moved aside: its alert is lost");
                    let _ = std::fs::rename(&p, p.with_extension("bad"));
                }
            }
        }
        out
    }

    /// Removes a record whose job is done.
    pub fn done(&self, path: &Path) {
        if let Err(e) = std::fs::remove_file(path) {
            if e.kind() != io::ErrorKind::NotFound {
                tracing::warn!(file = %path.display(), "cannot remove a done journal record: {e} (its alert will be sent again after a restart)");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job() -> AlertJob {
        let alert: Alert = serde_json::from_value(serde_json::json!({
            "schema_version": "1.1", "event_id": "d-c-z-1", "seq": 1, "device_seq": 42, "state": "new", "reason": null,
            "kind": "dumping", "violation": "v", "severity": "warning", "device_id": "d", "camera_id": "c", "zone_id": "z",
            "location": {"lat": null, "lon": null, "address": ""}, "started_at": "2026-12-01T00:00:00.000Z",
            "updated_at": "2026-12-01T00:00:01.000Z", "dwell_s": 1.0, "level": null, "coverage": null, "objects": [],
            "model": {"name": "m", "sha256": "0"}, "evidence": [], "ack": null, "manifest": null, "prev_hash": null, "signature": null
        }))
        .unwrap();
        let (w, h) = (32u32, 24u32);
        let rgb: Vec<u8> = (0..w * h * 3).map(|i| (i * 7 % 256) as u8).collect();
        AlertJob {
            alert,
            names: Some(("clean".into(), "annotated".into())),
            frame: Some(Picture::Rgb { width: w, height: h, rgb: Arc::new(rgb) }),
            frame_ts: None,
            annotation: Annotation { polygon: vec![(1.0, 2.0), (3.0, 4.0), (5.0, 1.0)], boxes: vec![MarkedBox { bbox: [1.0, 1.0, 5.0, 9.0], label: "person #3".into(), involved: true }] },
            extra: vec![ExtraPicture { name: "before".into(), picture: Picture::Jpeg { width: w, height: h, jpeg: jpeg_of(&Picture::Rgb { width: w, height: h, rgb: Arc::new(vec![9; (w * h * 3) as usize]) }).unwrap() }, mark: None, keep_plates: true }],
            crops: Vec::new(),
            search: None,
        }
    }

    #[test]
    fn a_record_round_trips_and_a_flipped_bit_is_caught() {
        let j = job();
        let b = encode(&j).unwrap();
        let back = decode(&b).unwrap();
        assert_eq!(back.alert, j.alert);
        assert_eq!(back.annotation, j.annotation);
        assert_eq!(back.names, j.names);
        assert_eq!(back.extra.len(), 1);
        assert_eq!(back.extra[0].name, "before");
        // a vehicle crop's plate policy survives a crash
        assert!(back.extra[0].keep_plates);
        let rgb = back.frame.as_ref().unwrap().to_rgb().unwrap();
        assert_eq!(rgb.len(), 32 * 24 * 3);
        for i in [0, 10, b.len() / 2, b.len() - 1] {
            let mut bad = b.clone();
            bad[i] ^= 0x04;
            assert!(decode(&bad).is_none(), "flip at {i} not caught");
        }
        assert!(decode(&b[..b.len() - 1]).is_none());
    }

    #[test]
    fn pending_records_come_back_in_order_and_damaged_ones_are_set_aside() {
        let dir = tempfile::tempdir().unwrap();
        let jn = Journal::new(&dir.path().join("cam"));
        let mut a = job();
        a.alert.device_seq = 9;
        let mut b = job();
        b.alert.device_seq = 10;
        let pb = jn.write(&b).unwrap();
        let pa = jn.write(&a).unwrap();
        let mut c = job();
        c.alert.device_seq = 11;
        let pc = jn.write(&c).unwrap();
        std::fs::write(&pc, b"HKJ1 torn").unwrap();
        let got = jn.pending();
        assert_eq!(got.iter().map(|(_, j)| j.alert.device_seq).collect::<Vec<_>>(), vec![9, 10]);
        assert!(pc.with_extension("bad").exists());
        jn.done(&pa);
        jn.done(&pb);
        assert!(jn.pending().is_empty());
    }
}
