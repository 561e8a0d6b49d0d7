#!/usr/bin/env bash
# bench/authz/cpu_authz.sh — server CPU (user, system) per /token request, natively: seeds a
# store like callgrind_authz.sh, starts postly-authz, warms up, then N authorization-code
# exchanges and N refresh rotations (bench_authz cpu), printing each phase's rate and the
# server's and load generator's CPU per request. For comparing variants of the server on this
# shared machine (run them alternately, several times); not run by `make bench`.
#   bench/authz/cpu_authz.sh BUILD_DIR [N] [MODE]   (MODE: nosync, the default, or durable)
# AUTHZ_BIN=path measures another binary; AUTHZ_ARGS adds options (e.g. --sign-on-loop);
# PERF_OUT=FILE also records the server with `perf record -g` (cpu-clock) into FILE.
N_DEFAULT=8000 WARM_DEFAULT=500 NAME=cpu_authz
. "$(dirname "$0")/lib.sh"
start_authz
perfpid=
if [ -n "${PERF_OUT:-}" ]; then
  perf record -q -g -e cpu-clock -p "$pid" -o "$PERF_OUT" > /dev/null 2>&1 &
  perfpid=$!
  sleep 0.5
fi
"$BENCH" cpu "$port" "$D/items" "$WARM" "$N" "$pid"
if [ -n "$perfpid" ]; then kill -INT "$perfpid"; wait "$perfpid" || true; fi
