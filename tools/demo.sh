#!/usr/bin/env bash
# The main job: installs system libraries if missing, builds `stele` (release) and runs its demo
# on a default store (./demo-store, created on first run, appended to afterwards).
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install-deps.sh
swift build -c release --product stele
.build/release/stele demo "${1:-demo-store}"
