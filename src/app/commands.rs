//! Commands from the command centre (`…/cmd/{name}`) and config reload. Every command gets
//! exactly one reply on `…/cmd_result`, and no command waits for a camera for ever: a camera
//! that does not answer within [`CAMERA_REPLY_TIMEOUT`] is reported as such.

use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::json;
use tokio::sync::oneshot;

use super::{free_slot, publish_camera_list, start_camera, stop_camera, CameraRuntime, Shared, MAX_CAMERAS};
use crate::camera::CameraCmd;
use crate::config::Config;
use crate::publish::commands::{self, Command};
use crate::rules::Ack;
use crate::speaker::{Origin, SpeakRequest};

/// How long a command waits for a camera's answer.
pub const CAMERA_REPLY_TIMEOUT: Duration = Duration::from_secs(5);

/// Parses and carries out one command, and publishes the reply on `cmd_result`.
pub(super) async fn handle_command(shared: &mut Shared, cameras: &mut Vec<CameraRuntime>, topic: &str, payload: &[u8]) {
    let topics = shared.publisher.topics().clone();
    let Some(name) = commands::command_name(topics.root(), topic) else { return };
    let (name, request_id, result) = match commands::parse(name, payload) {
        Err(e) => (e.name.clone(), commands::salvage_request_id(payload), Err(e.message)),
        Ok(req) => {
            let name = req.command.name().to_string();
            let result = match req.command {
                Command::Snapshot { camera_id } => match cameras.iter().find(|c| c.cfg.id == camera_id) {
                    None => Err(format!("unknown camera {camera_id:?}")),
                    Some(c) => {
                        let (tx, rx) = oneshot::channel();
                        match ask(c, CameraCmd::Snapshot { reply: tx }, rx).await {
                            Ok(r) => r,
                            Err(e) => Err(e),
                        }
                    }
                },
                Command::Ack { event_id, operator, note } => {
                    let ack = Ack { operator, note, at: chrono::Utc::now() };
                    ask_cameras(cameras, &event_id, |reply| CameraCmd::Ack { event_id: event_id.clone(), ack: ack.clone(), reply }).await
                }
                Command::Recheck { event_id } => ask_cameras(cameras, &event_id, |reply| CameraCmd::Recheck { event_id: event_id.clone(), reply }).await,
                Command::Reload => reload(shared, cameras).await,
                Command::Zones { camera_id, zones } => set_zones(shared, cameras, &camera_id, &zones).await,
                Command::Speak { speaker, message, operator } => {
                    let origin = Origin::Operator { request_id: req.request_id.clone(), operator };
                    let reply = json!({ "queued": true, "speaker": speaker, "message": message, "result_topic": topics.speaker_result() });
                    shared.speakers.request(SpeakRequest { speaker, message, origin }).map(|()| reply)
                }
            };
            (name, req.request_id, result)
        }
    };
    let counter = if result.is_ok() { &shared.alerts.commands_ok } else { &shared.alerts.commands_failed };
    counter.fetch_add(1, Ordering::Relaxed);
    match &result {
        Ok(_) => tracing::info!(cmd = %name, "command done"),
        Err(e) => tracing::warn!(cmd = %name, "command refused: {e}"),
    }
    let body = commands::reply(&name, request_id.as_deref(), result);
    if let Err(e) = shared.publisher.enqueue(&topics.command_result(), body, false) {
        tracing::error!("cannot queue command reply: {e}");
    }
}

/// Sends `cmd` to a camera and waits for its answer, at most [`CAMERA_REPLY_TIMEOUT`].
async fn ask<T>(c: &CameraRuntime, cmd: CameraCmd, rx: oneshot::Receiver<T>) -> Result<T, String> {
    let id = &c.cfg.id;
    tokio::time::timeout(CAMERA_REPLY_TIMEOUT, async {
        c.ctl.send(cmd).await.map_err(|_| format!("camera {id} stopped"))?;
        rx.await.map_err(|_| format!("camera {id} stopped"))
    })
    .await
    .unwrap_or_else(|_| Err(format!("camera {id} did not answer within {} s", CAMERA_REPLY_TIMEOUT.as_secs())))
}

/// Asks each camera in turn about an event until one knows it.
async fn ask_cameras(
    cameras: &[CameraRuntime],
    event_id: &str,
    make: impl Fn(oneshot::Sender<Option<Result<serde_json::Value, String>>>) -> CameraCmd,
) -> Result<serde_json::Value, String> {
    let mut silent = Vec::new();
    for c in cameras {
        let (tx, rx) = oneshot::channel();
        match ask(c, make(tx), rx).await {
            Ok(Some(r)) => return r,
            Ok(None) => {}
            Err(e) => silent.push(e),
        }
    }
    if silent.is_empty() {
        Err(format!("unknown event {event_id:?}"))
    } else {
        Err(format!("unknown event {event_id:?} ({})", silent.join("; ")))
    }
}

/// `cmd/zones`: a camera's new zones, checked with the whole config exactly as `hawkeye check`
/// does (every error is in the reply, and nothing changes); when they pass, they are written
/// to the config's zones drop-in (atomically, so they survive a restart) and applied by reload.
/// A reload that refuses (the config file itself changed in ways that need a restart) puts the
/// previous drop-in back.
async fn set_zones(shared: &mut Shared, cameras: &mut Vec<CameraRuntime>, camera_id: &str, zones: &serde_json::Value) -> Result<serde_json::Value, String> {
    use crate::config::zones_file;
    let path = shared.opts.config_path.clone().ok_or("this daemon was started without a config file")?;
    let file = zones_file::path_for(&path);
    let current = match std::fs::read_to_string(&file) {
        Ok(t) => Some(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(format!("{}: cannot read: {e}", file.display())),
    };
    let candidate = zones_file::with_camera_zones(current.as_deref(), camera_id, zones)?;
    crate::config::load_with_zones(&path, Some(&candidate)).map_err(|e| format!("{} error(s); nothing was changed: {}", e.0.len(), e.0.join("; ")))?;
    zones_file::write_atomically(&file, &candidate).map_err(|e| format!("{}: cannot write: {e}", file.display()))?;
    match reload(shared, cameras).await {
        Ok(applied) => {
            tracing::info!(camera = %camera_id, file = %file.display(), "zones set");
            Ok(json!({ "camera_id": camera_id, "zones": zones.as_array().map_or(0, Vec::len), "file": file.display().to_string(), "reload": applied }))
        }
        Err(e) => {
            let restored = match &current {
                Some(t) => zones_file::write_atomically(&file, t),
                None => std::fs::remove_file(&file),
            };
            if let Err(r) = restored {
                tracing::error!(file = %file.display(), "cannot put the previous zones file back: {r}");
            }
            Err(format!("not applied: {e}"))
        }
    }
}

/// A retained desired config on `…/config` (see [`crate::config::fleet`]): verified, checked
/// with the whole config exactly as `hawkeye check` does, kept as the last good one and applied
/// by reload; the outcome goes to `…/config_status` (retained). A version at or below the
/// applied one is not applied again (the broker hands the retained message out on every
/// reconnect); an older one is refused.
pub(super) async fn fleet_config(shared: &mut Shared, cameras: &mut Vec<CameraRuntime>, payload: &[u8]) {
    use crate::config::fleet;
    if payload.is_empty() {
        // the retained config was cleared: the box keeps what it runs
        return;
    }
    let applied = applied_fleet_version(shared);
    let outcome: Result<(u64, serde_json::Value), (Option<u64>, Vec<String>)> = async {
        let key = shared.cfg.fleet.as_ref().map(|f| f.public_key.clone()).ok_or((None, vec!["[fleet] is not configured".to_string()]))?;
        let desired = fleet::verify(payload, &key, &shared.cfg.device.id).map_err(|e| (None, vec![e]))?;
        let v = desired.version;
        match applied {
            Some(a) if v == a => return Ok((v, json!("already applied"))),
            Some(a) if v < a => return Err((Some(v), vec![format!("version {v} is older than the applied version {a}; not applied")])),
            _ => {}
        }
        let path = shared.opts.config_path.clone().ok_or((Some(v), vec!["this daemon was started without a config file".to_string()]))?;
        crate::config::load_with_fleet(&path, &desired).map_err(|e| (Some(v), e.0))?;
        let file = fleet::last_good_path(&shared.state_dir);
        let previous = std::fs::read(&file).ok();
        let write = |bytes: &[u8]| std::fs::create_dir_all(file.parent().unwrap()).and_then(|()| crate::durable::write_parts(&file, &[bytes]));
        write(payload).map_err(|e| (Some(v), vec![format!("{}: cannot write: {e}", file.display())]))?;
        match reload(shared, cameras).await {
            Ok(r) => Ok((v, r)),
            Err(e) => {
                let restored = match &previous {
                    Some(b) => write(b),
                    None => std::fs::remove_file(&file),
                };
                if let Err(r) = restored {
                    tracing::error!(file = %file.display(), "cannot put the previous fleet config back: {r}");
                }
                Err((Some(v), vec![format!("not applied: {e}")]))
            }
        }
    }
    .await;
    let status = match outcome {
        Ok((v, reload)) => {
            tracing::info!(version = v, "fleet config applied");
            json!({ "state": "applied", "version": v, "applied_version": v, "reload": reload })
        }
        Err((v, errors)) => {
            tracing::error!(version = ?v, errors = errors.len(), "fleet config REFUSED: {}", errors.join("; "));
            json!({ "state": "rejected", "version": v, "applied_version": applied, "errors": errors })
        }
    };
    publish_config_status(shared, status);
}

/// The version of the last good fleet config this box runs (None: the config file's cameras).
fn applied_fleet_version(shared: &Shared) -> Option<u64> {
    let f = shared.cfg.fleet.as_ref()?;
    let bytes = std::fs::read(crate::config::fleet::last_good_path(&shared.state_dir)).ok()?;
    crate::config::fleet::verify(&bytes, &f.public_key, &shared.cfg.device.id).ok().map(|d| d.version)
}

/// What the box runs at start: the last good fleet config, or the config file's cameras.
pub(super) fn started_status(shared: &Shared) -> serde_json::Value {
    match applied_fleet_version(shared) {
        Some(v) => json!({ "state": "applied", "version": v, "applied_version": v, "source": "last good fleet config (state_dir/fleet/config.json)" }),
        None => json!({ "state": "applied", "version": null, "applied_version": null, "source": "the config file (no fleet config yet)" }),
    }
}

/// Publishes the fleet config status, retained, with the device and the time.
pub(super) fn publish_config_status(shared: &Shared, mut status: serde_json::Value) {
    status["device_id"] = json!(shared.cfg.device.id);
    status["at"] = json!(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
    let topic = shared.publisher.topics().config_status();
    if let Err(e) = shared.publisher.enqueue(&topic, status.to_string().into_bytes(), true) {
        tracing::error!("cannot queue the fleet config status: {e}");
    }
}

/// `cmd/reload`: re-reads the config file; a bad one is refused with all its errors and the
/// running config stays. Camera and zone changes are applied; changes elsewhere need a restart.
async fn reload(shared: &mut Shared, cameras: &mut Vec<CameraRuntime>) -> Result<serde_json::Value, String> {
    let path = shared.opts.config_path.clone().ok_or("this daemon was started without a config file")?;
    let new = crate::config::load(&path).map_err(|e| format!("{} error(s) in {}: {}", e.0.len(), path.display(), e.0.join("; ")))?;
    let fixed = |c: &Config| {
        json!({ "device": c.device, "mqtt": c.mqtt, "model": c.model, "water": c.water, "outbox": c.outbox, "telemetry": c.telemetry, "evidence": c.evidence, "speaker": c.speakers, "message": c.messages, "webhook": c.webhooks, "fleet": c.fleet })
    };
    let (old_fixed, new_fixed) = (fixed(&shared.cfg), fixed(&new));
    let needs_restart: Vec<&str> = ["device", "mqtt", "model", "water", "outbox", "telemetry", "evidence", "speaker", "message", "webhook", "fleet"]
        .into_iter()
        .filter(|k| old_fixed[*k] != new_fixed[*k])
        .collect();
    if !needs_restart.is_empty() {
        return Err(format!("changes to [{}] need a restart; nothing was applied", needs_restart.join("], [")));
    }
    if new.cameras.len() > MAX_CAMERAS {
        return Err(format!("{} cameras configured; at most {MAX_CAMERAS}", new.cameras.len()));
    }
    let mut kept = Vec::new();
    let mut stopped = Vec::new();
    let mut i = 0;
    while i < cameras.len() {
        if new.cameras.contains(&cameras[i].cfg) {
            kept.push(cameras[i].cfg.id.clone());
            i += 1;
        } else {
            let c = cameras.remove(i);
            stopped.push(c.cfg.id.clone());
            stop_camera(shared, c).await;
        }
    }
    shared.cfg = new.clone();
    let mut started = Vec::new();
    for cam in &new.cameras {
        if !cameras.iter().any(|c| c.cfg == *cam) {
            let slot = free_slot(cameras);
            started.push(cam.id.clone());
            match start_camera(shared, cam.clone(), slot) {
                Ok(c) => cameras.push(c),
                Err(e) => tracing::error!(camera = %cam.id, "cannot start the camera: {e:#}"),
            }
        }
    }
    // keep the config's order for heartbeats and metrics
    cameras.sort_by_key(|c| new.cameras.iter().position(|n| n.id == c.cfg.id));
    publish_camera_list(shared, cameras);
    tracing::info!(?kept, ?stopped, ?started, "config reloaded");
    Ok(json!({ "kept": kept, "restarted_or_removed": stopped, "started": started }))
}
