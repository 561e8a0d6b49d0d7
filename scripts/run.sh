#!/usr/bin/env bash
# `make run`: prepares the data directory on first start and runs both servers until Ctrl-C.
#   scripts/run.sh BUILD_DIR
# Environment: POSTLY_DATA (default ./var), POSTLY_AUTHZ_PORT (8080), POSTLY_MCP_PORT (8081),
# POSTLY_HOST (127.0.0.1).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
data=${POSTLY_DATA:-var}
host=${POSTLY_HOST:-127.0.0.1}
authz_port=${POSTLY_AUTHZ_PORT:-8080}
mcp_port=${POSTLY_MCP_PORT:-8081}
authz_url="http://$host:$authz_port"
mcp_url="http://$host:$mcp_port/mcp"

mkdir -p "$data"
chmod 700 "$data"
"$build/policy/postly-policy" check policy/default.policy >/dev/null

pids=()
cleanup() {
  trap - INT TERM EXIT
  ((${#pids[@]})) && kill "${pids[@]}" 2>/dev/null
  wait 2>/dev/null || true
}
trap cleanup INT TERM EXIT

# The authorization server creates the signing keys, the demo user and the demo workspaces on
# first start and prints the generated password once; keep it (0600) so every start can show it.
creds="$data/demo-credentials"
"$build/authz/postly-authz" --data "$data" --host "$host" --port "$authz_port" \
  --resource "$mcp_url" --demo > >(while IFS= read -r line; do
    case "$line" in
      *"demo user created: username demo, password "*)
        (umask 077; printf '%s\n' "${line##* password }" > "$creds") ;;
    esac
    printf '%s\n' "$line"
  done) &
pids+=($!)

# Wait (bounded) until the authorization server answers, so that its keys exist.
for _ in $(seq 1 100); do
  curl -fsS -o /dev/null "$authz_url/.well-known/oauth-authorization-server" 2>/dev/null && break
  kill -0 "${pids[0]}" 2>/dev/null || { echo "postly-authz did not start" >&2; exit 1; }
  sleep 0.1
done

# postly-mcp verifies tokens against the published JWKS: it never reads a private key.
"$build/mcp/postly-mcp" --listen "$host:$mcp_port" --url "$mcp_url" --authz "$authz_url" \
  --jwks-uri "$authz_url/jwks" --data "$data" --policy policy/default.policy &
pids+=($!)

cat <<MSG

  Postly is running.
    MCP server (connect your AI client here):  $mcp_url
    Authorization server:                      $authz_url
    Connected apps (see and disconnect):       $authz_url/apps
    Demo login:                                demo / $(cat "$creds" 2>/dev/null || echo "(see $creds)")
  Connect the MCP Inspector:  npx @modelcontextprotocol/inspector  → Streamable HTTP → $mcp_url
  Connect Claude Code:        claude mcp add --transport http postly $mcp_url
  Ctrl-C stops both servers.

MSG
wait -n "${pids[@]}"
