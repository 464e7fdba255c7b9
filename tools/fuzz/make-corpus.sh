#!/usr/bin/env bash
# Regenerates the seed corpus tools/fuzz/corpus/TARGET/ from a store the tests write
# (Tests/SteleTests/FuzzCorpusTests.swift), replacing the committed one.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=$(mktemp -d /tmp/stele-corpus.XXXXXX)
trap 'rm -rf "$out"' EXIT
STELE_FUZZ_CORPUS_OUT="$out" swift test --filter FuzzCorpusTests
rm -rf tools/fuzz/corpus
cp -R "$out" tools/fuzz/corpus
find tools/fuzz/corpus -type f | sort | xargs ls -l
