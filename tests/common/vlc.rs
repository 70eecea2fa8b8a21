//! VLC's RTSP server (Debian `vlc-bin` + `vlc-plugin-base`), an RTSP server not written here:
//! `cvlc --sout '#rtp{sdp=rtsp://…}'` offers RTP over UDP only and answers a SETUP for TCP
//! interleaving with 461 Unsupported Transport.
//!
//! VLC refuses to run as root; as root (CI) it is started as `nobody` with `setpriv`, which execs
//! VLC in place, so the child's PID is VLC's and killing it on drop stops the server.
#![allow(dead_code)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `nobody` and `nogroup` on Debian.
const NOBODY: &str = "65534";

/// Where `cvlc` is, if it is installed.
pub fn cvlc() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join("cvlc")).find(|p| p.is_file())
}

/// A running VLC serving one file in a loop at `rtsp://127.0.0.1:PORT/cam`; killed on drop.
pub struct VlcRtsp {
    pub port: u16,
    child: Child,
    dir: tempfile::TempDir,
}

impl VlcRtsp {
    /// Starts VLC on a free port serving a 10 s H.264 clip (320x240, 15 fps, a keyframe every
    /// second) made here with gst-launch, and waits until the RTSP port accepts connections.
    /// Panics when VLC cannot start (tests only).
    pub fn start(cvlc: &Path) -> VlcRtsp {
        let dir = tempfile::tempdir().unwrap();
        // readable by `nobody`; VLC's HOME (it writes its config there) writable by it
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let home = dir.path().join("home");
        std::fs::create_dir(&home).unwrap();
        std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o777)).unwrap();
        let clip = dir.path().join("clip.mp4");
        let status = Command::new("gst-launch-1.0")
            .args(["-q", "videotestsrc", "num-buffers=150", "pattern=ball", "!"])
            .args(["video/x-raw,width=320,height=240,framerate=15/1", "!", "videoconvert", "!"])
            .args(["video/x-raw,format=I420", "!", "x264enc", "speed-preset=ultrafast", "key-int-max=15", "!"])
            .args(["h264parse", "!", "mp4mux", "!", "filesink"])
            .arg(format!("location={}", clip.display()))
            .status()
            .expect("gst-launch-1.0 runs");
        assert!(status.success(), "gst-launch-1.0 made no clip");
        std::fs::set_permissions(&clip, std::fs::Permissions::from_mode(0o644)).unwrap();

        let port = super::streams::free_port();
        let log = std::fs::File::create(dir.path().join("vlc.log")).unwrap();
        let mut cmd = if unsafe { libc::geteuid() } == 0 {
            let mut c = Command::new("setpriv");
            c.args([&format!("--reuid={NOBODY}"), &format!("--regid={NOBODY}"), "--clear-groups", "--"]).arg(cvlc);
            c
        } else {
            Command::new(cvlc)
        };
        cmd.env("HOME", &home)
            .args(["--no-audio", "--loop", "--sout-keep"])
            .arg("--sout")
            .arg(format!("#rtp{{sdp=rtsp://127.0.0.1:{port}/cam}}"))
            .arg(&clip)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        let child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
        let mut vlc = VlcRtsp { port, child, dir };
        let t0 = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = vlc.child.try_wait() {
                panic!(
                    "cvlc exited ({status}) before serving RTSP (vlc-plugin-base installed?); its log:\n{}",
                    vlc.log()
                );
            }
            assert!(t0.elapsed() < Duration::from_secs(20), "VLC's RTSP port never opened; its log:\n{}", vlc.log());
            std::thread::sleep(Duration::from_millis(100));
        }
        vlc
    }

    /// `rtsp://127.0.0.1:PORT/cam`.
    pub fn url(&self) -> String {
        format!("rtsp://127.0.0.1:{}/cam", self.port)
    }

    /// What VLC wrote so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("vlc.log")).unwrap_or_default()
    }
}

impl Drop for VlcRtsp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
