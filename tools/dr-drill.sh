#!/usr/bin/env bash
# Disaster-recovery drill: build a store, mirror it to a local S3-compatible server with Object
# Lock, delete the whole primary directory, restore from the copy against the checkpoint kept
# aside, and check the result with fsck. Prints the recovery time and the recovery point.
#   tools/dr-drill.sh [RECORDS] [VALUE_BYTES]     (default 200000 records of 400 bytes)
# Uses the release build of `stele` (set STELE=path to use another). Contacts only 127.0.0.1.
#
#   tools/dr-drill.sh --failover [LOAD_SECONDS]   (default 4)
# The failover drill instead: the example orders-server as a primary under HTTP load, mirroring
# itself; a standby orders-server following the copy; the primary SIGKILLed and its directory
# removed; the standby promoted. Prints the recovery point and the recovery time, and fails
# unless every acknowledged event below the promotion point is on the promoted store, its log
# extends the old checkpoint, and the returning old primary is fenced (docs/operations.md,
# "Standby and failover"). Builds Examples/OrdersServer (debug) unless ORDERS_LOAD is set.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--failover" ]; then
    if [ -z "${ORDERS_LOAD:-}" ]; then
        swift build --package-path Examples/OrdersServer >&2
        ORDERS_LOAD=Examples/OrdersServer/.build/debug/orders-load
    fi
    exec "$ORDERS_LOAD" --failover-drill --load-seconds "${2:-4}"
fi
records=${1:-200000}
value_bytes=${2:-400}
if [ -z "${STELE:-}" ]; then
    swift build -c release --product stele >&2
    STELE=.build/release/stele
fi
eval "$(tools/s3-server.sh start)"
work=$(mktemp -d "${TMPDIR:-/tmp}/stele-drill-XXXXXX")
cleanup() { tools/s3-server.sh stop; chmod -R u+w "$work" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
export AWS_ACCESS_KEY_ID=drill AWS_SECRET_ACCESS_KEY=drill-secret
bucket=drill-$RANDOM
.build-moto/bin/python - "$STELE_S3_ENDPOINT" "$bucket" <<'PY'
import sys, boto3
boto3.client("s3", endpoint_url=sys.argv[1], aws_access_key_id="drill", aws_secret_access_key="drill-secret",
             region_name="us-east-1").create_bucket(Bucket=sys.argv[2], ObjectLockEnabledForBucket=True)
PY

echo "== primary: $records records of $value_bytes bytes" >&2
"$STELE" keygen --name drill.example/orders --out "$work/log" >/dev/null
"$STELE" init "$work/primary" --segment-size 16777216 --origin drill.example/orders >/dev/null
python3 - "$records" "$value_bytes" <<'PY' | "$STELE" append "$work/primary" --jsonl - --sync none --batch 1000 >/dev/null
import sys, os, base64
n, size = int(sys.argv[1]), int(sys.argv[2])
out = sys.stdout
for i in range(n):
    value = base64.b64encode(os.urandom(size * 3 // 4)).decode()
    out.write('{"ns":"merchant-%d/orders","key":"order-%09d","value":"%s"}\n' % (i % 50, i, value))
PY
# The checkpoint an operator keeps outside the store (here: a file beside it).
"$STELE" checkpoint "$work/primary" --key "$work/log.key" --seal --out "$work/trusted.checkpoint"
acknowledged=$("$STELE" stats "$work/primary" --json | python3 -c "import sys, json; print(json.load(sys.stdin)['records'])")
# A digest of every record (sequence, time, namespace, key, value) to compare after the restore.
before=$("$STELE" read "$work/primary" --from 0 --count "$acknowledged" --json | sha256sum | cut -d' ' -f1)

echo "== mirror to s3://$bucket/orders" >&2
"$STELE" mirror "$work/primary" --to "s3://$bucket/orders" --endpoint "$STELE_S3_ENDPOINT" --retain-days 1 >&2
lag=$("$STELE" mirror "$work/primary" --to "s3://$bucket/orders" --endpoint "$STELE_S3_ENDPOINT" --retain-days 1 --json \
      | python3 -c "import sys, json; r = json.load(sys.stdin); print(r['lag_records'], r['lag_seconds'])")

echo "== disaster: the primary directory is deleted" >&2
chmod -R u+w "$work/primary"
rm -rf "$work/primary"

echo "== restore" >&2
start=$(date +%s.%N)
"$STELE" restore --from "s3://$bucket/orders" --to "$work/restored" --endpoint "$STELE_S3_ENDPOINT" \
    --checkpoint "$work/trusted.checkpoint" --verifier-key "$work/log.pub" --report "$work/report.json" >/dev/null
end=$(date +%s.%N)
"$STELE" fsck "$work/restored" --checkpoint "$work/trusted.checkpoint" --verifier-key "$work/log.pub" >&2
restored=$("$STELE" stats "$work/restored" --json | python3 -c "import sys, json; print(json.load(sys.stdin)['records'])")
if [ "$restored" -lt "$acknowledged" ]; then
    echo "DRILL FAILED: $acknowledged records acknowledged, $restored restored" >&2
    exit 1
fi
after=$("$STELE" read "$work/restored" --from 0 --count "$acknowledged" --json | sha256sum | cut -d' ' -f1)
if [ "$before" != "$after" ]; then
    echo "DRILL FAILED: the restored records differ from the primary's (digest $after, expected $before)" >&2
    exit 1
fi
copied_bytes=$(python3 -c "import sys, json; print(json.load(open(sys.argv[1]))['bytes'])" "$work/report.json")
python3 - "$start" "$end" "$copied_bytes" "$acknowledged" "$restored" $lag <<'PY'
import sys
start, end, size = float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
acknowledged, restored, lag_records, lag_seconds = int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]), float(sys.argv[7])
seconds = end - start
print(f"DR drill passed: {restored} of {acknowledged} acknowledged records restored, byte for byte, and verified against the trusted checkpoint")
print(f"recovery time: {seconds:.2f} s for {size / 1e6:.1f} MB ({size / 1e6 / seconds:.1f} MB/s, download + verify + rebuild)")
print(f"recovery point: {lag_records} records ({lag_seconds:.1f} s) were not yet off-host when the primary was lost")
PY
