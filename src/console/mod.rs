//! `hawkeye console`: the command centre's web application. It reads the (city) broker, not one
//! box: every device's alerts, evidence, heartbeats, keys and command results go into a
//! database (SQLite embedded, or PostgreSQL); operators see them live in a browser, acknowledge,
//! warn through a pole speaker, re-check (回头看), draw zones on a camera's live picture, and
//! see how fast events were handled.
//!
//! - [`db`]: the two backends behind one interface;
//! - [`store`]: the tables and what is done with them;
//! - [`ingest`]: the persistent MQTT session and the integrity checks;
//! - [`web`]: pages, JSON API, live updates (SSE), `/metrics`, `/healthz`;
//! - [`auth`]: argon2 passwords, sessions, CSRF, roles;
//! - [`response`]: response times.

pub mod auth;
pub mod db;
pub mod ingest;
pub mod response;
pub mod store;
pub mod web;

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use tokio_util::sync::CancellationToken;

/// `hawkeye console` options.
#[derive(clap::Args, Debug, Clone)]
pub struct ConsoleArgs {
    /// The broker the devices publish to: `mqtt://host:port`.
    #[arg(long, default_value = "mqtt://127.0.0.1:1883")]
    pub broker: String,
    /// The devices' `mqtt.topic_prefix`.
    #[arg(long, default_value = "hawkeye")]
    pub prefix: String,
    /// MQTT client id: the broker keeps this session's messages while the console is down
    /// (one id per console instance).
    #[arg(long, default_value = "hawkeye-console")]
    pub client_id: String,
    #[arg(long, env = "HAWKEYE_CONSOLE_MQTT_USER")]
    pub mqtt_user: Option<String>,
    #[arg(long, env = "HAWKEYE_CONSOLE_MQTT_PASSWORD", hide_env_values = true)]
    pub mqtt_password: Option<String>,
    /// `sqlite:PATH` (default `sqlite:console.db`) or `postgres://user:password@host/db`.
    #[arg(long, env = "HAWKEYE_CONSOLE_DB", default_value = "sqlite:console.db", hide_env_values = true)]
    pub db: String,
    /// Where the web application listens (localhost by default; put a TLS reverse proxy in
    /// front for other machines, see the README).
    #[arg(long, default_value = "127.0.0.1:8088")]
    pub listen: String,
    /// Write the address actually bound (useful with port 0) to this file.
    #[arg(long)]
    pub addr_file: Option<PathBuf>,
    /// Name of the first admin, created with a random password (printed once) when the
    /// database has no users.
    #[arg(long, default_value = "admin")]
    pub admin: String,
    /// The first admin's password instead of a random one.
    #[arg(long, env = "HAWKEYE_CONSOLE_ADMIN_PASSWORD", hide_env_values = true)]
    pub admin_password: Option<String>,
    /// Trusted device keys: a file of `device_id hex-public-key` lines. Devices not listed are
    /// trusted on first use (their first `…/pubkey`).
    #[arg(long)]
    pub keys: Option<PathBuf>,
    /// Mark the session cookie `Secure` (the console is behind an HTTPS reverse proxy).
    #[arg(long)]
    pub secure_cookie: bool,
}

fn parse_broker(url: &str) -> anyhow::Result<(String, u16)> {
    let rest = url.strip_prefix("mqtt://").or_else(|| url.strip_prefix("tcp://")).unwrap_or(url);
    let rest = rest.trim_end_matches('/');
    match rest.rsplit_once(':') {
        Some((h, p)) => Ok((h.to_string(), p.parse().with_context(|| format!("--broker {url}: bad port"))?)),
        None => Ok((rest.to_string(), 1883)),
    }
}

/// Runs the console until `stop`.
pub async fn run(args: ConsoleArgs, stop: CancellationToken) -> anyhow::Result<()> {
    let store = store::Store::open(&args.db).await?;
    tracing::info!(backend = store.db.kind(), "console: database ready");
    if let Some(path) = &args.keys {
        let text = std::fs::read_to_string(path).with_context(|| format!("--keys {}", path.display()))?;
        for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#')) {
            let mut it = line.split_whitespace();
            let (Some(d), Some(k), None) = (it.next(), it.next(), it.next()) else {
                anyhow::bail!("{}:{}: expected `device_id public-key`", path.display(), n + 1)
            };
            if k.len() != 64 || !k.bytes().all(|c| c.is_ascii_hexdigit()) {
                anyhow::bail!("{}:{}: the key is not 64 hex digits", path.display(), n + 1);
            }
            store.register_key(d, &k.to_ascii_lowercase()).await?;
        }
    }
    let first_password = auth::bootstrap_admin(&store, &args.admin, args.admin_password.as_deref()).await?;

    let (host, port) = parse_broker(&args.broker)?;
    let (live, _) = tokio::sync::broadcast::channel(1024);
    let stats = Arc::new(ingest::IngestStats::default());
    let commander = ingest::start(
        ingest::BrokerCfg { host, port, prefix: args.prefix.clone(), client_id: args.client_id.clone(), username: args.mqtt_user.clone(), password: args.mqtt_password.clone() },
        store.clone(),
        live.clone(),
        stats.clone(),
        stop.clone(),
    );
    let app = web::router(web::AppState { store, commander, live, stats, secure_cookie: args.secure_cookie });
    let listener = tokio::net::TcpListener::bind(&args.listen).await.with_context(|| format!("console: cannot listen on {}", args.listen))?;
    let addr = listener.local_addr()?;
    if let Some(f) = &args.addr_file {
        std::fs::write(f, addr.to_string()).with_context(|| format!("{}", f.display()))?;
    }
    println!("hawkeye console: http://{addr}/");
    match first_password {
        Some(pw) => println!("hawkeye console: first admin {:?}, password {pw} (shown once; change it under Users)", args.admin),
        None => println!("hawkeye console: users exist in {} (log in with yours)", args.db.split('@').next_back().unwrap_or_default()),
    }
    axum::serve(listener, app).with_graceful_shutdown(async move { stop.cancelled().await }).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_urls() {
        assert_eq!(parse_broker("mqtt://127.0.0.1:1884").unwrap(), ("127.0.0.1".to_string(), 1884));
        assert_eq!(parse_broker("broker.city").unwrap(), ("broker.city".to_string(), 1883));
        assert!(parse_broker("mqtt://h:port").is_err());
    }
}
