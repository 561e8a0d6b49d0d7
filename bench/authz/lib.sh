# bench/authz/lib.sh — sourced by callgrind_authz.sh and cpu_authz.sh: the arguments
# (BUILD_DIR [N] [MODE]), a temporary store seeded with WARM + N codes (bench_authz seed),
# clean-up on exit, and start_authz [PREFIX...], which starts postly-authz (behind PREFIX, e.g.
# valgrind) on port 0 and sets pid and port. Callers set N_DEFAULT, WARM_DEFAULT and NAME first.
# AUTHZ_BIN=path measures another postly-authz binary; AUTHZ_ARGS adds options (e.g.
# --sign-on-loop); MODE nosync (the default) adds --unsafe-no-fsync.
set -euo pipefail
B=$(cd "$1" && pwd)
N=${2:-$N_DEFAULT}
MODE=${3:-nosync}
WARM=${WARM:-$WARM_DEFAULT}
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

start_authz() { # start_authz [PREFIX...]: sets pid and port (waits up to 60 s)
  "$@" "$AUTHZ" --data "$D/data" --port 0 --resource "$RESOURCE" --log-level info "${extra[@]}" \
    > "$D/out" 2> "$D/log" &
  pid=$!
  port=
  for _ in $(seq 600); do
    port=$(sed -nE 's|.*listening on http://127\.0\.0\.1:([0-9]+).*|\1|p' "$D/out" | head -1)
    [ -n "$port" ] && break
    sleep 0.1
  done
  [ -n "$port" ] || { echo "$NAME: postly-authz did not start"; cat "$D/log"; exit 1; }
}
