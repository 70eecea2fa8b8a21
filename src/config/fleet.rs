//! Fleet-wide configuration (issue 18): the command centre publishes a box's cameras and zones
//! as a retained, signed, versioned message on `{prefix}/{device}/config`; the box checks it as
//! `hawkeye check` does, applies it by hot reload, keeps it as its last good one in
//! `state_dir/fleet/config.json`, and answers on `{prefix}/{device}/config_status`.
//!
//! The message (an envelope, so the signature covers exact bytes and no JSON canonical form is
//! needed):
//!
//! ```json
//! {"body": "<JSON text>", "signature": "<128 hex digits>"}
//! ```
//!
//! where `body` is `{"device_id": "…", "version": 7, "issued_at": "…", "config": "<TOML>"}`, the
//! TOML holding `[[camera]]` tables (with their `[[camera.zone]]`s) exactly as in a config file,
//! and `signature` the Ed25519 signature of the body's bytes by the command centre's key, whose
//! public half the box's config names in `[fleet] public_key`. `hawkeye fleet-sign` makes one.
//!
//! When a last good one exists (and still verifies), its cameras replace the config file's
//! `[[camera]]` tables for `run`, `check` and `reload`; the rest of the config (device, broker,
//! model, speakers …) stays the installer's. A box without a broker therefore starts from it.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use toml::{Table, Value};

/// `[fleet]`: take cameras and zones from the command centre.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct FleetCfg {
    /// The command centre's Ed25519 public key, 64 hex digits.
    pub public_key: String,
}

/// A verified desired config.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct Desired {
    pub device_id: String,
    pub version: u64,
    #[serde(default)]
    pub issued_at: String,
    /// TOML with `[[camera]]` tables.
    pub config: String,
}

#[derive(Deserialize, Serialize)]
struct Envelope {
    body: String,
    signature: String,
}

/// Where a box keeps its last good fleet config.
pub fn last_good_path(state_dir: &Path) -> PathBuf {
    state_dir.join("fleet").join("config.json")
}

/// Checks the envelope's signature with `public_key` and that it is meant for `device_id`.
pub fn verify(message: &[u8], public_key: &str, device_id: &str) -> Result<Desired, String> {
    let env: Envelope = serde_json::from_slice(message).map_err(|e| format!("not a signed config message ({{\"body\", \"signature\"}}): {e}"))?;
    crate::evidence::keys::verify_signature(public_key, env.body.as_bytes(), &env.signature).map_err(|e| format!("signature: {e} (signed with another key than [fleet] public_key?)"))?;
    let d: Desired = serde_json::from_str(&env.body).map_err(|e| format!("body: {e}"))?;
    if d.device_id != device_id {
        return Err(format!("the config is for device {:?}, this is {device_id:?}", d.device_id));
    }
    Ok(d)
}

/// Signs `desired` with the command centre's `key`; returns the message to publish.
pub fn sign(desired: &Desired, key: &crate::evidence::keys::DeviceKey) -> Vec<u8> {
    let body = serde_json::to_string(desired).expect("json");
    let signature = hex::encode(key.sign(body.as_bytes()));
    serde_json::to_vec(&Envelope { body, signature }).expect("json")
}

/// The config file's text with its `[[camera]]` tables replaced by the desired config's. `Err`:
/// what is wrong with the desired config's TOML itself (each line says where).
pub fn overlay(config_text: &str, desired: &Desired) -> Result<String, Vec<String>> {
    let place = format!("fleet config v{}", desired.version);
    let Ok(mut main) = config_text.parse::<Table>() else { return Ok(config_text.to_string()) };
    let d = desired.config.parse::<Table>().map_err(|e| vec![format!("{place}: {}", e.message().trim())])?;
    let mut errs: Vec<String> = d.keys().filter(|k| *k != "camera").map(|k| format!("{place}: {k}: unknown key (a fleet config holds [[camera]] tables only)")).collect();
    match d.get("camera") {
        Some(Value::Array(a)) => {
            main.insert("camera".into(), Value::Array(a.clone()));
        }
        Some(_) => errs.push(format!("{place}: camera: must be an array of tables ([[camera]])")),
        None => errs.push(format!("{place}: no [[camera]] (a box needs at least one camera)")),
    }
    if !errs.is_empty() {
        return Err(errs);
    }
    Ok(toml::to_string(&main).expect("a parsed table serialises"))
}

/// The last good fleet config for the config text at `base` (its `[fleet]` key and state_dir),
/// when there is one and it still verifies. A last good file that does not verify is ignored
/// with an ERROR (the config file's cameras run instead).
pub fn last_good(config_text: &str, base: &Path) -> Option<Desired> {
    let main = config_text.parse::<Table>().ok()?;
    let key = main.get("fleet")?.get("public_key")?.as_str()?.to_string();
    let device = main.get("device")?.get("id")?.as_str()?.to_string();
    let state_dir = main.get("device").and_then(|d| d.get("state_dir")).and_then(Value::as_str).unwrap_or("state");
    let path = last_good_path(&super::resolve_path(base, Path::new(state_dir)));
    let bytes = std::fs::read(&path).ok()?;
    match verify(&bytes, &key, &device) {
        Ok(d) => Some(d),
        Err(e) => {
            tracing::error!(file = %path.display(), "the last good fleet config does not verify ({e}); the config file's cameras are used");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> (tempfile::TempDir, crate::evidence::keys::DeviceKey) {
        let dir = tempfile::tempdir().unwrap();
        let k = crate::evidence::keys::DeviceKey::load_or_create(dir.path()).unwrap();
        (dir, k)
    }

    fn desired(device: &str, version: u64) -> Desired {
        Desired { device_id: device.into(), version, issued_at: "2026-12-07T08:00:00Z".into(), config: "[[camera]]\nid = \"c1\"\nurl = \"rtsp://10.0.0.5/s\"\n".into() }
    }

    #[test]
    fn a_signed_config_verifies_and_anything_changed_does_not() {
        let (_d, k) = key();
        let msg = sign(&desired("box-1", 3), &k);
        assert_eq!(verify(&msg, &k.public_key_hex(), "box-1").unwrap().version, 3);
        assert!(verify(&msg, &k.public_key_hex(), "box-2").unwrap_err().contains("for device \"box-1\""));
        let (_d2, other) = key();
        assert!(verify(&msg, &other.public_key_hex(), "box-1").unwrap_err().starts_with("signature"));
        // a changed version under the old signature
        let text = String::from_utf8(msg).unwrap().replace("\\\"version\\\":3", "\\\"version\\\":4");
        assert!(text.contains("\\\"version\\\":4"));
        assert!(verify(text.as_bytes(), &k.public_key_hex(), "box-1").unwrap_err().starts_with("signature"));
        assert!(verify(b"{}", &k.public_key_hex(), "box-1").is_err());
    }

    #[test]
    fn overlay_replaces_the_cameras_and_keeps_the_rest() {
        let file = "[device]\nid = \"box-1\"\n[[camera]]\nid = \"old\"\nurl = \"rtsp://x/\"\n";
        let merged = overlay(file, &desired("box-1", 1)).unwrap();
        let t: Table = merged.parse().unwrap();
        assert_eq!(t["device"]["id"].as_str(), Some("box-1"));
        let cams = t["camera"].as_array().unwrap();
        assert_eq!(cams.len(), 1);
        assert_eq!(cams[0]["id"].as_str(), Some("c1"));
        let mut bad = desired("box-1", 2);
        bad.config = "[mqtt]\nurl = \"mqtt://evil\"\n".into();
        let errs = overlay(file, &bad).unwrap_err();
        assert!(errs.iter().any(|e| e.contains("mqtt: unknown key")), "{errs:?}");
        assert!(errs.iter().any(|e| e.contains("no [[camera]]")), "{errs:?}");
    }
}
