#!/usr/bin/env bash
# `make fuzz`: builds the libFuzzer targets under fuzz/ with clang and runs each for a bounded
# time (default 30 s, or the first argument) on its seed corpus in fuzz/<target>/corpus.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-30}
scripts/deps.sh --test
CC=clang cmake -S . -B build-fuzz -DPOSTLY_FUZZ=ON -DPOSTLY_SANITIZE=OFF >/dev/null
cmake --build build-fuzz -j "$(nproc)" >/dev/null
status=0
for f in $(find build-fuzz/fuzz -maxdepth 2 -type f -name 'fuzz_*' -perm -u+x | sort); do
  name=$(basename "$f")
  corpus=$(find fuzz -type d -path "*/${name#fuzz_}/corpus" | head -1)
  work=$(mktemp -d)
  echo "== $name (${secs}s)"
  "$f" -max_total_time="$secs" -max_len=65536 -artifact_prefix="$work/" "$work" ${corpus:+"$corpus"} \
    2>&1 | tail -3 || status=1
done
exit $status
