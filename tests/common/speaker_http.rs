//! An HTTP server standing in for a camera's speaker endpoints (Hikvision ISAPI, Axis VAPIX,
//! Dahua CGI, a webhook receiver). It enforces authentication the way the devices do (HTTP
//! Digest, RFC 7616 with MD5 and `qop=auth`, or Basic), verified here independently of
//! hawkeye's client, and records every request so tests can check method, path, content type
//! and body.
//!
//! The server runs as tasks on a tokio runtime: the caller's (so tests with paused tokio time
//! see it as part of their own runtime) or, with [`SpeakerServer::start_threaded`], its own
//! runtime thread for blocking tests.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use md5::{Digest, Md5};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;

/// What the server demands.
#[derive(Clone, Debug)]
pub enum Auth {
    None,
    Basic { user: String, password: String },
    Digest { user: String, password: String },
}

impl Auth {
    pub fn digest(user: &str, password: &str) -> Auth {
        Auth::Digest { user: user.into(), password: password.into() }
    }
    pub fn basic(user: &str, password: &str) -> Auth {
        Auth::Basic { user: user.into(), password: password.into() }
    }
}

/// One request as received.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    /// Path and query, as sent.
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Whether it passed authentication (a 401 was sent otherwise).
    pub authorized: bool,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or_default()
    }
    pub fn query(&self) -> &str {
        self.target.split_once('?').map(|(_, q)| q).unwrap_or_default()
    }
}

struct State {
    auth: Auth,
    nonces: Mutex<HashSet<String>>,
    requests: Mutex<Vec<Recorded>>,
    /// (path prefix, status, body) answered to authorized requests; default 200 `OK`.
    routes: Vec<(String, u16, String)>,
}

/// A running server; stops when dropped.
pub struct SpeakerServer {
    pub port: u16,
    state: Arc<State>,
    task: Option<tokio::task::JoinHandle<()>>,
    thread_rt: Option<tokio::runtime::Runtime>,
}

const REALM: &str = "speaker-test";

impl SpeakerServer {
    /// Starts on the current tokio runtime, on a free port.
    pub async fn start(auth: Auth, routes: &[(&str, u16, &str)]) -> SpeakerServer {
        Self::start_with(auth, routes, None).await
    }

    /// Like [`start`](Self::start), serving HTTPS with `cert_pem` / `key_pem`.
    pub async fn start_tls(auth: Auth, routes: &[(&str, u16, &str)], cert_pem: &[u8], key_pem: &[u8]) -> SpeakerServer {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let certs: Vec<_> = rustls_pemfile::certs(&mut &cert_pem[..]).collect::<Result<_, _>>().unwrap();
        let key = rustls_pemfile::private_key(&mut &key_pem[..]).unwrap().unwrap();
        let config = rustls::ServerConfig::builder().with_no_client_auth().with_single_cert(certs, key).unwrap();
        Self::start_with(auth, routes, Some(tokio_rustls::TlsAcceptor::from(Arc::new(config)))).await
    }

    async fn start_with(auth: Auth, routes: &[(&str, u16, &str)], tls: Option<tokio_rustls::TlsAcceptor>) -> SpeakerServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(State {
            auth,
            nonces: Mutex::new(HashSet::new()),
            requests: Mutex::new(Vec::new()),
            routes: routes.iter().map(|(p, s, b)| (p.to_string(), *s, b.to_string())).collect(),
        });
        let st = state.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((sock, _)) = listener.accept().await else { return };
                let (st, tls) = (st.clone(), tls.clone());
                tokio::spawn(async move {
                    let _ = match tls {
                        None => serve(sock, st).await,
                        Some(acceptor) => match acceptor.accept(sock).await {
                            Ok(s) => serve(s, st).await,
                            Err(e) => Err(e),
                        },
                    };
                });
            }
        });
        SpeakerServer { port, state, task: Some(task), thread_rt: None }
    }

    /// Starts on a runtime of its own (for tests that are not async).
    pub fn start_threaded(auth: Auth, routes: &[(&str, u16, &str)]) -> SpeakerServer {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let mut s = rt.block_on(SpeakerServer::start(auth, routes));
        s.thread_rt = Some(rt);
        s
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn https_url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.state.requests.lock().unwrap().clone()
    }

    /// The requests that passed authentication.
    pub fn accepted(&self) -> Vec<Recorded> {
        self.requests().into_iter().filter(|r| r.authorized).collect()
    }
}

impl Drop for SpeakerServer {
    fn drop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
        if let Some(rt) = self.thread_rt.take() {
            rt.shutdown_background();
        }
    }
}

async fn serve<S: AsyncRead + AsyncWrite + Unpin>(mut sock: S, st: Arc<State>) -> std::io::Result<()> {
    let mut data = Vec::new();
    let mut buf = [0u8; 8192];
    let end = loop {
        if let Some(p) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break p;
        }
        let n = sock.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        data.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&data[..end]).to_string();
    let mut lines = head.split("\r\n");
    let mut first = lines.next().unwrap_or_default().split(' ');
    let method = first.next().unwrap_or_default().to_string();
    let target = first.next().unwrap_or_default().to_string();
    let headers: Vec<(String, String)> = lines.filter_map(|l| l.split_once(':')).map(|(n, v)| (n.trim().to_string(), v.trim().to_string())).collect();
    let len: usize = headers.iter().find(|(n, _)| n.eq_ignore_ascii_case("content-length")).and_then(|(_, v)| v.parse().ok()).unwrap_or(0);
    let authorization = headers.iter().find(|(n, _)| n.eq_ignore_ascii_case("authorization")).map(|(_, v)| v.clone());
    let authorized = check_auth(&st, authorization.as_deref(), &method, &target);
    let mut body = data[end + 4..].to_vec();
    if !authorized {
        // refuse at once, as cameras do, then drain what the client still sends
        let nonce = format!("{:032x}", rand_u128());
        st.nonces.lock().unwrap().insert(nonce.clone());
        let challenge = match &st.auth {
            Auth::Basic { .. } => format!("Basic realm=\"{REALM}\""),
            _ => format!("Digest realm=\"{REALM}\", qop=\"auth\", nonce=\"{nonce}\", opaque=\"0paque\", algorithm=MD5"),
        };
        let resp = format!("HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: {challenge}\r\nContent-Length: 12\r\nConnection: close\r\n\r\nUnauthorized");
        sock.write_all(resp.as_bytes()).await?;
        while body.len() < len {
            let n = sock.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&buf[..n]);
        }
    } else {
        while body.len() < len {
            let n = sock.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&buf[..n]);
        }
    }
    let path = target.split('?').next().unwrap_or_default().to_string();
    st.requests.lock().unwrap().push(Recorded { method, target, headers, body, authorized });
    if authorized {
        let (status, text) = st.routes.iter().find(|(p, _, _)| path.starts_with(p.as_str())).map(|(_, s, b)| (*s, b.clone())).unwrap_or((200, "OK".into()));
        let resp = format!("HTTP/1.1 {status} X\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}", text.len());
        sock.write_all(resp.as_bytes()).await?;
    }
    sock.shutdown().await
}

fn rand_u128() -> u128 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64);
    (u128::from(h.finish()) << 64) | u128::from(std::collections::hash_map::RandomState::new().build_hasher().finish())
}

fn md5_hex(s: &str) -> String {
    hex::encode(Md5::digest(s.as_bytes()))
}

/// `key="value", key=value` pairs of an Authorization header.
fn params(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = s.trim();
    while !rest.is_empty() {
        let Some((k, r)) = rest.split_once('=') else { break };
        let r = r.trim_start();
        let (v, r) = if let Some(r) = r.strip_prefix('"') {
            let e = r.find('"').unwrap_or(r.len());
            (r[..e].to_string(), &r[(e + 1).min(r.len())..])
        } else {
            let e = r.find(',').unwrap_or(r.len());
            (r[..e].trim().to_string(), &r[e..])
        };
        out.push((k.trim().trim_start_matches(',').trim().to_string(), v));
        rest = r.trim_start_matches([',', ' ']);
    }
    out
}

fn check_auth(st: &State, header: Option<&str>, method: &str, target: &str) -> bool {
    match &st.auth {
        Auth::None => true,
        Auth::Basic { user, password } => {
            let want = format!("Basic {}", base64(format!("{user}:{password}").as_bytes()));
            header == Some(want.as_str())
        }
        Auth::Digest { user, password } => {
            let Some(h) = header.and_then(|h| h.strip_prefix("Digest ")) else { return false };
            let p = params(h);
            let get = |k: &str| p.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str()).unwrap_or("");
            if get("username") != user || get("realm") != REALM || get("uri") != target || get("qop") != "auth" || get("opaque") != "0paque" {
                return false;
            }
            if !st.nonces.lock().unwrap().contains(get("nonce")) {
                return false;
            }
            let ha1 = md5_hex(&format!("{user}:{REALM}:{password}"));
            let ha2 = md5_hex(&format!("{method}:{target}"));
            let expect = md5_hex(&format!("{ha1}:{}:{}:{}:auth:{ha2}", get("nonce"), get("nc"), get("cnonce")));
            get("response") == expect
        }
    }
}

fn base64(data: &[u8]) -> String {
    let t = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::new();
    for c in data.chunks(3) {
        let b = [c[0], *c.get(1).unwrap_or(&0), *c.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for k in 0..4 {
            s.push(if k <= c.len() { t[((n >> (18 - 6 * k)) & 63) as usize] as char } else { '=' });
        }
    }
    s
}

/// G.711 μ-law byte → linear sample (the test's own decoder, independent of hawkeye's).
pub fn ulaw_to_linear(u: u8) -> i32 {
    let u = !u;
    let t = ((i32::from(u & 0x0f) << 3) + 0x84) << ((u & 0x70) >> 4);
    if u & 0x80 != 0 {
        0x84 - t
    } else {
        t - 0x84
    }
}

/// RMS of μ-law audio after decoding.
pub fn ulaw_rms(bytes: &[u8]) -> f64 {
    if bytes.is_empty() {
        return 0.0;
    }
    (bytes.iter().map(|&b| f64::from(ulaw_to_linear(b)).powi(2)).sum::<f64>() / bytes.len() as f64).sqrt()
}

/// Seconds of speech espeak-ng makes for `text` in `voice` (read from its own WAV header), so
/// tests know how much audio to expect.
pub fn espeak_seconds(text: &str, voice: &str) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("ref.wav");
    let st = std::process::Command::new("espeak-ng").args(["-v", voice, "-s", "150", "-w"]).arg(&wav).arg("--").arg(text).status().expect("espeak-ng");
    assert!(st.success());
    let w = std::fs::read(&wav).unwrap();
    let rate = u32::from_le_bytes(w[24..28].try_into().unwrap());
    // find the data chunk
    let mut i = 12;
    while i + 8 <= w.len() {
        let len = u32::from_le_bytes(w[i + 4..i + 8].try_into().unwrap()) as usize;
        if &w[i..i + 4] == b"data" {
            let len = if len == 0 || len > w.len() - i - 8 { w.len() - i - 8 } else { len };
            return len as f64 / 2.0 / f64::from(rate);
        }
        i += 8 + len;
    }
    panic!("no data chunk in espeak-ng's WAV");
}
