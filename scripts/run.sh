#!/usr/bin/env bash
# `make run`: prepares the data directory on first start and runs the product.
#   scripts/run.sh BUILD_DIR
# Environment: POSTLY_DATA (default ./var).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
data=${POSTLY_DATA:-var}
mkdir -p "$data"
chmod 700 "$data"

# Until the servers land (issues 5 and 6), `make run` shows what the policy engine compiled.
"$build/policy/postly-policy" check policy/default.policy
"$build/policy/postly-policy" summary policy/default.policy
