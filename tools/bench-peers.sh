#!/usr/bin/env bash
# Stele beside SQLite, LMDB, RocksDB and LevelDB: one workload, one process, one table
# (Benchmarks/Peers/PeerBenchmarks, release build). Installs the Debian packages if missing.
#   tools/bench-peers.sh            full run: 1,000,000 records per engine and mode (minutes)
#   tools/bench-peers.sh --short    the CI pass: 1,000,000 records, 100,000 reads, 7 rounds, the concurrent puts
#                                   (Stele, RocksDB, LevelDB), --check, then the sync count (about 3.5 min)
# Further arguments go to PeerBenchmarks: --records N, --reads N, --dir PARENT, --json, --check,
# --engines LIST. The stores go under a fresh directory in $TMPDIR (or /tmp) unless --dir is given:
# put them on the disk you mean to measure.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install-deps.sh --peers >&2
arguments=()
short=false
if [ "${1:-}" = "--short" ]; then
    shift
    short=true
    arguments=(--records 1000000 --reads 100000 --repeat 7 --concurrent-engines stele,rocksdb,leveldb --check)
fi
start=$SECONDS
# Build output goes to stderr, so that --json leaves standard output to the JSON alone.
swift build -c release --package-path Benchmarks --product PeerBenchmarks >&2
echo "PeerBenchmarks built (release) in $((SECONDS - start)) s" >&2
Benchmarks/.build/release/PeerBenchmarks "${arguments[@]}" "$@"
if $short; then
    # A build that skipped syncs would only look faster, and pass the gates: count them. Stele
    # alone, 50 batches durable each (then the same 50 durable at the end): every batch must
    # cost at least one sync call (msync, fdatasync or fsync) that the kernel saw.
    summary=$(mktemp /tmp/stele-syncs.XXXXXX)
    strace -f -qq -c -o "$summary" -e trace=msync,fdatasync,fsync \
        Benchmarks/.build/release/PeerBenchmarks --workloads batch --engines stele --records 50000 --reads 1 >/dev/null
    syncs=$(awk '$NF == "msync" || $NF == "fdatasync" || $NF == "fsync" { calls += $4 } END { print calls + 0 }' "$summary")
    rm -f "$summary"
    if [ "$syncs" -lt 50 ]; then
        echo "sync check failed: $syncs sync calls for 50 batches acknowledged as durable" >&2
        exit 1
    fi
    echo "sync check: $syncs sync calls for 50 batches acknowledged as durable (at least 50 required)"
fi
