#!/usr/bin/env bash
# Runs every test binary of a build folder from the repository root and sums
# their "N passed, N failed" lines. Exits non-zero if any binary fails.
set -u
out=${1:-build/release}
cd "$(dirname "$0")/.."
total_pass=0; total_fail=0; broken=""
for t in "$out"/tests/test_*; do
  [ -x "$t" ] || continue
  name=$(basename "$t")
  echo "== $name"
  log=$(mktemp)
  timeout 900 "$t" >"$log" 2>&1
  rc=$?
  cat "$log"
  line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log" | tail -1)
  rm -f "$log"
  if [ -n "$line" ]; then
    p=${line%% passed*}; f=${line#*, }; f=${f%% failed}
    total_pass=$((total_pass + p)); total_fail=$((total_fail + f))
  fi
  if [ $rc -ne 0 ] && { [ -z "$line" ] || [ "${f:-0}" = 0 ]; }; then
    broken="$broken $name(rc=$rc)"; total_fail=$((total_fail + 1))
  fi
done
[ -n "$broken" ] && echo "crashed or exited badly:$broken"
echo "$total_pass passed, $total_fail failed"
[ $total_fail -eq 0 ] && [ $total_pass -gt 0 ]
