//! Zones set from the command centre (`cmd/zones`, a zone editor) live in a drop-in next to the
//! config file: `<stem>.zones.toml` beside `<stem>.toml`, one `[[camera]]` table per camera it
//! sets, each with its `id` and its `[[camera.zone]]` tables. For every camera it names, its zones
//! replace that camera's zones in the config file; the rest of the config is the file's. `check`,
//! `run` and `cmd/reload` read it; `cmd/zones` writes it only after the merged config has passed
//! every check, so the drop-in never holds zones the device would refuse. The installer's config
//! file is never rewritten (it keeps its comments); deleting the drop-in restores its zones.

use std::io::Write;
use std::path::{Path, PathBuf};

use toml::{Table, Value};

/// The drop-in of a config file: `site.toml` → `site.zones.toml` in the same directory.
pub fn path_for(config: &Path) -> PathBuf {
    let stem = config.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "hawkeye".into());
    config.with_file_name(format!("{stem}.zones.toml"))
}

/// The config text with the drop-in's zones in place, and for each camera whose zones came from
/// the drop-in, its index in `camera` (to say so in error lines). `Err`: what is wrong with the
/// drop-in itself, each line with its place. A config text that is not TOML is returned as it
/// is (its own syntax error is the one to report).
pub(super) fn merge(config_text: &str, dropin_text: &str, dropin: &Path) -> Result<(String, Vec<usize>), Vec<String>> {
    let Ok(mut main) = config_text.parse::<Table>() else { return Ok((config_text.to_string(), Vec::new())) };
    let name = dropin.display();
    let drop = dropin_text.parse::<Table>().map_err(|e| vec![format!("{name}: {}", e.message().trim())])?;
    let mut errs = Vec::new();
    let mut from_dropin = Vec::new();
    for key in drop.keys().filter(|k| *k != "camera") {
        errs.push(format!("{name}: {key}: unknown key (a zones file holds [[camera]] tables with id and [[camera.zone]] only)"));
    }
    let cams: &[Value] = match drop.get("camera") {
        None => &[],
        Some(Value::Array(a)) => a,
        Some(_) => {
            errs.push(format!("{name}: camera: must be an array of tables ([[camera]])"));
            &[]
        }
    };
    let main_cams = main.get_mut("camera").and_then(Value::as_array_mut);
    let main_cams = main_cams.map(|a| a.as_mut_slice()).unwrap_or_default();
    for (i, c) in cams.iter().enumerate() {
        let place = format!("{name}: camera[{i}]");
        let Some(t) = c.as_table() else {
            errs.push(format!("{place}: must be a table"));
            continue;
        };
        for key in t.keys().filter(|k| *k != "id" && *k != "zone") {
            errs.push(format!("{place}.{key}: unknown key (only id and zone are set here)"));
        }
        let Some(id) = t.get("id").and_then(Value::as_str) else {
            errs.push(format!("{place}.id: missing (the id of a camera of the config)"));
            continue;
        };
        let zones = t.get("zone").cloned().unwrap_or(Value::Array(Vec::new()));
        if !zones.is_array() {
            errs.push(format!("{place}.zone: must be an array of tables ([[camera.zone]])"));
            continue;
        }
        let Some(k) = main_cams.iter().position(|m| m.get("id").and_then(Value::as_str) == Some(id)) else {
            errs.push(format!("{place}.id: {id:?} is not a camera of the config"));
            continue;
        };
        if from_dropin.contains(&k) {
            errs.push(format!("{place}.id: camera {id:?} is set twice"));
            continue;
        }
        if let Some(m) = main_cams[k].as_table_mut() {
            m.insert("zone".into(), zones);
            from_dropin.push(k);
        }
    }
    if !errs.is_empty() {
        return Err(errs);
    }
    Ok((toml::to_string(&main).map_err(|e| vec![format!("{name}: {e}")])?, from_dropin))
}

/// Marks the error lines about zones that came from the drop-in.
pub(super) fn annotate(errs: Vec<String>, from_dropin: &[usize], dropin: &Path) -> Vec<String> {
    errs.into_iter()
        .map(|line| {
            let ours = from_dropin.iter().any(|k| line.starts_with(&format!("camera[{k}].zone")));
            if ours {
                format!("{line} (zones from {})", dropin.display())
            } else {
                line
            }
        })
        .collect()
}

/// A drop-in text (the current one, if any) with camera `camera_id`'s zones set to `zones` (a
/// JSON array of zone tables, as `cmd/zones` carries them). `Err` when `zones` cannot be TOML
/// (a null, a nested array of mixed types).
pub fn with_camera_zones(current: Option<&str>, camera_id: &str, zones: &serde_json::Value) -> Result<String, String> {
    let zones = Value::try_from(zones).map_err(|e| format!("zones: not representable in TOML: {e}"))?;
    if !zones.is_array() {
        return Err("zones: must be an array of zone tables".into());
    }
    let mut doc = match current {
        Some(t) => t.parse::<Table>().map_err(|e| format!("the current zones file is not TOML: {}", e.message().trim()))?,
        None => Table::new(),
    };
    let cams = doc.entry("camera").or_insert_with(|| Value::Array(Vec::new()));
    let Some(cams) = cams.as_array_mut() else { return Err("the current zones file's camera is not an array".into()) };
    cams.retain(|c| c.get("id").and_then(Value::as_str) != Some(camera_id));
    let mut t = Table::new();
    t.insert("id".into(), Value::String(camera_id.to_string()));
    t.insert("zone".into(), zones);
    cams.push(Value::Table(t));
    let body = toml::to_string(&doc).map_err(|e| format!("zones: {e}"))?;
    Ok(format!("# Zones set by cmd/zones (a zone editor). They replace the zones of these cameras in the\n# config file beside this one; delete this file to go back to those.\n{body}"))
}

/// Writes `text` to `path` so that a crash leaves the old file or the new one, never a mix.
pub fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    let tmp = path.with_extension("toml.tmp");
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = "[device]\nid = \"b\"\n[[camera]]\nid = \"a\"\nurl = \"x\"\n[[camera.zone]]\nid = \"old\"\n[[camera]]\nid = \"c\"\nurl = \"y\"\n";

    #[test]
    fn the_dropin_sits_beside_the_config() {
        assert_eq!(path_for(Path::new("/etc/hawkeye/hawkeye.toml")), Path::new("/etc/hawkeye/hawkeye.zones.toml"));
        assert_eq!(path_for(Path::new("site")), Path::new("site.zones.toml"));
    }

    #[test]
    fn zones_of_the_named_camera_are_replaced_and_the_rest_kept() {
        let z = serde_json::json!([{ "id": "new", "kind": "loitering", "polygon": [[0.1, 0.1], [0.9, 0.1], [0.5, 0.9]], "dwell_s": 5 }]);
        let drop = with_camera_zones(None, "c", &z).unwrap();
        let (text, ours) = merge(CONFIG, &drop, Path::new("z.toml")).unwrap();
        assert_eq!(ours, vec![1]);
        let t: Table = text.parse().unwrap();
        let cams = t["camera"].as_array().unwrap();
        assert_eq!(cams[0]["zone"][0]["id"].as_str(), Some("old"), "camera a keeps its own zones");
        assert_eq!(cams[1]["zone"][0]["id"].as_str(), Some("new"));
        assert_eq!(cams[1]["zone"][0]["dwell_s"].as_integer(), Some(5));
        // setting a camera again replaces its entry; an empty list clears its zones
        let drop = with_camera_zones(Some(&drop), "c", &serde_json::json!([])).unwrap();
        let drop = with_camera_zones(Some(&drop), "a", &z).unwrap();
        let (text, ours) = merge(CONFIG, &drop, Path::new("z.toml")).unwrap();
        assert_eq!(ours.len(), 2);
        let t: Table = text.parse().unwrap();
        assert!(t["camera"][1]["zone"].as_array().unwrap().is_empty());
        assert_eq!(t["camera"][0]["zone"][0]["id"].as_str(), Some("new"));
    }

    #[test]
    fn a_bad_dropin_is_explained_with_its_places() {
        let errs = merge(CONFIG, "speed = 1\n[[camera]]\nid = \"nope\"\n[[camera]]\nurl = \"u\"\n", Path::new("z.toml")).unwrap_err();
        assert!(errs.iter().any(|e| e == "z.toml: speed: unknown key (a zones file holds [[camera]] tables with id and [[camera.zone]] only)"), "{errs:?}");
        assert!(errs.iter().any(|e| e == "z.toml: camera[0].id: \"nope\" is not a camera of the config"), "{errs:?}");
        assert!(errs.iter().any(|e| e.starts_with("z.toml: camera[1].url: unknown key")), "{errs:?}");
        assert!(errs.iter().any(|e| e.starts_with("z.toml: camera[1].id: missing")), "{errs:?}");
        assert!(merge(CONFIG, "[[camera", Path::new("z.toml")).unwrap_err()[0].starts_with("z.toml: "));
        assert!(with_camera_zones(None, "a", &serde_json::json!([{ "id": null }])).is_err());
        assert!(with_camera_zones(None, "a", &serde_json::json!({ "id": "x" })).is_err());
    }

    #[test]
    fn error_lines_about_dropin_zones_say_where_they_come_from() {
        let lines = annotate(vec!["camera[1].zone[0].dwell_s: -1 must be a number >= 0".into(), "camera[0].zone[0].id: bad".into()], &[1], Path::new("z.toml"));
        assert_eq!(lines[0], "camera[1].zone[0].dwell_s: -1 must be a number >= 0 (zones from z.toml)");
        assert_eq!(lines[1], "camera[0].zone[0].id: bad");
    }
}
