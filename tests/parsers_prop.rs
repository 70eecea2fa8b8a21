//! Property tests of the two parsers that take input from outside: the config (files written by
//! people) and MQTT commands (messages from the network). Whatever the input, they return a
//! value or an explained error — never a panic — and config errors always name their place.
//! CI runs the default number of cases; set PROPTEST_CASES for a longer local run.

use std::path::Path;

use hawkeye::config::Config;
use hawkeye::publish::commands;
use proptest::prelude::*;

const DEMO: &str = include_str!("../config/demo.toml");

/// Every reported config error is `PLACE: message`, the place a TOML path (`camera[0].zone[1].id`,
/// no spaces) or a line number (`line 7`).
fn errors_have_places(errs: &[String]) -> bool {
    errs.iter().all(|e| match e.split_once(": ") {
        Some((place, msg)) => !msg.is_empty() && (place.starts_with("line ") || (!place.is_empty() && !place.contains(' '))),
        None => false,
    })
}

proptest! {
    #[test]
    fn config_never_panics_on_arbitrary_text(text in "\\PC{0,400}") {
        match Config::load_str(&text, Path::new("/nonexistent")) {
            Ok(_) => {}
            Err(e) => prop_assert!(!e.0.is_empty()),
        }
    }

    #[test]
    fn config_errors_name_their_place_for_mutated_demo_configs(
        cut in 0usize..40,
        line in 0usize..60,
        replacement in prop::sample::select(vec!["", "x = 1", "dwell_s = -3", "polygon = [[2.0, 0.1]]", "id = \"a b\"", "url = \"::\"", "[[camera]]", "classes = []", "detect_fps = 0", "loop = \"yes\""]),
    ) {
        let mut lines: Vec<&str> = DEMO.lines().collect();
        if !lines.is_empty() {
            let i = line % lines.len();
            lines[i] = replacement;
            let j = (i + cut) % lines.len();
            if cut % 3 == 0 { lines.remove(j); }
        }
        let text = lines.join("\n");
        if let Err(e) = Config::load_str(&text, Path::new(env!("CARGO_MANIFEST_DIR")).join("config").as_path()) {
            prop_assert!(!e.0.is_empty());
            prop_assert!(errors_have_places(&e.0), "{:?}", e.0);
        }
    }

    #[test]
    fn commands_never_panic_on_arbitrary_bytes(name in "[a-z_/]{0,12}", payload in prop::collection::vec(any::<u8>(), 0..300)) {
        match commands::parse(&name, &payload) {
            Ok(req) => prop_assert_eq!(req.command.name(), name.as_str()),
            Err(e) => prop_assert!(!e.message.is_empty()),
        }
        let _ = commands::salvage_request_id(&payload);
    }

    #[test]
    fn commands_never_panic_on_json_shaped_payloads(
        name in prop::sample::select(vec!["ack", "snapshot", "reload", "recheck", "speak", "zones"]),
        keys in prop::collection::vec(prop::sample::select(vec!["event_id", "camera_id", "request_id", "operator", "note", "speaker", "message", "zones", "x"]), 0..4),
        values in prop::collection::vec(prop_oneof![Just("\"\"".to_string()), "\"[a-z0-9-]{0,10}\"", Just("12".to_string()), Just("null".to_string()), Just("[1]".to_string()), Just("{}".to_string())], 0..4),
    ) {
        let body: Vec<String> = keys.iter().zip(values.iter()).map(|(k, v)| format!("\"{k}\":{v}")).collect();
        let payload = format!("{{{}}}", body.join(","));
        if let Ok(req) = commands::parse(name, payload.as_bytes()) {
            // whatever parsed carries non-empty ids
            match req.command {
                commands::Command::Ack { event_id, .. } | commands::Command::Recheck { event_id } => prop_assert!(!event_id.trim().is_empty()),
                commands::Command::Snapshot { camera_id } => prop_assert!(!camera_id.trim().is_empty()),
                commands::Command::Speak { speaker, message, .. } => prop_assert!(!speaker.trim().is_empty() && !message.trim().is_empty()),
                commands::Command::Zones { camera_id, zones } => prop_assert!(!camera_id.trim().is_empty() && zones.is_array()),
                commands::Command::Reload => {}
            }
        }
    }
}
