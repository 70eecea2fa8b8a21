//! A city platform that takes alerts over HTTP(S): a real HTTP/1 server (hyper) on its own
//! runtime thread that records every POST and answers as the test says: 200, a 5xx for a while,
//! a 4xx for the next few requests, or not at all (stopped, then started again on the same port).
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use http_body_util::BodyExt as _;
use hyper::service::service_fn;
use tokio::net::TcpListener;

/// One request as received.
#[derive(Clone, Debug)]
pub struct Posted {
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The status answered.
    pub status: u16,
}

impl Posted {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
}

#[derive(Default)]
struct State {
    posted: Mutex<Vec<Posted>>,
    /// Answer every request with this status (None: 200).
    status: Mutex<Option<u16>>,
    /// (status, how many more requests of this kind get it).
    refuse_next: Mutex<Option<(String, u16, u32)>>,
}

/// The platform; stops when dropped.
pub struct Platform {
    pub port: u16,
    state: Arc<State>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    rt: tokio::runtime::Runtime,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Platform {
    /// Plain HTTP on a free port.
    pub fn start() -> Platform {
        Self::start_with(None)
    }

    /// HTTPS with `cert_pem` / `key_pem`.
    pub fn start_tls(cert_pem: &[u8], key_pem: &[u8]) -> Platform {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let certs: Vec<_> = rustls_pemfile::certs(&mut &cert_pem[..]).collect::<Result<_, _>>().unwrap();
        let key = rustls_pemfile::private_key(&mut &key_pem[..]).unwrap().unwrap();
        let config = rustls::ServerConfig::builder().with_no_client_auth().with_single_cert(certs, key).unwrap();
        Self::start_with(Some(tokio_rustls::TlsAcceptor::from(Arc::new(config))))
    }

    fn start_with(tls: Option<tokio_rustls::TlsAcceptor>) -> Platform {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let listener = rt.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut p = Platform { port, state: Arc::default(), tls, rt, task: None };
        p.serve(listener);
        p
    }

    fn serve(&mut self, listener: TcpListener) {
        let (state, tls) = (self.state.clone(), self.tls.clone());
        self.task = Some(self.rt.spawn(async move {
            loop {
                let Ok((sock, _)) = listener.accept().await else { return };
                let (state, tls) = (state.clone(), tls.clone());
                tokio::spawn(async move {
                    let svc = service_fn(move |req| handle(state.clone(), req));
                    let builder = hyper::server::conn::http1::Builder::new();
                    let _ = match tls {
                        None => builder.serve_connection(hyper_util::rt::TokioIo::new(sock), svc).await,
                        Some(acceptor) => match acceptor.accept(sock).await {
                            Ok(s) => builder.serve_connection(hyper_util::rt::TokioIo::new(s), svc).await,
                            Err(_) => return,
                        },
                    };
                });
            }
        }));
    }

    /// Closes the port (connections are refused) until [`Platform::restart`].
    pub fn stop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
            let _ = self.rt.block_on(t);
        }
    }

    /// Listens on the same port again.
    pub fn restart(&mut self) {
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let listener = self.rt.block_on(async {
            for _ in 0..100 {
                match TcpListener::bind(addr).await {
                    Ok(l) => return l,
                    Err(_) => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
                }
            }
            panic!("cannot listen on {addr} again");
        });
        self.serve(listener);
    }

    /// Answers every request with `status` (None: 200 again).
    pub fn answer(&self, status: Option<u16>) {
        *self.state.status.lock().unwrap() = status;
    }

    /// The next `n` requests whose `X-Hawkeye-Kind` is `kind` get `status`.
    pub fn refuse_next(&self, kind: &str, status: u16, n: u32) {
        *self.state.refuse_next.lock().unwrap() = Some((kind.to_string(), status, n));
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}://127.0.0.1:{}{path}", if self.tls.is_some() { "https" } else { "http" }, self.port)
    }

    /// Every request so far.
    pub fn posted(&self) -> Vec<Posted> {
        self.state.posted.lock().unwrap().clone()
    }

    /// The requests answered 2xx.
    pub fn accepted(&self) -> Vec<Posted> {
        self.posted().into_iter().filter(|p| (200..300).contains(&p.status)).collect()
    }
}

impl Drop for Platform {
    fn drop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

async fn handle(state: Arc<State>, req: hyper::Request<hyper::body::Incoming>) -> Result<hyper::Response<String>, hyper::Error> {
    let path = req.uri().path().to_string();
    let headers: Vec<(String, String)> = req.headers().iter().map(|(n, v)| (n.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).to_string())).collect();
    let body = req.into_body().collect().await?.to_bytes().to_vec();
    let kind = headers.iter().find(|(n, _)| n == "x-hawkeye-kind").map(|(_, v)| v.clone()).unwrap_or_default();
    let mut status = state.status.lock().unwrap().unwrap_or(200);
    if status == 200 {
        let mut refuse = state.refuse_next.lock().unwrap();
        if let Some((k, s, n)) = refuse.as_mut() {
            if *k == kind && *n > 0 {
                status = *s;
                *n -= 1;
            }
        }
    }
    state.posted.lock().unwrap().push(Posted { path, headers, body, status });
    let text = if status == 200 { "{\"ok\":true}".to_string() } else { format!("{{\"error\":\"status {status} as the test asked\"}}") };
    Ok(hyper::Response::builder().status(status).header("content-type", "application/json").body(text).unwrap())
}
