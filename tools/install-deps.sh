#!/usr/bin/env bash
# Installs the system libraries Stele links (Debian/Ubuntu), only when they are missing.
# With --peers, also the stores PeerBenchmarks compares against (SQLite, LMDB, RocksDB, LevelDB).
# Needs root or sudo for apt-get; Swift 6 itself must already be installed.
set -euo pipefail
# libcurl4: FoundationNetworking (the S3 mirror) loads it; python3-venv: the test S3 server;
# strace: SyncTraceTests read the system calls a writer makes before each acknowledgement;
# golang-go, golang-golang-x-mod-dev: InteropTests check served tiles, checkpoints and the
# witness with Go's own transparency-log packages (x/mod sumdb/tlog and sumdb/note).
packages=(liblz4-dev libxxhash-dev libssl-dev pkg-config libcurl4 python3-venv strace golang-go golang-golang-x-mod-dev)
if [ "${1:-}" = "--peers" ]; then
    packages+=(libsqlite3-dev liblmdb-dev librocksdb-dev libleveldb-dev)
fi
missing=()
for p in "${packages[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
    echo "installing ${missing[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
command -v swift >/dev/null || { echo "swift (6.1 or later) is not on PATH" >&2; exit 1; }
