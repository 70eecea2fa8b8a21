//! Unit tests of the config compiler: typed values, every error at once, type errors with their
//! paths. The model is the repository's own (`models/hawkeye_urban.onnx`: COCO's 80 classes plus
//! goods and garbage).

use std::path::Path;

use chrono::TimeZone;

use super::*;
use crate::rules::ZoneRule;

fn text(zones: &str, rest: &str) -> String {
    format!(
        r#"
[device]
id = "box-1"
[mqtt]
url = "mqtt://127.0.0.1:1883"
[model]
path = "{}/models/hawkeye_urban.onnx"

[[camera]]
id = "cam-a"
url = "rtsp://10.0.0.5/stream"
{zones}
{rest}
"#,
        env!("CARGO_MANIFEST_DIR")
    )
}

fn zone(id: &str, kind: &str, extra: &str) -> String {
    format!(
        "  [[camera.zone]]\n  id = \"{id}\"\n  kind = \"{kind}\"\n  polygon = [[0.1, 0.1], [0.9, 0.1], [0.5, 0.9]]\n  classes = [\"person\", \"goods\", \"garbage\"]\n  dwell_s = 12\n{extra}\n"
    )
}

fn errors(text: &str) -> Vec<String> {
    load_str(text, Path::new("/nonexistent")).expect_err("the config is bad").0
}

#[test]
fn every_zone_kind_compiles_to_its_rule_with_its_parameters() {
    let zones = [
        zone("shop", "out_of_store", "  grace_s = 3"),
        zone("bikes", "occupancy", "  min_count = 4"),
        zone("gate", "loitering", ""),
        zone("road", "flooding", "  yellow_at = 0.2\n  red_at = 0.5\n  smooth_s = 2"),
        zone("corner", "dumping", "  min_score = 0.6\n  schedule = [\"mon-fri 07:00-22:00\"]"),
        zone("bins", "bin_overflow", "  min_count = 2"),
    ]
    .concat();
    let c = load_str(&text(&zones, ""), Path::new("/nonexistent")).unwrap();
    let z = c.zones("cam-a");
    assert_eq!(z.len(), 6);
    assert_eq!(z.iter().map(|z| z.zone.id.as_str()).collect::<Vec<_>>(), ["shop", "bikes", "gate", "road", "corner", "bins"]);
    // rubbish around the bins: the dwell rule (no dumper, no static-foreground check)
    assert!(matches!(&z[5].rule, ZoneRule::Dwell(p) if p.dwell_s == 12.0), "{:?}", z[5].rule);
    assert_eq!(z[5].zone.kind.violation(), "overflowing rubbish bin (垃圾满溢)");
    match &z[0].rule {
        ZoneRule::Dwell(p) => assert_eq!((p.dwell_s, p.grace_s, p.clear_s), (12.0, 3.0, 10.0)),
        other => panic!("out_of_store → {other:?}"),
    }
    assert!(matches!(&z[1].rule, ZoneRule::Dwell(p) if p.dwell_s == 12.0), "{:?}", z[1].rule);
    match &z[2].rule {
        // each person must stay dwell_s; the zone's own presence needs no more
        ZoneRule::Loitering { dwell_s, presence } => assert_eq!((*dwell_s, presence.dwell_s), (12.0, 0.0)),
        other => panic!("loitering → {other:?}"),
    }
    match &z[3].rule {
        ZoneRule::Flooding(p) => assert_eq!((p.yellow_at, p.red_at, p.smooth_s, p.min_duration_s), (0.2, 0.5, 2.0, 10.0)),
        other => panic!("flooding → {other:?}"),
    }
    match &z[4].rule {
        ZoneRule::Dumping(p) => {
            assert_eq!((p.dwell_s, p.min_score), (12.0, 0.6));
            assert_eq!(p.waste_classes, ["person", "goods", "garbage"]);
        }
        other => panic!("dumping → {other:?}"),
    }
    // the polygon and the schedule are typed once, here
    assert!(z[0].polygon.contains(0.5, 0.3) && !z[0].polygon.contains(0.05, 0.8));
    let monday_noon = chrono::FixedOffset::east_opt(8 * 3600).unwrap().with_ymd_and_hms(2026, 11, 23, 12, 0, 0).unwrap().with_timezone(&chrono::Utc);
    assert!(z[4].schedule.is_active(monday_noon) && !z[4].schedule.is_active(monday_noon + chrono::Duration::days(5)));
    assert!(z[0].schedule.is_active(monday_noon + chrono::Duration::days(5)), "no windows: always watched");
    // the raw config stays reachable for ids, URLs and numbers
    assert_eq!(c.device.id, "box-1");
    assert!(c.zones("no-such-camera").is_empty());
}

#[test]
fn quiet_hours_compile_to_a_schedule_and_none_means_never_quiet() {
    let speakers = r#"
[[speaker]]
id = "pole"
kind = "webhook"
url = "http://10.0.0.9/speak"
min_interval_s = 45
quiet_hours = ["mon-sun 22:00-07:00"]
[[speaker]]
id = "loud"
kind = "webhook"
url = "http://10.0.0.10/speak"
"#;
    let c = load_str(&text("", speakers), Path::new("/nonexistent")).unwrap();
    let s = &c.compiled_speakers;
    assert_eq!(s.iter().map(|s| s.cfg.id.as_str()).collect::<Vec<_>>(), ["pole", "loud"]);
    assert_eq!(s[0].gate.min_interval, std::time::Duration::from_secs(45));
    let at = |h| chrono::FixedOffset::east_opt(8 * 3600).unwrap().with_ymd_and_hms(2026, 11, 23, h, 0, 0).unwrap().with_timezone(&chrono::Utc);
    let quiet = s[0].gate.quiet_hours.as_ref().expect("quiet hours given");
    assert!(quiet.is_active(at(23)) && quiet.is_active(at(6)) && !quiet.is_active(at(12)));
    assert_eq!(s[1].gate.quiet_hours, None, "no quiet_hours: never quiet");
}

#[test]
fn type_errors_are_reported_with_their_paths_together_with_every_other_error() {
    let zones = [
        zone("z0", "out_of_store", "  grace_s = \"two\""),
        // dwell_s given twice is a TOML error, so the mistyped one replaces the zone's line
        zone("z1", "occupancy", "  min_count = -1\n  colour = \"red\"").replace("dwell_s = 12", "dwell_s = \"ten\""),
        zone("z2", "flooding", "  yellow_at = 0.5\n  red_at = 0.3"),
    ]
    .concat();
    let rest = r#"
[[speaker]]
id = "pole"
kind = "loudhailer"
url = "http://10.0.0.9/"
[[message]]
id = "m"
text = "请离开"
volume = "loud"
"#;
    let bad = text(&zones, rest).replace("url = \"rtsp://10.0.0.5/stream\"", "url = \"rtsp://10.0.0.5/stream\"\ndetect_fps = \"fast\"\nframe_width = 0");
    let errs = errors(&bad);
    let has = |prefix: &str| errs.iter().filter(|e| e.starts_with(prefix)).count();
    for (prefix, what) in [
        ("camera[0].zone[1].colour: unknown key", "unknown key"),
        ("camera[0].detect_fps: invalid type: string \"fast\"", "camera type error"),
        ("camera[0].zone[0].grace_s: invalid type: string \"two\"", "zone type error"),
        ("camera[0].zone[1].dwell_s: invalid type: string \"ten\"", "required key mistyped"),
        ("camera[0].zone[1].min_count: invalid value: integer `-1`", "out of range"),
        ("speaker[0].kind: unknown variant `loudhailer`", "unknown enum variant"),
        ("message[0].volume: invalid type: string \"loud\"", "message type error"),
        ("camera[0].frame_width: 0 must be in 32..7680", "a check of a part that parsed"),
        ("camera[0].zone[2]: flood levels need", "a check of another zone"),
    ] {
        assert_eq!(has(prefix), 1, "{what}: {prefix:?} once in {errs:#?}");
    }
    // the stand-ins for mistyped values raise nothing of their own
    assert_eq!(has("camera[0].zone[1].min_count"), 1, "{errs:#?}");
    assert_eq!(has("camera[0].detect_fps"), 1, "{errs:#?}");
    assert_eq!(errs.len(), 9, "{errs:#?}");
}

#[test]
fn a_crowd_zone_compiles_to_the_crowd_rule_and_needs_two_persons() {
    let c = load_str(&text(&zone("square", "crowd", "  min_count = 5\n  grace_s = 2"), ""), Path::new("/nonexistent")).unwrap();
    match &c.zones("cam-a")[0].rule {
        ZoneRule::Crowd(p) => assert_eq!((p.dwell_s, p.grace_s), (12.0, 2.0)),
        other => panic!("crowd → {other:?}"),
    }
    // min_count defaults to 1, which is no crowd: said with the place
    let errs = errors(&text(&[zone("ok", "occupancy", ""), zone("square", "crowd", "")].concat(), ""));
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert!(errs[0].starts_with("camera[0].zone[1].min_count: 1 is no crowd"), "{errs:#?}");
}

#[test]
fn a_missing_required_key_is_named_once() {
    let z = zone("z0", "out_of_store", "").replace("  dwell_s = 12\n", "");
    let errs = errors(&text(&z, ""));
    assert_eq!(errs, ["camera[0].zone[0].dwell_s: missing; this key is required"], "{errs:#?}");
    let errs = errors(&text("", "").replace("[mqtt]\nurl = \"mqtt://127.0.0.1:1883\"\n", ""));
    assert_eq!(errs, ["mqtt: missing; this key is required"], "{errs:#?}");
}

#[test]
fn a_table_that_is_not_a_table_stops_the_checks_but_not_the_report() {
    let errs = errors(&format!("camera = 5\n{}", text("", "").replace("[[camera]]\nid = \"cam-a\"\nurl = \"rtsp://10.0.0.5/stream\"\n", "")));
    assert!(errs.iter().any(|e| e.starts_with("camera: must be an array of tables")), "{errs:#?}");
}

#[test]
fn a_syntax_error_stops_at_its_line() {
    let errs = errors("[device]\nid = \"x\"\n[mqtt\nurl = 1\n");
    assert_eq!(errs.len(), 1);
    assert!(errs[0].starts_with("line 3:"), "{errs:?}");
}

#[test]
fn a_zone_or_speaker_compiles_on_its_own() {
    let z: Zone = toml::from_str(&zone("z", "loitering", "").replace("  [[camera.zone]]\n", "")).unwrap();
    assert!(matches!(CompiledZone::from_zone(&z).unwrap().rule, ZoneRule::Loitering { .. }));
    let bad = Zone { schedule: vec!["someday 07:00-08:00".into()], min_count: 0, ..z };
    let errs = CompiledZone::from_zone(&bad).unwrap_err().0;
    assert!(errs.iter().any(|e| e.starts_with("zone.schedule: unknown day")) && errs.iter().any(|e| e.starts_with("zone.min_count")), "{errs:?}");
    let s: SpeakerCfg = toml::from_str("id = \"s\"\nkind = \"webhook\"\nurl = \"http://x/\"\ntimezone = \"Asia/Shanghai\"\nquiet_hours = [\"mon 01:00-02:00\"]\n").unwrap();
    let errs = CompiledSpeaker::new(s, Path::new(".")).unwrap_err().0;
    assert!(errs[0].starts_with("speaker.timezone:"), "{errs:?}");
}

#[test]
fn drone_watches_and_geo_zones_are_read_element_by_element() {
    let drone = r#"
pipeline = "ts_klv"
  [camera.drone]
  telemetry = "klv"
  watch = [{ class = "garbage", kind = "dumping" }, { class = "person", kind = "stall", min_score = "high" }]
  geo_zone = [{ id = "river", polygon = [[29.8, 121.5], [29.9, 121.5], [29.9, 121.6]] }, { id = 7, polygon = [] }]
"#;
    let bad = text("", "").replace("url = \"rtsp://10.0.0.5/stream\"\n", &format!("url = \"rtsp://10.0.0.5/stream\"\n{drone}"));
    let errs = errors(&bad);
    for e in [
        "camera[0].drone.watch[1].kind: unknown variant `stall`",
        "camera[0].drone.watch[1].min_score: invalid type: string \"high\"",
        "camera[0].drone.geo_zone[1].id: invalid type: integer `7`",
        "camera[0].drone.geo_zone[1].polygon: needs at least 3",
    ] {
        assert_eq!(errs.iter().filter(|l| l.starts_with(e)).count(), 1, "{e:?} once in {errs:#?}");
    }
    assert_eq!(errs.len(), 4, "{errs:#?}");
    // the well-formed ones compile
    let good = bad.replace(", { class = \"person\", kind = \"stall\", min_score = \"high\" }", "").replace(", { id = 7, polygon = [] }", "");
    let c = load_str(&good, Path::new("/nonexistent")).unwrap();
    let d = c.cameras[0].drone.as_ref().unwrap();
    assert_eq!((d.watches.len(), d.geo_zones.len(), d.geo_zones[0].id.as_str()), (1, 1, "river"));
}

/// A stand-in water model: any file with a segmentation manifest beside it (the compiler reads
/// manifests only; `hawkeye check` runs the model).
fn water_model(dir: &Path) -> std::path::PathBuf {
    let m = dir.join("w.onnx");
    std::fs::write(&m, b"stand-in").unwrap();
    std::fs::write(
        dir.join("w.toml"),
        "name = 'w'\nkind = 'segmentation'\ninput_width = 416\ninput_height = 416\ncolor = 'bgr'\nletterbox = 'top_left'\nclasses = ['water']\n",
    )
    .unwrap();
    m
}

#[test]
fn a_water_model_drives_flooding_zones_and_is_checked() {
    let dir = tempfile::tempdir().unwrap();
    let w = water_model(dir.path());
    let road = "  [[camera.zone]]\n  id = \"road\"\n  kind = \"flooding\"\n  polygon = [[0.1, 0.1], [0.9, 0.1], [0.5, 0.9]]\n  classes = [\"water\"]\n  dwell_s = 0\n";
    let water = format!("[water]\nmodel = \"{}\"\nfps = 0.5\n", w.display());
    let c = load_str(&text(road, &water), Path::new("/nonexistent")).unwrap();
    assert!(matches!(&c.zones("cam-a")[0].rule, ZoneRule::Flooding(p) if p.from_mask), "{:?}", c.zones("cam-a")[0].rule);
    assert_eq!(c.water_rate(&c.cameras[0]), 0.5);
    // without [water]: boxes of the zone's detector classes, as before (the repository's
    // detector has no water class, so a detector class stands in); and no masks for the camera
    let c = load_str(&text(&road.replace("[\"water\"]", "[\"garbage\"]"), ""), Path::new("/nonexistent")).unwrap();
    assert!(matches!(&c.zones("cam-a")[0].rule, ZoneRule::Flooding(p) if !p.from_mask));
    assert_eq!(c.water_rate(&c.cameras[0]), 0.0);
    // a camera without flooding zones gets no masks even with [water]
    let shop = zone("shop", "out_of_store", "");
    let c = load_str(&text(&shop, &water), Path::new("/nonexistent")).unwrap();
    assert_eq!(c.water_rate(&c.cameras[0]), 0.0);

    // with a water model, a flooding zone's classes are the water model's
    let e = errors(&text(&road.replace("[\"water\"]", "[\"puddle\"]"), &water));
    assert!(e.iter().any(|l| l.starts_with("camera[0].zone[0].classes[0]: \"puddle\" is not a class")), "{e:?}");
    // a missing model, the detector as the water model, a bad rate, an orphan water_fps
    let missing = water.replace("w.onnx", "nope.onnx");
    let e = errors(&text(road, &missing));
    assert!(e.iter().any(|l| l.starts_with("water.model: water model file") && l.contains("nope.onnx")), "{e:?}");
    let urban = format!("{}/models/hawkeye_urban.onnx", env!("CARGO_MANIFEST_DIR"));
    let e = errors(&text(road, &format!("[water]\nmodel = \"{urban}\"\n")));
    assert!(e.iter().any(|l| l.starts_with("water.model:") && l.contains("is a detector") && l.contains("a segmentation model is expected")), "{e:?}");
    let e = errors(&text(road, &water.replace("fps = 0.5", "fps = 0")));
    assert!(e.iter().any(|l| l.starts_with("water.fps:")), "{e:?}");
    let e = errors(&text(&format!("water_fps = 2.0\n{road}"), ""));
    assert!(e.iter().any(|l| l.starts_with("camera[0].water_fps: set, but no [water]")), "{e:?}");
}

#[test]
fn transport_defaults_to_auto_and_bad_or_misplaced_values_are_errors() {
    let c = load_str(&text("", ""), Path::new("/nonexistent")).unwrap();
    assert_eq!(c.raw.cameras[0].transport, None);
    assert_eq!(c.raw.cameras[0].transport(), crate::config::Transport::Auto);
    let udp = text("", "").replace("url = \"rtsp://10.0.0.5/stream\"", "url = \"rtsp://10.0.0.5/stream\"\ntransport = \"udp\"");
    let c = load_str(&udp, Path::new("/nonexistent")).unwrap();
    assert_eq!(c.raw.cameras[0].transport(), crate::config::Transport::Udp);

    let file_cam = "[[camera]]\nid = \"cam-f\"\nurl = \"/data/clip.mp4\"\npipeline = \"file\"\ntransport = \"tcp\"\n";
    let bad = text("", file_cam).replace("url = \"rtsp://10.0.0.5/stream\"", "url = \"rtsp://10.0.0.5/stream\"\ntransport = \"tpc\"");
    let errs = errors(&bad);
    assert_eq!(errs.len(), 2, "{errs:#?}");
    assert!(
        errs[0].starts_with("camera[0].transport: unknown variant `tpc`, expected one of `tcp`, `udp`, `auto`"),
        "{errs:#?}"
    );
    assert!(
        errs[1].starts_with("camera[1].transport: \"tcp\" set, but pipeline `file` has no {protocols} placeholder"),
        "{errs:#?}"
    );
    // `auto` written out is as explicit as the others
    let errs = errors(&text("", &file_cam.replace("\"tcp\"", "\"auto\"")));
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert!(errs[0].starts_with("camera[1].transport: \"auto\" set"), "{errs:#?}");
}

#[test]
fn a_dual_stream_camera_needs_its_own_sub_stream_and_a_parse_only_main_template() {
    let c = load_str(&text("detect_url = \"rtsp://10.0.0.5/sub\"", ""), Path::new("/nonexistent")).unwrap();
    assert_eq!(c.raw.cameras[0].detect_url.as_deref(), Some("rtsp://10.0.0.5/sub"));
    let e = errors(&text("detect_url = \"rtsp://10.0.0.5/stream\"", ""));
    assert!(e.iter().any(|e| e.starts_with("camera[0].detect_url: the same as url")), "{e:?}");
    let e = errors(&text("detect_url = \" \"", ""));
    assert!(e.iter().any(|e| e.starts_with("camera[0].detect_url: empty")), "{e:?}");
    // a template of one's own that decodes, without a `_main` companion, cannot parse the main stream
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("mine.pipeline"), "rtspsrc location={url} ! decodebin\n").unwrap();
    let mine = format!("detect_url = \"rtsp://10.0.0.5/sub\"\npipeline = \"{}/mine.pipeline\"", dir.path().display());
    let e = errors(&text(&mine, ""));
    assert!(e.iter().any(|e| e.starts_with("camera[0].url: main stream:") && e.contains("mine_main.pipeline")), "{e:?}");
}

#[test]
fn motion_gate_and_worker_settings_are_checked_with_their_paths() {
    let c = load_str(&text("", ""), Path::new("/nonexistent")).unwrap();
    let cam = &c.raw.cameras[0];
    assert!(cam.motion_gate && cam.min_detect_fps == 1.0 && cam.motion_threshold == 10);
    assert_eq!((c.raw.model.workers, c.raw.model.threads), (4, 1));
    let e = errors(&text("min_detect_fps = 9", ""));
    assert!(e.iter().any(|e| e.starts_with("camera[0].min_detect_fps: 9 must be in [0, detect_fps = 5]")), "{e:?}");
    let e = errors(&text("motion_threshold = 0", ""));
    assert!(e.iter().any(|e| e.starts_with("camera[0].motion_threshold: must be in 1..=255")), "{e:?}");
    // with the gate off the minimum rate is not used, so not checked
    assert!(load_str(&text("motion_gate = false\nmin_detect_fps = 9", ""), Path::new("/nonexistent")).is_ok());
    // a bad detect_fps is one error, not two
    let e = errors(&text("detect_fps = 0", ""));
    assert_eq!(e.iter().filter(|e| e.contains("fps")).count(), 1, "{e:?}");
    let e = errors(&text("", "").replace("[model]", "[model]\nworkers = 0"));
    assert!(e.iter().any(|e| e.starts_with("model.workers: 0 must be in 1..=8")), "{e:?}");
}

#[test]
fn zoom_is_off_by_default_and_its_rate_and_place_are_checked() {
    let c = load_str(&text(&zone("shop", "out_of_store", ""), ""), Path::new("/nonexistent")).unwrap();
    let cam = &c.cameras[0];
    assert!(!cam.zones[0].zoom);
    assert_eq!(cam.zoom_fps, 2.0);
    assert!(Config::zoom_polygons(cam).is_empty());
    let zones = [zone("far", "out_of_store", "  zoom = true"), zone("near", "dumping", "")].concat();
    let c = load_str(&text(&zones, ""), Path::new("/nonexistent")).unwrap();
    assert_eq!(Config::zoom_polygons(&c.cameras[0]), vec![c.cameras[0].zones[0].polygon.clone()]);
    // a bad rate and a flooding zone with zoom: both errors, each with its place
    let zones = format!("zoom_fps = 0\n{}", zone("road", "flooding", "  zoom = true"));
    let e = errors(&text(&zones, ""));
    assert!(e.iter().any(|l| l.starts_with("camera[0].zoom_fps: 0 must be in (0, 30]")), "{e:?}");
    assert!(e.iter().any(|l| l.starts_with("camera[0].zone[0].zoom: flooding zones are measured by the water mask")), "{e:?}");
}

#[test]
fn the_clip_ring_holds_the_pre_roll_and_privacy_search_is_around_detections_by_default() {
    let c = load_str(&text("", ""), Path::new("/nonexistent")).unwrap();
    let cam = &c.raw.cameras[0];
    // pre-roll 10 s + 10 s, however long the post-event part (20 s) is
    assert_eq!((cam.clip_pre_s, cam.clip_post_s, cam.clip_ring()), (10.0, 20.0, 20.0));
    assert_eq!(cam.privacy.search, crate::config::MaskSearch::Detections);
    let c = load_str(&text("clip_pre_s = 30\nclip_post_s = 60\nprivacy = { search = \"whole\" }", ""), Path::new("/nonexistent")).unwrap();
    let cam = &c.raw.cameras[0];
    assert_eq!((cam.clip_ring(), cam.privacy.search), (40.0, crate::config::MaskSearch::Whole));
    // a ring shorter than the pre-roll is an error with its place; shorter than pre + post is not
    let e = errors(&text("clip_pre_s = 10\nclip_ring_s = 5", ""));
    assert!(e.iter().any(|l| l.starts_with("camera[0].clip_ring_s: 5 must be at least clip_pre_s (10)")), "{e:?}");
    assert!(load_str(&text("clip_pre_s = 2\nclip_post_s = 30\nclip_ring_s = 4", ""), Path::new("/nonexistent")).is_ok());
    let e = errors(&text("privacy = { search = \"everywhere\" }", ""));
    assert!(e.iter().any(|l| l.contains("everywhere") && l.contains("detections")), "{e:?}");
}
