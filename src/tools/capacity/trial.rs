//! One capacity trial: N cameras for a fixed time, measured from outside the process.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressStyle};

use super::Streams;

/// Seconds between starting the cameras and the first reading (pipelines start, the model
/// loads, the first frames flow).
const WARMUP_S: f64 = 8.0;
/// Share of `detect_fps` every camera must get.
pub const PASS_SHARE: f64 = 0.95;

/// What every trial of a search shares.
#[derive(Clone, Debug)]
pub struct TrialSpec {
    pub exe: PathBuf,
    pub model: PathBuf,
    pub main: PathBuf,
    pub sub: PathBuf,
    pub streams: Streams,
    pub motion_gate: bool,
    pub detect_fps: f64,
    pub seconds: f64,
    pub threads: usize,
    pub workers: usize,
}

/// The readings of one trial.
#[derive(Clone, Debug)]
pub struct Trial {
    pub cameras: usize,
    pub detect_fps: f64,
    /// Frames served per second (inferred or passed on by the gate), per camera.
    pub served: Vec<f64>,
    /// Inferences per second, all cameras.
    pub inferred_per_s: f64,
    /// Detected frames dropped because a camera task was behind, all cameras.
    pub behind: u64,
    /// CPU time over wall time (1.0 = one core busy).
    pub cpu: f64,
    pub rss_mb: f64,
    /// Capture-to-arrival seconds of every alert message (new, update, end) in the window.
    pub alert_latency: Vec<f64>,
}

impl Trial {
    /// Every camera served at ≥ 95 % of its rate, none behind.
    pub fn passed(&self) -> bool {
        !self.served.is_empty() && self.min_served() >= PASS_SHARE * self.detect_fps && self.behind == 0
    }

    pub fn min_served(&self) -> f64 {
        self.served.iter().copied().fold(f64::INFINITY, f64::min)
    }

    pub fn mean_served(&self) -> f64 {
        self.served.iter().sum::<f64>() / self.served.len().max(1) as f64
    }

    /// The 95th percentile alert latency, if any alert arrived.
    pub fn latency_p95(&self) -> Option<f64> {
        percentile(&self.alert_latency, 0.95)
    }

    /// One line of the printed table.
    pub fn row(&self) -> String {
        let n = self.cameras.max(1) as f64;
        let lat = match self.latency_p95() {
            Some(p) => format!("{p:.2} s ({})", self.alert_latency.len()),
            None => "–".into(),
        };
        format!(
            "{:>7} {:>6} {:>8.2} {:>8.2} {:>9.1} {:>7.0} {:>8.1} {:>8.0} {:>9.1} {:>9}",
            self.cameras,
            if self.passed() { "yes" } else { "no" },
            self.min_served(),
            self.mean_served(),
            self.inferred_per_s,
            self.cpu * 100.0,
            self.cpu * 100.0 / n,
            self.rss_mb,
            self.rss_mb / n,
            lat
        )
    }
}

/// The `q`-quantile (nearest rank) of `v`.
pub fn percentile(v: &[f64], q: f64) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let i = ((q * s.len() as f64).ceil() as usize).clamp(1, s.len()) - 1;
    Some(s[i])
}

/// The daemon's config for `n` cameras.
fn config(spec: &TrialSpec, n: usize, broker: &str, state: &Path) -> String {
    let mut s = format!(
        "[device]\nid = \"capacity\"\nstate_dir = {state:?}\n\n[mqtt]\nurl = {broker:?}\ntopic_prefix = \"bench\"\nheartbeat_s = 5\n\n\
         [model]\npath = {:?}\nscore_threshold = 0.35\nthreads = {}\nworkers = {}\n\n[telemetry]\nlisten = \"127.0.0.1:0\"\n",
        spec.model.display().to_string(),
        spec.threads,
        spec.workers
    );
    for i in 0..n {
        let (url, detect_url) = match spec.streams {
            Streams::Main => (&spec.main, None),
            Streams::Sub => (&spec.sub, None),
            Streams::Dual => (&spec.main, Some(&spec.sub)),
        };
        s += &format!(
            "\n[[camera]]\nid = \"cam{:02}\"\nurl = {:?}\npipeline = \"file\"\nloop = true\nrealtime = true\ndetect_fps = {}\nframe_width = 640\nmotion_gate = {}\n",
            i + 1,
            url.display().to_string(),
            spec.detect_fps,
            spec.motion_gate
        );
        if let Some(d) = detect_url {
            s += &format!("detect_url = {:?}\n", d.display().to_string());
        }
        // the demo's walkway zone: people who stay 3 s raise an alert
        s += "\n  [[camera.zone]]\n  id = \"walkway\"\n  kind = \"loitering\"\n  polygon = [[0.0, 0.30], [0.78, 0.24], [0.78, 0.62], [0.0, 0.52]]\n  classes = [\"person\"]\n  min_score = 0.4\n  dwell_s = 3\n  grace_s = 1.5\n  clear_s = 3\n  cooldown_s = 5\n  update_s = 15\n";
    }
    s
}

/// One trial of the daemon with `n` cameras.
pub fn run_hawkeye(spec: &TrialSpec, n: usize, broker: &str) -> anyhow::Result<Trial> {
    let dir = tempfile::tempdir()?;
    let state = dir.path().join("state");
    let cfg_path = dir.path().join("capacity.toml");
    std::fs::write(&cfg_path, config(spec, n, broker, &state))?;
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let mut sub = alert_subscriber(broker, latencies.clone())?;
    let mut child = Command::new(&spec.exe)
        .args(["run"])
        .arg(&cfg_path)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::from(std::fs::File::create(dir.path().join("daemon.log"))?))
        .spawn()
        .context("start hawkeye run")?;
    let result = measure_hawkeye(spec, n, &mut child, &state, &latencies);
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    wait_or_kill(&mut child, Duration::from_secs(20));
    let _ = sub.kill();
    let _ = sub.wait();
    result.with_context(|| {
        let log = std::fs::read_to_string(dir.path().join("daemon.log")).unwrap_or_default();
        let tail: Vec<_> = log.lines().rev().take(15).collect();
        format!("trial with {n} cameras; daemon log tail:\n{}", tail.into_iter().rev().collect::<Vec<_>>().join("\n"))
    })
}

fn measure_hawkeye(spec: &TrialSpec, n: usize, child: &mut Child, state: &Path, latencies: &Mutex<Vec<f64>>) -> anyhow::Result<Trial> {
    let bar = progress(n, "hawkeye", WARMUP_S + spec.seconds);
    let t0 = Instant::now();
    let addr = loop {
        if let Ok(a) = std::fs::read_to_string(state.join("telemetry.addr")) {
            break a.trim().to_string();
        }
        if let Some(st) = child.try_wait()? {
            bail!("hawkeye run exited ({st}) before serving /metrics");
        }
        if t0.elapsed() > Duration::from_secs(60) {
            bail!("no telemetry address after 60 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    tick_until(&bar, t0, WARMUP_S, child)?;
    let (m0, cpu0, w0) = (metrics(&addr)?, proc_cpu_s(child.id())?, Instant::now());
    latencies.lock().unwrap().clear();
    tick_until(&bar, t0, WARMUP_S + spec.seconds, child)?;
    let (m1, cpu1, wall) = (metrics(&addr)?, proc_cpu_s(child.id())?, w0.elapsed().as_secs_f64());
    let rss_mb = proc_rss_mb(child.id())?;
    bar.finish_and_clear();
    let delta = |name: &str, cam: &str| m1.get(&(name.to_string(), cam.to_string())).copied().unwrap_or(0.0) - m0.get(&(name.to_string(), cam.to_string())).copied().unwrap_or(0.0);
    let mut served = Vec::new();
    let mut inferred = 0.0;
    let mut behind = 0.0;
    for i in 0..n {
        let cam = format!("cam{:02}", i + 1);
        let inf = delta("hawkeye_frames_inferred_total", &cam);
        let gated = delta("hawkeye_frames_gated_total", &cam);
        served.push((inf + gated) / wall);
        inferred += inf;
        behind += delta("hawkeye_frames_dropped_behind_total", &cam);
    }
    Ok(Trial {
        cameras: n,
        detect_fps: spec.detect_fps,
        served,
        inferred_per_s: inferred / wall,
        behind: behind as u64,
        cpu: (cpu1 - cpu0) / wall,
        rss_mb,
        alert_latency: latencies.lock().unwrap().clone(),
    })
}

/// One trial of the Python baseline with `n` cameras on `clip`.
pub fn run_python(spec: &TrialSpec, python: &Path, clip: &Path, n: usize) -> anyhow::Result<Trial> {
    let script = super::python_script()?;
    let mut child = Command::new(python)
        .arg(&script)
        .args(["capacity", "--cameras", &n.to_string(), "--seconds", &spec.seconds.to_string(), "--warmup", &WARMUP_S.to_string()])
        // the baseline's one session gets every thread hawkeye's workers have together
        .args(["--detect-fps", &spec.detect_fps.to_string(), "--threads", &(spec.threads * spec.workers).to_string(), "--width", "640"])
        .arg("--model")
        .arg(&spec.model)
        .arg("--input")
        .arg(clip)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("start {} {}", python.display(), script.display()))?;
    let bar = progress(n, "python", WARMUP_S + spec.seconds);
    let t0 = Instant::now();
    tick_until(&bar, t0, WARMUP_S, &mut child)?;
    let (cpu0, w0) = (proc_cpu_s(child.id())?, Instant::now());
    tick_until(&bar, t0, WARMUP_S + spec.seconds, &mut child)?;
    let (cpu1, wall) = (proc_cpu_s(child.id())?, w0.elapsed().as_secs_f64());
    let rss_mb = proc_rss_mb(child.id())?;
    bar.finish_and_clear();
    let mut out = String::new();
    child.stdout.take().context("stdout")?.read_to_string(&mut out)?;
    let mut err = String::new();
    let _ = child.stderr.take().map(|mut e| e.read_to_string(&mut err));
    let st = child.wait()?;
    let line = out.lines().last().unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(line).with_context(|| format!("baseline output ({st}): {out}\n{err}"))?;
    let served: Vec<f64> = v["rates"].as_array().context("rates")?.iter().filter_map(|r| r.as_f64()).collect();
    let inferred = served.iter().sum();
    // a camera more than a second behind its clip's clock at the end has a growing backlog
    let behind = v["lag_s"].as_array().map_or(0, |l| l.iter().filter(|x| x.as_f64().unwrap_or(0.0) > 1.0).count() as u64);
    Ok(Trial { cameras: n, detect_fps: spec.detect_fps, served, inferred_per_s: inferred, behind, cpu: (cpu1 - cpu0) / wall, rss_mb, alert_latency: Vec::new() })
}

fn progress(n: usize, who: &str, total_s: f64) -> ProgressBar {
    let bar = ProgressBar::new((total_s * 10.0) as u64);
    bar.set_style(ProgressStyle::with_template("  {prefix:>8} {msg:<12} [{bar:30}] {elapsed}").unwrap_or_else(|_| ProgressStyle::default_bar()).progress_chars("=> "));
    bar.set_prefix(who.to_string());
    bar.set_message(format!("{n} cameras"));
    bar
}

/// Waits until `t` seconds after `t0`, failing if the child exits.
fn tick_until(bar: &ProgressBar, t0: Instant, t: f64, child: &mut Child) -> anyhow::Result<()> {
    while t0.elapsed().as_secs_f64() < t {
        if let Some(st) = child.try_wait()? {
            bail!("process exited early ({st})");
        }
        bar.set_position((t0.elapsed().as_secs_f64() * 10.0) as u64);
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

fn wait_or_kill(child: &mut Child, limit: Duration) {
    let t0 = Instant::now();
    while t0.elapsed() < limit {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// `mosquitto_sub` on every device's alerts; each alert message's latency (arrival − the
/// capture time of the frame that made the transition, `updated_at`: for `new`, the frame on
/// which the dwell was complete) goes into `out`.
fn alert_subscriber(broker: &str, out: Arc<Mutex<Vec<f64>>>) -> anyhow::Result<Child> {
    let port = broker.rsplit(':').next().context("broker port")?;
    let mut child = Command::new("mosquitto_sub")
        .args(["-h", "127.0.0.1", "-p", port, "-q", "1", "-t", "bench/+/alerts"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("start mosquitto_sub (Debian mosquitto-clients)")?;
    let stdout = child.stdout.take().context("stdout")?;
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let now = chrono::Utc::now();
            let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else { continue };
            if let Some(at) = v["updated_at"].as_str().and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok()) {
                let lat = (now - at.with_timezone(&chrono::Utc)).num_microseconds().unwrap_or(0) as f64 / 1e6;
                out.lock().unwrap().push(lat);
            }
        }
    });
    Ok(child)
}

/// `GET /metrics` from the daemon at `addr`, parsed by [`parse_metrics`].
fn metrics(addr: &str) -> anyhow::Result<BTreeMap<(String, String), f64>> {
    let mut s = std::net::TcpStream::connect(addr).with_context(|| format!("connect {addr}"))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(s, "GET /metrics HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let mut body = String::new();
    s.read_to_string(&mut body)?;
    Ok(parse_metrics(&body))
}

/// Every `hawkeye_…` sample of a Prometheus text page, keyed by (name, camera label or "").
pub fn parse_metrics(body: &str) -> BTreeMap<(String, String), f64> {
    let mut out = BTreeMap::new();
    for line in body.lines().filter(|l| l.starts_with("hawkeye_")) {
        let Some((key, value)) = line.rsplit_once(' ') else { continue };
        let Ok(v) = value.parse::<f64>() else { continue };
        let (name, cam) = match key.split_once('{') {
            Some((n, labels)) => (n, labels.split("camera=\"").nth(1).and_then(|r| r.split('"').next()).unwrap_or("")),
            None => (key, ""),
        };
        out.insert((name.to_string(), cam.to_string()), v);
    }
    out
}

/// User + system CPU seconds of a process and its threads.
fn proc_cpu_s(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // fields after the command name (which may hold spaces) start at state (field 3)
    let rest = stat.rsplit_once(')').context("stat")?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f[11].parse::<f64>()? + f[12].parse::<f64>()?;
    // SAFETY: sysconf has no preconditions
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Ok(ticks / hz)
}

/// Resident memory of a process in MB.
fn proc_rss_mb(pid: u32) -> anyhow::Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kb = status.lines().find_map(|l| l.strip_prefix("VmRSS:")).and_then(|v| v.split_whitespace().next()).and_then(|v| v.parse::<f64>().ok()).context("VmRSS")?;
    Ok(kb / 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trial(served: Vec<f64>, behind: u64) -> Trial {
        Trial { cameras: served.len(), detect_fps: 5.0, served, inferred_per_s: 0.0, behind, cpu: 0.0, rss_mb: 0.0, alert_latency: vec![] }
    }

    #[test]
    fn a_trial_passes_only_when_every_camera_is_served() {
        assert!(trial(vec![5.0, 4.8, 4.76], 0).passed());
        assert!(!trial(vec![5.0, 4.7], 0).passed(), "one camera below 95 %");
        assert!(!trial(vec![5.0, 5.0], 3).passed(), "a camera task behind");
        assert!(!trial(vec![], 0).passed());
    }

    #[test]
    fn percentile_is_nearest_rank() {
        let v: Vec<f64> = (1..=20).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.95), Some(19.0));
        assert_eq!(percentile(&v, 0.5), Some(10.0));
        assert_eq!(percentile(&[3.0], 0.95), Some(3.0));
        assert_eq!(percentile(&[], 0.95), None);
    }

    #[test]
    fn config_has_one_camera_per_slot_and_checks() {
        let spec = TrialSpec {
            exe: "hawkeye".into(),
            model: "/m.onnx".into(),
            main: "/main.mp4".into(),
            sub: "/sub.mp4".into(),
            streams: Streams::Sub,
            motion_gate: true,
            detect_fps: 5.0,
            seconds: 10.0,
            threads: 2,
            workers: 1,
        };
        let text = config(&spec, 3, "mqtt://127.0.0.1:1", Path::new("/tmp/s"));
        let v: toml::Value = toml::from_str(&text).unwrap();
        let cams = v["camera"].as_array().unwrap();
        assert_eq!(cams.len(), 3);
        assert_eq!(cams[2]["id"].as_str(), Some("cam03"));
        assert_eq!(cams[0]["url"].as_str(), Some("/sub.mp4"));
        assert_eq!(cams[0]["zone"][0]["kind"].as_str(), Some("loitering"));
    }
}
