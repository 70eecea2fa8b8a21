//! The HTTP client for speaker endpoints on the camera LAN, on hyper's HTTP/1 client
//! connection: one request per connection (`Connection: close`), Basic or Digest authentication
//! (RFC 7616: MD5 or SHA-256, `qop=auth`, answered here from the server's challenge, which
//! hyper does not do), and audio bodies paced at real time so a device's playback buffer is not
//! overrun. hyper hands the response over as soon as its head arrives, so a server that refuses
//! the request early (401 after the headers) stops the upload at once.
//!
//! `http://` and `https://`; for HTTPS the speaker's certificate must chain to the configured CA
//! file (a self-signed camera certificate can be its own CA) and name the host or IP in the URL.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sha2::Digest as _;
use tokio::io::{AsyncRead, AsyncWrite};
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
    /// More request headers (name, value).
    pub headers: &'a [(&'a str, String)],
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
        Ok(None) => return Err(HttpError::Url("an https:// URL needs ca_file (the CA that signed the server's certificate)".into())),
        Err(e) => return Err(HttpError::Url(format!("TLS setup: {e}"))),
    };
    let name = rustls::pki_types::ServerName::try_from(host.to_string()).map_err(|e| HttpError::Url(format!("{host:?}: {e}")))?;
    let stream = tokio_rustls::TlsConnector::from(config.clone())
        .connect(name, stream)
        .await
        .map_err(|e| HttpError::Connect { addr, msg: format!("TLS: {e}") })?;
    exchange_on(stream, t, req, auth).await
}

/// One request over hyper's HTTP/1 client connection on `stream`. The body is a stream of
/// paced chunks; hyper hands over the response as soon as its head arrives, so a server that
/// refuses early (a 401 after the headers) ends the exchange, and dropping the connection task
/// stops the upload.
async fn exchange_on<S: AsyncRead + AsyncWrite + Send + Unpin + 'static>(stream: S, t: &Target, req: &Request<'_>, auth: Option<&str>) -> Result<Response, HttpError> {
    use http_body_util::BodyExt as _;
    let proto = |e: hyper::Error| HttpError::Protocol(e.to_string());
    let (mut sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await.map_err(|e| HttpError::Io(e.to_string()))?;
    // the connection runs beside this request; aborted when the exchange is over
    let conn = AbortOnDrop(tokio::spawn(async move {
        let _ = conn.await;
    }));
    let mut builder = hyper::Request::builder()
        .method(req.method)
        .uri(t.request_uri.as_str())
        .header(hyper::header::HOST, t.host_header.as_str())
        .header(hyper::header::USER_AGENT, concat!("hawkeye/", env!("CARGO_PKG_VERSION")))
        .header(hyper::header::CONNECTION, "close")
        .header(hyper::header::CONTENT_LENGTH, req.body.len());
    if let Some(ct) = req.content_type {
        builder = builder.header(hyper::header::CONTENT_TYPE, ct);
    }
    if let Some(a) = auth {
        builder = builder.header(hyper::header::AUTHORIZATION, a);
    }
    for (name, value) in req.headers {
        builder = builder.header(*name, value.as_str());
    }
    let body = http_body_util::StreamBody::new(paced_frames(bytes::Bytes::copy_from_slice(req.body), req.pace_bytes_per_s));
    let request = builder.body(body).map_err(|e| HttpError::Url(e.to_string()))?;
    let resp = sender.send_request(request).await.map_err(proto)?;
    let status = resp.status().as_u16();
    let headers = resp.headers().iter().map(|(n, v)| (n.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).trim().to_string())).collect();
    let body = http_body_util::Limited::new(resp.into_body(), MAX_RESPONSE)
        .collect()
        .await
        .map_err(|e| HttpError::Protocol(format!("response body: {e}")))?
        .to_bytes()
        .to_vec();
    drop(conn);
    Ok(Response { status, headers, body })
}

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

type Frames = std::pin::Pin<Box<dyn futures_util::Stream<Item = Result<hyper::body::Frame<bytes::Bytes>, std::convert::Infallible>> + Send>>;

/// The body as frames: all at once, or paced at `pace` bytes per second in tenth-of-a-second
/// chunks with the first second sent at once (device buffers hold about that).
fn paced_frames(body: bytes::Bytes, pace: Option<u32>) -> Frames {
    let Some(rate) = pace.filter(|r| *r > 0) else {
        let frames = if body.is_empty() { vec![] } else { vec![Ok(hyper::body::Frame::data(body))] };
        return Box::pin(futures_util::stream::iter(frames));
    };
    let chunk = (rate as usize / 10).max(1);
    let start = tokio::time::Instant::now();
    Box::pin(futures_util::stream::unfold(0usize, move |sent| {
        let body = body.clone();
        async move {
            if sent >= body.len() {
                return None;
            }
            let due = start + Duration::from_secs_f64((sent as f64 / rate as f64 - 1.0).max(0.0));
            tokio::time::sleep_until(due).await;
            let end = (sent + chunk).min(body.len());
            Some((Ok(hyper::body::Frame::data(body.slice(sent..end))), end))
        }
    }))
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
    fn base64_of_short_inputs() {
        assert_eq!(base64_encode(b"ab"), "YWI=");
        assert_eq!(base64_encode(b"abc"), "YWJj");
    }
}
