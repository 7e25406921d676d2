#!/usr/bin/env bash
# search_bench's per-case cache (--cache) and adaptive's K: results are kept
# under the strategy's name with its K ("adaptive:3" runs and is kept as
# adaptive:3:2, never reusing another K's record), and a record cached before
# K existed ("adaptive:M", which ran K = 1) is reused for adaptive:M:1 only.
# Two tiny runs (T = 6, one single-pair and one multi-pair case).
# Usage: tests/test_search_bench.sh BUILD_DIR
set -u
out=${1:-build/release}
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0; fail=0
check() { # check NAME CMD...: passes on exit 0
  local name=$1; shift
  if "$@" >"$tmp/check.log" 2>&1; then pass=$((pass + 1)); echo "  ok   $name"
  else fail=$((fail + 1)); echo "FAIL $name"; sed 's/^/    /' "$tmp/check.log" | tail -20; fi
}
bench() { # bench STRATEGIES
  OMP_WAIT_POLICY=PASSIVE "$out/bench/shapes/search_bench" --model models/tiny-shapes --clip models/tiny-clip \
    --cases bench/scenes/edit --steps 6 --n 1 --threads 1 --quiet --strategies "$1" \
    --cache "$tmp/cache" --out "$tmp/out" >"$tmp/bench.log" 2>&1
}
check "search_bench --strategies adaptive:3:1 runs" bench adaptive:3:1
check "two cases cached" test -s "$tmp/cache/single_000.json" -a -s "$tmp/cache/multi_000.json"
check "kept as adaptive:3:1" grep -q '"adaptive:3:1":{' "$tmp/cache/single_000.json"
# make the records look cached before K existed, with a marker row count
for f in "$tmp"/cache/*.json; do
  sed -i 's/"adaptive:3:1":{"steps":\[\([0-9,]*\)\],"search_unet_rows":[0-9]*/"adaptive:3":{"steps":[\1],"search_unet_rows":777777/' "$f"
done
check "legacy records made" grep -q '"adaptive:3":{"steps":\[[0-9,]*\],"search_unet_rows":777777' "$tmp/cache/single_000.json"
check "search_bench --strategies adaptive:3:1,adaptive:3 runs" bench adaptive:3:1,adaptive:3
# all cases: 2 x 777777 rows for adaptive:3:1 (the legacy records, not rerun)
check "adaptive:3:1 reuses the legacy records" grep -q '^| adaptive:3:1 | 1555554 |' "$tmp/out.md"
check "adaptive:3 is adaptive:3:2, run afresh" sh -c "grep -q '^| adaptive:3:2 | ' '$tmp/out.md' && ! grep -q '^| adaptive:3:2 | 1555554 |' '$tmp/out.md'"
check "the legacy record is kept as adaptive:3:1 now" sh -c "grep -q '\"adaptive:3:1\":{\"steps\":\[[0-9,]*\],\"search_unet_rows\":777777' '$tmp/cache/single_000.json'"
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
