#!/usr/bin/env bash
# A local S3-compatible server with Object Lock for tests and the DR drill: moto's server, in a
# Python virtual environment under .build-moto/ (installed on first use), on 127.0.0.1 only.
#   eval "$(tools/s3-server.sh start)"   starts it and prints `export STELE_S3_ENDPOINT=...`
#   tools/s3-server.sh stop              stops it
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.build-moto
pidfile=$venv/server.pid
port=${STELE_S3_PORT:-5055}
case "${1:-}" in
start)
    if [ ! -x "$venv/bin/moto_server" ]; then
        if ! python3 -m venv --help >/dev/null 2>&1; then
            if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
            $sudo apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq python3-venv >&2
        fi
        python3 -m venv "$venv" >&2
        "$venv/bin/pip" install -q 'moto[server]' >&2
    fi
    "$0" stop >/dev/null 2>&1 || true
    "$venv/bin/moto_server" -H 127.0.0.1 -p "$port" >"$venv/server.log" 2>&1 &
    echo $! >"$pidfile"
    for _ in $(seq 1 100); do
        if python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), 0.2)" 2>/dev/null; then
            echo "export STELE_S3_ENDPOINT=http://127.0.0.1:$port"
            exit 0
        fi
        sleep 0.1
    done
    echo "S3 server did not start; see $venv/server.log" >&2
    exit 1
    ;;
stop)
    if [ -f "$pidfile" ]; then kill "$(cat "$pidfile")" 2>/dev/null || true; rm -f "$pidfile"; fi
    ;;
*)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
