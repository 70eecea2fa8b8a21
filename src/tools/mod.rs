//! Tools apart from the daemon's stages: `hawkeye bench` (throughput; `capacity`: cameras per
//! box), `demo` (the embedded
//! street scenario or a video through the real daemon), `eval` (scores detections, tracks,
//! events and flood levels on scenarios or real footage) and `synth` (renders scenarios and
//! training sets).

pub mod bench;
pub mod capacity;
pub mod demo;
pub mod eval;
pub mod synth;
