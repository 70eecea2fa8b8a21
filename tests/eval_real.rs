//! The real-background suite (`tests/scenarios_real/*.toml`) through `hawkeye eval`: goods,
//! bags, puddles, parking cars and crowds of real people (cut out of frames 0–399) composited
//! onto vtest.avi frames 400–794 (never used for training), rendered at test time, decoded by
//! GStreamer, detected by the committed model `models/hawkeye_urban.onnx` in ONNX Runtime,
//! tracked and run through the zone rules. The report is held to floors at the committed models'
//! figures (so a regression fails) and every miss of issue 14's and 16's targets is printed. The
//! targets are NOT met yet (issues 14 and 16 stay open): the models find stalls and bags near the
//! camera, and through zoomed looks some on the far road and car park, but not all, and the water model under-segments puddles and
//! takes a wet road for water once; two of the twelve crowds are missed.

mod common;

use std::path::Path;
use std::process::Command;

use serde_json::Value;

/// Per event kind: at least this many truth events.
const MIN_EVENTS: u64 = 10;
/// Issue 14's targets: precision and recall per kind, onset, flood agreement, mask IoU.
const TARGET_EVENT_PR: f64 = 0.95;
const TARGET_ONSET_S: f64 = 2.0;
const TARGET_FLOOD_AGREEMENT: f64 = 90.0;
const TARGET_WATER_IOU: f64 = 0.8;
/// Floors: (kind, precision, recall) with the committed models and the suite's zoomed looks at
/// its stall, dumping and bin zones (`zoom = true`) at out_of_store (1.0, 0.58–0.67: 7–8 of 12 in
/// two runs; 4 of 12 with `--no-zoom`), dumping (1.0, 0.36–0.45: 4–5 of 11; 4 with `--no-zoom`),
/// flooding (0.80, 0.33; the counts move by about an event from run to run);
/// issue 16: bin_overflow (0.83, 0.5), parking (1.0, 0.91: 10 of 11; the van
/// parked nearest the camera is never detected) and crowd (1.0, 0.83: 10 of 12; two tight
/// groups whose members hide each other are missed), about one event of margin below.
const FLOORS: [(&str, f64, f64); 6] = [("out_of_store", 0.95, 0.5), ("dumping", 0.95, 0.35), ("flooding", 0.75, 0.3), ("bin_overflow", 0.7, 0.4), ("parking", 0.9, 0.8), ("crowd", 0.9, 0.75)];
/// A matched alert comes within this long of its due time (committed: at most 19.0 s late, a bag
/// on the far car park found by a zoomed look only late; missed altogether with `--no-zoom`).
const MAX_ONSET_S: f64 = 22.0;
/// Flood level agreement floor (%) (committed: 60.5 %).
const MIN_FLOOD_AGREEMENT: f64 = 55.0;
/// Scenarios in which nothing may be alerted, and how many alert events each raises today: the
/// wet road (no standing water) raises one flooding event with the committed water model.
const NEGATIVES: [(&str, u64); 4] = [("r10_negatives_bags_vendors", 0), ("r11_negatives_wet_road", 1), ("r16_negatives_traffic", 0), ("r20_negatives_crowd", 0)];
/// Composited persons (crowds) the detector finds at its operating score (committed: 0.85).
const MIN_PERSON_RECALL: f64 = 0.8;
/// The suite's flood scenario with two puddles that rise and recede twice.
const FLOOD_SCENARIO: &str = "tests/scenarios_real/r07_flood_road.toml";

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

#[test]
fn real_background_suite_holds_its_floors_and_reports_missed_targets() {
    let _ = common::model::vtest();
    let model = common::model::urban();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    // flooding zones follow the water model (`[water]` in the generated configs); the detector
    // alone has no water class, so without the water model the flood scenarios cannot run
    let water_wired = root.join("models/hawkeye_water.onnx").is_file();
    let suite = tempfile::tempdir().unwrap();
    let (mut copied, mut all) = (0, 0);
    for e in std::fs::read_dir(root.join("tests/scenarios_real")).unwrap() {
        let p = e.unwrap().path();
        let text = std::fs::read_to_string(&p).unwrap();
        all += usize::from(p.extension().is_some_and(|x| x == "toml"));
        if p.extension().is_some_and(|x| x == "toml") && (water_wired || !text.contains("kind = \"flooding\"")) {
            std::fs::write(suite.path().join(p.file_name().unwrap()), text).unwrap();
            copied += 1;
        }
    }
    if !water_wired {
        eprintln!("\n*** flooding NOT EVALUATED: models/hawkeye_water.onnx is absent, so the {} scenarios with flooding zones are left out ***\n", all - copied);
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
    let mut kinds = vec!["out_of_store", "dumping", "bin_overflow", "parking", "crowd"];
    if water_wired {
        let config = std::fs::read_to_string(out.path().join("r07_flood_road/config.toml")).unwrap();
        assert!(config.contains("[water]"), "the generated config names no water model:\n{config}");
        kinds.push("flooding");
    }
    let mut problems = Vec::new();
    let mut gaps = Vec::new();
    for kind in &kinds {
        let k = total["events"]["kinds"].as_array().unwrap().iter().find(|k| k["kind"] == *kind).unwrap_or_else(|| panic!("no row for {kind}"));
        let n = k["truth"].as_u64().unwrap();
        assert!(n >= MIN_EVENTS, "{kind}: the suite has {n} events, fewer than {MIN_EVENTS}");
        let (p, r) = (f(&k["precision"]), f(&k["recall"]));
        let (_, min_p, min_r) = FLOORS.iter().find(|(k, _, _)| k == kind).unwrap();
        if p < *min_p || r < *min_r {
            problems.push(format!("{kind}: precision {p:.2}, recall {r:.2} below the floors {min_p}, {min_r} (TP {} FP {} FN {})", k["tp"], k["fp"], k["fn"]));
        }
        if p < TARGET_EVENT_PR || r < TARGET_EVENT_PR {
            gaps.push(format!("{kind}: precision {p:.2}, recall {r:.2} (target {TARGET_EVENT_PR})"));
        }
    }
    for m in total["events"]["matches"].as_array().unwrap() {
        let e = f(&m["onset_error_s"]);
        if kinds.contains(&m["kind"].as_str().unwrap()) {
            if e.abs() > MAX_ONSET_S {
                problems.push(format!("{} {} onset error {e:+.2} s (due {:.1} s)", m["kind"], m["zone"], f(&m["due_t"])));
            }
            if e.abs() > TARGET_ONSET_S {
                gaps.push(format!("{} {} onset {e:+.2} s (target ±{TARGET_ONSET_S} s)", m["kind"], m["zone"]));
            }
        }
    }
    for s in scenarios {
        let name = s["scenario"].as_str().unwrap();
        if let Some((_, allowed)) = NEGATIVES.iter().find(|(n, _)| *n == name) {
            let alerts: u64 = s["events"]["kinds"].as_array().unwrap().iter().map(|k| k["alerts"].as_u64().unwrap()).sum();
            if alerts > *allowed {
                problems.push(format!("negative scenario {name} raised {alerts} alert event(s): {}", s["events"]["false_alarms"]));
            }
            if alerts > 0 {
                gaps.push(format!("negative scenario {name} raised {alerts} alert event(s) (target 0)"));
            }
        }
    }
    if water_wired {
        let agreement = f(&total["flood"][0]["agreement_pct"]);
        if agreement < MIN_FLOOD_AGREEMENT {
            problems.push(format!("flood level agreement {agreement:.1}% < {MIN_FLOOD_AGREEMENT}%"));
        }
        if agreement < TARGET_FLOOD_AGREEMENT {
            gaps.push(format!("flood level agreement {agreement:.1}% (target {TARGET_FLOOD_AGREEMENT}%)"));
        }
        let iou = f(&report["water"]["total"]["iou"]);
        if iou < TARGET_WATER_IOU {
            gaps.push(format!("water mask IoU {iou:.3} (target {TARGET_WATER_IOU})"));
        }
    }
    // crowds are real people cut out of the training frames: how many of them the detector
    // finds (recall only: the video's own people have no boxes)
    let person = total["detection"]["classes"].as_array().unwrap().iter().find(|c| c["class"] == "person").expect("composited persons are labelled");
    let person_recall = f(&person["recall"]);
    println!("composited persons: recall {person_recall:.3} ({} of {})", person["tp"], person["gt"]);
    if person_recall < MIN_PERSON_RECALL {
        problems.push(format!("composited persons: recall {person_recall:.3} < {MIN_PERSON_RECALL}"));
    }
    if !gaps.is_empty() {
        eprintln!("\n*** issues 14's and 16's targets NOT met on the real-background suite:\n  {}\n", gaps.join("\n  "));
    }
    assert!(problems.is_empty(), "the real-background suite fell below its floors:\n  {}", problems.join("\n  "));
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
