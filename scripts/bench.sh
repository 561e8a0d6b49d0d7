#!/usr/bin/env bash
# `make bench`: runs every benchmark built under BUILD_DIR/bench and prints its report.
#   scripts/bench.sh BUILD_DIR
# Each benchmark measures its own baseline in the same run and reports ratios
# (see docs/performance.md for the method).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build-bench}
scripts/deps.sh --bench
status=0
for b in $(find "$build/bench" -maxdepth 2 -type f -name 'bench_*' -perm -u+x | sort); do
  echo "== $(basename "$b")"
  "$b" || status=1
done
for s in $(ls bench/*.sh 2>/dev/null | sort); do
  echo "== $(basename "$s")"
  "$s" "$build" || status=1
done
exit $status
