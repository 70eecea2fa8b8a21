//! Dual-stream cameras: whether the sub-stream and the main stream fit together (aspect ratios,
//! the main stream's keyframe interval against the clip ring), judged once both are seen
//! (`check_dual`, the supervisor) or from files (`hawkeye check`, [`super::probe`]).

use std::sync::Mutex;

use super::camera::SourceCtx;

/// Largest difference between the two streams' display aspect ratios before boxes mapped from
/// the sub-stream would land visibly off in the main-stream picture.
pub const MAX_ASPECT_DIFFERENCE: f64 = 0.02;

/// Compares a dual-stream camera's streams once both are known and records what does not fit
/// in the health (logged once at WARN).
pub(crate) fn check_dual(ctx: &SourceCtx, sub_aspect: &Mutex<Option<f64>>) {
    let Some(ring) = &ctx.ring else { return };
    let sub = *sub_aspect.lock().unwrap_or_else(|e| e.into_inner());
    let main = ring.size().filter(|(w, h)| *w > 0 && *h > 0).map(|(w, h)| w as f64 / h as f64);
    for (kind, m) in dual_mismatch(sub, main, ring.keyframe_gap(), ctx.camera.clip_ring()) {
        ctx.health.add_mismatch(kind, m);
    }
}

/// What does not fit between a sub-stream of display aspect `sub`, a main stream of aspect
/// `main`, whose longest keyframe interval seen is `keyframe_gap` seconds, and a clip ring of
/// `ring_s` seconds, as (kind, explanation). Unknown values are not judged.
pub fn dual_mismatch(sub: Option<f64>, main: Option<f64>, keyframe_gap: Option<f64>, ring_s: f64) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    if let (Some(s), Some(m)) = (sub, main) {
        if (s / m - 1.0).abs() > MAX_ASPECT_DIFFERENCE {
            out.push(("aspect", format!(
                "the sub-stream's aspect ratio ({s:.3}) differs from the main stream's ({m:.3}) by more than {:.0} %: boxes mapped from the sub-stream land off in main-stream snapshots; set both streams to the same aspect ratio in the camera",
                MAX_ASPECT_DIFFERENCE * 100.0
            )));
        }
    }
    if let Some(g) = keyframe_gap.filter(|g| *g > ring_s) {
        out.push(("keyframes", format!(
            "the main stream's keyframe interval ({g:.1} s) exceeds clip_ring_s ({ring_s:.1} s): the ring holds no keyframe, so there are no clips or main-stream snapshots; lower the camera's I-frame interval or raise clip_ring_s"
        )));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dual_stream_mismatches_are_explained() {
        // 16:9 main and 640x360 sub: fine; a 4:3 sub is not
        assert!(dual_mismatch(Some(640.0 / 360.0), Some(1920.0 / 1080.0), Some(2.0), 30.0).is_empty());
        assert!(dual_mismatch(Some(704.0 / 396.0), Some(16.0 / 9.0), None, 30.0).is_empty(), "within 2 %");
        let m = dual_mismatch(Some(4.0 / 3.0), Some(16.0 / 9.0), Some(2.0), 30.0);
        assert!(m.len() == 1 && m[0].0 == "aspect" && m[0].1.contains("aspect ratio"), "{m:?}");
        let m = dual_mismatch(None, Some(16.0 / 9.0), Some(40.0), 30.0);
        assert!(m.len() == 1 && m[0].1.contains("keyframe interval (40.0 s) exceeds clip_ring_s (30.0 s)"), "{m:?}");
        assert!(dual_mismatch(None, None, None, 30.0).is_empty());
    }
}
