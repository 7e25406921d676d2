#!/usr/bin/env bash
# make bench-estimate: how close is oir's time estimate to the time a run
# takes? Runs the demo edit (examples/shapes/demo.yaml on the shipped tiny
# model, as `make demo`) REPS times (default 1), each with a fresh calibration
# in a temporary cache, and prints the planned seconds (the plan line's
# estimate, report.json plan.estimate_seconds), the measured seconds of the
# run (report.json seconds.total) and their ratio.
#   bash scripts/bench_estimate.sh [BUILD_DIR] [oir edit options...]
#   make bench-estimate ESTIMATE_ARGS="--steps 20 --threads 1" REPS=3
set -euo pipefail
out=${1:-build/release}
shift || true
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export XDG_CACHE_HOME=$tmp/cache
json_num() { # json_num FILE KEY: the first "KEY": number in FILE
  grep -m1 "\"$2\":" "$1" | sed -E 's/.*:[[:space:]]*([-0-9.eE+]+).*/\1/'
}
reps=${REPS:-1}
echo "oir edit --config examples/shapes/demo.yaml $* ($(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg))"
printf '%-4s %10s %10s %8s %10s %8s %8s\n' run planned measured ratio wall rows decodes
for i in $(seq 1 "$reps"); do
  t0=$(date +%s.%N)
  "$out/oir" edit --config examples/shapes/demo.yaml --out "$tmp/out$i" --recalibrate "$@" >"$tmp/stdout" 2>"$tmp/stderr" ||
    { cat "$tmp/stderr" >&2; exit 1; }
  t1=$(date +%s.%N)
  rep=$tmp/out$i/report.json
  planned=$(json_num "$rep" estimate_seconds)
  measured=$(sed -n '/"seconds":[[:space:]]*{/,/}/p' "$rep" | json_num /dev/stdin total)
  rows=$(json_num "$rep" unet_rows_total)/$(sed -n '/"plan":/,/}/p' "$rep" | json_num /dev/stdin unet_rows)
  decodes=$(json_num "$rep" vae_decodes)/$(sed -n '/"plan":/,/}/p' "$rep" | json_num /dev/stdin vae_decodes)
  awk -v i="$i" -v p="$planned" -v m="$measured" -v t0="$t0" -v t1="$t1" -v r="$rows" -v d="$decodes" \
    'BEGIN { printf "%-4s %9.1fs %9.1fs %8.2f %9.1fs %8s %8s\n", i, p, m, m / p, t1 - t0, r, d }'
done
echo "ratio = measured / planned; wall = the whole command (model load, calibration, writing); rows and decodes: measured/planned"
