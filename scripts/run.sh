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

# A new data directory (no authorization store yet) gets the demo data below.
fresh=0
[ -d "$data/authz" ] || fresh=1
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

# First start: one sandbox social account per platform in the demo workspace, so that a
# newcomer can publish at once (postly-admin accounts add: exec/account.h, the code the
# platform connection flow calls). The sandbox connectors publish nowhere.
if ((fresh)); then
  admin="$build/authz/postly-admin"
  seed() { "$admin" --data "$data" accounts add --workspace demo "$@" >/dev/null; }
  seed --platform facebook --name "Demo Page (sandbox)"
  seed --platform instagram --name "Demo Instagram (sandbox)"
  seed --platform pinterest --name "Demo Pinterest (sandbox)" --board "board-launch=Launch ideas"
  seed --platform youtube --name "Demo Channel (sandbox)"
  seed --platform google_business --name "Demo Cafe (sandbox)" \
    --location "location-main=Main Street"
  seed --platform linkedin --name "Demo Company (sandbox)"
  seed --platform x --name "Demo X (sandbox)"
  echo "run.sh: demo workspace seeded with one sandbox account per platform" \
    "(postly-admin --data $data accounts list --workspace demo)"
fi

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
    Sandbox social accounts (workspace demo):  $build/authz/postly-admin --data $data accounts list --workspace demo
  Connect the MCP Inspector:  npx @modelcontextprotocol/inspector  → Streamable HTTP → $mcp_url
  Connect Claude Code:        claude mcp add --transport http postly $mcp_url
  Ctrl-C stops both servers.

MSG
wait -n "${pids[@]}"
