// `!(x > 0.0)` is deliberate throughout: unlike `x <= 0.0` it also rejects NaN.
#![allow(clippy::neg_cmp_op_on_partial_ord)]

//! Whole-config validation: every check runs and every failure is reported with its TOML path,
//! so a user fixes a config in one pass instead of one error per run. The checks also build the
//! typed values (see [`super::compile`]) of every part that passed them.

use std::collections::HashSet;
use std::fmt;

use super::compile::{CompiledCamera, CompiledSpeaker};
use super::{Camera, Config, PrivacyCfg, Zone, ZoneKind, PARKING_CLASSES};
use crate::rules::{CompiledZone, DumpingParams, DwellParams, FloodParams, ParkingParams, Schedule, ZoneRule};

/// Every problem found in a config, one line each, each starting with its TOML path.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigErrors(pub Vec<String>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} error(s) in config:", self.0.len())?;
        for e in &self.0 {
            writeln!(f, "  - {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// serde_ignored paths look like `camera.0.zone.1.colour`; TOML users read `camera[0].zone[1].colour`.
pub(crate) fn toml_path(dotted: &str) -> String {
    let mut out = String::new();
    for part in dotted.split('.').filter(|p| !p.is_empty() && *p != "?") {
        if part.chars().all(|c| c.is_ascii_digit()) {
            out.push_str(&format!("[{part}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(part);
        }
    }
    out
}

/// A TOML syntax or type error as one line with its line number.
pub(crate) fn describe_toml_error(e: &toml::de::Error, text: &str) -> String {
    let msg = e.message().trim().to_string();
    match e.span() {
        Some(span) => {
            let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
            format!("line {line}: {msg}")
        }
        None => msg,
    }
}

/// Runs every check and returns all failures at once. `unknown` are paths of unknown keys
/// collected while parsing. The model manifest is consulted (when the model can be found) so
/// zone classes are checked against the model's classes.
pub fn validate(cfg: &Config, unknown: &[String]) -> Result<(), ConfigErrors> {
    let mut errs: Vec<String> = unknown.iter().map(|p| format!("{p}: unknown key")).collect();
    run_checks(cfg, &mut errs);
    if errs.is_empty() {
        Ok(())
    } else {
        Err(ConfigErrors(errs))
    }
}

/// Every check, in file order; returns the typed values of the cameras and speakers (complete
/// only when no error was added).
pub(super) fn run_checks(cfg: &Config, errs: &mut Vec<String>) -> (Vec<CompiledCamera>, Vec<CompiledSpeaker>) {
    check_device(cfg, errs);
    check_mqtt(cfg, errs);
    if let Some(l) = cfg.telemetry.listen.as_deref().filter(|l| !l.is_empty()) {
        if l.parse::<std::net::SocketAddr>().is_err() {
            errs.push(format!("telemetry.listen: {l:?} is not host:port (e.g. \"127.0.0.1:9464\" or \"0.0.0.0:9464\")"));
        }
    }
    if cfg.outbox.memory_mb == 0 {
        errs.push("outbox.memory_mb: must be at least 1 (messages held while the disk refuses writes)".into());
    }
    if !(1..=262_143).contains(&cfg.mqtt.max_payload_kb) {
        errs.push(format!("mqtt.max_payload_kb: {} must be 1..=262143 (MQTT's packet limit is 256 MiB; brokers often allow 1 MB)", cfg.mqtt.max_payload_kb));
    }
    if cfg.outbox.max_mb == 0 {
        errs.push("outbox.max_mb: must be at least 1".into());
    }
    let ev = &cfg.evidence;
    if !(ev.retain_days > 0.0) || !ev.retain_days.is_finite() {
        errs.push(format!("evidence.retain_days: {} must be > 0 (public-space camera rules ask for at least 30)", ev.retain_days));
    }
    if ev.max_mb == 0 {
        errs.push("evidence.max_mb: must be at least 1".into());
    }
    if !(ev.sweep_s >= 1.0) {
        errs.push(format!("evidence.sweep_s: {} must be at least 1", ev.sweep_s));
    }
    let classes = check_model(cfg, errs);
    let water_classes = check_water(cfg, errs);
    if cfg.cameras.is_empty() {
        errs.push("camera: at least one [[camera]] is required".into());
    }
    let mut cam_ids = HashSet::new();
    let mut cameras = Vec::new();
    for (i, cam) in cfg.cameras.iter().enumerate() {
        let path = format!("camera[{i}]");
        if !cam_ids.insert(cam.id.as_str()) {
            errs.push(format!("{path}.id: duplicate camera id {:?}", cam.id));
        }
        cameras.push(check_camera(cfg, cam, &path, classes.as_deref(), water_classes.as_deref(), errs));
    }
    let speakers = super::speaker::check(cfg, errs);
    super::webhook::check(cfg, errs);
    if let Some(f) = &cfg.fleet {
        if crate::evidence::keys::parse_hex32(f.public_key.trim()).is_none() {
            errs.push("fleet.public_key: must be 64 hex digits (the command centre's Ed25519 public key; `hawkeye fleet-sign` prints it)".into());
        }
    }
    (cameras, speakers)
}

/// Weekly windows and their UTC offset: the error goes under `path.timezone` when the offset
/// is what is wrong, else under `path.key`.
pub(super) fn check_schedule(windows: &[String], timezone: &str, path: &str, key: &str, errs: &mut Vec<String>) -> Option<Schedule> {
    match Schedule::parse(windows, timezone) {
        Ok(s) => Some(s),
        Err(e) => {
            let key = if crate::rules::schedule::parse_offset(timezone).is_err() { "timezone" } else { key };
            errs.push(format!("{path}.{key}: {e}"));
            None
        }
    }
}

pub(super) fn check_id(value: &str, path: &str, errs: &mut Vec<String>) {
    // ids become MQTT topic levels and directory names
    if value.is_empty() {
        errs.push(format!("{path}: must not be empty"));
    } else if !value.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
        errs.push(format!("{path}: {value:?} may only contain letters, digits, '-', '_' and '.'"));
    }
}

fn check_device(cfg: &Config, errs: &mut Vec<String>) {
    check_id(&cfg.device.id, "device.id", errs);
    let loc = &cfg.device.location;
    if let Some(lat) = loc.lat {
        if !(-90.0..=90.0).contains(&lat) {
            errs.push(format!("device.location.lat: {lat} is outside -90..90"));
        }
    }
    if let Some(lon) = loc.lon {
        if !(-180.0..=180.0).contains(&lon) {
            errs.push(format!("device.location.lon: {lon} is outside -180..180"));
        }
    }
    if loc.lat.is_some() != loc.lon.is_some() {
        errs.push("device.location: give both lat and lon, or neither".into());
    }
}

fn check_mqtt(cfg: &Config, errs: &mut Vec<String>) {
    let m = &cfg.mqtt;
    let mut tls = false;
    match url::Url::parse(&m.url) {
        Err(e) => errs.push(format!("mqtt.url: {:?} is not a URL: {e}", m.url)),
        Ok(u) => {
            match u.scheme() {
                "mqtt" | "tcp" => {}
                "mqtts" | "ssl" => tls = true,
                other => errs.push(format!(
                    "mqtt.url: scheme {other:?} is not supported (use mqtt://host:port or mqtts://host:port)"
                )),
            }
            if u.host_str().unwrap_or("").is_empty() {
                errs.push(format!("mqtt.url: {:?} has no host", m.url));
            }
        }
    }
    if tls && m.ca_file.is_none() {
        errs.push("mqtt.ca_file: required for mqtts:// (the CA certificate that signed the broker's)".into());
    }
    if !tls && (m.ca_file.is_some() || m.client_cert.is_some()) {
        errs.push("mqtt.url: ca_file/client_cert are set but the URL is not mqtts://".into());
    }
    if m.client_cert.is_some() != m.client_key.is_some() {
        errs.push("mqtt.client_cert: give both client_cert and client_key, or neither".into());
    }
    for (key, p) in [("ca_file", &m.ca_file), ("client_cert", &m.client_cert), ("client_key", &m.client_key)] {
        if let Some(p) = p {
            let path = cfg.resolve(p);
            if !path.is_file() {
                errs.push(format!("mqtt.{key}: file {} does not exist", path.display()));
            }
        }
    }
    if m.topic_prefix.is_empty() || m.topic_prefix.contains(['#', '+']) {
        errs.push(format!("mqtt.topic_prefix: {:?} must be non-empty without '#' or '+'", m.topic_prefix));
    }
    if !(m.heartbeat_s > 0.0) {
        errs.push(format!("mqtt.heartbeat_s: {} must be > 0", m.heartbeat_s));
    }
    if m.password.is_some() && m.username.is_none() {
        errs.push("mqtt.password: needs mqtt.username".into());
    }
}

/// Checks the model file and manifest; returns the class names when they could be read.
fn check_model(cfg: &Config, errs: &mut Vec<String>) -> Option<Vec<String>> {
    let m = &cfg.model;
    if !(0.0..=1.0).contains(&m.score_threshold) {
        errs.push(format!("model.score_threshold: {} is outside 0..1", m.score_threshold));
    }
    if !(0.0..=1.0).contains(&m.nms_iou) {
        errs.push(format!("model.nms_iou: {} is outside 0..1", m.nms_iou));
    }
    if !(1..=8).contains(&m.workers) {
        errs.push(format!("model.workers: {} must be in 1..=8", m.workers));
    }
    if m.threads == 0 {
        errs.push("model.threads: must be at least 1".into());
    }
    let path = cfg.resolve(&m.path);
    if !path.is_file() {
        errs.push(format!("model.path: model file {} does not exist", path.display()));
        return None;
    }
    let manifest = m.manifest.as_ref().map(|p| cfg.resolve(p));
    match crate::detect::Manifest::find(&path, manifest.as_deref()) {
        Ok(man) => Some(man.classes),
        Err(e) => {
            let key = if m.manifest.is_some() { "model.manifest" } else { "model.path" };
            errs.push(format!("{key}: {e}"));
            None
        }
    }
}

/// Checks `[water]`: the model file exists and its manifest is a segmentation model's. Returns
/// its class names (what flooding zones name as their classes) when they could be read. The
/// model itself is run by `hawkeye check` (`cli::probe_water`).
fn check_water(cfg: &Config, errs: &mut Vec<String>) -> Option<Vec<String>> {
    let w = cfg.water.as_ref()?;
    if !(w.fps > 0.0 && w.fps <= 30.0) {
        errs.push(format!("water.fps: {} must be in (0, 30] (masks per second per camera; 1 is plenty for rising water)", w.fps));
    }
    let path = cfg.resolve(&w.model);
    if !path.is_file() {
        errs.push(format!("water.model: water model file {} does not exist", path.display()));
        return None;
    }
    let manifest = w.manifest.as_ref().map(|p| cfg.resolve(p));
    let found = crate::detect::manifest::file_sha256(&path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))
        .and_then(|sha| crate::detect::Manifest::find_with_hash(&path, manifest.as_deref(), &sha).map_err(|e| e.to_string()))
        .and_then(|(m, origin)| m.expect_kind(crate::detect::ModelKind::Segmentation, &path, &origin).map(|()| m).map_err(|e| e.to_string()));
    match found {
        Ok(man) => Some(man.classes),
        Err(e) => {
            let key = if w.manifest.is_some() { "water.manifest" } else { "water.model" };
            errs.push(format!("{key}: {e}"));
            None
        }
    }
}

fn check_camera(cfg: &Config, cam: &Camera, path: &str, classes: Option<&[String]>, water_classes: Option<&[String]>, errs: &mut Vec<String>) -> CompiledCamera {
    check_id(&cam.id, &format!("{path}.id"), errs);
    if let Err(e) = crate::source::launch_string(cam, &cfg.base_dir) {
        errs.push(format!("{path}.pipeline: {e}"));
    }
    // An explicit transport that the template ignores would silently do nothing.
    if let (Some(t), Ok(false)) = (cam.transport, crate::source::template::uses_transport(cam, &cfg.base_dir)) {
        errs.push(format!(
            "{path}.transport: {:?} set, but pipeline `{}` has no {{protocols}} placeholder (transport is for RTSP templates: rtsp, rtsp_h264, rtsp_h265)",
            t.as_str(),
            cam.pipeline
        ));
    }
    if let Some(sub) = &cam.detect_url {
        if sub.trim().is_empty() {
            errs.push(format!("{path}.detect_url: empty (remove it for a single-stream camera)"));
        } else if sub == &cam.url {
            errs.push(format!("{path}.detect_url: the same as url; set it to the camera's sub-stream, or remove it"));
        } else if let Err(e) = crate::source::main_launch_string(cam, &cfg.base_dir) {
            errs.push(format!("{path}.url: main stream: {e}"));
        }
    }
    if !(cam.detect_fps > 0.0 && cam.detect_fps <= 120.0) {
        errs.push(format!("{path}.detect_fps: {} must be in (0, 120]", cam.detect_fps));
    }
    if let Some(f) = cam.water_fps {
        if !(f > 0.0 && f <= 30.0) {
            errs.push(format!("{path}.water_fps: {f} must be in (0, 30]"));
        } else if cfg.water.is_none() {
            errs.push(format!("{path}.water_fps: set, but no [water] model is configured"));
        }
    }
    if !(cam.zoom_fps > 0.0 && cam.zoom_fps <= 30.0) {
        errs.push(format!("{path}.zoom_fps: {} must be in (0, 30]", cam.zoom_fps));
    }
    // compared with detect_fps only when that is valid itself (one mistake, one error)
    let fps_ok = cam.detect_fps > 0.0 && cam.detect_fps <= 120.0;
    if cam.motion_gate && !(cam.min_detect_fps >= 0.0 && (!fps_ok || cam.min_detect_fps <= cam.detect_fps)) {
        errs.push(format!("{path}.min_detect_fps: {} must be in [0, detect_fps = {}]", cam.min_detect_fps, cam.detect_fps));
    }
    if cam.motion_threshold == 0 {
        errs.push(format!("{path}.motion_threshold: must be in 1..=255"));
    }
    if !(32..=7680).contains(&cam.frame_width) {
        errs.push(format!("{path}.frame_width: {} must be in 32..7680", cam.frame_width));
    }
    if !(cam.stall_timeout_s > 0.0) {
        errs.push(format!("{path}.stall_timeout_s: must be > 0"));
    }
    if !(cam.backoff_initial_s > 0.0) || cam.backoff_max_s < cam.backoff_initial_s {
        errs.push(format!(
            "{path}: need 0 < backoff_initial_s ({}) <= backoff_max_s ({})",
            cam.backoff_initial_s, cam.backoff_max_s
        ));
    }
    if !(cam.clip_pre_s >= 0.0 && cam.clip_post_s >= 0.0) {
        errs.push(format!("{path}: clip_pre_s and clip_post_s must be >= 0"));
    } else if let Some(ring) = cam.clip_ring_s.filter(|r| !(*r >= cam.clip_pre_s && r.is_finite())) {
        errs.push(format!("{path}.clip_ring_s: {ring} must be at least clip_pre_s ({}): the ring holds each clip's pre-roll", cam.clip_pre_s));
    }
    check_privacy(&cam.privacy, &format!("{path}.privacy"), errs);
    let mut zone_ids = HashSet::new();
    let mut zones = Vec::new();
    for (j, z) in cam.zones.iter().enumerate() {
        let zp = format!("{path}.zone[{j}]");
        if !zone_ids.insert(z.id.as_str()) {
            errs.push(format!("{zp}.id: duplicate zone id {:?} in camera {:?}", z.id, cam.id));
        }
        // with a water model, a flooding zone's classes are the water model's and its
        // coverage comes from the model's masks
        let water = cfg.water.is_some() && z.kind == ZoneKind::Flooding;
        let zone_classes = if water { water_classes } else { classes };
        zones.extend(check_zone(z, &zp, zone_classes, errs).map(|mut c| {
            if let ZoneRule::Flooding(p) = &mut c.rule {
                p.from_mask = water;
            }
            c
        }));
    }
    super::drone::check(cam, path, classes, errs);
    CompiledCamera { id: cam.id.clone(), zones }
}

fn check_privacy(p: &PrivacyCfg, pp: &str, errs: &mut Vec<String>) {
    if !(8..=4096).contains(&p.min_size_px) {
        errs.push(format!("{pp}.min_size_px: {} must be in 8..4096", p.min_size_px));
    }
    let dir = std::path::Path::new(crate::evidence::privacy::DEFAULT_CASCADE_DIR);
    for f in crate::evidence::privacy::cascade_files(p, dir) {
        if !f.is_file() {
            errs.push(format!(
                "{pp}: Haar cascade {} is missing (install Debian's opencv-data, or set faces/plates = false)",
                f.display()
            ));
        }
    }
}

/// Checks one zone; returns it compiled when it passed every check.
pub(super) fn check_zone(z: &Zone, zp: &str, classes: Option<&[String]>, errs: &mut Vec<String>) -> Option<CompiledZone> {
    let errs_before = errs.len();
    let with_vehicles;
    let z = match parking_classes(z, classes) {
        Some(vehicles) => {
            if vehicles.is_empty() {
                errs.push(format!("{zp}.classes: the model has none of the vehicle classes a parking zone watches by default ({}); name the zone's classes", PARKING_CLASSES.join(", ")));
            }
            with_vehicles = Zone { classes: vehicles, ..z.clone() };
            &with_vehicles
        }
        None => z,
    };
    check_id(&z.id, &format!("{zp}.id"), errs);
    if z.polygon.len() < 3 {
        errs.push(format!("{zp}.polygon: needs at least 3 points, has {}", z.polygon.len()));
    }
    for (k, [x, y]) in z.polygon.iter().enumerate() {
        if !(0.0..=1.0).contains(x) || !(0.0..=1.0).contains(y) {
            errs.push(format!(
                "{zp}.polygon[{k}]: [{x}, {y}] is outside 0..1 (coordinates are fractions of the frame)"
            ));
        }
    }
    if z.polygon.len() >= 3 && crate::rules::Polygon::new(&z.polygon).area() < 1e-6 {
        errs.push(format!("{zp}.polygon: has no area (points are collinear or repeated)"));
    }
    // (a parking zone's classes are empty only when the model has no vehicle: said above)
    if z.classes.is_empty() && z.kind != ZoneKind::Parking {
        errs.push(format!("{zp}.classes: must name at least one class"));
    }
    if let Some(known) = classes {
        for (k, c) in z.classes.iter().enumerate() {
            if !known.iter().any(|m| m == c) {
                let preview: Vec<&str> = known.iter().take(12).map(String::as_str).collect();
                errs.push(format!(
                    "{zp}.classes[{k}]: {c:?} is not a class of the model (classes: {}{})",
                    preview.join(", "),
                    if known.len() > 12 { ", …" } else { "" }
                ));
            }
        }
    }
    if !(0.0..=1.0).contains(&z.min_score) {
        errs.push(format!("{zp}.min_score: {} is outside 0..1", z.min_score));
    }
    for (name, v) in [("dwell_s", z.dwell_s), ("grace_s", z.grace_s), ("clear_s", z.clear_s), ("cooldown_s", z.cooldown_s)] {
        if !(v >= 0.0) || !v.is_finite() {
            errs.push(format!("{zp}.{name}: {v} must be a number >= 0"));
        }
    }
    if z.kind == ZoneKind::Flooding
        && !(z.yellow_at > 0.0 && z.yellow_at < z.red_at && z.red_at <= 1.0 && z.hysteresis >= 0.0 && z.hysteresis < z.yellow_at)
    {
        errs.push(format!(
            "{zp}: flood levels need 0 < yellow_at ({}) < red_at ({}) <= 1 and 0 <= hysteresis ({}) < yellow_at",
            z.yellow_at, z.red_at, z.hysteresis
        ));
    }
    if !(z.level_min_s >= 0.0 && z.smooth_s >= 0.0) {
        errs.push(format!("{zp}: level_min_s and smooth_s must be >= 0"));
    }
    if z.min_count == 0 {
        errs.push(format!("{zp}.min_count: must be at least 1"));
    } else if z.kind == ZoneKind::Crowd && z.min_count < 2 {
        errs.push(format!("{zp}.min_count: {} is no crowd; a crowd zone needs min_count >= 2 (persons that make a crowd)", z.min_count));
    }
    if !(z.min_size_px >= 0.0) {
        errs.push(format!("{zp}.min_size_px: {} must be >= 0", z.min_size_px));
    }
    for (k, r) in z.required.iter().enumerate() {
        if !z.classes.contains(r) {
            errs.push(format!("{zp}.required[{k}]: {r:?} must also be one of the zone's classes"));
        }
    }
    if !(z.still_frac > 0.0 && z.still_frac <= 1.0) {
        errs.push(format!("{zp}.still_frac: {} must be in (0, 1] (a fraction of the vehicle box's own size)", z.still_frac));
    }
    if z.unmask_plates && z.kind != ZoneKind::Parking {
        errs.push(format!("{zp}.unmask_plates: only parking zones publish a vehicle crop; remove it from this {} zone", z.kind.as_str()));
    }
    if z.zoom && z.kind == ZoneKind::Flooding {
        errs.push(format!("{zp}.zoom: flooding zones are measured by the water mask, not by detections; remove it"));
    }
    let schedule = check_schedule(&z.schedule, &z.timezone, zp, "schedule", errs);
    if let Some(r) = z.recheck_after_s {
        if !(r > 0.0) || !r.is_finite() {
            errs.push(format!("{zp}.recheck_after_s: {r} must be > 0"));
        }
    }
    if !(z.update_s > 0.0) {
        errs.push(format!("{zp}.update_s: {} must be > 0", z.update_s));
    }
    let schedule = schedule.filter(|_| errs.len() == errs_before)?;
    Some(CompiledZone { zone: z.clone(), polygon: crate::rules::Polygon::new(&z.polygon), schedule, rule: zone_rule(z) })
}

/// A parking zone that names no classes watches the vehicle classes of [`PARKING_CLASSES`] the
/// model has (all of them when the model is unknown); `None` for every other zone.
fn parking_classes(z: &Zone, model: Option<&[String]>) -> Option<Vec<String>> {
    (z.kind == ZoneKind::Parking && z.classes.is_empty())
        .then(|| PARKING_CLASSES.iter().filter(|c| model.is_none_or(|m| m.iter().any(|k| k == *c))).map(|c| c.to_string()).collect())
}

/// The rule a zone's kind names, with its parameters from the zone.
fn zone_rule(z: &Zone) -> ZoneRule {
    let timing = |dwell_s| DwellParams { dwell_s, grace_s: z.grace_s, clear_s: z.clear_s, cooldown_s: z.cooldown_s, update_s: z.update_s };
    match z.kind {
        // bin_overflow: rubbish lying in the zone drawn around the bins, whoever left it (no
        // dumper, no static-foreground check: an overflowing bin is a state, not an act)
        ZoneKind::OutOfStore | ZoneKind::Occupancy | ZoneKind::BinOverflow => ZoneRule::Dwell(timing(z.dwell_s)),
        // dwell_s applies per track; the zone's presence starts once one track has stayed
        ZoneKind::Loitering => ZoneRule::Loitering { dwell_s: z.dwell_s, presence: timing(0.0) },
        // dwell_s applies per vehicle, timed while it stands still
        ZoneKind::Parking => ZoneRule::Parking(ParkingParams { dwell_s: z.dwell_s, still_frac: z.still_frac, presence: timing(0.0) }),
        ZoneKind::Crowd => ZoneRule::Crowd(timing(z.dwell_s)),
        ZoneKind::Flooding => ZoneRule::Flooding(FloodParams {
            yellow_at: z.yellow_at,
            red_at: z.red_at,
            hysteresis: z.hysteresis,
            min_duration_s: z.level_min_s,
            smooth_s: z.smooth_s,
            // set by the camera's check when a water model is configured
            from_mask: false,
        }),
        ZoneKind::Dumping => ZoneRule::Dumping(DumpingParams {
            dwell_s: z.dwell_s,
            grace_s: z.grace_s,
            clear_s: z.clear_s,
            cooldown_s: z.cooldown_s,
            update_s: z.update_s,
            waste_classes: z.classes.clone(),
            min_score: z.min_score,
            ..DumpingParams::default()
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_ignored_paths_become_toml_paths() {
        assert_eq!(toml_path("camera.0.zone.1.colour"), "camera[0].zone[1].colour");
        assert_eq!(toml_path("mqtt.tls"), "mqtt.tls");
    }

    #[test]
    fn privacy_defaults_parse_and_bad_min_size_is_reported() {
        let cam: Camera = toml::from_str("id = \"c\"\nurl = \"x\"\n").unwrap();
        assert_eq!(cam.privacy, PrivacyCfg::default());
        assert!(cam.privacy.faces && cam.privacy.plates && cam.privacy.min_size_px == 24);
        let text = "id = \"c\"\nurl = \"x\"\n[privacy]\nfaces = false\nmethod = \"blur\"\nmin_size_px = 4\n";
        let cam: Camera = toml::from_str(text).unwrap();
        assert_eq!(cam.privacy.method, super::super::MaskMethod::Blur);
        assert!(!cam.privacy.faces && cam.privacy.plates);
        let mut errs = Vec::new();
        check_privacy(&cam.privacy, "camera[0].privacy", &mut errs);
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(errs[0].starts_with("camera[0].privacy.min_size_px:"), "{errs:?}");
        assert!(toml::from_str::<Camera>("id = \"c\"\nurl = \"x\"\nprivacy = { method = \"smudge\" }\n").is_err());
    }

    #[test]
    fn parking_zones_watch_the_models_vehicles_and_check_still_frac_and_unmask_plates() {
        let text = "id = \"kerb\"\nkind = \"parking\"\npolygon = [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0]]\ndwell_s = 180\n";
        let z: Zone = toml::from_str(text).unwrap();
        assert_eq!((z.still_frac, z.unmask_plates, z.classes.len()), (0.25, false, 0));
        let mut errs = Vec::new();
        let c = check_zone(&z, "camera[0].zone[0]", None, &mut errs).unwrap();
        assert!(errs.is_empty(), "{errs:?}");
        assert_eq!(c.zone.classes, PARKING_CLASSES.map(String::from).to_vec());
        match c.rule {
            ZoneRule::Parking(p) => assert_eq!((p.dwell_s, p.still_frac, p.presence.dwell_s, p.presence.grace_s), (180.0, 0.25, 0.0, 2.0)),
            other => panic!("parking → {other:?}"),
        }
        // the model's own vehicle classes only
        let model: Vec<String> = ["person", "car", "truck", "goods"].map(String::from).to_vec();
        assert_eq!(check_zone(&z, "z", Some(&model), &mut errs).unwrap().zone.classes, ["car", "truck"]);
        // a model without vehicles, a bad still_frac, unmask_plates where no crop is made
        let people = vec!["person".to_string()];
        assert!(check_zone(&z, "camera[0].zone[0]", Some(&people), &mut errs).is_none());
        for bad in [0.0, -0.1, 1.5, f64::NAN] {
            assert!(check_zone(&Zone { still_frac: bad, ..z.clone() }, "camera[0].zone[0]", None, &mut errs).is_none());
        }
        let loiter = Zone { kind: ZoneKind::Loitering, classes: vec!["person".into()], unmask_plates: true, ..z.clone() };
        assert!(check_zone(&loiter, "camera[0].zone[1]", None, &mut errs).is_none());
        assert_eq!(errs.len(), 6, "{errs:#?}");
        assert!(errs[0].starts_with("camera[0].zone[0].classes: the model has none of the vehicle classes"), "{errs:?}");
        assert!(errs[1..5].iter().all(|e| e.starts_with("camera[0].zone[0].still_frac:")), "{errs:?}");
        assert!(errs[5].starts_with("camera[0].zone[1].unmask_plates:"), "{errs:?}");
        // a parking zone may keep readable plates, and name its own classes
        let mut errs = Vec::new();
        let own = Zone { classes: vec!["vehicle".into()], unmask_plates: true, still_frac: 1.0, ..z };
        assert_eq!(check_zone(&own, "z", None, &mut errs).unwrap().zone.classes, ["vehicle"]);
        assert!(errs.is_empty(), "{errs:?}");
    }
}
