//! A TCP forwarder on loopback standing for a network link that can be cut: while cut, every
//! connection through it is closed and new ones are refused.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub struct Link {
    pub port: u16,
    to: u16,
    open: Arc<Mutex<Vec<TcpStream>>>,
    /// Set to stop the current accept thread (the listener is dropped: connections are refused).
    stop: Arc<AtomicBool>,
}

impl Link {
    /// Forwards 127.0.0.1:`port` (a free one) to 127.0.0.1:`to`.
    pub fn start(to: u16) -> Link {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut link = Link { port, to, open: Arc::default(), stop: Arc::default() };
        link.serve(listener);
        link
    }

    fn serve(&mut self, listener: TcpListener) {
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        self.stop = stop.clone();
        let (open, to) = (self.open.clone(), self.to);
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let client = match listener.accept() {
                    Ok((sock, _)) => sock,
                    Err(_) => {
                        std::thread::sleep(Duration::from_millis(20));
                        continue;
                    }
                };
                let _ = client.set_nonblocking(false);
                let Ok(server) = TcpStream::connect(("127.0.0.1", to)) else {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                };
                {
                    let mut open = open.lock().unwrap();
                    open.push(client.try_clone().unwrap());
                    open.push(server.try_clone().unwrap());
                }
                pump(client.try_clone().unwrap(), server.try_clone().unwrap());
                pump(server, client);
            }
            // the listener is dropped here: the port refuses connections
        });
    }

    /// Cuts the link: open connections are closed and the port refuses new ones (as a router
    /// with the uplink down answers), until [`Link::restore`].
    pub fn cut(&self) {
        self.stop.store(true, Ordering::Relaxed);
        for s in self.open.lock().unwrap().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
        // let the accept thread notice and drop its listener
        std::thread::sleep(Duration::from_millis(100));
    }

    /// Listens on the same port again.
    pub fn restore(&mut self) {
        let t0 = std::time::Instant::now();
        let listener = loop {
            match TcpListener::bind(("127.0.0.1", self.port)) {
                Ok(l) => break l,
                Err(e) => {
                    assert!(t0.elapsed() < Duration::from_secs(10), "cannot listen on {} again: {e}", self.port);
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        };
        self.serve(listener);
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        self.cut();
    }
}
/// Copies `from` → `to` on a thread until either side closes.
fn pump(mut from: TcpStream, mut to: TcpStream) {
    std::thread::spawn(move || {
        let mut buf = [0u8; 16384];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if to.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            }
        }
        let _ = to.shutdown(Shutdown::Both);
        let _ = from.shutdown(Shutdown::Both);
    });
}
