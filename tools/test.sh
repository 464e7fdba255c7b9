#!/usr/bin/env bash
# The test command: installs system libraries if missing, builds, runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install-deps.sh
swift build --build-tests
swift test
