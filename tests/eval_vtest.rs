//! Real footage through `hawkeye eval`: Debian's vtest.avi street scene with the shared COCO
//! YOLOX-nano and the walkway loitering zone of config/demo.toml. There is no ground truth, so
//! eval reports the alerts and how stable the tracks are (likely ID switches).

mod common;

use std::process::Command;

#[test]
fn vtest_walkway_raises_loitering_with_stable_tracks() {
    if common::model::yolox_nano("vtest_walkway_raises_loitering_with_stable_tracks").is_none() {
        return;
    }
    let _ = common::model::vtest();
    let out = tempfile::tempdir().unwrap();
    let root = env!("CARGO_MANIFEST_DIR");
    let run = Command::new(env!("CARGO_BIN_EXE_hawkeye"))
        .args(["eval", "--config", &format!("{root}/config/demo.toml"), "--out", out.path().to_str().unwrap()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&run.stderr));
    println!("{stdout}");
    assert!(stdout.contains("likely ID switches"), "{stdout}");
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(out.path().join("report.json")).unwrap()).unwrap();
    let r = &report["untruthed"][0];
    // vtest has 795 frames at 10 fps; detect_fps 5 gives about 398
    assert!(r["frames"].as_u64().unwrap() >= 390, "{r}");
    let alerts = r["alerts"].as_array().unwrap();
    assert!(alerts.iter().any(|a| a["state"] == "new" && a["kind"] == "loitering" && a["zone"] == "walkway"), "{alerts:?}");
    let tracks = r["tracks"]["tracks"].as_u64().unwrap();
    let switches = r["tracks"]["likely_id_switches"].as_u64().unwrap();
    assert!(tracks >= 10, "{r}");
    // tracks outlive a few frames, and at most one track in four looks like a broken one
    assert!(r["tracks"]["mean_frames"].as_f64().unwrap() >= 20.0, "{r}");
    assert!(switches * 4 <= tracks, "{switches} likely ID switches over {tracks} tracks");
}
