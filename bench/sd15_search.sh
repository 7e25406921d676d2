#!/usr/bin/env bash
# Issue 11 and 12 on the SD 1.5 configuration (random weights: make it with
# `.venv-tools/bin/python tools/make_random_sd.py DIR`): the shipped demo
# scene's two-pair edit at 256x256 (--size 256), one `oir edit` per
# (steps, search) given, each printing its plan and then what it ran; the
# table compares planned and measured seconds and rows, and the search
# strategies' rows and wall time against the first line's.
#   bench/sd15_search.sh SD_DIR "4:exhaustive" "10:exhaustive" "10:adaptive:5" ...
# The scorer is the shipped tiny CLIP (the timing of an SD-size search is what
# is measured; a random model's choices mean nothing). Env: THREADS.
set -euo pipefail
cd "$(dirname "$0")/.."
model=${1:?usage: bench/sd15_search.sh SD_DIR STEPS:SEARCH ...}; shift
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
threads=()
[ -n "${THREADS:-}" ] && threads=(--threads "$THREADS")
echo "sd15_search: $model, $(nproc) cores, load before $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%F)"
echo "| T | search | plan: UNet rows, decodes, seconds | ran: UNet rows (search), decodes, seconds | ran / plan |"
echo "|---|---|---|---|---|"
for spec in "$@"; do
  steps=${spec%%:*}; search=${spec#*:}
  out="$tmp/run-$steps-${search//:/_}"
  build/release/oir edit --model "$model" --clip models/tiny-clip --image examples/shapes/demo.png \
    --prompt "a red circle on the left and a blue triangle on the right on a gray background" \
    --pair "red circle->green square" --mask examples/shapes/demo_mask0.png \
    --pair "blue triangle->yellow star" --mask examples/shapes/demo_mask1.png \
    --size 256 --steps "$steps" --search "$search" "${threads[@]}" --quiet --out "$out" >"$tmp/log" 2>&1 || {
    cat "$tmp/log" >&2; exit 1; }
  /usr/bin/python3 - "$out/report.json" "$steps" "$search" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
p = r.get("plan") or {}
ran_s = r["seconds"]["total"]
rows, srows, dec = r["unet_rows_total"], r["candidate_unet_rows"], r["vae_decodes"]
ps = p.get("estimate_seconds")
plan = f"{p.get('unet_rows')}, {p.get('vae_decodes')}, {ps:.0f} s" if ps else "-"
ratio = f"{ran_s / ps:.2f}" if ps else "-"
print(f"| {sys.argv[2]} | {sys.argv[3]} | {plan} | {rows} ({srows}), {dec}, {ran_s:.0f} s | {ratio} |")
PY
done
