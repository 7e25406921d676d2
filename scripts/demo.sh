#!/usr/bin/env bash
# make demo: a two-object OIR edit on a shipped shapes-world image with the
# shipped tiny model. Writes demo-out/: edited.png, a contact sheet per pair
# (every candidate + the metric curves), report.json.
set -euo pipefail
out=${1:-build/release}
cd "$(dirname "$0")/.."
for m in models/tiny-shapes models/tiny-clip; do
  if [ ! -d "$m" ]; then
    echo "demo: $m is missing (train it with tools/train/train.py, see tools/train/README.md)" >&2
    exit 1
  fi
done
echo "== oir edit --config examples/shapes/demo.yaml"
grep -E '^(origin_prompt|target_prompt):' examples/shapes/demo.yaml
"$out/oir" edit --config examples/shapes/demo.yaml --out demo-out "${@:2}"
echo
echo "Look at: demo-out/input.png, demo-out/edited.png, demo-out/pair1_sheet.png, demo-out/pair2_sheet.png"
echo "Ground truth of the edit: examples/shapes/demo_gt.png; numbers: demo-out/report.json"
