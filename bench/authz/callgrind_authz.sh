#!/usr/bin/env bash
# bench/authz/callgrind_authz.sh — user-space instructions per /token request, counted by
# valgrind's callgrind (repeatable where wall-clock rates on a shared machine are not). Seeds
# a store with codes (bench_authz seed), starts postly-authz under callgrind, warms up, zeroes
# the counters, sends exactly N authorization-code exchanges, dumps, zeroes, N refresh
# rotations of the tokens those exchanges returned, dumps (bench_authz drive, BENCH_CONC in
# flight, default 32 as in the benchmark), and prints instructions per request for each flow.
# All threads count (the syncer's included). Not run by `make bench` (not named bench_*).
#   bench/authz/callgrind_authz.sh BUILD_DIR [N] [MODE]
#     BUILD_DIR: a build with postly-authz and bench_authz (RelWithDebInfo, the default type)
#     MODE: nosync (default, --unsafe-no-fsync: the CPU cost) or durable (the default server)
# CALLGRIND_KEEP=DIR keeps the callgrind.out files there (callgrind_annotate them).
# AUTHZ_BIN=path measures another postly-authz binary (before/after comparisons);
# AUTHZ_ARGS adds options (e.g. --sign-on-loop).
set -euo pipefail
B=$(cd "$1" && pwd)
N=${2:-2000}
MODE=${3:-nosync}
WARM=${WARM:-300}
AUTHZ=${AUTHZ_BIN:-$B/authz/postly-authz}
BENCH=$B/bench/authz/bench_authz
RESOURCE=http://127.0.0.1:8081/mcp
D=$(mktemp -d)
pid=
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$D"
}
trap cleanup EXIT
"$BENCH" seed "$D/data" $((WARM + N)) "$D/items"
read -r -a extra <<< "${AUTHZ_ARGS:-}"
[ "$MODE" = nosync ] && extra+=(--unsafe-no-fsync)
valgrind --tool=callgrind --compress-strings=no --callgrind-out-file="$D/cg.%p" "$AUTHZ" --data "$D/data" --port 0 \
  --resource "$RESOURCE" --log-level info "${extra[@]}" > "$D/out" 2> "$D/log" &
pid=$!
port=
for _ in $(seq 600); do
  port=$(sed -nE 's|.*listening on http://127\.0\.0\.1:([0-9]+).*|\1|p' "$D/out" | head -1)
  [ -n "$port" ] && break
  sleep 0.1
done
[ -n "$port" ] || { echo "callgrind_authz: postly-authz did not start"; cat "$D/log"; exit 1; }
"$BENCH" drive "$port" "$D/items" "$WARM" "$N" "$pid"
for phase in 1 2; do
  f="$D/cg.$pid.$phase"
  name=$([ $phase = 1 ] && echo code || echo refresh)
  [ -n "${CALLGRIND_KEEP:-}" ] && cp "$f" "$CALLGRIND_KEEP/authz-$MODE-$name.callgrind.out"
  awk -v n="$N" -v name="$name" -v mode="$MODE" '/^summary:/ {
    printf "postly-authz %-8s %-8s %9.0f instructions/request (%d requests)\n", mode, name, $2 / n, n }' "$f"
done
