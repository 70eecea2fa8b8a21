//! The console's test parts: `hawkeye console` as a child process, a private PostgreSQL
//! cluster (Debian's server binaries, run as the `postgres` user, on a free port), chromedriver
//! with Debian's headless Chromium, and a small HTTP client with a session cookie.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hawkeye::tools::demo::free_port;

/// `hawkeye console` on a free port; killed (SIGKILL) on drop unless stopped before.
pub struct Console {
    child: Option<Child>,
    pub port: u16,
    pub args: Vec<String>,
    log: PathBuf,
}

impl Console {
    /// Starts the console for `prefix` on the broker at `mqtt_port` with database `db`; waits
    /// until `/healthz` says it is connected. The first admin is `admin` / `admin-password-1`.
    pub fn start(dir: &Path, mqtt_port: u16, db: &str) -> Console {
        let port = free_port().unwrap();
        let args = vec![
            "console".to_string(),
            "--broker".into(),
            format!("mqtt://127.0.0.1:{mqtt_port}"),
            "--db".into(),
            db.to_string(),
            "--listen".into(),
            format!("127.0.0.1:{port}"),
            "--admin-password".into(),
            "admin-password-1".into(),
            "--client-id".into(),
            format!("console-test-{}", dir.file_name().unwrap().to_string_lossy()),
        ];
        let mut c = Console { child: None, port, args, log: dir.join("console.log") };
        c.restart();
        c
    }

    pub fn restart(&mut self) {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_hawkeye"))
            .args(&self.args)
            .env("RUST_LOG", "warn,hawkeye=info")
            .env("NO_COLOR", "1")
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("start hawkeye console");
        self.child = Some(child);
        let t0 = Instant::now();
        loop {
            if let Some((200, _)) = http(self.port, "GET", "/healthz", None, None) {
                return;
            }
            if let Some(Ok(Some(st))) = self.child.as_mut().map(Child::try_wait) {
                panic!("the console exited at start ({st}); log:\n{}", self.log_text());
            }
            assert!(t0.elapsed() < Duration::from_secs(60), "the console did not become healthy; log:\n{}", self.log_text());
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGKILL: no chance to flush anything.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Logs in over HTTP; returns (cookie header value, csrf token).
    pub fn login(&self, user: &str, password: &str) -> (String, String) {
        let body = serde_json::json!({ "username": user, "password": password }).to_string();
        let (code, headers, text) = http_full(self.port, "POST", "/api/login", &[("Content-Type", "application/json")], Some(&body)).expect("console answers");
        assert_eq!(code, 200, "login as {user}: {text}");
        let cookie = headers.lines().find_map(|l| l.strip_prefix("set-cookie: ").or_else(|| l.strip_prefix("Set-Cookie: "))).expect("a session cookie");
        let cookie = cookie.split(';').next().unwrap().to_string();
        let csrf = serde_json::from_str::<serde_json::Value>(&text).unwrap()["csrf"].as_str().unwrap().to_string();
        (cookie, csrf)
    }

    /// A GET with a session cookie: (status, body).
    pub fn get(&self, cookie: &str, path: &str) -> (u16, String) {
        let (c, _, b) = http_full(self.port, "GET", path, &[("Cookie", cookie)], None).expect("console answers");
        (c, b)
    }

    /// A POST with a session cookie and CSRF token: (status, body).
    pub fn post(&self, cookie: &str, csrf: &str, path: &str, body: &serde_json::Value) -> (u16, String) {
        let (c, _, b) = http_full(self.port, "POST", path, &[("Cookie", cookie), ("X-CSRF-Token", csrf), ("Content-Type", "application/json")], Some(&body.to_string())).expect("console answers");
        (c, b)
    }
}

impl Drop for Console {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A plain HTTP/1.1 request: (status, body), or None when nothing listens.
pub fn http(port: u16, method: &str, path: &str, cookie: Option<&str>, body: Option<&str>) -> Option<(u16, String)> {
    let mut headers = vec![("Content-Type", "application/json")];
    if let Some(c) = cookie {
        headers.push(("Cookie", c));
    }
    http_full(port, method, path, &headers, body).map(|(c, _, b)| (c, b))
}

/// (status, header block, body as text).
pub fn http_full(port: u16, method: &str, path: &str, headers: &[(&str, &str)], body: Option<&str>) -> Option<(u16, String, String)> {
    http_raw(port, method, path, headers, body).map(|(c, h, b)| (c, h, String::from_utf8_lossy(&b).into_owned()))
}

/// One HTTP/1.1 request on a new connection: (status, header block, body bytes), or None when
/// nothing answers. A chunked body is put together.
pub fn http_raw(port: u16, method: &str, path: &str, headers: &[(&str, &str)], body: Option<&str>) -> Option<(u16, String, Vec<u8>)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let body = body.unwrap_or("");
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).ok()?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).ok()?;
    let head_end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&raw[..head_end]).into_owned();
    let code = head.split_whitespace().nth(1)?.parse().ok()?;
    let rest = &raw[head_end + 4..];
    let body = if head.to_ascii_lowercase().contains("transfer-encoding: chunked") { dechunk(rest) } else { rest.to_vec() };
    Some((code, head, body))
}

fn dechunk(mut s: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = s.windows(2).position(|w| w == b"\r\n") {
        let Some(n) = std::str::from_utf8(&s[..eol]).ok().and_then(|l| usize::from_str_radix(l.trim(), 16).ok()) else { break };
        let rest = &s[eol + 2..];
        if n == 0 || rest.len() < n {
            break;
        }
        out.extend_from_slice(&rest[..n]);
        s = rest[n..].strip_prefix(b"\r\n").unwrap_or(&rest[n..]);
    }
    out
}

/// A private PostgreSQL cluster, stopped (and its files removed) on drop.
pub struct Postgres {
    pub port: u16,
    dir: PathBuf,
    bin: PathBuf,
}

fn pg_bin() -> PathBuf {
    let base = Path::new("/usr/lib/postgresql");
    let mut versions: Vec<PathBuf> = std::fs::read_dir(base).map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect()).unwrap_or_default();
    versions.sort();
    let v = versions.pop().expect("PostgreSQL server binaries under /usr/lib/postgresql: run scripts/setup.sh (installs postgresql)");
    v.join("bin")
}

/// Runs a command as the `postgres` user when we are root (the server refuses to run as root).
fn as_postgres(bin: &Path, args: &[&str]) -> std::process::Output {
    let is_root = unsafe { libc::geteuid() } == 0;
    let mut cmd = if is_root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(bin);
        c
    } else {
        Command::new(bin)
    };
    cmd.args(args).output().unwrap_or_else(|e| panic!("cannot run {}: {e}", bin.display()))
}

impl Postgres {
    pub fn start() -> Postgres {
        let bin = pg_bin();
        let dir = std::env::temp_dir().join(format!("hawkeye-pg-{}-{}", std::process::id(), free_port().unwrap()));
        std::fs::create_dir_all(&dir).unwrap();
        if unsafe { libc::geteuid() } == 0 {
            assert!(Command::new("chown").args(["postgres:postgres", dir.to_str().unwrap()]).status().unwrap().success());
        }
        let data = dir.join("data");
        let out = as_postgres(&bin.join("initdb"), &["-D", data.to_str().unwrap(), "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8"]);
        assert!(out.status.success(), "initdb: {}", String::from_utf8_lossy(&out.stderr));
        let port = free_port().unwrap();
        let opts = format!("-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=on", dir.display());
        let out = as_postgres(&bin.join("pg_ctl"), &["-D", data.to_str().unwrap(), "-o", &opts, "-l", dir.join("server.log").to_str().unwrap(), "-w", "start"]);
        assert!(out.status.success(), "pg_ctl start: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        Postgres { port, dir, bin }
    }

    /// A URL for a new, empty database `name`.
    pub fn database(&self, name: &str) -> String {
        let out = as_postgres(&self.bin.join("psql"), &["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", "postgres", "-c", &format!("CREATE DATABASE {name}")]);
        assert!(out.status.success(), "create database: {}", String::from_utf8_lossy(&out.stderr));
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = as_postgres(&self.bin.join("pg_ctl"), &["-D", self.dir.join("data").to_str().unwrap(), "-m", "immediate", "stop"]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// chromedriver on a free port (Debian's, driving Debian's Chromium headless).
pub struct ChromeDriver {
    child: Child,
    pub port: u16,
}

impl ChromeDriver {
    pub fn start() -> ChromeDriver {
        let port = free_port().unwrap();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver: run scripts/setup.sh (installs chromium and chromium-driver)");
        let t0 = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(t0.elapsed() < Duration::from_secs(20), "chromedriver did not listen");
            std::thread::sleep(Duration::from_millis(100));
        }
        ChromeDriver { child, port }
    }

    /// A headless Chromium session.
    pub async fn session(&self) -> fantoccini::Client {
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({ "binary": "/usr/bin/chromium", "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1440,1000"] }),
        );
        // a fresh machine's first Chromium can outlast chromedriver's start-up wait (font caches):
        // a refused session is asked for again, twice
        let mut last = None;
        for attempt in 1..=3 {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match fantoccini::ClientBuilder::new(connector).capabilities(caps.clone()).connect(&format!("http://127.0.0.1:{}", self.port)).await {
                Ok(c) => return c,
                Err(e) => {
                    eprintln!("chromedriver refused session {attempt} of 3: {e}");
                    last = Some(e);
                }
            }
        }
        panic!("no Chromium session from chromedriver: {}", last.unwrap())
    }
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
