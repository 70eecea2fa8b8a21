#!/usr/bin/env bash
# hawkeye benchmarks, every figure beside its baseline in the same command (README, Benchmarks).
# Sets up like the other commands (scripts/setup.sh), plus a Python venv for the baseline in
# .deps/pyvenv (onnxruntime and OpenCV from PyPI; idempotent), then runs:
#   1. single clip: decode / inference / pipeline fps, hawkeye against the Python loop;
#   2. capacity: the most real-time cameras the box holds (1080p main only, 640x360 sub only,
#      dual-stream, and dual-stream on a quiet scene), hawkeye against the Python loop.
# Takes 30-60 minutes on a 2-core box. `scripts/bench.sh quick` runs part 1 only.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
log() { printf '\033[1m[bench]\033[0m %s\n' "$*"; }

VENV=.deps/pyvenv
if ! "$VENV/bin/python" -c 'import onnxruntime, cv2' 2>/dev/null; then
  if ! python3 -m venv --help >/dev/null 2>&1 || ! dpkg-query -W -f='${Status}' python3-venv 2>/dev/null | grep -q "install ok installed"; then
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
  fi
  log "Python baseline venv: $VENV (onnxruntime, opencv-python-headless from PyPI)"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check onnxruntime==1.31.1 opencv-python-headless==4.10.0.84 "numpy<2.3"
fi

HK=target/release/hawkeye
VTEST=/usr/share/doc/opencv-doc/examples/data/vtest.avi
URBAN=models/hawkeye_urban.onnx
NANO=../shared/models/yolox_nano.onnx
models=("$URBAN")
[ -f "$NANO" ] && models+=("$NANO")

for m in "${models[@]}"; do
  log "single clip, $m"
  "$HK" bench --model "$m" --input "$VTEST" --frames 300 --python
done
[ "${1:-}" = quick ] && exit 0

for m in "${models[@]}"; do
  for s in main sub; do
    log "capacity, $s streams only, $m"
    "$HK" bench --capacity --streams "$s" --model "$m" --input "$VTEST" --python
  done
  log "capacity, dual-stream cameras, $m"
  "$HK" bench --capacity --streams dual --model "$m" --input "$VTEST" --start 8
  log "capacity, dual-stream cameras on a quiet scene, $m"
  "$HK" bench --capacity --streams dual --quiet --model "$m" --input "$VTEST" --start 16
done
