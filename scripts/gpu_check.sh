#!/usr/bin/env bash
# One prepared check for a machine with a real GPU and its Vulkan driver
# (issue 15; an NVIDIA H100 is the target): builds with the Vulkan backend,
# lists the devices, runs every backend op on the GPU against the CPU
# (tests/test_backend_ops.c, its fp16-weight cases included), the tiny UNet
# with fp16 weights against fp32 (tests/test_vulkan_fp16.c), then times the table's ops at SD 1.5 shapes
# (GEMM, convolution, attention, norms; 512x512, batch 2) on the GPU and on
# the CPU side by side (bench/bench_backend.c), and prints the table.
#
#   bash scripts/gpu_check.sh            # vulkan:0
#   OIR_GPU_DEVICE=1 bash scripts/gpu_check.sh
#   OIR_GPU_CHECK_NO_BUILD=1 bash scripts/gpu_check.sh   # use build/release as it is
#
# Phase 1 of issue 15: the models do not run on the backend yet, so the
# issue's model rows (SD 1.5 UNet at batch 2 and 50 on 64x64 latents, the
# VAE decode at 512x512, a two-pair OIR edit at 512x512 with T = 10, each
# next to its CPU time) are printed as "phase 2". Everything here takes
# about 2 minutes (the CPU side of the SD 1.5 shapes dominates).
set -euo pipefail
cd "$(dirname "$0")/.."
dev=${OIR_GPU_DEVICE:-0}
out=build/release
t0=$(date +%s)
if [ "${OIR_GPU_CHECK_NO_BUILD:-0}" != 1 ]; then
  echo "== build (Vulkan required)"
  bash scripts/deps.sh
  make -j"$(nproc)" OIR_VULKAN=1 $out/oir $out/tests/test_backend_ops $out/tests/test_vulkan_fp16 $out/bench/bench_backend >/dev/null
fi
echo "== devices"
$out/oir info --devices
echo
echo "== every backend op on vulkan:$dev against the CPU (NMSE per op)"
log=$(mktemp)
if OIR_TEST_VULKAN=$dev $out/tests/test_backend_ops >"$log" 2>&1; then
  grep -E "^backend|refused as expected" "$log"
  tail -1 "$log"
else
  grep -E "FAIL|^backend" "$log" | head -40
  tail -1 "$log"
  echo "gpu_check: the backend ops FAILED on vulkan:$dev (full log: $log)"
  exit 1
fi
rm -f "$log"
echo
echo "== fp16 weight storage (vulkan:$dev,fp16-weights): the tiny UNet against fp32 weights"
OIR_TEST_VULKAN=$dev $out/tests/test_vulkan_fp16 | tail -2
echo "cooperative matrix: no GEMM variant (glslc $(glslc --version | head -1 | awk '{print $2}') cannot compile GL_KHR_cooperative_matrix; docs/BACKENDS.md \"Not yet\")"
echo
echo "== the table's ops at SD 1.5 shapes (512x512, batch 2): CPU vs vulkan:$dev"
$out/bench/bench_backend --shapes sd15 --device vulkan:$dev
echo
echo "== models (phase 2 of issue 15: the models do not run on the backend yet)"
echo "| work | CPU s | vulkan:$dev s |"
echo "|---|---|---|"
for w in "SD 1.5 UNet step, batch 2, 64x64 latents" "SD 1.5 UNet step, batch 50, 64x64 latents" \
         "VAE decode 512x512" "two-pair OIR edit 512x512, T = 10"; do
  echo "| $w | phase 2 | phase 2 |"
done
echo
echo "gpu_check: done in $(( $(date +%s) - t0 )) s"
