#!/usr/bin/env bash
# What `make fuzz` needs beyond scripts/deps.sh: clang with the libFuzzer and
# sanitizer runtimes (Debian: clang, libclang-rt-dev) and llvm-symbolizer
# (llvm) for readable stack traces. Installs them when run as root; otherwise
# prints the apt-get line to run. Quiet when everything is present.
set -euo pipefail
cc=${FUZZ_CC:-clang}

works() {
  command -v "$cc" >/dev/null 2>&1 || return 1
  local d
  d=$(mktemp -d)
  printf '#include <stddef.h>\n#include <stdint.h>\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }\n' >"$d/t.c"
  "$cc" -fsanitize=fuzzer,address,undefined "$d/t.c" -o "$d/t" >/dev/null 2>&1
  local rc=$?
  rm -rf "$d"
  return $rc
}

missing=""
works || missing="clang libclang-rt-dev"
command -v llvm-symbolizer >/dev/null 2>&1 || missing="$missing llvm"
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ]; then
  echo "fuzz-deps: installing $missing" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
  works || { echo "fuzz-deps: $cc still cannot build a libFuzzer binary (-fsanitize=fuzzer)" >&2; exit 1; }
else
  echo "fuzz-deps: $cc cannot build libFuzzer binaries or llvm-symbolizer is missing; run:" \
       " sudo apt-get install -y $missing" >&2
  exit 1
fi
