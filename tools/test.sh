#!/usr/bin/env bash
# The test command: installs system libraries if missing, builds, starts a local S3-compatible
# server (moto, on 127.0.0.1, for the mirror tests), runs every test, stops the server.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install-deps.sh
swift build --build-tests
eval "$(tools/s3-server.sh start)"
trap 'tools/s3-server.sh stop' EXIT
swift test
