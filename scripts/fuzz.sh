#!/usr/bin/env bash
# `make fuzz`: builds the libFuzzer harnesses of tests/fuzz/ (clang, ASan +
# UBSan, build/fuzz/) and runs each for FUZZ_SECONDS (default 60) on a copy of
# its seed corpus (build/fuzz/run/corpus/<target>/; the committed corpus is
# never touched). Exits non-zero on any crash, leak, timeout (-timeout=10 per
# input) or OOM (-rss_limit_mb=2048), naming the reproducer.
#
#   FUZZ_SECONDS=N       seconds per target
#   FUZZ_TARGETS="a b"   some targets (names without fuzz_), default all
#   FUZZ_JOBS=N          make -j for the build (default 2)
#   FUZZ_ARGS="..."      extra libFuzzer options for every target
set -uo pipefail
cd "$(dirname "$0")/.."

secs=${FUZZ_SECONDS:-60}
jobs=${FUZZ_JOBS:-2}
targets=${FUZZ_TARGETS:-}
if [ -z "$targets" ]; then
  for f in tests/fuzz/fuzz_*.c; do
    t=${f#tests/fuzz/fuzz_}
    targets="$targets ${t%.c}"
  done
fi
case $secs in '' | *[!0-9]*) echo "fuzz: FUZZ_SECONDS must be a whole number of seconds" >&2; exit 2 ;; esac

start=$(date +%s)
bash scripts/deps.sh || exit 1
bash scripts/fuzz_deps.sh || exit 1
echo "fuzz: building harnesses (build/fuzz/)"
mkdir -p build
make --no-print-directory -j"$jobs" BUILD=fuzz fuzzers >build/fuzz-build.log 2>&1 || {
  cat build/fuzz-build.log
  echo "fuzz: build failed"
  exit 1
}

run=build/fuzz/run
# The harnesses' temp files: tmpfs when there is one (rewriting files on a disk
# with discard is ~10x slower), in a folder removed at the end, since a
# crashing harness cannot clean up after itself.
if [ -z "${TMPDIR:-}" ] && [ -d /dev/shm ] && [ -w /dev/shm ]; then
  TMPDIR=$(mktemp -d /dev/shm/oir-fuzz-run.XXXXXX) && export TMPDIR && trap 'rm -rf "$TMPDIR"' EXIT
fi
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
command -v llvm-symbolizer >/dev/null && export ASAN_SYMBOLIZER_PATH=${ASAN_SYMBOLIZER_PATH:-$(command -v llvm-symbolizer)}

n=0 failed=0 failures=""
for t in $targets; do
  bin=build/fuzz/fuzz/fuzz_$t
  if [ ! -x "$bin" ]; then
    echo "fuzz: no harness $bin (targets: tests/fuzz/fuzz_*.c)"
    failed=$((failed + 1)); failures="$failures $t(missing)"; continue
  fi
  n=$((n + 1))
  corpus=$run/corpus/$t
  crashes=$run/crashes/$t
  log=$run/$t.log
  rm -rf "$corpus" "$crashes"
  mkdir -p "$corpus" "$crashes"
  [ -d tests/fuzz/corpus/$t ] && cp tests/fuzz/corpus/$t/. "$corpus"/ -r
  dict=()
  [ -f tests/fuzz/$t.dict ] && dict=(-dict=tests/fuzz/$t.dict)
  # one process, sequential targets: the build machines are small and shared
  # (in a subshell whose stderr is the log: bash's "Aborted" notice goes there too)
  (timeout -k 10 $((secs + 120)) "$bin" "$corpus" "${dict[@]}" \
    -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$crashes/" ${FUZZ_ARGS:-} >"$log" 2>&1; exit $?) 2>>"$log"
  rc=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  files=$(find "$corpus" -type f | wc -l)
  repro=$(find "$crashes" -type f \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' \
          -o -name 'oom-*' \) | sort)
  if [ $rc -eq 0 ] && [ -z "$repro" ]; then
    echo "fuzz_$t: ok, ${runs:-?} inputs in ${secs}s, corpus $files files"
    continue
  fi
  failed=$((failed + 1))
  failures="$failures $t"
  echo "fuzz_$t: FAILED (exit $rc) after ${runs:-?} inputs; log $log"
  # the verdict and the first frames of the first stack
  awk '/ERROR|runtime error|fuzz invariant failed|^SUMMARY/ { print; next }
       /^ +#[0-9]+ / { if (!done && ++k <= 8) print; next }
       k { done = 1 }' "$log" | head -14 | cut -c1-200 | sed 's/^/  /'
  [ $rc -eq 124 ] || [ $rc -eq 137 ] && echo "  (killed after $((secs + 120)) s: a hang outside libFuzzer's -timeout)"
  for r in $repro; do
    echo "  reproducer: $r"
    echo "  rerun:      $bin $r"
  done
done

took=$(($(date +%s) - start))
[ $failed -eq 0 ] || echo "fuzz: failed:$failures (reproducers under $run/crashes/)"
echo "fuzz: $n targets, $failed crashes (${took}s)"
[ $failed -eq 0 ]
