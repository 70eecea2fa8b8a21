//! systemd's notification protocol (sd_notify), without libsystemd: when `NOTIFY_SOCKET` is set,
//! hawkeye says `READY=1` once its cameras are started, `WATCHDOG=1` from its main loop every
//! half `WATCHDOG_USEC` (so a hung main loop gets the service restarted), and `STOPPING=1` at
//! shutdown. Without the variable every call does nothing.

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

/// Sends one notification; errors are logged once and otherwise ignored (the daemon runs on).
pub fn notify(state: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else { return };
    let result = UnixDatagram::unbound().and_then(|s| {
        let p = path.to_string_lossy();
        match p.strip_prefix('@') {
            // abstract socket names (Linux)
            Some(name) => {
                use std::os::linux::net::SocketAddrExt;
                let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())?;
                s.send_to_addr(state.as_bytes(), &addr)
            }
            None => s.send_to(state.as_bytes(), &*p),
        }
    });
    if let Err(e) = result {
        static WARNED: std::sync::Once = std::sync::Once::new();
        WARNED.call_once(|| tracing::warn!("cannot notify systemd on {}: {e}", path.to_string_lossy()));
    }
}

/// How often to send `WATCHDOG=1`: half of `WATCHDOG_USEC`, when systemd set it for us.
pub fn watchdog_interval() -> Option<Duration> {
    if let Some(pid) = std::env::var("WATCHDOG_PID").ok().and_then(|p| p.parse::<u32>().ok()) {
        if pid != std::process::id() {
            return None;
        }
    }
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    (usec > 0).then(|| Duration::from_micros(usec / 2))
}
