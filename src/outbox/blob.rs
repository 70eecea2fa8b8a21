//! Payloads of any size through the outbox: anything larger than the MQTT payload limit
//! (`mqtt.max_payload_kb`) is split into chunks, each its own outbox entry (so RAM stays bounded
//! and a restart resumes mid-blob).
//!
//! Topic scheme, for a blob meant for topic `T` (e.g. `{prefix}/{device}/evidence/{event_id}/clip`):
//! - small enough: one message on `T` itself;
//! - larger: first a JSON index on `T/index`
//!   `{"topic": T, "bytes": 20000000, "sha256": "…", "chunks": 77, "chunk_bytes": 262144,
//!   "chunk_topic": "T/chunk/{i}"}`, then the chunks on `T/chunk/0` … `T/chunk/{chunks-1}`, in
//!   order, each `chunk_bytes` long except the last.
//!
//! A consumer subscribes to `T` and `T/#`: a message on `T` is the whole blob; an index announces
//! a chunked one, which is complete when every chunk arrived and the sha256 of their
//! concatenation matches. QoS 1 means a chunk may arrive twice (same bytes): keep the last.

use std::io;

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::Outbox;

/// Where a consumer finds a blob that went through the outbox.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BlobRef {
    /// The blob's topic: the whole blob is published here, or (chunked) `{topic}/index` and
    /// `{topic}/chunk/{i}`.
    pub topic: String,
    /// 0 when the blob is one message on `topic`; else the number of chunks.
    pub chunks: u32,
    pub bytes: u64,
    /// Hex sha256 of the whole blob.
    pub sha256: String,
}

/// The JSON published on `{topic}/index` ahead of a chunked blob.
#[derive(Debug, Serialize)]
struct BlobIndex<'a> {
    topic: &'a str,
    bytes: u64,
    sha256: &'a str,
    chunks: u32,
    chunk_bytes: usize,
    chunk_topic: String,
}

/// Topic of chunk `i` of the blob on `topic`.
pub fn chunk_topic(topic: &str, i: u32) -> String {
    format!("{topic}/chunk/{i}")
}

/// Topic of the index of a chunked blob on `topic`.
pub fn index_topic(topic: &str) -> String {
    format!("{topic}/index")
}

/// Queues `bytes` for `topic`, whole when it fits in `max_payload` bytes, else as an index and
/// chunks of `max_payload` bytes. Returns the reference and the seqs of the entries pushed.
pub fn push_blob(outbox: &Outbox, topic: &str, bytes: &[u8], max_payload: usize, retain: bool) -> io::Result<(BlobRef, Vec<u64>)> {
    let max_payload = max_payload.max(1);
    let sha256 = hex::encode(Sha256::digest(bytes));
    if bytes.len() <= max_payload {
        let seq = outbox.push(topic, bytes.to_vec(), retain)?;
        return Ok((BlobRef { topic: topic.to_string(), chunks: 0, bytes: bytes.len() as u64, sha256 }, vec![seq]));
    }
    let chunks = bytes.len().div_ceil(max_payload) as u32;
    let index = BlobIndex {
        topic,
        bytes: bytes.len() as u64,
        sha256: &sha256,
        chunks,
        chunk_bytes: max_payload,
        chunk_topic: format!("{topic}/chunk/{{i}}"),
    };
    let mut seqs = Vec::with_capacity(chunks as usize + 1);
    seqs.push(outbox.push(&index_topic(topic), serde_json::to_vec(&index).map_err(io::Error::other)?, retain)?);
    for (i, part) in bytes.chunks(max_payload).enumerate() {
        seqs.push(outbox.push(&chunk_topic(topic, i as u32), part.to_vec(), retain)?);
    }
    Ok((BlobRef { topic: topic.to_string(), chunks, bytes: bytes.len() as u64, sha256 }, seqs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_blobs_go_whole_and_large_ones_in_described_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let ob = Outbox::open(dir.path()).unwrap();
        let (r, seqs) = push_blob(&ob, "h/d/evidence/e1/before", &[1; 100], 100, false).unwrap();
        assert_eq!((r.chunks, seqs.len()), (0, 1));
        assert_eq!(ob.get(seqs[0]).unwrap().topic, "h/d/evidence/e1/before");

        let blob: Vec<u8> = (0..1050u32).map(|i| (i % 251) as u8).collect();
        let (r, seqs) = push_blob(&ob, "h/d/evidence/e1/clip", &blob, 100, false).unwrap();
        assert_eq!((r.chunks, r.bytes, seqs.len()), (11, 1050, 12));
        let idx = ob.get(seqs[0]).unwrap();
        assert_eq!(idx.topic, "h/d/evidence/e1/clip/index");
        let v: serde_json::Value = serde_json::from_slice(&idx.payload).unwrap();
        assert_eq!((v["chunks"].as_u64(), v["bytes"].as_u64(), v["chunk_bytes"].as_u64()), (Some(11), Some(1050), Some(100)));
        assert_eq!(v["sha256"].as_str().unwrap(), hex::encode(Sha256::digest(&blob)));
        let mut whole = Vec::new();
        for (i, s) in seqs[1..].iter().enumerate() {
            let e = ob.get(*s).unwrap();
            assert_eq!(e.topic, format!("h/d/evidence/e1/clip/chunk/{i}"));
            assert!(e.payload.len() <= 100);
            whole.extend(e.payload);
        }
        assert_eq!(whole, blob);
        assert_eq!(ob.pending_events(), ["e1".to_string()].into_iter().collect());
    }
}
