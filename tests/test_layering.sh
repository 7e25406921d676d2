#!/usr/bin/env bash
# Layering: the model code (src/models/) never includes the layers built on
# it: diffusion/ (the sampler runs the models), edit/ (OIR drives both),
# cli/ and serve/. A models -> diffusion include would bring back the cycle
# loader.h -> ddim.h -> ... -> loader.h. Checks every #include line of
# src/models/*.{c,h}; prints each offender.
set -u
cd "$(dirname "$0")/.."
pass=0; fail=0
includes_of() { # includes_of DIR LAYER: the #include lines of DIR/*.{c,h} naming LAYER/
  grep -nE "^[[:space:]]*#[[:space:]]*include[[:space:]]*[\"<]$2/" "$1"/*.c "$1"/*.h 2>/dev/null
}
check() { # check DIR FORBIDDEN-LAYER...
  local dir=$1; shift
  local hits
  for layer in "$@"; do
    hits=$(includes_of "$dir" "$layer")
    if [ -n "$hits" ]; then
      echo "FAIL $dir includes $layer/:"; echo "$hits"; fail=$((fail + 1))
    else
      echo "  ok   $dir includes nothing from $layer/"; pass=$((pass + 1))
    fi
  done
}
[ -d src/models ] || { echo "FAIL src/models not found"; echo "0 passed, 1 failed"; exit 1; }
check src/models diffusion edit cli serve
# The checker itself: a fake offending file must be caught.
probe=$(mktemp -d)
trap 'rm -rf "$probe"' EXIT
printf '#include "diffusion/ddim.h"\n' > "$probe/bad.h"
if [ -n "$(includes_of "$probe" diffusion)" ]; then
  echo "  ok   the check catches a models -> diffusion include"; pass=$((pass + 1))
else
  echo "FAIL the check misses a planted models -> diffusion include"; fail=$((fail + 1))
fi
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
