#!/usr/bin/env bash
# The main job: installs system libraries if missing, builds `stele` (release) and runs its demo
# on a new store, ./demo-store by default. `stele demo` never writes into an existing store: a
# store a previous demo created there (its origin is demo.stele.local/...) is removed first, and
# anything else is left alone (the demo then refuses the directory).
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install-deps.sh
swift build -c release --product stele
dir="${1:-demo-store}"
if [ -f "$dir/stele.conf" ] && grep -q '^origin demo\.stele\.local/' "$dir/stele.conf"; then
    chmod -R u+w "$dir" && rm -rf "$dir"
fi
.build/release/stele demo "$dir"
