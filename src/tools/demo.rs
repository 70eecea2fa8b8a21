//! `hawkeye demo`: the whole product on one machine. Starts a private mosquitto on a free port,
//! renders the embedded street scenario (out-of-store trading, dumping and road flooding in one
//! clip) with `hawkeye synth`, runs the daemon on it with hawkeye's own model, and subscribes to
//! the alerts like a command centre would, printing each one as it arrives. `--video` plays
//! another file with the embedded walkway config instead (e.g. Debian's vtest.avi).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use tokio_util::sync::CancellationToken;

use crate::config::Config;

/// The embedded config for `--video` (also `config/demo.toml`): one walkway zone.
pub const DEMO_CONFIG: &str = include_str!("../../config/demo.toml");
/// The embedded demo scenario (also `tests/scenarios/13_street_all_kinds.toml`).
pub const DEMO_SCENARIO: &str = include_str!("../../tests/scenarios/13_street_all_kinds.toml");
/// Debian's opencv-doc sample street scene.
pub const SAMPLE_VIDEO: &str = "/usr/share/doc/opencv-doc/examples/data/vtest.avi";

#[derive(Args, Debug, Clone)]
pub struct DemoArgs {
    /// ONNX model (default: hawkeye's own, models/hawkeye_urban.onnx).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Play this video in a loop with the walkway config (config/demo.toml) instead of the
    /// rendered street scenario (e.g. /usr/share/doc/opencv-doc/examples/data/vtest.avi).
    #[arg(long)]
    pub video: Option<PathBuf>,
    /// Stop after this many seconds (default: run until Ctrl-C).
    #[arg(long)]
    pub duration: Option<f64>,
    /// Use this broker instead of starting mosquitto (mqtt://host:port).
    #[arg(long)]
    pub broker: Option<String>,
    /// Where the outbox and the evidence snapshots are kept (and the console's SQLite file).
    #[arg(long, default_value = "state/demo")]
    pub state: PathBuf,
    /// Where the command centre's console listens (another free port if this one is taken).
    #[arg(long, default_value = "127.0.0.1:8088")]
    pub console: String,
    /// Do not start the console.
    #[arg(long)]
    pub no_console: bool,
}

/// A mosquitto process with its own config on a loopback port; stopped on drop.
pub struct Mosquitto {
    child: Option<std::process::Child>,
    pub port: u16,
    conf: PathBuf,
    _dir: tempfile::TempDir,
}

/// Config lines of a plain local broker: anonymous, in memory only.
pub const PLAIN_BROKER: &str = "allow_anonymous true\npersistence false\n";

impl Mosquitto {
    /// Starts a plain broker on a free port and waits until it accepts connections.
    pub fn start() -> anyhow::Result<Mosquitto> {
        Self::start_with(free_port()?, PLAIN_BROKER)
    }

    /// Starts mosquitto (from PATH or /usr/sbin) listening on 127.0.0.1:`port`, with `conf`
    /// lines after the `listener` line (TLS, auth, persistence options of that listener).
    pub fn start_with(port: u16, conf: &str) -> anyhow::Result<Mosquitto> {
        let dir = tempfile::tempdir()?;
        let conf_path = dir.path().join("mosquitto.conf");
        // `user root` keeps a broker started as root from switching to the `mosquitto` user, which
        // could not read this private temp directory (ignored when not started as root)
        std::fs::write(&conf_path, format!("user root\nlistener {port} 127.0.0.1\n{conf}"))?;
        let mut m = Mosquitto { child: None, port, conf: conf_path, _dir: dir };
        m.restart()?;
        Ok(m)
    }

    /// (Re)starts the broker process with the same config and port.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.stop();
        let bin = ["mosquitto", "/usr/sbin/mosquitto"]
            .iter()
            .find(|b| std::process::Command::new(b).arg("-h").output().is_ok())
            .context("mosquitto not found: run scripts/setup.sh (installs the Debian package)")?;
        let child = std::process::Command::new(bin)
            .arg("-c")
            .arg(&self.conf)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .context("start mosquitto")?;
        self.child = Some(child);
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return Ok(());
            }
            if let Some(Ok(Some(st))) = self.child.as_mut().map(|c| c.try_wait()) {
                bail!("mosquitto exited at start ({st}); config {}", self.conf.display());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!("mosquitto did not start listening on port {}", self.port)
    }

    /// Stops the broker by its PID (SIGTERM, so a persistent broker saves its state) and waits.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = std::process::Command::new("kill").args(["-TERM", &c.id().to_string()]).status();
            for _ in 0..100 {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }

    /// The broker's process id while it runs (for CPU and memory figures).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A TCP port that was free a moment ago on 127.0.0.1.
pub fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// The model the demo uses when none is given: hawkeye's own.
pub fn default_model() -> Option<PathBuf> {
    Some(crate::tools::synth::default_model()).filter(|p| p.is_file())
}

/// Renders the embedded scenario into `dir` (once: kept while the scenario text is unchanged)
/// and returns the generated config's text and directory.
fn demo_scene(dir: &Path, model: &Path) -> anyhow::Result<(String, PathBuf)> {
    std::fs::create_dir_all(dir)?;
    let scenario = dir.join("street.toml");
    let config = dir.join("config.toml");
    let fresh = std::fs::read_to_string(&scenario).is_ok_and(|s| s == DEMO_SCENARIO) && config.is_file() && dir.join("video.mp4").is_file();
    if !fresh {
        println!("rendering the demo street scenario into {} …", dir.display());
        std::fs::write(&scenario, DEMO_SCENARIO)?;
        let _ = std::fs::remove_file(&config);
        crate::tools::synth::render_scenario(&scenario, dir, model)?;
    }
    Ok((std::fs::read_to_string(&config)?, dir.to_path_buf()))
}

/// Writes the demo's final config to `state/demo.toml` (the scenario's into its scene folder, where
/// its relative paths resolve) and loads it back as `run` would (with a zones drop-in a console
/// wrote); `None` (no reload, no zone editing) when that fails.
fn demo_config_file(cfg: &Config, base: &Path, state: &Path) -> Option<(PathBuf, crate::config::Compiled)> {
    let path = if base.starts_with(state) { base.join("demo.toml") } else { state.join("demo.toml") };
    let text = match toml::to_string(cfg) {
        Ok(t) => format!("# written by `hawkeye demo` at every start; zones set from a console go to demo.zones.toml\n{t}"),
        Err(e) => {
            tracing::warn!("demo: cannot write its config as TOML ({e}); reload and zone editing are off");
            return None;
        }
    };
    if let Err(e) = std::fs::create_dir_all(state).and_then(|()| std::fs::write(&path, text)) {
        tracing::warn!("demo: cannot write {}: {e}; reload and zone editing are off", path.display());
        return None;
    }
    match crate::config::load(&path) {
        Ok(c) => Some((path, c)),
        Err(e) => {
            tracing::warn!("demo: {} does not load back ({}); reload and zone editing are off", path.display(), e.0.join("; "));
            None
        }
    }
}

/// Runs the demo until `shutdown` or `--duration`.
pub async fn run(args: DemoArgs, shutdown: CancellationToken) -> anyhow::Result<()> {
    let model = match args.model.clone().or_else(default_model) {
        Some(m) => m,
        None => bail!("no model found: models/hawkeye_urban.onnx is missing (pass --model)"),
    };
    if let Some(video) = &args.video {
        if !video.is_file() {
            bail!("video {} not found (Debian's sample: {SAMPLE_VIDEO}, from opencv-doc)", video.display());
        }
    }
    let (broker, _mosquitto) = match &args.broker {
        Some(url) => (url.clone(), None),
        None => {
            let m = Mosquitto::start()?;
            (m.url(), Some(m))
        }
    };
    let cwd = std::env::current_dir()?;
    let abs = |p: &Path| if p.is_absolute() { p.to_path_buf() } else { cwd.join(p) };

    let (text, base) = match &args.video {
        Some(_) => (DEMO_CONFIG.to_string(), cwd.clone()),
        None => demo_scene(&abs(&args.state).join("scene"), &abs(&model))?,
    };
    let (mut cfg, _) = Config::parse(&text, &base).map_err(|e| anyhow::anyhow!("{e}"))?;
    cfg.mqtt.url = broker.clone();
    cfg.model.path = abs(&model);
    cfg.device.state_dir = abs(&args.state);
    if let Some(video) = &args.video {
        cfg.cameras[0].url = abs(video).display().to_string();
    }
    cfg.cameras[0].looping = true;
    cfg.cameras[0].realtime = true;
    // the demo's config as a file beside its other files, so `reload` and a console's zone
    // editor (`cmd/zones`, with its drop-in next to it) work on the demo too
    // (with the zones a console set, kept in its drop-in across demo restarts)
    let (config_path, cfg) = match demo_config_file(&cfg, &base, &abs(&args.state)) {
        Some((path, compiled)) => (Some(path), compiled),
        None => (None, crate::config::compile(&cfg).map_err(|e| anyhow::anyhow!("{e}"))?),
    };

    println!("hawkeye demo");
    println!("  broker   {broker}");
    println!("  model    {}", cfg.model.path.display());
    println!("  video    {} (looping, real time)", cfg.cameras[0].url);
    for z in &cfg.cameras[0].zones {
        println!("  zone     {} ({}), dwell {} s", z.id, z.kind.as_str(), z.dwell_s);
    }
    println!("  evidence {}", cfg.device.state_dir.join("evidence").display());
    println!("  subscribed to {}/# — alerts appear below (Ctrl-C to stop)\n", cfg.topic_root());

    let (host, port, tls) = crate::publish::broker_address(&broker).map_err(anyhow::Error::msg)?;
    if tls {
        bail!("the demo's subscriber speaks plain MQTT; give --broker mqtt://host:port");
    }
    let mut opts = MqttOptions::new(format!("hawkeye-demo-sub-{}", std::process::id()), host, port);
    opts.set_max_packet_size(16 << 20, 16 << 20);
    let (client, mut events) = AsyncClient::new(opts, 16);
    client.subscribe(format!("{}/#", cfg.topic_root()), QoS::AtLeastOnce).await?;
    let printer = tokio::spawn(async move {
        loop {
            match events.poll().await {
                Ok(Event::Incoming(Packet::Publish(p))) => print_message(&p.topic, &p.payload),
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
            }
        }
    });

    if !args.no_console {
        std::fs::create_dir_all(abs(&args.state))?;
        // the configured port, or any free one
        let listen = match std::net::TcpListener::bind(&args.console) {
            Ok(l) => {
                drop(l);
                args.console.clone()
            }
            Err(_) => "127.0.0.1:0".to_string(),
        };
        let console = crate::console::ConsoleArgs {
            broker: broker.clone(),
            prefix: cfg.mqtt.topic_prefix.clone(),
            client_id: format!("hawkeye-demo-console-{}", cfg.device.id),
            mqtt_user: None,
            mqtt_password: None,
            db: format!("sqlite:{}", abs(&args.state).join("console.db").display()),
            listen,
            addr_file: None,
            admin: "admin".into(),
            admin_password: None,
            keys: None,
            secure_cookie: false,
        };
        let stop = shutdown.clone();
        tokio::spawn(async move {
            if let Err(e) = crate::console::run(console, stop).await {
                tracing::error!("demo: the console stopped: {e:#}");
            }
        });
        // let it print its URL (and a first admin's password) before the alerts start
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    if let Some(secs) = args.duration {
        let stop = shutdown.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs_f64(secs)).await;
            stop.cancel();
        });
    }
    let opts = crate::app::RunOptions { config_path, ..Default::default() };
    let result = crate::app::run(cfg, opts, shutdown).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    printer.abort();
    result
}

fn print_message(topic: &str, payload: &[u8]) {
    if topic.ends_with("/alerts") {
        match serde_json::from_slice::<serde_json::Value>(payload) {
            Ok(a) => {
                let objects: Vec<String> = a["objects"]
                    .as_array()
                    .map(|v| v.iter().map(|o| format!("{}#{} {:.2}", o["class"].as_str().unwrap_or("?"), o["track_id"], o["score"].as_f64().unwrap_or(0.0))).collect())
                    .unwrap_or_default();
                println!(
                    "ALERT {:<6} {:<11} zone={} dwell={}s objects=[{}] event={}",
                    a["state"].as_str().unwrap_or("?"),
                    a["kind"].as_str().unwrap_or("?"),
                    a["zone_id"].as_str().unwrap_or("?"),
                    a["dwell_s"],
                    objects.join(", "),
                    a["event_id"].as_str().unwrap_or("?")
                );
                for e in a["evidence"].as_array().into_iter().flatten() {
                    println!("      evidence {} {} bytes sha256 {:.16}… {}", e["name"].as_str().unwrap_or(""), e["bytes"], e["sha256"].as_str().unwrap_or(""), e["path"].as_str().unwrap_or(""));
                }
            }
            Err(e) => println!("ALERT (unparseable: {e})"),
        }
    } else if topic.ends_with("/status") {
        println!("status {}", String::from_utf8_lossy(payload));
    } else if topic.ends_with("/heartbeat") {
        if let Ok(h) = serde_json::from_slice::<serde_json::Value>(payload) {
            for c in h["cameras"].as_array().into_iter().flatten() {
                println!(
                    "heartbeat camera={} state={} fps={} inferred={} outbox={}",
                    c["camera_id"].as_str().unwrap_or("?"),
                    c["state"].as_str().unwrap_or("?"),
                    c["fps"],
                    c["inferred"],
                    h["outbox_depth"]
                );
            }
        }
    }
}
