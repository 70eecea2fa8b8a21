//! The console's HTTP side (axum): pages, a JSON API, live updates over Server-Sent Events,
//! `/metrics` and `/healthz`. Every page and API call needs a session; state-changing calls
//! also need the session's CSRF token in `X-CSRF-Token` and the role the action needs.

use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use tokio::sync::broadcast;

use super::auth::{self, Role, User, COOKIE};
use super::ingest::{Commander, IngestStats};
use super::response;
use super::store::{EventFilter, Store};

/// Shared by every handler.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub commander: Commander,
    pub live: broadcast::Sender<Value>,
    pub stats: Arc<IngestStats>,
    /// Set `Secure` on the session cookie (behind a TLS reverse proxy).
    pub secure_cookie: bool,
}

const LOGIN_HTML: &str = include_str!("assets/login.html");
const APP_HTML: &str = include_str!("assets/app.html");
const ZONES_HTML: &str = include_str!("assets/zones.html");
const USERS_HTML: &str = include_str!("assets/users.html");
const APP_JS: &str = include_str!("assets/app.js");
const ZONES_JS: &str = include_str!("assets/zones.js");
const STYLE_CSS: &str = include_str!("assets/style.css");

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(page_app))
        .route("/login", get(|| async { Html(LOGIN_HTML) }))
        .route("/zones", get(page_zones))
        .route("/users", get(page_users))
        .route("/static/app.js", get(|| async { ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8")], APP_JS) }))
        .route("/static/zones.js", get(|| async { ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8")], ZONES_JS) }))
        .route("/static/style.css", get(|| async { ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], STYLE_CSS) }))
        .route("/api/login", post(api_login))
        .route("/api/logout", post(api_logout))
        .route("/api/me", get(api_me))
        .route("/api/events", get(api_events))
        .route("/api/events/{id}", get(api_event))
        .route("/api/events/{id}/evidence/{name}", get(api_evidence))
        .route("/api/events/{id}/ack", post(api_ack))
        .route("/api/events/{id}/warn", post(api_warn))
        .route("/api/events/{id}/recheck", post(api_recheck))
        .route("/api/devices", get(api_devices))
        .route("/api/devices/{d}/accept-key", post(api_accept_key))
        .route("/api/devices/{d}/cameras/{c}/snapshot", get(api_snapshot).post(api_request_snapshot))
        .route("/api/devices/{d}/zones", post(api_zones))
        .route("/api/commands/{rid}", get(api_command))
        .route("/api/floods", get(api_floods))
        .route("/api/response", get(api_response))
        .route("/api/response.csv", get(api_response_csv))
        .route("/api/users", get(api_users).post(api_add_user))
        .route("/api/audit", get(api_audit))
        .route("/api/live", get(api_live))
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .with_state(state)
}

/// An error as the API answers it.
struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "ok": false, "error": self.1 }))).into_response()
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(e: anyhow::Error) -> ApiError {
        tracing::error!("console: {e:#}");
        ApiError(StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}"))
    }
}

type ApiResult = Result<Response, ApiError>;

fn cookie_token(headers: &HeaderMap) -> Option<String> {
    headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(';')).find_map(|kv| {
        let (k, v) = kv.trim().split_once('=')?;
        (k == COOKIE).then(|| v.to_string())
    })
}

async fn session(st: &AppState, headers: &HeaderMap) -> Result<Option<User>, ApiError> {
    match cookie_token(headers) {
        Some(t) => Ok(auth::session_user(&st.store, &t).await?),
        None => Ok(None),
    }
}

/// The session's user with at least `role`; for anything but GET also a matching CSRF token.
async fn require(st: &AppState, headers: &HeaderMap, method: &Method, role: Role) -> Result<User, ApiError> {
    let Some(user) = session(st, headers).await? else { return Err(ApiError(StatusCode::UNAUTHORIZED, "log in first".into())) };
    if *method != Method::GET && headers.get("x-csrf-token").and_then(|v| v.to_str().ok()) != Some(user.csrf.as_str()) {
        return Err(ApiError(StatusCode::FORBIDDEN, "missing or wrong CSRF token".into()));
    }
    if user.role < role {
        return Err(ApiError(StatusCode::FORBIDDEN, format!("{} needs the {} role; {} is {}", method_action(method), role.as_str(), user.name, user.role.as_str())));
    }
    Ok(user)
}

fn method_action(m: &Method) -> &'static str {
    if *m == Method::GET {
        "this page"
    } else {
        "this action"
    }
}

async fn page(st: &AppState, headers: &HeaderMap, role: Role, html: &'static str) -> Response {
    match session(st, headers).await {
        Ok(Some(u)) if u.role >= role => Html(html).into_response(),
        Ok(Some(u)) => (
            StatusCode::FORBIDDEN,
            Html(format!(
                "<!doctype html><meta charset=utf-8><link rel=stylesheet href=/static/style.css><title>Forbidden</title>\
                 <main class=forbidden><h1>Forbidden</h1><p id=forbidden>This page needs the {} role; {} is {}.</p><p><a href=/>Back to the alerts</a></p></main>",
                role.as_str(),
                html_escape(&u.name),
                u.role.as_str()
            )),
        )
            .into_response(),
        Ok(None) => Redirect::to("/login").into_response(),
        Err(e) => e.into_response(),
    }
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

async fn page_app(State(st): State<AppState>, headers: HeaderMap) -> Response {
    page(&st, &headers, Role::Viewer, APP_HTML).await
}

async fn page_zones(State(st): State<AppState>, headers: HeaderMap) -> Response {
    page(&st, &headers, Role::Admin, ZONES_HTML).await
}

async fn page_users(State(st): State<AppState>, headers: HeaderMap) -> Response {
    page(&st, &headers, Role::Admin, USERS_HTML).await
}

#[derive(serde::Deserialize)]
struct LoginBody {
    username: String,
    password: String,
}

async fn api_login(State(st): State<AppState>, Json(b): Json<LoginBody>) -> ApiResult {
    match auth::login(&st.store, &b.username, &b.password).await? {
        None => {
            st.store.audit(&b.username, "login-failed", "", "").await?;
            Err(ApiError(StatusCode::UNAUTHORIZED, "wrong user name or password".into()))
        }
        Some((token, csrf)) => {
            st.store.audit(&b.username, "login", "", "").await?;
            let secure = if st.secure_cookie { "; Secure" } else { "" };
            let cookie = format!("{COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}{secure}", auth::SESSION_HOURS * 3600);
            let mut r = Json(json!({ "ok": true, "csrf": csrf })).into_response();
            r.headers_mut().insert(header::SET_COOKIE, HeaderValue::from_str(&cookie).map_err(|e| anyhow::anyhow!("{e}"))?);
            Ok(r)
        }
    }
}

async fn api_logout(State(st): State<AppState>, method: Method, headers: HeaderMap) -> ApiResult {
    let user = require(&st, &headers, &method, Role::Viewer).await?;
    if let Some(t) = cookie_token(&headers) {
        st.store.drop_session(&t).await?;
    }
    st.store.audit(&user.name, "logout", "", "").await?;
    let mut r = Json(json!({ "ok": true })).into_response();
    r.headers_mut().insert(header::SET_COOKIE, HeaderValue::from_static("hawkeye_console=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0"));
    Ok(r)
}

async fn api_me(State(st): State<AppState>, method: Method, headers: HeaderMap) -> ApiResult {
    let u = require(&st, &headers, &method, Role::Viewer).await?;
    Ok(Json(json!({ "username": u.name, "role": u.role, "csrf": u.csrf })).into_response())
}

async fn api_events(State(st): State<AppState>, method: Method, headers: HeaderMap, Query(f): Query<EventFilter>) -> ApiResult {
    require(&st, &headers, &method, Role::Viewer).await?;
    Ok(Json(st.store.events(&f).await?).into_response())
}

/// Evidence a viewer may not see: full-resolution vehicle crops (plates readable when the zone
/// says `unmask_plates`). Everything else the devices publish is already masked.
fn unmasked_evidence(name: &str) -> bool {
    name.starts_with("vehicle")
}

async fn api_event(State(st): State<AppState>, method: Method, headers: HeaderMap, Path(id): Path<String>) -> ApiResult {
    let u = require(&st, &headers, &method, Role::Viewer).await?;
    let Some(ev) = st.store.event(&id).await? else { return Err(ApiError(StatusCode::NOT_FOUND, format!("no event {id}"))) };
    let mut evidence = st.store.evidence_names(&id).await?;
    if u.role == Role::Viewer {
        evidence.retain(|n| !unmasked_evidence(n));
    }
    let (timeline, bodies): (Vec<Value>, Vec<Value>) = st.store.timeline(&id).await?.into_iter().unzip();
    Ok(Json(json!({
        "event": ev,
        "latest": st.store.event_latest(&id).await?,
        // the alert whose pictures the event's `clean` snapshot is (its objects are drawn on it)
        "first": bodies.into_iter().find(|a| a["state"] == "new"),
        "timeline": timeline,
        "evidence": evidence,
        "commands": st.store.commands(Some(&id)).await?,
    }))
    .into_response())
}

async fn api_evidence(State(st): State<AppState>, method: Method, headers: HeaderMap, Path((id, name)): Path<(String, String)>) -> ApiResult {
    let u = require(&st, &headers, &method, Role::Viewer).await?;
    if u.role == Role::Viewer && unmasked_evidence(&name) {
        return Err(ApiError(StatusCode::FORBIDDEN, "viewers see masked evidence only".into()));
    }
    let Some(data) = st.store.evidence(&id, &name).await? else { return Err(ApiError(StatusCode::NOT_FOUND, format!("no evidence {name} for {id}"))) };
    Ok(([(header::CONTENT_TYPE, content_type(&data)), (header::CACHE_CONTROL, "private, max-age=3600")], data).into_response())
}

fn content_type(data: &[u8]) -> &'static str {
    if data.starts_with(&[0xff, 0xd8]) {
        "image/jpeg"
    } else if data.len() > 8 && &data[4..8] == b"ftyp" {
        "video/mp4"
    } else if data.starts_with(b"{") {
        "application/json"
    } else {
        "application/octet-stream"
    }
}

/// Sends a command for an event to the device that raised it.
async fn event_command(st: &AppState, user: &User, event_id: &str, cmd: &str, payload: Value) -> ApiResult {
    let Some(ev) = st.store.event(event_id).await? else { return Err(ApiError(StatusCode::NOT_FOUND, format!("no event {event_id}"))) };
    send_command(st, user, &ev.device_id, Some(event_id), cmd, payload).await
}

#[derive(serde::Deserialize, Default)]
struct AckBody {
    #[serde(default)]
    note: String,
}

async fn api_ack(State(st): State<AppState>, method: Method, headers: HeaderMap, Path(id): Path<String>, body: Option<Json<AckBody>>) -> ApiResult {
    let u = require(&st, &headers, &method, Role::Operator).await?;
    let note = body.map(|b| b.0.note).unwrap_or_default();
    event_command(&st, &u, &id, "ack", json!({ "event_id": id, "operator": u.name, "note": note })).await
}

#[derive(serde::Deserialize)]
struct WarnBody {
    speaker: String,
    message: String,
}

async fn api_warn(State(st): State<AppState>, method: Method, headers: HeaderMap, Path(id): Path<String>, Json(b): Json<WarnBody>) -> ApiResult {
    let u = require(&st, &headers, &method, Role::Operator).await?;
    let Some(ev) = st.store.event(&id).await? else { return Err(ApiError(StatusCode::NOT_FOUND, format!("no event {id}"))) };
    // only what the device has configured (its retained `…/applied_config`)
    let devices = st.store.devices().await?;
    let cfg = devices.iter().find(|d| d["device_id"].as_str() == Some(ev.device_id.as_str())).map(|d| d["config"].clone()).unwrap_or(Value::Null);
    let has = |list: &str, id: &str| cfg[list].as_array().is_some_and(|l| l.iter().any(|x| x["id"].as_str() == Some(id)));
    if !has("speakers", &b.speaker) || !has("messages", &b.message) {
        return Err(ApiError(StatusCode::BAD_REQUEST, format!("{} has no speaker {:?} with message {:?} configured", ev.device_id, b.speaker, b.message)));
    }
    event_command(&st, &u, &id, "speak", json!({ "speaker": b.speaker, "message": b.message, "operator": u.name })).await
}

async fn api_recheck(State(st): State<AppState>, method: Method, headers: HeaderMap, Path(id): Path<String>) -> ApiResult {
    let u = require(&st, &headers, &method, Role::Operator).await?;
    event_command(&st, &u, &id, "recheck", json!({ "event_id": id })).await
}

async fn api_devices(State(st): State<AppState>, method: Method, headers: HeaderMap) -> ApiResult {
    require(&st, &headers, &method, Role::Viewer).await?;
    Ok(Json(st.store.devices().await?).into_response())
}

async fn api_accept_key(State(st): State<AppState>, method: Method, headers: HeaderMap, Path(d): Path<String>) -> ApiResult {
    let u = require(&st, &headers, &method, Role::Admin).await?;
    let Some(key) = st.store.accept_new_key(&d).await? else { return Err(ApiError(StatusCode::NOT_FOUND, format!("{d} has announced no new key"))) };
    st.store.audit(&u.name, "accept-key", &d, &key).await?;
    Ok(Json(json!({ "ok": true, "pubkey": key })).into_response())
}

async fn api_snapshot(State(st): State<AppState>, method: Method, headers: HeaderMap, Path((d, c)): Path<(String, String)>) -> ApiResult {
    require(&st, &headers, &method, Role::Viewer).await?;
    let Some((data, at)) = st.store.snapshot(&d, &c).await? else { return Err(ApiError(StatusCode::NOT_FOUND, format!("no snapshot of {d}/{c} yet"))) };
    Ok(([(header::CONTENT_TYPE, "image/jpeg".to_string()), (header::CACHE_CONTROL, "no-store".to_string()), (header::HeaderName::from_static("x-snapshot-at"), at)], data).into_response())
}

/// Sends a command to a device with a fresh `request_id`, recording it (its reply is matched
/// to it) and in the audit trail under the event, or the device when it is about no event.
async fn send_command(st: &AppState, user: &User, device: &str, event_id: Option<&str>, cmd: &str, mut payload: Value) -> ApiResult {
    let rid = format!("console-{}", auth::random_token().get(..20).unwrap_or_default());
    payload["request_id"] = json!(rid);
    st.store.record_command(&rid, device, cmd, event_id, &user.name, &payload.to_string()).await?;
    st.store.audit(&user.name, cmd, event_id.unwrap_or(device), &payload.to_string()).await?;
    st.commander.send(device, cmd, &payload).await?;
    Ok(Json(json!({ "ok": true, "request_id": rid })).into_response())
}

async fn api_request_snapshot(State(st): State<AppState>, method: Method, headers: HeaderMap, Path((d, c)): Path<(String, String)>) -> ApiResult {
    let u = require(&st, &headers, &method, Role::Operator).await?;
    send_command(&st, &u, &d, None, "snapshot", json!({ "camera_id": c })).await
}

#[derive(serde::Deserialize)]
struct ZonesBody {
    camera_id: String,
    zones: Value,
}

async fn api_zones(State(st): State<AppState>, method: Method, headers: HeaderMap, Path(d): Path<String>, Json(b): Json<ZonesBody>) -> ApiResult {
    let u = require(&st, &headers, &method, Role::Admin).await?;
    if !b.zones.is_array() {
        return Err(ApiError(StatusCode::BAD_REQUEST, "zones must be a list".into()));
    }
    send_command(&st, &u, &d, None, "zones", json!({ "camera_id": b.camera_id, "zones": b.zones })).await
}

async fn api_command(State(st): State<AppState>, method: Method, headers: HeaderMap, Path(rid): Path<String>) -> ApiResult {
    require(&st, &headers, &method, Role::Viewer).await?;
    match st.store.command(&rid).await? {
        Some(c) => Ok(Json(c).into_response()),
        None => Err(ApiError(StatusCode::NOT_FOUND, format!("no command {rid}"))),
    }
}

/// The flood board: every flooding zone the devices have configured, with its level from the
/// latest heartbeat (green when the device reports none) and its newest event.
async fn api_floods(State(st): State<AppState>, method: Method, headers: HeaderMap) -> ApiResult {
    require(&st, &headers, &method, Role::Viewer).await?;
    let mut board = Vec::new();
    for d in st.store.devices().await? {
        let device = d["device_id"].as_str().unwrap_or_default().to_string();
        for cam in d["config"]["cameras"].as_array().into_iter().flatten() {
            let camera = cam["camera_id"].as_str().unwrap_or_default();
            for z in cam["zones"].as_array().into_iter().flatten().filter(|z| z["kind"] == "flooding") {
                let zone = z["id"].as_str().unwrap_or_default();
                let live = &d["heartbeat"]["flood"][format!("{camera}/{zone}")];
                board.push(json!({
                    "device_id": device, "camera_id": camera, "zone_id": zone,
                    "level": live["level"].as_str().unwrap_or("green"), "coverage": live["coverage"],
                    "heartbeat_at": d["heartbeat_at"], "online": d["status"] == "online",
                }));
            }
        }
    }
    let flooding = st.store.events(&EventFilter { kind: Some("flooding".into()), limit: Some(1000), ..Default::default() }).await?;
    for b in &mut board {
        if let Some(e) = flooding.iter().find(|e| b["device_id"] == e.device_id.as_str() && b["camera_id"] == e.camera_id.as_str() && b["zone_id"] == e.zone_id.as_str()) {
            b["event_id"] = json!(e.event_id);
            b["event_state"] = json!(e.state);
        }
    }
    Ok(Json(board).into_response())
}

async fn api_response(State(st): State<AppState>, method: Method, headers: HeaderMap) -> ApiResult {
    require(&st, &headers, &method, Role::Viewer).await?;
    let times = response::event_times(&st.store.all_events().await?);
    Ok(Json(json!({ "target_s": response::TARGET_S, "aggregates": response::aggregate(&times), "events": times })).into_response())
}

async fn api_response_csv(State(st): State<AppState>, method: Method, headers: HeaderMap) -> ApiResult {
    require(&st, &headers, &method, Role::Viewer).await?;
    let times = response::event_times(&st.store.all_events().await?);
    Ok(([(header::CONTENT_TYPE, "text/csv; charset=utf-8"), (header::CONTENT_DISPOSITION, "attachment; filename=\"response-times.csv\"")], response::csv(&times)).into_response())
}

async fn api_users(State(st): State<AppState>, method: Method, headers: HeaderMap) -> ApiResult {
    require(&st, &headers, &method, Role::Admin).await?;
    Ok(Json(st.store.users().await?).into_response())
}

#[derive(serde::Deserialize)]
struct NewUser {
    username: String,
    password: String,
    role: String,
}

async fn api_add_user(State(st): State<AppState>, method: Method, headers: HeaderMap, Json(b): Json<NewUser>) -> ApiResult {
    let u = require(&st, &headers, &method, Role::Admin).await?;
    let Some(role) = Role::parse(&b.role) else { return Err(ApiError(StatusCode::BAD_REQUEST, format!("role {:?}: viewer, operator or admin", b.role))) };
    if b.username.trim().is_empty() || b.username.len() > 64 {
        return Err(ApiError(StatusCode::BAD_REQUEST, "user name: 1 to 64 characters".into()));
    }
    if b.password.chars().count() < 10 {
        return Err(ApiError(StatusCode::BAD_REQUEST, "password: at least 10 characters".into()));
    }
    st.store.put_user(b.username.trim(), &auth::hash_password(&b.password)?, role.as_str()).await?;
    st.store.audit(&u.name, "put-user", b.username.trim(), role.as_str()).await?;
    Ok(Json(json!({ "ok": true })).into_response())
}

async fn api_audit(State(st): State<AppState>, method: Method, headers: HeaderMap) -> ApiResult {
    require(&st, &headers, &method, Role::Admin).await?;
    Ok(Json(st.store.audit_log(500).await?).into_response())
}

async fn api_live(State(st): State<AppState>, method: Method, headers: HeaderMap) -> Result<Sse<impl futures_util::Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    require(&st, &headers, &method, Role::Viewer).await?;
    let rx = st.live.subscribe();
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        match rx.recv().await {
            Ok(v) => Some((Ok(SseEvent::default().data(v.to_string())), rx)),
            // a slow page missed some: tell it to reload its lists
            Err(broadcast::error::RecvError::Lagged(_)) => Some((Ok(SseEvent::default().data(r#"{"type":"resync"}"#)), rx)),
            Err(broadcast::error::RecvError::Closed) => None,
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

async fn metrics(State(st): State<AppState>) -> ApiResult {
    let s = &st.stats;
    let mut out = String::new();
    let mut line = |name: &str, help: &str, kind: &str, rows: Vec<(String, f64)>| {
        out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
        for (labels, v) in rows {
            out.push_str(&format!("{name}{labels} {v}\n"));
        }
    };
    let c = |a: &std::sync::atomic::AtomicU64| vec![(String::new(), a.load(Ordering::Relaxed) as f64)];
    line("hawkeye_console_messages_total", "MQTT messages received", "counter", c(&s.messages));
    line("hawkeye_console_alerts_total", "alert messages stored", "counter", c(&s.alerts));
    line("hawkeye_console_duplicates_total", "alert messages received again (not stored twice)", "counter", c(&s.duplicates));
    line("hawkeye_console_evidence_total", "evidence files stored", "counter", c(&s.evidence));
    line("hawkeye_console_rejected_total", "malformed messages refused", "counter", c(&s.rejected));
    line("hawkeye_console_integrity_failures_total", "signature, hash-chain, hash or key failures", "counter", c(&s.integrity_failures));
    line("hawkeye_console_store_errors_total", "messages not stored (delivered again by the broker)", "counter", c(&s.store_errors));
    line("hawkeye_console_broker_connected", "1 while connected to the broker", "gauge", c(&s.connected));
    let times = response::event_times(&st.store.all_events().await?);
    let agg = response::aggregate(&times);
    let by_kind: Vec<&response::Aggregate> = agg.iter().filter(|a| a.by == "kind").collect();
    let lbl = |a: &response::Aggregate| format!("{{kind=\"{}\"}}", a.key.replace('"', ""));
    line("hawkeye_console_events_raised", "events raised, by kind", "gauge", by_kind.iter().map(|a| (lbl(a), a.events as f64)).collect());
    line("hawkeye_console_events_acked", "events acknowledged, by kind", "gauge", by_kind.iter().map(|a| (lbl(a), a.acked as f64)).collect());
    line("hawkeye_console_events_resolved", "events resolved by a re-check, by kind", "gauge", by_kind.iter().map(|a| (lbl(a), a.resolved as f64)).collect());
    line("hawkeye_console_ack_within_target_ratio", "share of raised events acknowledged within 5 minutes, by kind", "gauge", by_kind.iter().map(|a| (lbl(a), a.within_target)).collect());
    line(
        "hawkeye_console_ack_seconds_median",
        "median seconds from raised to acknowledged, by kind",
        "gauge",
        by_kind.iter().filter_map(|a| a.median_ack_s.map(|m| (lbl(a), m))).collect(),
    );
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response())
}

async fn healthz(State(st): State<AppState>) -> Response {
    let connected = st.stats.connected.load(Ordering::Relaxed) == 1;
    let db = st.store.db.scalar("SELECT 1", vec![]).await.is_ok();
    let status = if connected && db { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(json!({ "broker": connected, "database": db, "backend": st.store.db.kind() }))).into_response()
}
