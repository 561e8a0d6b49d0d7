#!/usr/bin/env bash
# `make lint`: formatting (clang-format), static analysis (cppcheck, clang-tidy) and the
# banned-function list (STYLE.md §11). Exits non-zero on any finding.
set -uo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh --lint
status=0
files=$(git ls-files '*.c' '*.h')

echo "lint: clang-format"
clang-format --dry-run -Werror $files || status=1

echo "lint: banned functions"
if git grep -nE '\b(sprintf|vsprintf|strcpy|strcat|strtok|atoi|atol|gets)[[:space:]]*\(' -- '*.c' '*.h'; then
  status=1
fi

echo "lint: cppcheck"
cppcheck --quiet --error-exitcode=1 --std=c11 --enable=warning,portability \
  --inline-suppr --suppress=missingIncludeSystem --suppress=unknownMacro -I . $files || status=1

echo "lint: clang-tidy"
# Configured every time (cheap when nothing changed): a stale compile_commands.json misses
# files added since, which clang-tidy then reads without their include paths.
if cmake -S . -B build -DCMAKE_EXPORT_COMPILE_COMMANDS=ON >/dev/null; then
  clang-tidy -p build --quiet --warnings-as-errors='*' \
    --checks='-*,bugprone-*,-bugprone-easily-swappable-parameters,-bugprone-reserved-identifier,-bugprone-narrowing-conversions,-bugprone-assignment-in-if-condition,cert-err34-c' \
    $(git ls-files '*.c') 2>/dev/null || status=1
fi
exit $status
