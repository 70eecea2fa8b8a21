//! The device's Ed25519 signing key: created on first run, kept in `state_dir/keys/`.
//!
//! Files: `device.key` holds the 32-byte secret seed as 64 hex digits (mode 0600);
//! `device.pub` the 32-byte public key as 64 hex digits. A damaged key file is an error —
//! hawkeye never silently replaces a key, as that would break the evidence chain's trust.

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};

use super::seal::SealError;

/// The device's signing key.
pub struct DeviceKey {
    key: SigningKey,
    dir: PathBuf,
}

impl DeviceKey {
    /// Loads `dir/device.key`, or creates it (and `device.pub`) if there is none.
    pub fn load_or_create(dir: &Path) -> Result<DeviceKey, SealError> {
        let io = |what: &str, e: std::io::Error| SealError::Io(format!("{what} {}: {e}", dir.display()));
        fs::create_dir_all(dir).map_err(|e| io("cannot create", e))?;
        let path = dir.join("device.key");
        let key = if path.exists() {
            let text = fs::read_to_string(&path).map_err(|e| io("cannot read key in", e))?;
            let seed = parse_hex32(text.trim()).ok_or_else(|| SealError::BadKey(path.display().to_string()))?;
            SigningKey::from_bytes(&seed)
        } else {
            let mut seed = [0u8; 32];
            fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut seed)).map_err(|e| io("no randomness for a key in", e))?;
            let key = SigningKey::from_bytes(&seed);
            // written under a temporary name, then renamed: a crash never leaves half a key
            let tmp = dir.join("device.key.tmp");
            let mut f = fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp).map_err(|e| io("cannot write key in", e))?;
            f.write_all(hex::encode(seed).as_bytes()).and_then(|()| f.sync_all()).map_err(|e| io("cannot write key in", e))?;
            fs::rename(&tmp, &path).map_err(|e| io("cannot write key in", e))?;
            tracing::info!(public_key = %hex::encode(key.verifying_key().to_bytes()), "created the device's evidence signing key");
            key
        };
        let pubfile = dir.join("device.pub");
        let public = hex::encode(key.verifying_key().to_bytes());
        if fs::read_to_string(&pubfile).map(|t| t.trim() != public).unwrap_or(true) {
            fs::write(&pubfile, format!("{public}\n")).map_err(|e| io("cannot write public key in", e))?;
        }
        Ok(DeviceKey { key, dir: dir.to_path_buf() })
    }

    /// The public key as 64 hex digits (published retained on `…/pubkey`).
    pub fn public_key_hex(&self) -> String {
        hex::encode(self.key.verifying_key().to_bytes())
    }

    /// Ed25519 signature of `msg`.
    pub fn sign(&self, msg: &[u8]) -> [u8; 64] {
        self.key.sign(msg).to_bytes()
    }

    /// Where the key lives.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// 64 hex digits → 32 bytes.
pub(crate) fn parse_hex32(s: &str) -> Option<[u8; 32]> {
    hex::decode(s).ok()?.try_into().ok()
}

/// Checks an Ed25519 signature (hex) of `msg` against a public key (hex).
pub fn verify_signature(public_key_hex: &str, msg: &[u8], signature_hex: &str) -> Result<(), String> {
    let pk = parse_hex32(public_key_hex.trim()).ok_or("public key is not 64 hex digits")?;
    let pk = VerifyingKey::from_bytes(&pk).map_err(|e| format!("bad public key: {e}"))?;
    let sig: [u8; 64] = hex::decode(signature_hex.trim()).ok().and_then(|b| b.try_into().ok()).ok_or("signature is not 128 hex digits")?;
    pk.verify_strict(msg, &ed25519_dalek::Signature::from_bytes(&sig)).map_err(|_| "signature does not match".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_created_once_and_signs_verifiably() {
        let dir = tempfile::tempdir().unwrap();
        let k1 = DeviceKey::load_or_create(dir.path()).unwrap();
        let k2 = DeviceKey::load_or_create(dir.path()).unwrap();
        assert_eq!(k1.public_key_hex(), k2.public_key_hex(), "reloaded, not replaced");
        let sig = hex::encode(k1.sign(b"manifest"));
        assert!(verify_signature(&k1.public_key_hex(), b"manifest", &sig).is_ok());
        assert!(verify_signature(&k1.public_key_hex(), b"manifesT", &sig).is_err());
        let mode = fs::metadata(dir.path().join("device.key")).unwrap().permissions();
        assert_eq!(std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777, 0o600);
        assert_eq!(fs::read_to_string(dir.path().join("device.pub")).unwrap().trim(), k1.public_key_hex());
    }

    #[test]
    fn a_damaged_key_file_is_an_error_not_a_new_key() {
        let dir = tempfile::tempdir().unwrap();
        DeviceKey::load_or_create(dir.path()).unwrap();
        fs::write(dir.path().join("device.key"), "not hex").unwrap();
        assert!(matches!(DeviceKey::load_or_create(dir.path()), Err(SealError::BadKey(_))));
    }
}
