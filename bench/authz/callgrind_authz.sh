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
N_DEFAULT=2000 WARM_DEFAULT=300 NAME=callgrind_authz
. "$(dirname "$0")/lib.sh"
start_authz valgrind --tool=callgrind --compress-strings=no --callgrind-out-file="$D/cg.%p"
"$BENCH" drive "$port" "$D/items" "$WARM" "$N" "$pid"
for phase in 1 2; do
  f="$D/cg.$pid.$phase"
  name=$([ $phase = 1 ] && echo code || echo refresh)
  [ -n "${CALLGRIND_KEEP:-}" ] && cp "$f" "$CALLGRIND_KEEP/authz-$MODE-$name.callgrind.out"
  awk -v n="$N" -v name="$name" -v mode="$MODE" '/^summary:/ {
    printf "postly-authz %-8s %-8s %9.0f instructions/request (%d requests)\n", mode, name, $2 / n, n }' "$f"
done
