#!/usr/bin/env bash
# Runs the package-benchmark suite in Benchmarks/ (release build). Extra arguments go to the
# benchmark plugin, e.g. `tools/bench.sh --filter everyBatch`.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install-deps.sh
cd Benchmarks
trap 'rm -rf /tmp/stele-bench-fixture-*' EXIT
swift package --allow-writing-to-package-directory benchmark --no-progress "$@"
