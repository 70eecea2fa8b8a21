//! The real-background suite (`tests/scenarios_real/*.toml`) through `hawkeye eval`: goods,
//! bags and puddles composited onto vtest.avi frames 400–794 (never used for training),
//! rendered at test time, decoded by GStreamer, detected by the committed model
//! `models/hawkeye_urban.onnx` in ONNX Runtime, tracked and run through the zone rules. The
//! report is held to issue 14's targets per event kind.

mod common;

use std::path::Path;
use std::process::Command;

use serde_json::Value;

/// Per event kind: at least this many truth events, precision and recall at least this.
const MIN_EVENTS: u64 = 10;
const MIN_EVENT_PR: f64 = 0.95;
/// An alert comes within this many seconds of its due time (start + dwell).
const MAX_ONSET_S: f64 = 2.0;
/// Flood level agreement (%) once flooding zones are driven by the water model.
const MIN_FLOOD_AGREEMENT: f64 = 90.0;
/// Scenarios in which nothing may be alerted.
const NEGATIVES: [&str; 2] = ["r10_negatives_bags_vendors", "r11_negatives_wet_road"];
/// The suite's flood scenario with two puddles that rise and recede twice.
const FLOOD_SCENARIO: &str = "tests/scenarios_real/r07_flood_road.toml";

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

#[test]
fn real_background_suite_meets_event_targets() {
    let _ = common::model::vtest();
    let model = common::model::urban();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    // flooding zones follow the water model (`[water]` in the generated configs); the detector
    // alone has no water class, so without the water model the flood scenarios cannot run
    let water_wired = root.join("models/hawkeye_water.onnx").is_file();
    let suite = tempfile::tempdir().unwrap();
    let mut copied = 0;
    for e in std::fs::read_dir(root.join("tests/scenarios_real")).unwrap() {
        let p = e.unwrap().path();
        let text = std::fs::read_to_string(&p).unwrap();
        if p.extension().is_some_and(|x| x == "toml") && (water_wired || !text.contains("kind = \"flooding\"")) {
            std::fs::write(suite.path().join(p.file_name().unwrap()), text).unwrap();
            copied += 1;
        }
    }
    if !water_wired {
        eprintln!("\n*** flooding NOT EVALUATED: models/hawkeye_water.onnx is absent, so the {} scenarios with flooding zones are left out ***\n", 11 - copied);
    }
    let out = tempfile::tempdir().unwrap();
    let run = Command::new(env!("CARGO_BIN_EXE_hawkeye"))
        .args(["eval", "--scenarios", suite.path().to_str().unwrap(), "--model", model.to_str().unwrap(), "--out", out.path().to_str().unwrap()])
        .current_dir(root)
        .output()
        .expect("run hawkeye eval");
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "eval failed:\n{stdout}\n{}", String::from_utf8_lossy(&run.stderr));
    println!("{stdout}");
    let report: Value = serde_json::from_slice(&std::fs::read(out.path().join("report.json")).unwrap()).unwrap();
    let total = &report["total"];
    let scenarios = report["scenarios"].as_array().unwrap();
    assert_eq!(scenarios.len(), copied, "every scenario evaluated");
    let mut kinds = vec!["out_of_store", "dumping"];
    if water_wired {
        let config = std::fs::read_to_string(out.path().join("r07_flood_road/config.toml")).unwrap();
        assert!(config.contains("[water]"), "the generated config names no water model:\n{config}");
        kinds.push("flooding");
    }
    let mut problems = Vec::new();
    for kind in &kinds {
        let k = total["events"]["kinds"].as_array().unwrap().iter().find(|k| k["kind"] == *kind).unwrap_or_else(|| panic!("no row for {kind}"));
        let n = k["truth"].as_u64().unwrap();
        assert!(n >= MIN_EVENTS, "{kind}: the suite has {n} events, fewer than {MIN_EVENTS}");
        let (p, r) = (f(&k["precision"]), f(&k["recall"]));
        if p < MIN_EVENT_PR || r < MIN_EVENT_PR {
            problems.push(format!("{kind}: precision {p:.2}, recall {r:.2} (TP {} FP {} FN {})", k["tp"], k["fp"], k["fn"]));
        }
    }
    for m in total["events"]["matches"].as_array().unwrap() {
        let e = f(&m["onset_error_s"]);
        if kinds.contains(&m["kind"].as_str().unwrap()) && e.abs() > MAX_ONSET_S {
            problems.push(format!("{} {} onset error {e:+.2} s (due {:.1} s)", m["kind"], m["zone"], f(&m["due_t"])));
        }
    }
    for s in scenarios {
        let name = s["scenario"].as_str().unwrap();
        if NEGATIVES.contains(&name) {
            let alerts: u64 = s["events"]["kinds"].as_array().unwrap().iter().map(|k| k["alerts"].as_u64().unwrap()).sum();
            if alerts > 0 {
                problems.push(format!("negative scenario {name} raised {alerts} alert event(s): {}", s["events"]["false_alarms"]));
            }
        }
    }
    if water_wired {
        let agreement = f(&total["flood"][0]["agreement_pct"]);
        if agreement < MIN_FLOOD_AGREEMENT {
            problems.push(format!("flood level agreement {agreement:.1}% < {MIN_FLOOD_AGREEMENT}%"));
        }
    }
    assert!(problems.is_empty(), "the real-background suite misses its targets:\n  {}", problems.join("\n  "));
}

/// The flood scenarios' truth: one water mask per second at the video's size, the puddles in
/// them where the scenario puts water, and flood events graded on their share of each zone.
#[test]
fn real_flood_truth_has_water_masks() {
    let _ = common::model::vtest();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = tempfile::tempdir().unwrap();
    let run = Command::new(env!("CARGO_BIN_EXE_hawkeye")).args(["synth", FLOOD_SCENARIO, "--out", out.path().to_str().unwrap()]).current_dir(root).output().unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let truth: Value = serde_json::from_slice(&std::fs::read(out.path().join("truth.json")).unwrap()).unwrap();
    let masks = truth["water_masks"].as_array().unwrap();
    assert_eq!(masks.len(), 80, "one mask per second of the 80 s video");
    let wet = |k: usize| {
        let m = image::open(out.path().join(masks[k]["file"].as_str().unwrap())).unwrap().to_luma8();
        assert_eq!(m.dimensions(), (640, 480));
        assert!(m.pixels().all(|p| p.0[0] == 0 || p.0[0] == 255));
        m.pixels().filter(|p| p.0[0] == 255).count()
    };
    // dry at the start, both puddles at 20 s, dry again at 35 s, the largest at 55 s
    assert_eq!(wet(0), 0);
    assert!(wet(20) > 10_000, "{}", wet(20));
    assert_eq!(wet(35), 0);
    assert!(wet(55) > wet(20), "{} vs {}", wet(55), wet(20));
    let floods: Vec<&Value> = truth["events"].as_array().unwrap().iter().filter(|e| e["kind"] == "flooding").collect();
    assert_eq!(floods.len(), 4, "two rises in each of two zones: {floods:?}");
    // no object boxes for water: the detector is not asked to box it
    assert!(truth["frames"].as_array().unwrap().iter().all(|f| f["boxes"].as_array().unwrap().is_empty()));
}
