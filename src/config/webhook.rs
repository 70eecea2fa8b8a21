// `!(x > 0.0)` is deliberate: unlike `x <= 0.0` it also rejects NaN.
#![allow(clippy::neg_cmp_op_on_partial_ord)]

//! `[[webhook]]`: city platforms that take alerts over HTTP instead of MQTT. Each alert (and,
//! with `evidence = "inline"`, each evidence file as base64) is POSTed as JSON through a durable
//! queue of its own; see [`crate::webhook`].

use std::collections::HashSet;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::Config;

/// Whether evidence files go to the platform too.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum WebhookEvidence {
    /// Alerts only (the evidence stays on MQTT and in the box's evidence store).
    #[default]
    None,
    /// Every evidence file (pictures, clip, manifest) in a POST of its own, base64 in JSON.
    Inline,
}

/// One HTTP platform.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct WebhookCfg {
    pub id: String,
    /// `http://…` or `https://…` (then `ca_file` is required).
    pub url: String,
    /// Shared secret for the `X-Hawkeye-Signature` header (HMAC-SHA256 of
    /// `"{timestamp}.{body}"`), at least 16 characters.
    pub secret: String,
    /// The CA certificate (PEM) that signed the platform's certificate.
    pub ca_file: Option<PathBuf>,
    /// HTTP Basic or Digest credentials, when the platform asks for them.
    pub username: Option<String>,
    pub password: Option<String>,
    #[serde(default)]
    pub evidence: WebhookEvidence,
    /// Seconds one POST may take.
    #[serde(default = "default_timeout_s")]
    pub timeout_s: f64,
    /// First wait after a failed POST; doubled after each failure up to `backoff_max_s`.
    #[serde(default = "default_backoff_initial_s")]
    pub backoff_initial_s: f64,
    #[serde(default = "default_backoff_max_s")]
    pub backoff_max_s: f64,
    /// Size bound of this platform's queue on disk (MB); over it the oldest evidence goes
    /// first, alerts last (counted, logged at ERROR).
    #[serde(default = "default_max_mb")]
    pub max_mb: u64,
}

fn default_timeout_s() -> f64 {
    10.0
}
fn default_backoff_initial_s() -> f64 {
    1.0
}
fn default_backoff_max_s() -> f64 {
    60.0
}
fn default_max_mb() -> u64 {
    256
}

/// Every `[[webhook]]` check, errors under `webhook[i].key`.
pub(super) fn check(cfg: &Config, errs: &mut Vec<String>) {
    let mut ids = HashSet::new();
    for (i, w) in cfg.webhooks.iter().enumerate() {
        let p = format!("webhook[{i}]");
        super::validate::check_id(&w.id, &format!("{p}.id"), errs);
        if !ids.insert(w.id.as_str()) {
            errs.push(format!("{p}.id: duplicate webhook id {:?}", w.id));
        }
        match url::Url::parse(&w.url) {
            Err(e) => errs.push(format!("{p}.url: {:?} is not a URL: {e}", w.url)),
            Ok(u) => {
                match u.scheme() {
                    "http" => {}
                    "https" => {
                        if w.ca_file.is_none() {
                            errs.push(format!("{p}.ca_file: required for https:// (the CA certificate that signed the platform's)"));
                        }
                    }
                    other => errs.push(format!("{p}.url: scheme {other:?} is not supported (http:// or https://)")),
                }
                if u.host_str().unwrap_or("").is_empty() {
                    errs.push(format!("{p}.url: {:?} has no host", w.url));
                }
            }
        }
        if w.secret.chars().count() < 16 {
            errs.push(format!("{p}.secret: at least 16 characters (the platform checks X-Hawkeye-Signature with it)"));
        }
        if let Some(ca) = &w.ca_file {
            let path = cfg.resolve(ca);
            if !path.is_file() {
                errs.push(format!("{p}.ca_file: file {} does not exist", path.display()));
            }
        }
        if w.password.is_some() && w.username.is_none() {
            errs.push(format!("{p}.password: needs {p}.username"));
        }
        if !(w.timeout_s > 0.0) {
            errs.push(format!("{p}.timeout_s: {} must be > 0", w.timeout_s));
        }
        if !(w.backoff_initial_s > 0.0) {
            errs.push(format!("{p}.backoff_initial_s: {} must be > 0", w.backoff_initial_s));
        }
        if !(w.backoff_max_s >= w.backoff_initial_s) {
            errs.push(format!("{p}.backoff_max_s: {} must be at least backoff_initial_s ({})", w.backoff_max_s, w.backoff_initial_s));
        }
        if w.max_mb == 0 {
            errs.push(format!("{p}.max_mb: must be at least 1"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_webhooks_report_every_error_in_place() {
        let mut cfg: Config = toml::from_str(
            r#"
[device]
id = "box"
[mqtt]
url = "mqtt://127.0.0.1:1883"
[model]
path = "m.onnx"
[[webhook]]
id = "a"
url = "https://platform.example/alerts"
secret = "short"
timeout_s = 0
[[webhook]]
id = "a"
url = "ftp://x/"
secret = "0123456789abcdef"
password = "p"
backoff_initial_s = 5
backoff_max_s = 1
max_mb = 0
"#,
        )
        .unwrap();
        cfg.base_dir = std::env::temp_dir();
        let mut errs = Vec::new();
        check(&cfg, &mut errs);
        let want = [
            "webhook[0].ca_file: required for https://",
            "webhook[0].secret: at least 16",
            "webhook[0].timeout_s: 0 must be > 0",
            "webhook[1].id: duplicate webhook id",
            "webhook[1].url: scheme \"ftp\"",
            "webhook[1].password: needs webhook[1].username",
            "webhook[1].backoff_max_s: 1 must be at least",
            "webhook[1].max_mb: must be at least 1",
        ];
        for w in want {
            assert!(errs.iter().any(|e| e.starts_with(w)), "no {w:?} in {errs:#?}");
        }
        assert_eq!(errs.len(), want.len(), "{errs:#?}");
        assert_eq!(cfg.webhooks[0].evidence, WebhookEvidence::None);
    }
}
