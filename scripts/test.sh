#!/usr/bin/env bash
# hawkeye tests: the same setup as scripts/setup.sh, then every test on real components
# (GStreamer, ONNX Runtime, mosquitto, in-process RTSP servers), release build.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh --tests
if [ ! -f ../shared/models/yolox_nano.onnx ]; then
  echo "*** WARNING: ../shared/models/yolox_nano.onnx is absent: tests that need the real model print SKIPPED ***" >&2
fi
cargo test --release --locked --no-fail-fast -- --test-threads=2
