#!/usr/bin/env bash
# Issue 11's "under load" check: wall time of the demo edit on an idle
# machine and beside busy loops (each a shell spinning on one core).
#   bench/load.sh [OIR_BINARY ...]      (default build/release/oir)
# Env: BUSY (busy loops, default 2), REPS (runs per setting, default 2; the
# best is kept), STEPS (--steps, default: the demo's T), THREADS (--threads).
# Prints a table row per binary: idle s, loaded s, loaded / idle.
set -euo pipefail
cd "$(dirname "$0")/.."
busy=${BUSY:-2}; reps=${REPS:-2}
[ $# -gt 0 ] || set -- build/release/oir
extra=()
[ -n "${STEPS:-}" ] && extra+=(--steps "$STEPS")
[ -n "${THREADS:-}" ] && extra+=(--threads "$THREADS")
tmp=$(mktemp -d)
loops=()
stop_loops() { for p in "${loops[@]}"; do kill "$p" 2>/dev/null || true; done; loops=(); }
trap 'stop_loops; rm -rf "$tmp"' EXIT

best_time() { # best_time BINARY: the best wall seconds of $reps demo runs
  local best="" t0 t1 s
  for _ in $(seq "$reps"); do
    t0=$(date +%s.%N)
    "$1" edit --config examples/shapes/demo.yaml --out "$tmp/out" --quiet "${extra[@]}" >/dev/null
    t1=$(date +%s.%N)
    s=$(echo "$t1 - $t0" | bc)
    if [ -z "$best" ] || [ "$(echo "$s < $best" | bc)" = 1 ]; then best=$s; fi
  done
  echo "$best"
}

echo "load.sh: $(nproc) cores, $busy busy loop(s), best of $reps, demo ${extra[*]:-(as configured)}, load before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "| binary | idle s | beside $busy busy loops s | ratio |"
echo "|---|---|---|---|"
for bin in "$@"; do
  idle=$(best_time "$bin")
  for _ in $(seq "$busy"); do sh -c 'while :; do :; done' & loops+=($!); done
  loaded=$(best_time "$bin")
  stop_loops
  printf '| %s | %.1f | %.1f | %.2f |\n' "$bin" "$idle" "$loaded" "$(echo "$loaded / $idle" | bc -l)"
done
