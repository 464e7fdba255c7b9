#!/usr/bin/env bash
# Large values against the disk's sequential write speed, in one run on one disk (issue 7's
# fourth target: Stele with 64 KiB values, durable at the end, at ≥ 80% of dd with fdatasync).
#   tools/bench-dd.sh [DIR] [ROUNDS]    DIR: a directory on the disk to measure (default $TMPDIR or /tmp)
# Alternates `stele bench --value-size 65536 --sync none` (16,000 records, 1.05 GB of values)
# and `dd if=/dev/zero bs=1M count=1000 conv=fdatasync` (1.05 GB) ROUNDS times (default 3) and
# prints each figure and the medians in MB/s (10^6 bytes).
set -euo pipefail
cd "$(dirname "$0")/.."
parent="${1:-${TMPDIR:-/tmp}}"
rounds="${2:-3}"
tools/install-deps.sh
swift build -c release --product stele >/dev/null
work="$(mktemp -d "$parent/stele-dd-XXXXXX")"
trap 'rm -rf "$work"' EXIT
stele_rates=()
dd_rates=()
for round in $(seq "$rounds"); do
    json="$(.build/release/stele bench "$work/store" --records 16000 --value-size 65536 --batch 16 --sync none --json)"
    stele_rates+=("$(python3 -c 'import json,sys; print("%.0f" % json.loads(sys.argv[1])["mb_per_sec"])' "$json")")
    # dd reports bytes and seconds on its last line of stderr; conv=fdatasync includes the sync.
    seconds="$( { LC_ALL=C dd if=/dev/zero of="$work/dd" bs=1M count=1000 conv=fdatasync 2>&1 >/dev/null; } | tail -1 | sed -E 's/.* copied, ([0-9.]+) s.*/\1/')"
    dd_rates+=("$(python3 -c "print('%.0f' % (1000 * 1048576 / $seconds / 1e6))")")
    rm -f "$work/dd"
    echo "round $round: stele ${stele_rates[-1]} MB/s, dd ${dd_rates[-1]} MB/s"
done
median() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
stele_median="$(median "${stele_rates[@]}")"
dd_median="$(median "${dd_rates[@]}")"
echo "median: stele ${stele_median} MB/s, dd ${dd_median} MB/s, stele at $(python3 -c "print('%.0f' % (100 * $stele_median / $dd_median))")% of dd (target ≥ 80%)"
