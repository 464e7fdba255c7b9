#!/usr/bin/env bash
# Stele beside SQLite, LMDB, RocksDB and LevelDB: one workload, one process, one table
# (Benchmarks/Peers/PeerBenchmarks, release build). Installs the Debian packages if missing.
#   tools/bench-peers.sh            full run: 1,000,000 records per engine and mode (minutes)
#   tools/bench-peers.sh --short    the CI pass: 100,000 records, medians of 3 rounds, --check (about 15 s)
# Further arguments go to PeerBenchmarks: --records N, --reads N, --dir PARENT, --json, --check,
# --engines LIST. The stores go under a fresh directory in $TMPDIR (or /tmp) unless --dir is given:
# put them on the disk you mean to measure.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install-deps.sh --peers >&2
arguments=()
if [ "${1:-}" = "--short" ]; then
    shift
    arguments=(--records 100000 --repeat 3 --check)
fi
start=$SECONDS
# Build output goes to stderr, so that --json leaves standard output to the JSON alone.
swift build -c release --package-path Benchmarks --product PeerBenchmarks >&2
echo "PeerBenchmarks built (release) in $((SECONDS - start)) s" >&2
Benchmarks/.build/release/PeerBenchmarks "${arguments[@]}" "$@"
