#!/usr/bin/env bash
# Installs the Debian packages the project needs, only those missing; quick when all are present.
#   scripts/deps.sh          build and run dependencies
#   scripts/deps.sh --test   also what the tests use (browser, Node.js packages)
set -euo pipefail
cd "$(dirname "$0")/.."

build_pkgs=(gcc make cmake pkg-config libssl-dev libjwt-dev liboauth2-dev libjansson-dev
            liblmdb-dev lmdb-utils libevent-dev libcmocka-dev libcurl4-openssl-dev curl
            ca-certificates)
test_pkgs=(clang libclang-rt-14-dev chromium)
lint_pkgs=(clang-format clang-tidy cppcheck)

want=("${build_pkgs[@]}")
case "${1:-}" in
  --test) want+=("${test_pkgs[@]}") ;;
  --lint) want+=("${lint_pkgs[@]}") ;;
  --bench) want+=("${test_pkgs[@]}" wrk) ;;
esac

# Node.js and npm: any install that provides both commands will do (Debian's nodejs + npm, or a
# nodejs package that bundles npm); the conformance suite brings its own Node 22 from npm.
if [ "${1:-}" = "--test" ] || [ "${1:-}" = "--bench" ]; then
  command -v node >/dev/null && command -v npm >/dev/null || want+=(nodejs npm)
fi

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "deps: installing ${missing[*]}" >&2
  SUDO=; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Node.js packages for the tests (real MCP SDK client, conformance suite, playwright-core).
if [ "${1:-}" = "--test" ] || [ "${1:-}" = "--bench" ]; then
  # Reinstalled whenever package-lock.json changes (a stamp holds its hash).
  stamp=tests/node/node_modules/.postly-lock-sha256
  want_sum=$(sha256sum tests/node/package-lock.json | cut -d' ' -f1)
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want_sum" ]; then
    echo "deps: npm ci in tests/node" >&2
    (cd tests/node && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
    echo "$want_sum" > "$stamp"
  fi
fi
