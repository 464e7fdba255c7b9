#!/usr/bin/env bash
# Fuzzes Stele's decoders with libFuzzer (docs/fuzzing.md).
#   tools/fuzz.sh TARGET SECONDS    one of: frame segment sealed checkpoint governance jsonl snapshot
#                                   config state s3xml sidecar
#   tools/fuzz.sh all SECONDS       every target, one after the other
# Builds tools/fuzz (release, -sanitize=fuzzer) if needed, replays the saved crashes in
# tools/fuzz/regressions/TARGET/, then fuzzes for SECONDS on a scratch copy of the seed corpus
# tools/fuzz/corpus/TARGET/ (the committed corpus never changes). Prints the executions per
# target; a crash, hang (>10 s on one input) or runaway memory is saved under
# tools/fuzz/findings/TARGET/ and makes the script exit 1.
set -euo pipefail
cd "$(dirname "$0")/.."
all_targets=(frame segment sealed checkpoint governance jsonl snapshot config state s3xml sidecar)
usage() { echo "usage: tools/fuzz.sh {all|${all_targets[*]// /|}} SECONDS" >&2; exit 2; }
[ $# -eq 2 ] || usage
[[ "$2" =~ ^[0-9]+$ ]] && [ "$2" -ge 1 ] || usage
if [ "$1" = all ]; then targets=("${all_targets[@]}")
elif [[ " ${all_targets[*]} " == *" $1 "* ]]; then targets=("$1")
else usage; fi
seconds=$2

tools/install-deps.sh
# -sanitize=fuzzer reaches every Swift module, so the library is coverage-instrumented too.
build=(swift build -c release --package-path tools/fuzz -Xswiftc -sanitize=fuzzer)
"${build[@]}"
bin=$("${build[@]}" --show-bin-path)

# Swift's runtime backtracer would catch a trap before libFuzzer could save the input.
export SWIFT_BACKTRACE=enable=no
scratch=$(mktemp -d /tmp/stele-fuzz.XXXXXX)
trap 'rm -rf "$scratch"' EXIT
failed=0
for target in "${targets[@]}"; do
    fuzzer=("$bin/stele-fuzz" "$target")
    mkdir -p "$scratch/$target/corpus" "$scratch/$target/artifacts"
    cp tools/fuzz/corpus/"$target"/* "$scratch/$target/corpus/"
    # Saved crashes first: each must now be rejected cleanly.
    shopt -s nullglob
    regressions=(tools/fuzz/regressions/"$target"/*)
    shopt -u nullglob
    if [ ${#regressions[@]} -gt 0 ] && ! "${fuzzer[@]}" "${regressions[@]}" >"$scratch/$target/replay.log" 2>&1; then
        echo "$target: a saved regression input crashes again:" >&2
        tail -n 30 "$scratch/$target/replay.log" >&2
        failed=1
        continue
    fi
    log="$scratch/$target/fuzz.log"
    status=0
    "${fuzzer[@]}" "$scratch/$target/corpus" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix="$scratch/$target/artifacts/" -print_final_stats=1 >"$log" 2>&1 || status=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    corpus=$(find "$scratch/$target/corpus" -type f | wc -l)
    if [ "$status" -ne 0 ]; then
        mkdir -p tools/fuzz/findings/"$target"
        cp "$scratch/$target/artifacts/"* tools/fuzz/findings/"$target"/ 2>/dev/null || true
        echo "$target: FAILED (exit $status) after ${runs:-?} executions; input saved in tools/fuzz/findings/$target/:" >&2
        grep -v '^#[0-9]' "$log" | tail -n 40 >&2
        failed=1
    else
        echo "$target: ${runs:-?} executions in $seconds s, no crash (corpus grew to $corpus inputs)"
    fi
done
exit $failed
