#!/usr/bin/env bash
# bench/mcp/callgrind_mcp.sh — instructions per tools/call, counted by valgrind's callgrind:
# repeatable where wall-clock throughput is not (a shared, noisy machine) and where perf has no
# hardware counters. Starts postly-mcp (and the fixed-reply ceiling) under callgrind, warms up,
# zeroes the counters, sends exactly N calls over one keep-alive connection, dumps, and prints
# instructions per request for both servers. The read tool is postly_get_workspace; the write
# tool postly_create_draft (one connection: every request is its own group-commit batch, so
# this counts the whole durable write path: child and batch transactions, commit, the syncer
# thread's hand-off; the fsyncs themselves are kernel time, not counted). Not run by
# `make bench` (it is not named bench_* and lives below bench/mcp/).
#   bench/mcp/callgrind_mcp.sh BUILD_DIR [N] [read|write]
#                                     (BUILD_DIR: a Release build with postly-mcp, mcp_fixture,
#                                      postly-keys, fixed_reply_server; default N 2000, read)
# CALLGRIND_KEEP=DIR keeps the callgrind.out files there (callgrind_annotate them).
set -euo pipefail
B=$(cd "$1" && pwd)
N=${2:-2000}
TOOL=${3:-read}
SRC=$(cd "$(dirname "$0")/../.." && pwd)
MCP=$B/mcp/postly-mcp FIXTURE=$B/tests/mcp/mcp_fixture KEYS=$B/keys/postly-keys
FIXED=$B/bench/mcp/fixed_reply_server
D=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$D"
}
trap cleanup EXIT
sed -E 's/limit=[0-9]+\/(s|min|h)/limit=1000000000\/s/; s/burst=[0-9]+/burst=1000000000/' \
  "$SRC/policy/default.policy" > "$D/bench.policy"
AUD=http://bench.local/mcp
ISS=http://127.0.0.1:1
out=$(MCP_FIXTURE_PLAN=enterprise "$FIXTURE" mint "$D" "$ISS" "$AUD" ws_bench preregistered 86400 \
  workspace:read drafts:create drafts:read)
TOKEN=${out%% *}
start() { # start NAME CMD... ; sets PORT and PID
  local name=$1; shift
  valgrind --tool=callgrind --callgrind-out-file="$D/$name.cg.%p" "$@" > "$D/$name.port" 2> "$D/$name.log" &
  PID=$!; pids+=("$PID")
  for _ in $(seq 600); do [ -s "$D/$name.port" ] && break; sleep 0.1; done
  PORT=$(head -1 "$D/$name.port")
  [ -n "$PORT" ] || { echo "callgrind_mcp: $name did not start"; cat "$D/$name.log"; exit 1; }
}
INIT='{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"bench","version":"1"}}}'
READ='{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"postly_get_workspace","arguments":{}}}'
WRITE='{"jsonrpc":"2.0","id":8,"method":"tools/call","params":{"name":"postly_create_draft","arguments":{"text":"benchmark draft","notes":"n"}}}'
case $TOOL in read) BODY=$READ ;; write) BODY=$WRITE ;; *) echo "callgrind_mcp: tool is read or write"; exit 2 ;; esac
# count NAME PORT SID: warm up, zero, N calls, dump; prints Ir / N
count() {
  python3 "$SRC/bench/mcp/fixed_count_client.py" "$2" 200 "$BODY" "$TOKEN" "$3"
  callgrind_control -z "$PID" > /dev/null 2>&1
  python3 "$SRC/bench/mcp/fixed_count_client.py" "$2" "$N" "$BODY" "$TOKEN" "$3"
  callgrind_control -d "$PID" > /dev/null 2>&1
  local f; f=$(ls -t "$D/$1".cg.* | head -1)
  [ -n "${CALLGRIND_KEEP:-}" ] && cp "$f" "$CALLGRIND_KEEP/$1.callgrind.out"
  awk -v n="$N" -v name="$1" -v tool="$TOOL" '/^summary:/ { printf "%-12s %10.0f instructions/request (%d requests, %s)\n", name, $2 / n, n, tool }' "$f"
}
start postly-mcp "$MCP" --listen 127.0.0.1:0 --print-port --url "$AUD" --authz "$ISS" \
  --data "$D" --policy "$D/bench.policy" --allow-host bench.local --log-level error --token-rate 0
MCP_PID=$PID MCP_PORT=$PORT
SID=$(curl -s -D - -o /dev/null -X POST "http://127.0.0.1:$MCP_PORT/mcp" -H 'Host: bench.local' \
  -H 'Content-Type: application/json' -H "Authorization: Bearer $TOKEN" -d "$INIT" |
  tr -d '\r' | awk -F': ' 'tolower($1)=="mcp-session-id"{print $2}')
[ -n "$SID" ] || { echo "callgrind_mcp: initialize failed"; cat "$D/postly-mcp.log"; exit 1; }
PID=$MCP_PID count postly-mcp "$MCP_PORT" "$SID"
start fixed-reply "$FIXED"
count fixed-reply "$PORT" ""
