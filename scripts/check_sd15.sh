#!/usr/bin/env bash
# Full-size check of issue 3: writes a random-weight model with the exact SD 1.5
# configuration (tools/make_random_sd.py, tools venv) as a diffusers folder and as a
# single-file LDM checkpoint (with the DDPM buffers real checkpoints carry), then
# build/release/check_sd15 loads both (no missing, no unused tensors; the single
# file's configs inferred from its shapes), runs the text encoder, one UNet
# evaluation on an 8x8 latent and a VAE decode, and requires identical outputs.
#
#   bash scripts/check_sd15.sh [DIR]      (default /tmp/oir-sd15; about 8.6 GB of disk;
#                                          OIR_SD15_FP16=1 writes fp16: 4.3 GB)
# The model is reused when DIR already holds it; delete DIR to rebuild it.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
dir=${1:-/tmp/oir-sd15}
single="$dir.safetensors"
py="${OIR_VENV:-$here/.venv-tools}/bin/python"
[ -x "$py" ] || { echo "check_sd15: no tools venv; run: bash scripts/venv.sh" >&2; exit 1; }

make -j2 build/release/liboir.a >/dev/null
blas=/usr/lib/$(cc -print-multiarch)/openblas-pthread # as the Makefile: safe from the pool's threads
cc -std=c11 -D_GNU_SOURCE -pthread -Iinclude -Isrc -O2 -march=native -Wall -Wextra \
   tools/check_sd15.c build/release/liboir.a -pthread -L"$blas" -Wl,-rpath,"$blas" -lopenblas -lcjson -lpng -ljpeg -lyaml -lm \
   -o build/release/check_sd15

if [ ! -f "$dir/model_index.json" ] || [ ! -f "$dir/unet/diffusion_pytorch_model.safetensors" ] \
   || [ ! -f "$single" ]; then
  args=()
  [ "${OIR_SD15_FP16:-0}" = 1 ] && args+=(--fp16)
  echo "check_sd15: writing the random SD 1.5 model to $dir and $single"
  "$py" tools/make_random_sd.py "$dir" --single-file "$single" --ldm-extras "${args[@]}"
fi
OIR_THREADS=${OIR_THREADS:-2} build/release/check_sd15 "$dir" "$single"
