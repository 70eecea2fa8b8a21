//! Lenient parsing: TOML text → raw [`Config`] with every type error reported, not only the
//! first. The document is read as a `toml::Table` (a syntax error stops here, with its line),
//! then deserialized table by table — the top level, each `[[camera]]`, each of its
//! `[[camera.zone]]`, each `[[speaker]]` and `[[message]]` — so an error's path carries the
//! array indices. A mistyped or missing value is reported and replaced by a stand-in of a type
//! that deserializes (for enums, the first variant the error names); the stand-in's path is
//! remembered so the checks that then run on the whole config do not report it again.

use std::path::Path;

use serde::de::DeserializeOwned;
use toml::{Table, Value};

use super::validate::{describe_toml_error, toml_path, ConfigErrors};
use super::{Camera, Config, DroneWatch, GeoZone, MessageCfg, SpeakerCfg, Zone};

/// Deserialization attempts per table before giving up on it (each mistake costs a few).
const MAX_ATTEMPTS: usize = 400;

/// What parsing made of a config text.
#[derive(Debug)]
pub(super) struct Parsed {
    /// `None` when not even the top level could be rebuilt.
    pub(super) config: Option<Config>,
    /// Paths of keys no struct knows.
    pub(super) unknown: Vec<String>,
    /// Mistyped or missing values, one line each with its path.
    pub(super) type_errors: Vec<String>,
    /// Paths whose values are stand-ins, and whether the stand-in is an enum variant (which
    /// changes what the rest of its table means, so none of that table's checks are reported).
    stand_ins: Vec<(String, bool)>,
    /// False when a table could not be rebuilt and was left out (later indices shift).
    pub(super) complete: bool,
}

impl Parsed {
    /// Whether an error line from the checks is about a stand-in: its path is a stand-in's,
    /// lies inside one, or is the table that holds one (checks of several keys at once); for
    /// an enum stand-in, anywhere in its table.
    pub(super) fn covers(&self, line: &str) -> bool {
        let path = line.split_once(": ").map_or(line, |(p, _)| p);
        self.stand_ins.iter().any(|(s, variant)| within(path, s) || parent(s) == path || (*variant && within(path, parent(s))))
    }
}

/// Whether `path` is `outer` or lies inside it.
fn within(path: &str, outer: &str) -> bool {
    path == outer || (path.starts_with(outer) && path[outer.len()..].starts_with(['.', '[']))
}

/// The path of the table that holds `path` (`camera[0].zone[1].dwell_s` → `camera[0].zone[1]`).
fn parent(path: &str) -> &str {
    path.rfind('.').map_or("", |i| &path[..i])
}

fn join(base: &str, rest: &str) -> String {
    match (base.is_empty(), rest.is_empty()) {
        (true, _) => rest.to_string(),
        (_, true) => base.to_string(),
        _ => format!("{base}.{rest}"),
    }
}

/// Parses config text; `Err` only for a TOML syntax error (with its line).
pub(super) fn parse(text: &str, base_dir: &Path) -> Result<Parsed, ConfigErrors> {
    let mut doc: Table = toml::from_str(text).map_err(|e| ConfigErrors(vec![describe_toml_error(&e, text)]))?;
    let mut p = Parsed { config: None, unknown: Vec::new(), type_errors: Vec::new(), stand_ins: Vec::new(), complete: true };
    let cameras = take_tables(&mut doc, "camera", "", &mut p);
    let speakers = take_tables(&mut doc, "speaker", "", &mut p);
    let messages = take_tables(&mut doc, "message", "", &mut p);
    let Some(mut config) = table_as::<Config>(doc, "", &mut p) else {
        p.complete = false;
        return Ok(p);
    };
    for (i, mut t) in cameras.into_iter().enumerate() {
        let path = format!("camera[{i}]");
        let zones = take_tables(&mut t, "zone", &path, &mut p);
        // a drone's inline arrays of tables, element by element (their paths get indices)
        let (mut watches, mut geo_zones) = (None, None);
        if let Some(Value::Table(drone)) = t.get_mut("drone") {
            watches = take_elements::<DroneWatch>(drone, "watch", &format!("{path}.drone"), &mut p);
            geo_zones = take_elements::<GeoZone>(drone, "geo_zone", &format!("{path}.drone"), &mut p);
        }
        let Some(mut cam) = table_as::<Camera>(t, &path, &mut p) else { continue };
        for (j, z) in zones.into_iter().enumerate() {
            cam.zones.extend(table_as::<Zone>(z, &format!("{path}.zone[{j}]"), &mut p));
        }
        if let Some(d) = cam.drone.as_mut() {
            d.watches = watches.unwrap_or(std::mem::take(&mut d.watches));
            d.geo_zones = geo_zones.unwrap_or(std::mem::take(&mut d.geo_zones));
        }
        config.cameras.push(cam);
    }
    for (i, t) in speakers.into_iter().enumerate() {
        config.speakers.extend(table_as::<SpeakerCfg>(t, &format!("speaker[{i}]"), &mut p));
    }
    for (i, t) in messages.into_iter().enumerate() {
        config.messages.extend(table_as::<MessageCfg>(t, &format!("message[{i}]"), &mut p));
    }
    config.base_dir = base_dir.to_path_buf();
    p.config = Some(config);
    Ok(p)
}

/// Takes the array of tables `doc[key]` out of `doc` (absent: none). Anything else there is
/// reported and leaves the parse incomplete.
fn take_tables(doc: &mut Table, key: &str, base: &str, p: &mut Parsed) -> Vec<Table> {
    let path = join(base, key);
    match doc.remove(key) {
        None => Vec::new(),
        Some(Value::Array(items)) => {
            let mut out = Vec::new();
            for (i, v) in items.into_iter().enumerate() {
                match v {
                    Value::Table(t) => out.push(t),
                    other => {
                        p.type_errors.push(format!("{path}[{i}]: must be a table, not {}", other.type_str()));
                        p.complete = false;
                    }
                }
            }
            out
        }
        Some(other) => {
            p.type_errors.push(format!("{path}: must be an array of tables ([[{path}]]), not {}", other.type_str()));
            p.complete = false;
            Vec::new()
        }
    }
}

/// Deserializes `table[key]`, when it is an array of tables, element by element at
/// `base.key[i]`, and leaves an empty array in its place; `None` (and the array left as it is)
/// for anything else.
fn take_elements<T: DeserializeOwned>(table: &mut Table, key: &str, base: &str, p: &mut Parsed) -> Option<Vec<T>> {
    let Some(Value::Array(items)) = table.get(key) else { return None };
    if !items.iter().all(Value::is_table) {
        return None;
    }
    let Some(Value::Array(items)) = table.insert(key.to_string(), Value::Array(Vec::new())) else { return None };
    let path = join(base, key);
    let parsed = items.into_iter().enumerate().filter_map(|(i, v)| match v {
        Value::Table(t) => table_as::<T>(t, &format!("{path}[{i}]"), p),
        _ => None,
    });
    Some(parsed.collect())
}

/// Deserializes one table at `path` into `T`, reporting (and standing in for) every mistyped or
/// missing value, and collecting unknown keys. `None` when the table cannot be rebuilt.
fn table_as<T: DeserializeOwned>(mut table: Table, path: &str, p: &mut Parsed) -> Option<T> {
    for _ in 0..MAX_ATTEMPTS {
        let mut unknown = Vec::new();
        let err = match attempt::<T>(&table, &mut unknown) {
            Ok(v) => {
                p.unknown.extend(unknown.iter().map(|u| join(path, &toml_path(u))));
                return Some(v);
            }
            Err(e) => e,
        };
        let (keys, msg) = locate(&err);
        if keys.is_empty() {
            p.type_errors.push(format!("{}: {msg}", if path.is_empty() { "config" } else { path }));
            break;
        }
        let key_path = join(path, &keys.join("."));
        if !p.stand_ins.iter().any(|(s, _)| within(&key_path, s)) {
            p.type_errors.push(format!("{key_path}: {msg}"));
        }
        match stand_in::<T>(&mut table, &keys, &msg) {
            Some((depth, variant)) => p.stand_ins.push((join(path, &keys[..depth].join(".")), variant)),
            None => {
                p.type_errors.push(format!("{key_path}: {msg} (the table cannot be read past this)"));
                break;
            }
        }
    }
    p.complete = false;
    None
}

fn attempt<T: DeserializeOwned>(table: &Table, unknown: &mut Vec<String>) -> Result<T, toml::de::Error> {
    serde_ignored::deserialize(Value::Table(table.clone()), |path| unknown.push(path.to_string()))
}

/// The keys (within the table) and the message of a deserialization error. Errors from a
/// `toml::Value` carry their keys only in their display (`in `a.b``); array indices are not
/// among them.
fn locate(e: &toml::de::Error) -> (Vec<String>, String) {
    let shown = e.to_string();
    let mut keys: Vec<String> = shown
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("in `").and_then(|l| l.strip_suffix('`')))
        .map(|k| k.split('.').map(str::to_string).collect())
        .unwrap_or_default();
    let msg = e.message().trim().to_string();
    if let Some(field) = msg.strip_prefix("missing field `").and_then(|m| m.strip_suffix('`')) {
        keys.push(field.to_string());
        return (keys, "missing; this key is required".into());
    }
    (keys, msg)
}

/// Puts a stand-in at `keys` (or, when the path runs into an array, at the array) that makes
/// the error go away from there; returns how many of `keys` the stand-in's path has, and
/// whether the stand-in is an enum variant.
fn stand_in<T: DeserializeOwned>(table: &mut Table, keys: &[String], msg: &str) -> Option<(usize, bool)> {
    // the deepest prefix of `keys` that runs through tables only
    let mut depth = 1;
    {
        let mut t: &Table = table;
        while depth < keys.len() {
            match t.get(&keys[depth - 1]) {
                Some(Value::Table(inner)) => {
                    t = inner;
                    depth += 1;
                }
                _ => break,
            }
        }
    }
    let target = &keys[..depth];
    let (variant, others) = candidates(msg);
    let is_variant = |c: &Value| variant.as_ref() == Some(c);
    for candidate in variant.iter().cloned().chain(others) {
        let mut trial = table.clone();
        let variant = is_variant(&candidate);
        set(&mut trial, target, candidate);
        match attempt::<T>(&trial, &mut Vec::new()) {
            // still wrong right there: try the next; wrong deeper inside (a table stand-in
            // without its required keys): kept, the next round stands in for those
            Err(e) if locate(&e).0 == target => continue,
            _ => {
                *table = trial;
                return Some((depth, variant));
            }
        }
    }
    None
}

/// Values to try in place of a bad one: the first variant an enum error names, then one value
/// of each TOML type.
fn candidates(msg: &str) -> (Option<Value>, [Value; 6]) {
    let rest = msg.split_once("expected one of `").or_else(|| msg.split_once("expected `")).map(|(_, r)| r);
    let variant = rest.and_then(|r| r.split_once('`')).map(|(v, _)| Value::String(v.to_string()));
    (variant, [Value::Integer(1), Value::Float(1.0), Value::String(String::new()), Value::Boolean(false), Value::Array(Vec::new()), Value::Table(Table::new())])
}

/// Sets `table[keys[0]][keys[1]]… = v`, making tables on the way where needed.
fn set(table: &mut Table, keys: &[String], v: Value) {
    let (last, inner) = keys.split_last().expect("at least one key");
    let mut t = table;
    for k in inner {
        let slot = t.entry(k.clone()).or_insert_with(|| Value::Table(Table::new()));
        if !slot.is_table() {
            *slot = Value::Table(Table::new());
        }
        t = slot.as_table_mut().expect("made a table above");
    }
    t.insert(last.clone(), v);
}
