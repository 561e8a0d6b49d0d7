#!/usr/bin/env bash
# tests/hostile/fuzz_ci.sh — CTest `hostile_fuzz`: every libFuzzer target under fuzz/ for a short,
# bounded time under ASan+UBSan (the targets are built with -fsanitize=fuzzer,address,undefined),
# failing on any crash, leak, sanitizer report or property violation.
#
# usage: fuzz_ci.sh SOURCE_DIR WORK_DIR [SECONDS_PER_TARGET]
# Configures WORK_DIR/build with clang and -DPOSTLY_FUZZ=ON (kept between runs, so later runs
# only rebuild what changed), builds the fuzz_* targets with -j2, then runs them two at a
# time, each for SECONDS (default 20) on a scratch copy of its seed corpus. Exit 77 (CTest
# "skipped") when clang is not installed.
set -uo pipefail
src=$1
work=$2
secs=${3:-20}
cc=$(command -v clang || true)
if [ -z "$cc" ]; then
  echo "SKIP clang is not installed (scripts/deps.sh --test)"
  exit 77
fi
mkdir -p "$work"
bdir="$work/build"
# Configured on every run (quick once the cache exists): a fuzz/<dir> added since the last run
# must become a target before the build below names it.
if ! CC="$cc" cmake -S "$src" -B "$bdir" -DPOSTLY_FUZZ=ON -DPOSTLY_SANITIZE=OFF \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$work/configure.log" 2>&1; then
  tail -20 "$work/configure.log"
  echo "FAIL configure (log: $work/configure.log)"
  exit 1
fi
# The targets that exist in this tree (every fuzz/<name>/ with a CMakeLists.txt naming fuzz_<name>).
targets=()
for d in "$src"/fuzz/*/; do
  name=$(basename "$d")
  [ -f "$d/CMakeLists.txt" ] && grep -q "fuzz_$name" "$d/CMakeLists.txt" && targets+=("fuzz_$name")
done
if ! cmake --build "$bdir" -j2 --target "${targets[@]}" >"$work/build.log" 2>&1; then
  grep -E 'error|Error' "$work/build.log" | head -20
  echo "FAIL build (log: $work/build.log)"
  exit 1
fi

run_one() { # name -> 0 when it ran for the whole time without a finding
  local name=$1 bin corpus scratch log rc
  bin=$(find "$bdir/fuzz" -maxdepth 2 -type f -name "$name" -perm -u+x | head -1)
  corpus="$src/fuzz/${name#fuzz_}/corpus"
  scratch="$work/run/$name"
  log="$work/$name.log"
  rm -rf "$scratch" && mkdir -p "$scratch"
  if [ -z "$bin" ]; then
    echo "FAIL $name was not built"
    return 1
  fi
  # The repository's seeds are read, never written: new inputs go to the scratch dir.
  "$bin" -max_total_time="$secs" -timeout=25 -rss_limit_mb=2048 -max_len=65536 \
    -artifact_prefix="$scratch/" "$scratch" ${corpus:+"$corpus"} >"$log" 2>&1
  rc=$?
  local runs
  runs=$(grep -Eo 'stat::number_of_executed_units: [0-9]+|#[0-9]+' "$log" | tail -1)
  if [ $rc -ne 0 ] || grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error' "$log"; then
    echo "FAIL $name (exit $rc) — log $log, artifacts in $scratch:"
    grep -E 'ERROR|runtime error|SUMMARY|#0 |#1 |#2 |#3 ' "$log" | head -15
    return 1
  fi
  echo "ok   $name ${secs}s, ${runs:-? runs}"
  return 0
}

status=0
i=0
pids=()
names=()
for t in "${targets[@]}"; do
  run_one "$t" >"$work/$t.result" &
  pids+=($!)
  names+=("$t")
  i=$((i + 1))
  if [ $((i % 2)) -eq 0 ]; then
    for p in "${pids[@]}"; do wait "$p" || status=1; done
    pids=()
  fi
done
for p in "${pids[@]}"; do wait "$p" || status=1; done
for t in "${names[@]}"; do cat "$work/$t.result"; done
exit $status
