#!/usr/bin/env bash
# Mirror lag under a steady write load (default 10,000 records/s, 1 s seal timer, 60 s), mirrored
# to a local S3-compatible server with Object Lock. Prints the lag's p50, p99 and max after each
# pass, and just before each pass landed (the recovery point's worst moments).
#   tools/mirror-lag.sh [SECONDS] [RATE] [MIRRORLAG OPTIONS...]   (e.g. --seal-ms 60000 --checkpoint-ms 250: chunks)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
rate=${2:-10000}
swift build -c release --package-path Benchmarks --product MirrorLag >&2
eval "$(tools/s3-server.sh start)"
trap 'tools/s3-server.sh stop' EXIT
export AWS_ACCESS_KEY_ID=lag AWS_SECRET_ACCESS_KEY=lag-secret
bucket=lag-$RANDOM
.build-moto/bin/python - "$STELE_S3_ENDPOINT" "$bucket" <<'PY'
import sys, boto3
boto3.client("s3", endpoint_url=sys.argv[1], aws_access_key_id="lag", aws_secret_access_key="lag-secret",
             region_name="us-east-1").create_bucket(Bucket=sys.argv[2], ObjectLockEnabledForBucket=True)
PY
Benchmarks/.build/release/MirrorLag --to "s3://$bucket/store" --seconds "$seconds" --rate "$rate" "${@:3}"
