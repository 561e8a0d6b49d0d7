#!/usr/bin/env bash
# bench/authz/cpu_authz.sh — server CPU (user, system) per /token request, natively: seeds a
# store like callgrind_authz.sh, starts postly-authz, warms up, then N authorization-code
# exchanges and N refresh rotations (bench_authz cpu), printing each phase's rate and the
# server's and load generator's CPU per request. For comparing variants of the server on this
# shared machine (run them alternately, several times); not run by `make bench`.
#   bench/authz/cpu_authz.sh BUILD_DIR [N] [MODE]   (MODE: nosync, the default, or durable)
# AUTHZ_BIN=path measures another binary; AUTHZ_ARGS adds options (e.g. --sign-on-loop);
# PERF_OUT=FILE also records the server with `perf record -g` (cpu-clock) into FILE.
set -euo pipefail
B=$(cd "$1" && pwd)
N=${2:-8000}
MODE=${3:-nosync}
WARM=${WARM:-500}
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
"$AUTHZ" --data "$D/data" --port 0 --resource "$RESOURCE" --log-level info "${extra[@]}" \
  > "$D/out" 2> "$D/log" &
pid=$!
port=
for _ in $(seq 300); do
  port=$(sed -nE 's|.*listening on http://127\.0\.0\.1:([0-9]+).*|\1|p' "$D/out" | head -1)
  [ -n "$port" ] && break
  sleep 0.1
done
[ -n "$port" ] || { echo "cpu_authz: postly-authz did not start"; cat "$D/log"; exit 1; }
perfpid=
if [ -n "${PERF_OUT:-}" ]; then
  perf record -q -g -e cpu-clock -p "$pid" -o "$PERF_OUT" > /dev/null 2>&1 &
  perfpid=$!
  sleep 0.5
fi
"$BENCH" cpu "$port" "$D/items" "$WARM" "$N" "$pid"
if [ -n "$perfpid" ]; then kill -INT "$perfpid"; wait "$perfpid" || true; fi
