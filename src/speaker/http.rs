//! A small HTTP/1.1 client for speaker endpoints on the camera LAN: one request per connection
//! (`Connection: close`), Basic or Digest authentication (RFC 7616: MD5 or SHA-256, `qop=auth`)
//! answered from the server's challenge, and audio bodies paced at real time so a device's
//! playback buffer is not overrun. While a body is being sent the client also listens, so a
//! server that refuses the request early (401 after the headers) stops the upload at once.
//!
//! `http://` and `https://`; for HTTPS the speaker's certificate must chain to the configured CA
//! file (a self-signed camera certificate can be its own CA) and name the host or IP in the URL.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sha2::Digest as _;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// Largest response body kept (speaker APIs answer with short XML/JSON).
const MAX_RESPONSE: usize = 1 << 20;

/// Why a request failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum HttpError {
    #[error("{0}")]
    Url(String),
    #[error("cannot connect to {addr}: {msg}")]
    Connect { addr: String, msg: String },
    #[error("{0}")]
    Io(String),
    #[error("timed out after {0:.0} s")]
    Timeout(f64),
    #[error("bad response: {0}")]
    Protocol(String),
    #[error("authentication refused (HTTP 401){0}")]
    Unauthorized(String),
}

/// A response: status, headers (names lower-cased) and body.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// First header of that (lower-case) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
    /// The body as text (lossy), trimmed to `max` characters, for error messages.
    pub fn body_excerpt(&self, max: usize) -> String {
        String::from_utf8_lossy(&self.body).chars().take(max).collect::<String>().trim().to_string()
    }
}

/// What to send.
#[derive(Clone, Debug)]
pub struct Request<'a> {
    pub method: &'a str,
    /// Absolute `http://host[:port]/path?query`.
    pub url: &'a str,
    pub content_type: Option<&'a str>,
    pub body: &'a [u8],
    /// Send the body at about this many bytes per second (after a one-second lead);
    /// `None` sends it as fast as the socket takes it.
    pub pace_bytes_per_s: Option<u32>,
}

/// A server's authentication challenge, kept so later requests authenticate up front.
#[derive(Clone, Debug, PartialEq)]
pub enum Challenge {
    Basic,
    Digest { realm: String, nonce: String, opaque: Option<String>, algorithm: DigestAlgorithm, qop_auth: bool },
}

/// Hash of a Digest challenge.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DigestAlgorithm {
    Md5,
    Sha256,
}

impl DigestAlgorithm {
    fn name(self) -> &'static str {
        match self {
            DigestAlgorithm::Md5 => "MD5",
            DigestAlgorithm::Sha256 => "SHA-256",
        }
    }
    /// Lower-case hex hash of `s`.
    pub fn hash(self, s: &str) -> String {
        match self {
            DigestAlgorithm::Md5 => hex::encode(md5::Md5::digest(s.as_bytes())),
            DigestAlgorithm::Sha256 => hex::encode(sha2::Sha256::digest(s.as_bytes())),
        }
    }
}

/// Splits `key=value, key="quoted, value"` auth parameters.
pub fn auth_params(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = std::iter::from_fn(|| chars.next_if(|c| *c != '=' && *c != ',')).collect();
        if key.is_empty() {
            break;
        }
        let mut value = String::new();
        if chars.next_if_eq(&'=').is_some() {
            if chars.next_if_eq(&'"').is_some() {
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => value.extend(chars.next()),
                        '"' => break,
                        c => value.push(c),
                    }
                }
            } else {
                value = std::iter::from_fn(|| chars.next_if(|c| *c != ',')).collect::<String>().trim().to_string();
            }
        }
        out.push((key.trim().to_ascii_lowercase(), value));
    }
    out
}

/// The challenge to answer from a 401's `WWW-Authenticate` headers (Digest preferred), and
/// whether the server says the previous nonce was merely stale.
pub fn parse_challenge(headers: &[&str]) -> Option<(Challenge, bool)> {
    let mut basic = false;
    for h in headers {
        let (scheme, rest) = h.trim().split_once(' ').unwrap_or((h.trim(), ""));
        if scheme.eq_ignore_ascii_case("digest") {
            let p = auth_params(rest);
            let get = |k: &str| p.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
            let algorithm = match get("algorithm").as_deref().map(str::to_ascii_uppercase).as_deref() {
                None | Some("MD5") => DigestAlgorithm::Md5,
                Some("SHA-256") => DigestAlgorithm::Sha256,
                _ => continue, // -sess and other hashes: look for another challenge
            };
            let qop = get("qop");
            if qop.as_deref().is_some_and(|q| !q.split(',').any(|x| x.trim() == "auth")) {
                continue; // auth-int only
            }
            let stale = get("stale").is_some_and(|s| s.eq_ignore_ascii_case("true"));
            return Some((
                Challenge::Digest { realm: get("realm").unwrap_or_default(), nonce: get("nonce")?, opaque: get("opaque"), algorithm, qop_auth: qop.is_some() },
                stale,
            ));
        }
        basic |= scheme.eq_ignore_ascii_case("basic");
    }
    basic.then_some((Challenge::Basic, false))
}

/// The `Authorization` header value answering `challenge` for `method uri`.
pub fn authorization(challenge: &Challenge, user: &str, password: &str, method: &str, uri: &str, nc: u32, cnonce: &str) -> String {
    match challenge {
        Challenge::Basic => format!("Basic {}", base64_encode(format!("{user}:{password}").as_bytes())),
        Challenge::Digest { realm, nonce, opaque, algorithm, qop_auth } => {
            let ha1 = algorithm.hash(&format!("{user}:{realm}:{password}"));
            let ha2 = algorithm.hash(&format!("{method}:{uri}"));
            let nc = format!("{nc:08x}");
            let response = if *qop_auth {
                algorithm.hash(&format!("{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}"))
            } else {
                algorithm.hash(&format!("{ha1}:{nonce}:{ha2}"))
            };
            let mut h = format!(
                "Digest username=\"{user}\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"{uri}\", algorithm={}, response=\"{response}\"",
                algorithm.name()
            );
            if *qop_auth {
                h.push_str(&format!(", qop=auth, nc={nc}, cnonce=\"{cnonce}\""));
            }
            if let Some(o) = opaque {
                h.push_str(&format!(", opaque=\"{o}\""));
            }
            h
        }
    }
}

/// Standard base64 with padding.
pub fn base64_encode(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::with_capacity(data.len().div_ceil(3) * 4);
    for c in data.chunks(3) {
        let n = (u32::from(c[0]) << 16) | (u32::from(*c.get(1).unwrap_or(&0)) << 8) | u32::from(*c.get(2).unwrap_or(&0));
        for k in 0..4 {
            if k <= c.len() {
                s.push(T[(n >> (18 - 6 * k) & 63) as usize] as char);
            } else {
                s.push('=');
            }
        }
    }
    s
}

/// TLS settings that trust the CA certificates (PEM) in `ca_pem`.
pub fn tls_config(ca_pem: &[u8]) -> Result<Arc<rustls::ClientConfig>, String> {
    // rustls needs a process-wide crypto provider; installing it twice is harmless
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut &ca_pem[..]) {
        let cert = cert.map_err(|e| format!("bad PEM certificate: {e}"))?;
        roots.add(cert).map_err(|e| format!("unusable CA certificate: {e}"))?;
    }
    if roots.is_empty() {
        return Err("no certificate in the CA file".into());
    }
    Ok(Arc::new(rustls::ClientConfig::builder().with_root_certificates(roots).with_no_client_auth()))
}

/// A client for one speaker: its credentials, TLS trust and the last challenge it was given.
pub struct Client {
    credentials: Option<(String, String)>,
    timeout: Duration,
    /// TLS trust for `https://` (Err: why it could not be set up).
    tls: Result<Option<Arc<rustls::ClientConfig>>, String>,
    challenge: Mutex<Option<Challenge>>,
    nc: AtomicU32,
}

impl Client {
    /// `tls` is needed for `https://` URLs (an `Err` says why it is missing).
    pub fn new(username: Option<&str>, password: Option<&str>, timeout: Duration, tls: Result<Option<Arc<rustls::ClientConfig>>, String>) -> Client {
        let credentials = username.map(|u| (u.to_string(), password.unwrap_or_default().to_string()));
        Client { credentials, timeout, tls, challenge: Mutex::new(None), nc: AtomicU32::new(0) }
    }

    /// Sends `req`, authenticating when the server asks; 401 after answering the challenge
    /// (or without credentials) is an error, other statuses are returned.
    pub async fn send(&self, req: &Request<'_>) -> Result<Response, HttpError> {
        let target = Target::parse(req.url)?;
        // a fresh challenge after a stale nonce is answered once more
        for _attempt in 0..3 {
            let auth = match (&self.credentials, self.challenge.lock().unwrap().clone()) {
                (Some((u, p)), Some(ch)) => {
                    let nc = self.nc.fetch_add(1, Ordering::Relaxed) + 1;
                    let cnonce = uuid::Uuid::new_v4().simple().to_string();
                    Some(authorization(&ch, u, p, req.method, &target.request_uri, nc, &cnonce[..16]))
                }
                _ => None,
            };
            let authenticated = auth.is_some();
            let resp = tokio::time::timeout(self.timeout, exchange(&target, req, auth.as_deref(), &self.tls))
                .await
                .map_err(|_| HttpError::Timeout(self.timeout.as_secs_f64()))??;
            if resp.status != 401 {
                return Ok(resp);
            }
            if self.credentials.is_none() {
                return Err(HttpError::Unauthorized(": the speaker needs a username and password".into()));
            }
            let challenges: Vec<&str> = resp.headers.iter().filter(|(n, _)| n == "www-authenticate").map(|(_, v)| v.as_str()).collect();
            let Some((ch, stale)) = parse_challenge(&challenges) else {
                return Err(HttpError::Unauthorized(format!(": no supported challenge in {challenges:?}")));
            };
            if authenticated && !stale {
                return Err(HttpError::Unauthorized(": wrong username or password".into()));
            }
            *self.challenge.lock().unwrap() = Some(ch);
            self.nc.store(0, Ordering::Relaxed);
        }
        Err(HttpError::Unauthorized(": the server kept sending new challenges".into()))
    }
}

/// Host, port and request-URI of an `http://` or `https://` URL.
struct Target {
    host: String,
    port: u16,
    tls: bool,
    host_header: String,
    request_uri: String,
}

impl Target {
    fn parse(url: &str) -> Result<Target, HttpError> {
        let u = url::Url::parse(url).map_err(|e| HttpError::Url(format!("{url:?} is not a URL: {e}")))?;
        let tls = match u.scheme() {
            "http" => false,
            "https" => true,
            other => return Err(HttpError::Url(format!("{url:?}: {other}:// is not HTTP"))),
        };
        let host = u.host_str().filter(|h| !h.is_empty()).ok_or_else(|| HttpError::Url(format!("{url:?} has no host")))?.to_string();
        let port = u.port().unwrap_or(if tls { 443 } else { 80 });
        let mut request_uri = u.path().to_string();
        if let Some(q) = u.query() {
            request_uri.push('?');
            request_uri.push_str(q);
        }
        let host_header = if port == if tls { 443 } else { 80 } { host.clone() } else { format!("{host}:{port}") };
        Ok(Target { host, port, tls, host_header, request_uri })
    }
}

/// One request on a new connection (TLS when the URL says so); reads the whole response.
async fn exchange(t: &Target, req: &Request<'_>, auth: Option<&str>, tls: &Result<Option<Arc<rustls::ClientConfig>>, String>) -> Result<Response, HttpError> {
    let host = t.host.trim_start_matches('[').trim_end_matches(']');
    let addr = format!("{host}:{}", t.port);
    let stream = TcpStream::connect(&addr).await.map_err(|e| HttpError::Connect { addr: addr.clone(), msg: e.to_string() })?;
    let _ = stream.set_nodelay(true);
    if !t.tls {
        return exchange_on(stream, t, req, auth).await;
    }
    let config = match tls {
        Ok(Some(c)) => c,
        Ok(None) => return Err(HttpError::Url("an https:// speaker needs ca_file (the CA that signed its certificate)".into())),
        Err(e) => return Err(HttpError::Url(format!("TLS setup: {e}"))),
    };
    let name = rustls::pki_types::ServerName::try_from(host.to_string()).map_err(|e| HttpError::Url(format!("{host:?}: {e}")))?;
    let stream = tokio_rustls::TlsConnector::from(config.clone())
        .connect(name, stream)
        .await
        .map_err(|e| HttpError::Connect { addr, msg: format!("TLS: {e}") })?;
    exchange_on(stream, t, req, auth).await
}

async fn exchange_on<S: AsyncRead + AsyncWrite + Unpin>(stream: S, t: &Target, req: &Request<'_>, auth: Option<&str>) -> Result<Response, HttpError> {
    let (mut rd, mut wr) = tokio::io::split(stream);
    let mut head = format!("{} {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: hawkeye/{}\r\nConnection: close\r\n", req.method, t.request_uri, t.host_header, env!("CARGO_PKG_VERSION"));
    if let Some(ct) = req.content_type {
        head.push_str(&format!("Content-Type: {ct}\r\n"));
    }
    if let Some(a) = auth {
        head.push_str(&format!("Authorization: {a}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", req.body.len()));
    let io = |e: std::io::Error| HttpError::Io(e.to_string());
    wr.write_all(head.as_bytes()).await.map_err(io)?;

    let mut received = Vec::new();
    let upload = send_body(&mut wr, req.body, req.pace_bytes_per_s);
    tokio::pin!(upload);
    let mut uploading = !req.body.is_empty();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        tokio::select! {
            r = &mut upload, if uploading => {
                r.map_err(io)?;
                uploading = false;
            }
            n = rd.read(&mut buf) => {
                let n = match n {
                    // servers that close without TLS close_notify: the data so far is the response
                    Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => 0,
                    r => r.map_err(io)?,
                };
                if n == 0 {
                    break;
                }
                received.extend_from_slice(&buf[..n]);
                if received.len() > MAX_RESPONSE {
                    return Err(HttpError::Protocol(format!("response larger than {MAX_RESPONSE} bytes")));
                }
                // a complete response (e.g. an early 401) ends the exchange, upload or not
                if let Some(resp) = parse_response(&received, false)? {
                    return Ok(resp);
                }
            }
        }
    }
    parse_response(&received, true)?.ok_or_else(|| HttpError::Protocol("connection closed before a complete response".into()))
}

async fn send_body<W: AsyncWrite + Unpin>(wr: &mut W, body: &[u8], pace: Option<u32>) -> std::io::Result<()> {
    let Some(rate) = pace.filter(|r| *r > 0) else {
        return wr.write_all(body).await;
    };
    // tenth-of-a-second chunks, the first second at once (device buffers hold about that)
    let chunk = (rate as usize / 10).max(1);
    let start = tokio::time::Instant::now();
    let mut sent = 0usize;
    for c in body.chunks(chunk) {
        let due = start + Duration::from_secs_f64((sent as f64 / rate as f64 - 1.0).max(0.0));
        tokio::time::sleep_until(due).await;
        wr.write_all(c).await?;
        sent += c.len();
    }
    wr.flush().await
}

/// Parses a response from `data`; `None` while incomplete. With `at_eof`, a response without
/// a length ends at the end of the data.
fn parse_response(data: &[u8], at_eof: bool) -> Result<Option<Response>, HttpError> {
    let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") else {
        return if at_eof && !data.is_empty() { Err(HttpError::Protocol("truncated response head".into())) } else { Ok(None) };
    };
    let head = std::str::from_utf8(&data[..end]).map_err(|_| HttpError::Protocol("response head is not text".into()))?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let (version, code) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
    if !version.starts_with("HTTP/1.") {
        return Err(HttpError::Protocol(format!("status line {status_line:?}")));
    }
    let status: u16 = code.parse().map_err(|_| HttpError::Protocol(format!("status line {status_line:?}")))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let rest = &data[end + 4..];
    let get = |n: &str| headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
    let body = if get("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        match dechunk(rest)? {
            Some(b) => b,
            None if at_eof => return Err(HttpError::Protocol("truncated chunked body".into())),
            None => return Ok(None),
        }
    } else if let Some(len) = get("content-length") {
        let len: usize = len.parse().map_err(|_| HttpError::Protocol(format!("content-length {len:?}")))?;
        if rest.len() < len {
            return if at_eof { Err(HttpError::Protocol("truncated body".into())) } else { Ok(None) };
        }
        rest[..len].to_vec()
    } else if status == 204 || status == 304 || (100..200).contains(&status) {
        Vec::new()
    } else if at_eof {
        rest.to_vec()
    } else {
        return Ok(None);
    };
    Ok(Some(Response { status, headers, body }))
}

/// Decodes a chunked body; `None` while incomplete.
fn dechunk(mut data: &[u8]) -> Result<Option<Vec<u8>>, HttpError> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = data.windows(2).position(|w| w == b"\r\n") else { return Ok(None) };
        let size_s = std::str::from_utf8(&data[..eol]).map_err(|_| HttpError::Protocol("chunk size".into()))?;
        let size = usize::from_str_radix(size_s.split(';').next().unwrap_or("").trim(), 16).map_err(|_| HttpError::Protocol(format!("chunk size {size_s:?}")))?;
        data = &data[eol + 2..];
        if size == 0 {
            return Ok(Some(out));
        }
        if data.len() < size + 2 {
            return Ok(None);
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_response_matches_rfc_2617_example() {
        // RFC 2617 section 3.5
        let ch = parse_challenge(&[r#"Digest realm="testrealm@host.com", qop="auth,auth-int", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41""#])
            .unwrap()
            .0;
        let h = authorization(&ch, "Mufasa", "Circle Of Life", "GET", "/dir/index.html", 1, "0a4f113b");
        assert!(h.contains(r#"response="6629fae49393a05397450978507c4ef1""#), "{h}");
        assert!(h.contains("nc=00000001") && h.contains(r#"opaque="5ccc069c403ebaf9f0171e9517f40e41""#), "{h}");
    }

    #[test]
    fn digest_sha256_matches_rfc_7616_example() {
        // RFC 7616 section 3.9.1 (SHA-256)
        let ch = parse_challenge(&[
            r#"Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm=SHA-256, nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS""#,
        ])
        .unwrap()
        .0;
        let h = authorization(&ch, "Mufasa", "Circle of Life", "GET", "/dir/index.html", 1, "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ");
        assert!(h.contains(r#"response="753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1""#), "{h}");
    }

    #[test]
    fn challenges_prefer_digest_and_notice_stale_nonces() {
        let (ch, stale) = parse_challenge(&["Basic realm=\"x\"", "Digest realm=\"cam\", nonce=\"n1\", stale=TRUE"]).unwrap();
        assert!(matches!(ch, Challenge::Digest { ref nonce, qop_auth: false, .. } if nonce == "n1"));
        assert!(stale);
        assert_eq!(parse_challenge(&["Basic realm=\"x\""]).unwrap().0, Challenge::Basic);
        assert_eq!(parse_challenge(&["Bearer"]), None);
        assert_eq!(authorization(&Challenge::Basic, "Aladdin", "open sesame", "GET", "/", 1, ""), "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
    }

    #[test]
    fn auth_params_handle_quotes_and_commas() {
        let p = auth_params(r#"realm="a, b", nonce=abc , qop="auth",x="q\"q""#);
        assert_eq!(p, vec![("realm".into(), "a, b".into()), ("nonce".into(), "abc".into()), ("qop".into(), "auth".into()), ("x".into(), "q\"q".into())]);
    }

    #[test]
    fn responses_parse_by_length_chunks_or_close() {
        let r = parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", false).unwrap().unwrap();
        assert_eq!((r.status, r.body.as_slice()), (200, &b"ok"[..]));
        assert!(parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nok", false).unwrap().is_none());
        let c = parse_response(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n1\r\nc\r\n0\r\n\r\n", false).unwrap().unwrap();
        assert_eq!(c.body, b"abc");
        let e = parse_response(b"HTTP/1.0 200 OK\r\n\r\nall of it", true).unwrap().unwrap();
        assert_eq!(e.body, b"all of it");
        assert!(parse_response(b"SSH-2.0\r\n\r\n", true).is_err());
        assert_eq!(base64_encode(b"ab"), "YWI=");
    }
}
