#!/usr/bin/env bash
# Makes the tools venv (Python is for tools only: fixture dumps and training).
# Debian's python3-torch underneath, the authors' reference library versions from PyPI on top.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
venv="${OIR_VENV:-$here/.venv-tools}"
if [ "$(id -u)" = 0 ]; then
  need=""
  # libopenblas0-pthread: Debian's torch calls libblas.so.3 for its matrix products; with only the
  # reference BLAS behind it a tiny-UNet training step is 7x slower (7.0 s against 1.0 s measured).
  for p in python3-torch python3-venv python3-numpy python3-pil libopenblas0-pthread; do
    dpkg -s "$p" >/dev/null 2>&1 || need="$need $p"
  done
  if [ -n "$need" ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $need
  fi
elif ! /usr/bin/python3 -c 'import torch' 2>/dev/null; then
  echo "venv.sh: Debian's torch is missing; run: sudo apt-get install python3-torch python3-venv python3-numpy python3-pil libopenblas0-pthread" >&2
  exit 1
fi
if [ ! -x "$venv/bin/python" ]; then
  /usr/bin/python3 -m venv --system-site-packages "$venv"
fi
"$venv/bin/python" -m pip install -q --disable-pip-version-check \
  diffusers==0.16.1 transformers==4.26.1 huggingface_hub==0.14.1 safetensors==0.3.1 tokenizers==0.13.3 ftfy==6.1.1 PyYAML
"$venv/bin/python" -c 'import torch, diffusers, transformers; print("tools venv:", torch.__version__, diffusers.__version__, transformers.__version__)'
echo "$venv"
