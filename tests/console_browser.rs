//! The operator console in a real browser (Debian's Chromium, headless, over WebDriver with
//! chromedriver), against a real `hawkeye run` on vtest.avi with hawkeye's own model, a real
//! mosquitto and the console on SQLite: log in; the device's alert arrives live with its
//! snapshot; acknowledge it and see the device confirm; re-check it and see the result come
//! back; draw a zone on a live snapshot, save it and see the device apply it; a bad zone is
//! refused with the device's error shown; a viewer is refused the admin pages and sees no
//! action buttons; response times come from the real ack. Screenshots go to
//! `$HAWKEYE_SCREENSHOTS` when set (the README's pictures).

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::console::{ChromeDriver, Console};
use common::daemon::Daemon;
use fantoccini::actions::{InputSource, MouseActions, PointerAction, MOUSE_BUTTON_LEFT};
use fantoccini::{Client, Locator};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(90);

async fn wait_js(c: &Client, what: &str, script: &str) -> Value {
    let t0 = Instant::now();
    loop {
        if let Ok(v) = c.execute(script, vec![]).await {
            if !v.is_null() && v != Value::Bool(false) {
                return v;
            }
        }
        if t0.elapsed() > WAIT {
            let body = c.execute("return document.body.innerText", vec![]).await.unwrap_or_default();
            panic!("timed out waiting for {what}; the page says:\n{}", body.as_str().unwrap_or_default());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn click(c: &Client, css: &str) {
    // lists re-render on live updates; a stale element is found again
    for _ in 0..20 {
        if let Ok(e) = c.find(Locator::Css(css)).await {
            if e.click().await.is_ok() {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    panic!("cannot click {css}");
}

async fn type_into(c: &Client, css: &str, text: &str) {
    let e = c.find(Locator::Css(css)).await.unwrap_or_else(|_| panic!("no {css}"));
    e.clear().await.unwrap();
    e.send_keys(text).await.unwrap();
}

async fn shot(c: &Client, name: &str) {
    if let Some(dir) = std::env::var_os("HAWKEYE_SCREENSHOTS") {
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(PathBuf::from(dir).join(name), c.screenshot().await.unwrap()).unwrap();
    }
}

async fn login(c: &Client, base: &str, user: &str, password: &str) {
    c.goto(&format!("{base}/login")).await.unwrap();
    type_into(c, "#username", user).await;
    type_into(c, "#password", password).await;
    click(c, "#login-button").await;
    wait_js(c, "the alerts page", "return location.pathname === '/' && !!document.querySelector('#who') && document.querySelector('#who').textContent.length > 0").await;
}

/// Clicks the canvas at fractions of its size (real pointer events through WebDriver).
async fn click_canvas(c: &Client, points: &[(f64, f64)]) {
    let canvas = c.find(Locator::Css("#zone-canvas")).await.unwrap();
    let (_, _, w, h) = canvas.rectangle().await.unwrap();
    for (fx, fy) in points {
        let actions = MouseActions::new("mouse".into())
            .then(PointerAction::MoveToElement { element: canvas.clone(), duration: None, x: (fx - 0.5) * w, y: (fy - 0.5) * h })
            .then(PointerAction::Down { button: MOUSE_BUTTON_LEFT })
            .then(PointerAction::Up { button: MOUSE_BUTTON_LEFT });
        c.perform_actions(actions).await.unwrap();
        // a second click within the double-click interval would remove the point
        tokio::time::sleep(Duration::from_millis(600)).await;
    }
}

/// vtest.avi with the walkway zone, and a pole speaker that "plays" by writing the message
/// (a `command` speaker running `sh`), so the warning's outcome is real and can be checked.
fn config(dir: &Path, port: u16) -> PathBuf {
    let played = dir.join("played.txt");
    let speaker = format!(
        r#"
[[speaker]]
id = "pole-17"
kind = "command"
command = ["sh", "-c", "echo {{message}} {{event_id}} >> {played}"]
min_interval_s = 0

[[message]]
id = "no-loitering"
text = "请勿在此逗留"
"#,
        played = played.display()
    );
    let cameras = format!("{}{}{speaker}", common::config::vtest_camera("cam-1"), common::config::walkway_zone(2.0, 2.0, 10.0));
    common::config::write(dir, port, &common::model::urban(), &cameras)
}

#[test]
fn operators_work_a_live_alert_and_edit_zones_in_a_real_browser() {
    let broker = common::broker::mosquitto();
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), broker.port);
    let dropin = dir.path().join("hawkeye.zones.toml");
    let _daemon = Daemon::start_logged(&config, &dir.path().join("daemon.log"));
    let console = Console::start(dir.path(), broker.port, &format!("sqlite:{}", dir.path().join("console.db").display()));
    let driver = ChromeDriver::start();
    let base = console.url();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let c = driver.session().await;
        login(&c, &base, "admin", "admin-password-1").await;

        // the device's alert arrives without reloading the page, with its snapshot
        wait_js(&c, "a live alert", "return document.querySelectorAll('#alerts-table tr.ev').length > 0").await;
        click(&c, "#alerts-table tr.ev").await;
        wait_js(&c, "the clean snapshot", "const i = document.querySelector('img[data-name=\"clean\"]'); return !!i && i.complete && i.naturalWidth > 0").await;
        wait_js(&c, "the annotated snapshot", "const i = document.querySelector('img[data-name=\"annotated\"]'); return !!i && i.complete && i.naturalWidth > 0").await;
        let title = c.find(Locator::Css("#detail-title")).await.unwrap().text().await.unwrap();
        assert!(title.contains("loitering"), "{title}");
        wait_js(&c, "the integrity verdict", "return document.querySelector('#detail-meta').innerText.includes('verified')").await;
        shot(&c, "console-alerts.png").await;

        // acknowledge: the device confirms, the page shows who and when
        type_into(&c, "#ack-note", "officer 7 dispatched").await;
        click(&c, "#ack-button").await;
        wait_js(&c, "the device's ack", "return document.querySelector('#detail-meta').innerText.includes('acknowledged by admin')").await;

        // warn through the pole speaker: only what the device configured is offered
        wait_js(&c, "the speaker's messages", "return document.querySelector('#warn-message').innerText.includes('请勿在此逗留')").await;
        click(&c, "#warn-button").await;
        wait_js(&c, "the speaker's outcome", "return document.querySelector('#commands').innerText.includes('played')").await;
        let played = std::fs::read_to_string(dir.path().join("played.txt")).expect("the speaker played");
        assert!(played.starts_with("no-loitering"), "{played}");

        // re-check now (回头看): the device's verdict comes back as a new state on the timeline
        click(&c, "#recheck-button").await;
        let verdict = wait_js(
            &c,
            "the re-check's result",
            "const t = document.querySelector('#timeline').innerText; return t.includes('recurred') ? 'recurred' : (t.includes('resolved') ? 'resolved' : null)",
        )
        .await;
        eprintln!("re-check: {verdict}");
        shot(&c, "console-event.png").await;

        // the zone editor: a live snapshot, a polygon clicked on it, saved, applied by the device
        c.goto(&format!("{base}/zones")).await.unwrap();
        wait_js(&c, "the camera list", "return document.querySelectorAll('#z-camera option').length > 0").await;
        wait_js(&c, "the device's zones", "return document.querySelector('#zone-list').innerText.includes('walkway')").await;
        click(&c, "#z-snapshot").await;
        wait_js(&c, "the live snapshot", "return document.querySelector('#zone-canvas').dataset.loaded === '1'").await;
        click(&c, "#z-new").await;
        type_into(&c, "#zf-id", "kerb").await;
        type_into(&c, "#zf-classes", "person").await;
        type_into(&c, "#zf-dwell", "20").await;
        click_canvas(&c, &[(0.05, 0.70), (0.60, 0.66), (0.65, 0.95), (0.05, 0.95)]).await;
        let pts = c.find(Locator::Css("#zf-points")).await.unwrap().text().await.unwrap();
        assert!(pts.starts_with("4 points"), "{pts}");
        click(&c, "#zf-apply").await;
        shot(&c, "console-zones.png").await;
        click(&c, "#z-save").await;
        let r = wait_js(&c, "the device's answer", "const m = document.querySelector('#zone-result'); return m.innerText.includes('applied') || m.innerText.includes('refused') ? m.innerText : null").await;
        assert!(r.as_str().unwrap().contains("applied by the device: 2 zone(s)"), "{r}");
        let text = std::fs::read_to_string(&dropin).expect("the device kept the zones in its drop-in");
        assert!(text.contains("\"kerb\"") && text.contains("\"walkway\""), "{text}");
        // the device's retained config (re-published after the reload) lists the new zone
        wait_js(&c, "the new zone in the device's config", "return fetch('/api/devices').then(r => r.json()).then(d => JSON.stringify(d).includes('\"kerb\"'))").await;

        // a bad zone (two points): the device refuses it, the error is shown, nothing changes
        click(&c, "#z-new").await;
        type_into(&c, "#zf-id", "bad").await;
        click_canvas(&c, &[(0.80, 0.10), (0.95, 0.20)]).await;
        click(&c, "#zf-apply").await;
        click(&c, "#z-save").await;
        let r = wait_js(&c, "the refusal", "const m = document.querySelector('#zone-result'); return m.innerText.includes('refused') ? m.innerText : null").await;
        let r = r.as_str().unwrap().to_string();
        assert!(r.contains("nothing changed: 1 error(s)") && r.contains("polygon: needs at least 3 points, has 2"), "{r}");
        assert!(!std::fs::read_to_string(&dropin).unwrap().contains("\"bad\""));
        shot(&c, "console-zone-refused.png").await;

        // a viewer: added by the admin on the users page
        c.goto(&format!("{base}/users")).await.unwrap();
        wait_js(&c, "the users page", "return document.querySelector('#users-table').innerText.includes('admin')").await;
        type_into(&c, "#u-name", "watch-1").await;
        type_into(&c, "#u-password", "viewer-password-1").await;
        c.find(Locator::Css("#u-role")).await.unwrap().select_by_value("viewer").await.unwrap();
        click(&c, "#u-save").await;
        wait_js(&c, "the new user", "return document.querySelector('#users-table').innerText.includes('watch-1')").await;
        let audit = c.find(Locator::Css("#audit-table")).await.unwrap().text().await.unwrap();
        for action in ["ack", "recheck", "zones", "put-user", "login"] {
            assert!(audit.contains(action), "audit lacks {action}: {audit}");
        }

        c.goto(&base).await.unwrap();
        wait_js(&c, "the alerts page", "return document.querySelector('#who').textContent.includes('admin')").await;
        click(&c, "#logout").await;
        wait_js(&c, "the login page", "return location.pathname === '/login'").await;
        login(&c, &base, "watch-1", "viewer-password-1").await;
        wait_js(&c, "the alert list", "return document.querySelectorAll('#alerts-table tr.ev').length > 0").await;
        let hidden = c.execute("return [...document.querySelectorAll('.operator-only, .admin-only')].every(x => x.hidden)", vec![]).await.unwrap();
        assert_eq!(hidden, Value::Bool(true), "a viewer sees no action buttons and no admin links");
        let refused = c.execute("return fetch('/api/events/x/ack', {method: 'POST', headers: {'Content-Type': 'application/json'}, body: '{}'}).then(r => r.status)", vec![]).await.unwrap();
        assert_eq!(refused, 403);
        c.goto(&format!("{base}/zones")).await.unwrap();
        let forbidden = c.find(Locator::Css("#forbidden")).await.expect("the zone editor is refused to a viewer").text().await.unwrap();
        assert!(forbidden.contains("needs the admin role"), "{forbidden}");
        c.goto(&format!("{base}/users")).await.unwrap();
        assert!(c.find(Locator::Css("#forbidden")).await.is_ok(), "the users page is refused to a viewer");
        shot(&c, "console-forbidden.png").await;
        c.close().await.unwrap();
    });

    // response times from the real acknowledgement
    let (cookie, _) = console.login("admin", "admin-password-1");
    let (code, body) = console.get(&cookie, "/api/response");
    assert_eq!(code, 200);
    let r: Value = serde_json::from_str(&body).unwrap();
    let all = r["aggregates"].as_array().unwrap().iter().find(|a| a["by"] == "all").unwrap().clone();
    assert!(all["events"].as_u64().unwrap() >= 1 && all["acked"] == 1, "{all}");
    let ack_s = all["median_ack_s"].as_f64().unwrap();
    assert!(ack_s > 0.0 && ack_s < 300.0, "raised → acked {ack_s} s");
    assert!(all["within_target"].as_f64().unwrap() > 0.0, "{all}");
    let (_, csv) = console.get(&cookie, "/api/response.csv");
    assert!(csv.lines().any(|l| l.contains(",admin,true")), "{csv}");
    let (_, metrics) = console.get(&cookie, "/metrics");
    assert!(metrics.contains("hawkeye_console_events_acked{kind=\"loitering\"} 1"), "{metrics}");
}
