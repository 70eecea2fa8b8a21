// `!(x > 0.0)` is deliberate: unlike `x <= 0.0` it also rejects NaN.
#![allow(clippy::neg_cmp_op_on_partial_ord)]

//! `[camera.drone]`: a moving camera. Image polygons mean nothing when the camera flies, so a
//! drone's events are confirmed detections of watched classes, placed by the drone's telemetry
//! (MISB ST 0601 KLV in the stream, or DJI Cloud API OSD over MQTT), de-duplicated by distance
//! and time, optionally limited to geographic zones.

use serde::{Deserialize, Serialize};

use super::{Camera, ZoneKind};

/// Where a drone's position comes from.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum TelemetrySource {
    /// MISB ST 0601 local set in the MPEG-TS stream (`meta/x-klv`); the `ts_klv` template.
    Klv,
    /// DJI Cloud API OSD messages on `thing/product/{osd_sn}/osd` (same broker as `[mqtt]`).
    Osd,
}

impl TelemetrySource {
    pub fn as_str(&self) -> &'static str {
        match self {
            TelemetrySource::Klv => "klv",
            TelemetrySource::Osd => "osd",
        }
    }
}

/// A class whose confirmed detections are events.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct DroneWatch {
    pub class: String,
    pub kind: ZoneKind,
    #[serde(default = "default_watch_score")]
    pub min_score: f32,
}

/// A geographic zone: a polygon of `[lat, lon]` points.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct GeoZone {
    pub id: String,
    pub polygon: Vec<[f64; 2]>,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct DroneCfg {
    pub telemetry: TelemetrySource,
    /// `osd`: the aircraft's serial number in the OSD topic.
    pub osd_sn: Option<String>,
    /// A position older than this (seconds from the frame) does not tag the frame.
    #[serde(default = "default_fix_age")]
    pub max_fix_age_s: f64,
    /// A tracked object must be matched in this many frames before it counts.
    #[serde(default = "default_confirm")]
    pub confirm_frames: u32,
    /// The same class within this distance ...
    #[serde(default = "default_dedup_m")]
    pub dedup_m: f64,
    /// ... and within this time of the last sighting is the same event.
    #[serde(default = "default_dedup_s")]
    pub dedup_s: f64,
    #[serde(rename = "watch")]
    pub watches: Vec<DroneWatch>,
    /// Only sightings inside one of these count; none: everywhere.
    #[serde(default, rename = "geo_zone")]
    pub geo_zones: Vec<GeoZone>,
}

fn default_watch_score() -> f32 {
    0.5
}
fn default_fix_age() -> f64 {
    2.0
}
fn default_confirm() -> u32 {
    3
}
fn default_dedup_m() -> f64 {
    30.0
}
fn default_dedup_s() -> f64 {
    600.0
}

/// Checks a camera's `drone` table; `classes` are the model's, when known.
pub(super) fn check(cam: &Camera, path: &str, classes: Option<&[String]>, errs: &mut Vec<String>) {
    let Some(d) = &cam.drone else { return };
    let p = format!("{path}.drone");
    if !cam.zones.is_empty() {
        errs.push(format!("{path}.zone: a drone camera moves, so image zones do not apply; use {p}.watch (and {p}.geo_zone)"));
    }
    match (d.telemetry, &d.osd_sn) {
        (TelemetrySource::Osd, None) => errs.push(format!("{p}.osd_sn: telemetry = \"osd\" needs the aircraft's serial number")),
        (TelemetrySource::Osd, Some(sn)) if sn.is_empty() || sn.contains(['/', '+', '#']) => {
            errs.push(format!("{p}.osd_sn: {sn:?} must be non-empty without '/', '+' or '#'"))
        }
        (TelemetrySource::Klv, Some(_)) => errs.push(format!("{p}.osd_sn: only for telemetry = \"osd\"")),
        _ => {}
    }
    if d.telemetry == TelemetrySource::Klv && cam.pipeline != "ts_klv" && !cam.pipeline.ends_with(".pipeline") {
        errs.push(format!("{p}.telemetry: KLV needs a template that extracts it (pipeline = \"ts_klv\"), not {:?}", cam.pipeline));
    }
    if !(d.max_fix_age_s > 0.0) {
        errs.push(format!("{p}.max_fix_age_s: {} must be > 0", d.max_fix_age_s));
    }
    if d.confirm_frames == 0 {
        errs.push(format!("{p}.confirm_frames: must be at least 1"));
    }
    if !(d.dedup_m >= 0.0 && d.dedup_s >= 0.0) {
        errs.push(format!("{p}: dedup_m ({}) and dedup_s ({}) must be >= 0", d.dedup_m, d.dedup_s));
    }
    if d.watches.is_empty() {
        errs.push(format!("{p}.watch: name at least one class to watch, e.g. {{ class = \"garbage\", kind = \"dumping\" }}"));
    }
    for (k, w) in d.watches.iter().enumerate() {
        if let Some(known) = classes {
            if !known.iter().any(|c| c == &w.class) {
                errs.push(format!("{p}.watch[{k}].class: {:?} is not a class of the model", w.class));
            }
        }
        if !(0.0..=1.0).contains(&w.min_score) {
            errs.push(format!("{p}.watch[{k}].min_score: {} is outside 0..1", w.min_score));
        }
    }
    for (k, z) in d.geo_zones.iter().enumerate() {
        super::validate::check_id(&z.id, &format!("{p}.geo_zone[{k}].id"), errs);
        if z.polygon.len() < 3 {
            errs.push(format!("{p}.geo_zone[{k}].polygon: needs at least 3 [lat, lon] points"));
        }
        for (j, [lat, lon]) in z.polygon.iter().enumerate() {
            if !(-90.0..=90.0).contains(lat) || !(-180.0..=180.0).contains(lon) {
                errs.push(format!("{p}.geo_zone[{k}].polygon[{j}]: [{lat}, {lon}] is not [lat, lon]"));
            }
        }
    }
}
