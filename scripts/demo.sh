#!/usr/bin/env bash
# hawkeye demo: the same setup as scripts/setup.sh, then `hawkeye demo` on its embedded defaults
# (a private mosquitto, the sample street video, one zone; alerts printed as they arrive).
# Extra arguments go to `hawkeye demo` (e.g. --duration 30, --model M.onnx, --video V).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
exec ./target/release/hawkeye demo "$@"
