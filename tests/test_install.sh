#!/usr/bin/env bash
# `make install` into a temporary prefix, then use it as a newcomer would,
# from a folder outside the repository: the example program built from the
# installed header with pkg-config alone, and the installed `oir` with its
# default (installed) models. Usage: tests/test_install.sh BUILD_DIR
set -u
out=${1:-build/release}
cd "$(dirname "$0")/.."
repo=$(pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0; fail=0
check() { # check NAME CMD...: runs CMD, passes on exit 0
  local name=$1; shift
  if "$@" >"$tmp/log" 2>&1; then pass=$((pass + 1)); echo "  ok   $name"
  else fail=$((fail + 1)); echo "FAIL $name"; sed 's/^/    /' "$tmp/log" | tail -20; fi
}
prefix="$tmp/prefix"
build=${out#build/}
check "make install PREFIX=$prefix" make --no-print-directory install PREFIX="$prefix" BUILD="${build%%-*}" OUT="$out"
for f in bin/oir lib/liboir.a lib/liboir.so lib/liboir.so.0 include/oir.h lib/pkgconfig/oir.pc \
         share/oir/models/tiny-shapes/model_index.json share/oir/models/tiny-clip/config.json; do
  check "installed $f" test -e "$prefix/$f"
done
mkdir -p "$tmp/elsewhere"
cd "$tmp/elsewhere"
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
# the example sees only the installed header and library (no -I into the repository)
check "example builds with pkg-config --cflags --libs oir alone" \
  sh -c "cc -std=c11 -Wall -Werror '$repo/examples/oir_edit_example.c' \$(pkg-config --cflags --libs oir) -o ex"
check "example edits outside the repository with the installed models" \
  sh -c "env -u OIR_MODELS -u OIR_MODEL -u OIR_CLIP ./ex '$repo/examples/shapes/demo.png' edited.png 4 && test -s edited.png"
check "installed oir generate uses the installed default model from another folder" \
  sh -c "env -u OIR_MODELS -u OIR_MODEL '$prefix/bin/oir' generate --prompt 'a red circle on a gray background' --steps 2 --out gen.png && test -s gen.png"
# a moved install still finds its models (they are searched from the binary's folder)
mv "$prefix" "$tmp/moved"
check "a moved install finds its models" \
  sh -c "env -u OIR_MODELS -u OIR_MODEL '$tmp/moved/bin/oir' generate --prompt 'a red circle on a gray background' --steps 2 --out gen2.png && test -s gen2.png"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
