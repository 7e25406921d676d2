#!/usr/bin/env bash
# Runs every test of a build folder from the repository root — the test
# binaries, then the shell tests (tests/test_*.sh, given the build folder) —
# and sums their "N passed, N failed" lines. Exits non-zero if any fails.
set -u
out=${1:-build/release}
cd "$(dirname "$0")/.."
total_pass=0; total_fail=0; broken=""
# The CLI caches its timing calibration under $XDG_CACHE_HOME/oir: the suite
# keeps its own, so it never writes into the user's ~/.cache.
suite_cache=$(mktemp -d)
trap 'rm -rf "$suite_cache"' EXIT
export XDG_CACHE_HOME=$suite_cache

run_one() { # run_one NAME CMD...
  local name=$1; shift
  echo "== $name"
  local log rc line p f
  log=$(mktemp)
  local t0=$SECONDS
  timeout 900 "$@" >"$log" 2>&1
  rc=$?
  cat "$log"
  echo "-- $name took $((SECONDS - t0)) s"
  line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log" | tail -1)
  rm -f "$log"
  f=0
  if [ -n "$line" ]; then
    p=${line%% passed*}; f=${line#*, }; f=${f%% failed}
    total_pass=$((total_pass + p)); total_fail=$((total_fail + f))
  fi
  if [ $rc -ne 0 ] && { [ -z "$line" ] || [ "$f" = 0 ]; }; then
    broken="$broken $name(rc=$rc)"; total_fail=$((total_fail + 1))
  fi
}

for t in "$out"/tests/test_*; do
  [ -x "$t" ] || continue
  run_one "$(basename "$t")" "$t"
done
# Shell tests (packaging, walk-throughs) build programs that link liboir
# without the sanitizer runtime: release builds only.
case "$out" in
  *asan*) echo "== tests/test_*.sh: not run on the ASan build (they test packaging, not memory)" ;;
  *) for t in tests/test_*.sh; do
       [ -f "$t" ] && run_one "$(basename "$t")" bash "$t" "$out"
     done ;;
esac
[ -n "$broken" ] && echo "crashed or exited badly:$broken"
echo "$total_pass passed, $total_fail failed"
[ $total_fail -eq 0 ] && [ $total_pass -gt 0 ]
