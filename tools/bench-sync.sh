#!/usr/bin/env bash
# The cost of one durable sync on the disk under DIR (default: $TMPDIR or /tmp), by mechanism
# (msync of a mapping, pwrite + fdatasync) and by how the file was made (fallocate, zero-filled):
# the measurement behind docs/durability.md ("Why msync"). Needs a C compiler.
set -euo pipefail
cd "$(dirname "$0")/.."
directory=${1:-${TMPDIR:-/tmp}}
binary=$(mktemp /tmp/sync-cost.XXXXXX)
trap 'rm -f "$binary"' EXIT
cc -O2 -o "$binary" tools/sync-cost/sync-cost.c
for zero in 0 1; do
    for mode in mmap fdatasync; do
        "$binary" "$mode" "$zero" 1 2000 "$directory"
        "$binary" "$mode" "$zero" 64 1000 "$directory"
    done
done
