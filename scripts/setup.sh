#!/usr/bin/env bash
# hawkeye setup: installs what is missing and builds the release binary. Idempotent.
#   Debian packages  GStreamer 1.22 (dev + plugins, RTSP server), mosquitto, opencv-doc (sample video),
#                    espeak-ng (speech for loudspeaker warnings), nginx + RTMP module (drone-stream tests),
#                    vlc-bin + vlc-plugin-base (VLC's RTSP server, RTP over UDP only: transport tests),
#                    dpkg-dev (dpkg-shlibdeps, for the Debian package's dependencies),
#                    postgresql (the console's city-wide database; tests start their own cluster),
#                    chromium + chromium-driver (the console's browser tests, over WebDriver),
#                    fonts-wqy-microhei (Chinese text in the browser and its screenshots)
#   ONNX Runtime     shared library from the PyPI wheel `onnxruntime` into .deps/onnxruntime/
#   cargo-deb        `cargo deb` builds the Debian package (cargo install from crates.io, pinned)
#   build            cargo build --release (binary in target/release/hawkeye); with --tests,
#                    cargo test --release --no-run (the same binary, and the tests, in one build)
# Re-running it only checks; nothing is downloaded twice.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
ORT_VERSION=1.31.1
CARGO_DEB_VERSION=3.8.0

log() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }

APT_PACKAGES=(
  pkg-config libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev libgstrtspserver-1.0-dev
  gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
  gstreamer1.0-plugins-ugly gstreamer1.0-libav mosquitto mosquitto-clients opencv-doc
  libopencv-dev clang libclang-dev opencv-data
  fonts-dejavu-core python3 python3-pip unzip systemd openssl espeak-ng nginx libnginx-mod-rtmp dpkg-dev faketime
  vlc-bin vlc-plugin-base
  postgresql chromium chromium-driver fonts-wqy-microhei
)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  log "installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  log "Debian packages present"
fi
# mosquitto's Debian package starts a system broker on :1883; hawkeye's demo and tests start their own
# on free ports, so the system one is left as the administrator configured it.

ORT_DIR="$ROOT/.deps/onnxruntime"
ORT_LIB="$ORT_DIR/libonnxruntime.so.$ORT_VERSION"
if [ ! -f "$ORT_LIB" ]; then
  log "fetching ONNX Runtime $ORT_VERSION from the PyPI wheel"
  tmp=$(mktemp -d)
  python3 -m pip download --quiet --no-deps --only-binary=:all: --platform "manylinux_2_28_$(uname -m)" \
    --python-version 3.11 "onnxruntime==$ORT_VERSION" -d "$tmp"
  mkdir -p "$ORT_DIR"
  whl=$(ls "$tmp"/onnxruntime-*.whl)
  python3 - "$whl" "$ORT_DIR" <<'PY'
import sys, zipfile, os
whl, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(whl) as z:
    for n in z.namelist():
        if n.startswith("onnxruntime/capi/lib") and ".so" in n:
            with open(os.path.join(out, os.path.basename(n)), "wb") as f:
                f.write(z.read(n))
PY
  rm -rf "$tmp"
fi
ln -sf "libonnxruntime.so.$ORT_VERSION" "$ORT_DIR/libonnxruntime.so"
log "ONNX Runtime: $ORT_DIR/libonnxruntime.so (override with ORT_DYLIB_PATH)"

if ! command -v cargo >/dev/null; then
  echo "setup: cargo not found; install the Rust toolchain (rustup) first" >&2; exit 1
fi
if ! cargo deb --version >/dev/null 2>&1; then
  log "installing cargo-deb $CARGO_DEB_VERSION (about a minute)"
  cargo install cargo-deb --locked --version "$CARGO_DEB_VERSION" --quiet
fi
log "cargo-deb: $(cargo deb --version)"
if [ "${1:-}" = "--tests" ]; then
  # the tests' build: dev-dependencies turn on more features of shared crates (tokio, syn, …), so a
  # plain `cargo build` would compile most dependencies a second time for `cargo test`
  log "building release binary and tests"
  cargo test --release --locked --no-run --quiet
else
  log "building release binary"
  cargo build --release --locked --quiet
fi
log "ready: $ROOT/target/release/hawkeye"
