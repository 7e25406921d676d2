#!/usr/bin/env bash
# A new user's walk-through of README.md: every `build/release/oir ...`
# command of its indented examples (continuation lines joined, `$ ` and
# trailing comments dropped) runs as written and exits 0, from a scratch
# folder that sees the repository's examples/ and models/ (so outputs such as
# demo-out/ land there, not in the checkout). `make install`, the example
# program and the installed oir run from elsewhere are tests/test_install.sh.
# Usage: tests/test_readme.sh BUILD_DIR
set -u
out=${1:-build/release}
cd "$(dirname "$0")/.."
repo=$(pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0; fail=0
mkdir -p "$tmp/user"
ln -s "$repo/examples" "$tmp/user/examples"
ln -s "$repo/models" "$tmp/user/models"
# The commands: indented lines starting with build/release/oir, joined
# across trailing backslashes.
/usr/bin/awk '
  /^    (\$ )?build\/release\/oir / { cmd = $0; sub(/^    (\$ )?/, "", cmd); cont = (cmd ~ /\\$/); if (!cont) print cmd; next }
  cont { line = $0; sub(/^ +/, "", line); sub(/\\$/, "", cmd); cmd = cmd " " line; cont = (line ~ /\\$/); if (!cont) print cmd; next }
' README.md > "$tmp/commands"
n=$(wc -l < "$tmp/commands")
if [ "$n" -lt 4 ]; then
  echo "FAIL README: found only $n oir commands to run (the extraction is broken)"
  echo "0 passed, 1 failed"; exit 1
fi
bin="$repo/$out/oir"
i=0
while IFS= read -r cmd; do
  i=$((i + 1))
  run=${cmd/build\/release\/oir/$bin}
  if (cd "$tmp/user" && timeout 600 bash -c "$run" >"$tmp/log" 2>&1); then
    pass=$((pass + 1)); echo "  ok   README command $i: $cmd"
  else
    fail=$((fail + 1)); echo "FAIL README command $i: $cmd"; sed 's/^/    /' "$tmp/log" | tail -15
  fi
done < "$tmp/commands"
# what the commands promise to write
for f in demo-out/edited.png demo-out/report.json demo-out/pair1_sheet.png demo20-pick/report.json wide-out/edited.png demo-reinvert/report.json demo-guard/pair1_sheet.png batch-out/demo-both/edited.png batch-out/summary.md; do
  if [ -s "$tmp/user/$f" ]; then pass=$((pass + 1)); echo "  ok   $f written"
  else fail=$((fail + 1)); echo "FAIL $f not written"; fi
done
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
