//! The config compiler (Vector's way): raw serde structs → every check, every error with its
//! TOML path → typed per-stage values. No stage parses config strings after this: zones carry
//! their [`Polygon`](crate::rules::Polygon), [`Schedule`](crate::rules::Schedule) and
//! [`ZoneRule`](crate::rules::ZoneRule), speakers their [`GateParams`]. `check`, `run` and
//! `reload` all come through [`load`] / [`compile`].

use std::ops::Deref;
use std::path::Path;

use super::validate::{self, ConfigErrors};
use super::{parse, Config, SpeakerCfg, Zone};
use crate::rules::CompiledZone;
use crate::speaker::GateParams;

/// A validated config with its typed values. Derefs to the raw [`Config`] for everything that
/// needs no compiling (ids, URLs, paths, numbers).
#[derive(Clone, Debug)]
pub struct Compiled {
    pub raw: Config,
    /// One per `[[camera]]`, in config order.
    pub compiled_cameras: Vec<CompiledCamera>,
    /// One per `[[speaker]]`, in config order.
    pub compiled_speakers: Vec<CompiledSpeaker>,
}

/// A camera's compiled zones (config order).
#[derive(Clone, Debug, PartialEq)]
pub struct CompiledCamera {
    pub id: String,
    pub zones: Vec<CompiledZone>,
}

/// A loudspeaker: its raw entry and its gate (minimum interval, quiet hours).
#[derive(Clone, Debug, PartialEq)]
pub struct CompiledSpeaker {
    pub cfg: SpeakerCfg,
    pub gate: GateParams,
}

impl Deref for Compiled {
    type Target = Config;
    fn deref(&self) -> &Config {
        &self.raw
    }
}

impl Compiled {
    /// The compiled zones of camera `camera_id` (empty for an unknown camera or a drone).
    pub fn zones(&self, camera_id: &str) -> &[CompiledZone] {
        self.compiled_cameras.iter().find(|c| c.id == camera_id).map_or(&[], |c| &c.zones)
    }
}

/// Checks `raw` and compiles it; `Err` lists every problem, each with its TOML path.
pub fn compile(raw: &Config) -> Result<Compiled, ConfigErrors> {
    let mut errs = Vec::new();
    let (compiled_cameras, compiled_speakers) = validate::run_checks(raw, &mut errs);
    if errs.is_empty() {
        Ok(Compiled { raw: raw.clone(), compiled_cameras, compiled_speakers })
    } else {
        Err(ConfigErrors(errs))
    }
}

/// Reads, parses and compiles a config file with its zones drop-in (`<stem>.zones.toml`, see
/// [`zones_file`](super::zones_file)) when there is one; `Err` lists every problem found.
pub fn load(path: &Path) -> Result<Compiled, ConfigErrors> {
    let dropin = super::zones_file::path_for(path);
    let current = match std::fs::read_to_string(&dropin) {
        Ok(t) => Some(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(ConfigErrors(vec![format!("{}: cannot read: {e}", dropin.display())])),
    };
    load_with_zones(path, current.as_deref())
}

/// Reads, parses and compiles a config file with `zones` as its zones drop-in (`None`: without
/// one), as `cmd/zones` checks a drop-in before writing it.
pub fn load_with_zones(path: &Path, zones: Option<&str>) -> Result<Compiled, ConfigErrors> {
    load_full(path, zones, None)
}

/// Like [`load`], with `desired`'s cameras instead of the last good fleet config's (what a
/// new fleet config would make of this box; see [`fleet`](super::fleet)).
pub fn load_with_fleet(path: &Path, desired: &super::fleet::Desired) -> Result<Compiled, ConfigErrors> {
    let dropin = super::zones_file::path_for(path);
    let zones = std::fs::read_to_string(&dropin).ok();
    load_full(path, zones.as_deref(), Some(desired))
}

/// The config file, its cameras replaced by `fleet` (or, when `None`, by the last good fleet
/// config if the box has one), then the zones drop-in on top.
fn load_full(path: &Path, zones: Option<&str>, fleet: Option<&super::fleet::Desired>) -> Result<Compiled, ConfigErrors> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigErrors(vec![format!("{}: cannot read: {e}", path.display())]))?;
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let last_good;
    let fleet = match fleet {
        Some(d) => Some(d),
        None => {
            last_good = super::fleet::last_good(&text, &base);
            last_good.as_ref()
        }
    };
    let text = match fleet {
        Some(d) => super::fleet::overlay(&text, d).map_err(ConfigErrors)?,
        None => text,
    };
    let Some(zones) = zones else { return load_str(&text, &base) };
    let dropin = super::zones_file::path_for(path);
    let (merged, ours) = super::zones_file::merge(&text, zones, &dropin).map_err(ConfigErrors)?;
    load_str(&merged, &base).map_err(|e| ConfigErrors(super::zones_file::annotate(e.0, &ours, &dropin)))
}

/// Parses and compiles config text whose relative paths resolve against `base_dir`. Syntax
/// errors stop at the first; type errors (`dwell_s = "ten"`), unknown keys and every check of
/// the parts that parsed are reported together.
pub fn load_str(text: &str, base_dir: &Path) -> Result<Compiled, ConfigErrors> {
    let parsed = parse::parse(text, base_dir)?;
    let mut errs = parsed.unknown.iter().map(|p| format!("{p}: unknown key")).collect::<Vec<_>>();
    errs.extend(parsed.type_errors.iter().cloned());
    // a table that could not be rebuilt at all shifts the indices of the ones after it: its
    // checks would report wrong paths, so only the parse errors are reported then
    let Some(config) = parsed.config.as_ref().filter(|_| parsed.complete) else {
        return Err(ConfigErrors(errs));
    };
    match compile(config) {
        Ok(c) if errs.is_empty() => Ok(c),
        Ok(_) => Err(ConfigErrors(errs)),
        Err(e) => {
            // values that stand in for mistyped ones must not raise errors of their own
            errs.extend(e.0.into_iter().filter(|line| !parsed.covers(line)));
            Err(ConfigErrors(errs))
        }
    }
}

impl CompiledZone {
    /// Checks and compiles one zone on its own (no model classes to check against): for tests
    /// and zone editors. `Err` lists every problem, with paths relative to the zone.
    pub fn from_zone(z: &Zone) -> Result<CompiledZone, ConfigErrors> {
        let mut errs = Vec::new();
        match validate::check_zone(z, "zone", None, &mut errs) {
            Some(c) if errs.is_empty() => Ok(c),
            _ => Err(ConfigErrors(errs)),
        }
    }
}

impl CompiledSpeaker {
    /// Checks and compiles one speaker entry on its own (tests, tools); `base_dir` resolves
    /// its `ca_file`.
    pub fn new(cfg: SpeakerCfg, base_dir: &Path) -> Result<CompiledSpeaker, ConfigErrors> {
        let mut errs = Vec::new();
        match super::speaker::check_speaker(&cfg, "speaker", base_dir, &mut errs) {
            Some(c) if errs.is_empty() => Ok(c),
            _ => Err(ConfigErrors(errs)),
        }
    }
}

#[cfg(test)]
#[path = "compile_tests.rs"]
mod tests;
