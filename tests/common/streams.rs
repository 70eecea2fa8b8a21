//! Live-stream peers for drone-source tests: a real nginx with Debian's RTMP module on a free
//! port, and GStreamer senders (`gst-launch-1.0`) pushing vtest.avi as H.264 over RTMP or SRT at
//! real time. Every process is killed when its guard drops.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// nginx's RTMP module as Debian installs it (package libnginx-mod-rtmp).
pub const RTMP_MODULE: &str = "/usr/lib/nginx/modules/ngx_rtmp_module.so";

/// A free loopback TCP/UDP port (bound, then released).
pub fn free_port() -> u16 {
    let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    tcp.local_addr().unwrap().port()
}

/// A child process killed on drop.
pub struct Proc(Child);

impl Proc {
    pub fn has_exited(&mut self) -> bool {
        !matches!(self.0.try_wait(), Ok(None))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// nginx serving RTMP application `live` on 127.0.0.1:port, in the foreground, with its own
/// prefix directory.
pub struct Nginx {
    pub port: u16,
    _proc: Proc,
    _dir: tempfile::TempDir,
}

impl Nginx {
    pub fn start_rtmp() -> Nginx {
        assert!(std::path::Path::new(RTMP_MODULE).is_file(), "{RTMP_MODULE} is missing: scripts/setup.sh installs nginx and libnginx-mod-rtmp");
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("logs")).unwrap();
        let port = free_port();
        let conf = format!(
            "load_module {RTMP_MODULE};\ndaemon off;\nmaster_process off;\nworker_processes 1;\nerror_log {d}/logs/error.log info;\npid {d}/nginx.pid;\n\
             events {{ worker_connections 64; }}\nrtmp {{ server {{ listen 127.0.0.1:{port}; application live {{ live on; record off; }} }} }}\n",
            d = dir.path().display()
        );
        let path = dir.path().join("nginx.conf");
        std::fs::write(&path, conf).unwrap();
        let child = Command::new("nginx").arg("-p").arg(dir.path()).arg("-c").arg(&path).stdout(Stdio::null()).spawn().expect("nginx (scripts/setup.sh installs it)");
        let t0 = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(t0.elapsed() < Duration::from_secs(10), "nginx did not listen on {port}: {}", std::fs::read_to_string(dir.path().join("logs/error.log")).unwrap_or_default());
            std::thread::sleep(Duration::from_millis(50));
        }
        Nginx { port, _proc: Proc(child), _dir: dir }
    }
}

fn vtest() -> PathBuf {
    super::model::vtest()
}

/// The encoder half every sender shares: vtest.avi at real time → H.264 (I420, frequent
/// keyframes so a late joiner starts quickly).
fn encoder() -> Vec<String> {
    let v = vtest();
    format!("filesrc location={} ! decodebin ! videoconvert ! video/x-raw,format=I420 ! identity sync=true ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=10 ! h264parse config-interval=-1", v.display())
        .split(' ')
        .map(str::to_string)
        .collect()
}

fn launch(tail: &str) -> Proc {
    let mut args = encoder();
    args.extend(tail.split(' ').map(str::to_string));
    let child = Command::new("gst-launch-1.0").arg("-q").args(&args).stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("gst-launch-1.0 (gstreamer1.0-tools)");
    Proc(child)
}

/// Pushes vtest as FLV over RTMP to `url` (e.g. rtmp://127.0.0.1:PORT/live/drone-7).
pub fn rtmp_sender(url: &str) -> Proc {
    launch(&format!("! flvmux streamable=true ! rtmp2sink location={url}"))
}

/// Sends vtest as MPEG-TS over SRT, `uri` e.g. `srt://:PORT?mode=listener` or
/// `srt://127.0.0.1:PORT?mode=caller`.
pub fn srt_sender(uri: &str) -> Proc {
    // 7 TS packets (1316 bytes) per SRT message, as SRT encoders send: larger buffers do not fit
    // one live-mode SRT packet and would be lost
    launch(&format!("! mpegtsmux alignment=7 ! srtsink uri={uri} wait-for-connection=true"))
}

/// An SRT caller that retries until the listener (hawkeye) is up and keeps the connection.
pub struct RetryingCaller {
    uri: String,
    current: Option<Proc>,
}

impl RetryingCaller {
    pub fn new(uri: &str) -> RetryingCaller {
        RetryingCaller { uri: uri.to_string(), current: None }
    }
    /// Restarts the sender if it has exited (connection refused); call this while waiting.
    pub fn poke(&mut self) {
        if self.current.as_mut().is_none_or(|p| p.has_exited()) {
            self.current = Some(srt_sender(&self.uri));
        }
    }
}
