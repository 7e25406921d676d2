# oir build. `make` builds the release binaries; `make test` runs the tests;
# `make demo` runs the demo; `make asan-test` runs the tests under
# AddressSanitizer + UndefinedBehaviorSanitizer; `make fuzz` runs the
# libFuzzer harnesses of tests/fuzz/ (scripts/fuzz.sh). Sources are discovered
# by directory, so adding a file under src/ needs no change here.

BUILD ?= release
OUT := build/$(BUILD)

CC ?= cc
FUZZ_CC ?= clang
CXX ?= c++
WARN := -Wall -Wextra -Wshadow -Wno-unused-parameter
OMP := -fopenmp
ifeq ($(BUILD),asan)
  OPT := -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
  LDOPT := -fsanitize=address,undefined
else ifeq ($(BUILD),fuzz)
  # libFuzzer build (scripts/fuzz.sh): clang, coverage + ASan + UBSan on the
  # whole library. No OpenMP: the parsers are serial and every OpenMP call in
  # src/ sits behind #ifdef _OPENMP, so one libFuzzer process stays one thread.
  CC := $(FUZZ_CC)
  OMP :=
  OPT := -O1 -g -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
  LDOPT := -fsanitize=address,undefined
else
  OPT := -O3 -march=native -g
  LDOPT :=
endif
BASE := -std=c11 -D_GNU_SOURCE $(OMP) -Iinclude -Isrc -MMD -MP
CFLAGS += $(BASE) $(WARN) $(OPT)
# OpenBLAS's OpenMP build shares our OpenMP thread pool, so BLAS threads and
# kernel threads never oversubscribe the cores (the pthread build spins
# against OpenMP's idle threads). Fall back to whichever -lopenblas exists.
MULTIARCH := $(shell $(CC) -print-multiarch 2>/dev/null)
OPENBLAS_OMP := /usr/lib/$(MULTIARCH)/openblas-openmp
ifneq ($(wildcard $(OPENBLAS_OMP)/libopenblas.so),)
  BLAS := -L$(OPENBLAS_OMP) -Wl,-rpath,$(OPENBLAS_OMP) -lopenblas
else
  BLAS := -lopenblas
endif
LDLIBS := $(BLAS) -lcjson -lpng -ljpeg -lyaml -lm
LDFLAGS += $(OMP) $(LDOPT)

LIB_SRC := $(wildcard src/core/*.c src/io/*.c src/models/*.c src/diffusion/*.c src/edit/*.c)
CLI_SRC := $(wildcard src/cli/*.c)
TEST_SRC := $(wildcard tests/test_*.c)
BENCH_SRC := $(wildcard bench/bench_*.c)
EXAMPLE_SRC := $(wildcard examples/*.c)

LIB_OBJ := $(LIB_SRC:%.c=$(OUT)/%.o)
CLI_OBJ := $(CLI_SRC:%.c=$(OUT)/%.o)
LIB := $(OUT)/liboir.a
OIR := $(OUT)/oir
TESTS := $(TEST_SRC:tests/%.c=$(OUT)/tests/%)
BENCHES := $(BENCH_SRC:bench/%.c=$(OUT)/bench/%)
EXAMPLES := $(EXAMPLE_SRC:examples/%.c=$(OUT)/examples/%)

.PHONY: all deps test asan-test demo bench clean venv fuzz fuzzers
# keep intermediate objects (harness.o) between test links
.SECONDARY:
all: $(OIR) $(TESTS) $(BENCHES) $(EXAMPLES)

deps:
	@bash scripts/deps.sh

$(OUT)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(LIB): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	ar rcs $@ $^

$(OIR): $(CLI_OBJ) $(LIB)
	$(CC) $(LDFLAGS) -o $@ $(CLI_OBJ) $(LIB) $(LDLIBS)

$(OUT)/tests/%: tests/%.c $(OUT)/tests/harness.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests -o $@ $< $(OUT)/tests/harness.o $(LIB) $(LDFLAGS) $(LDLIBS)

$(OUT)/bench/%: bench/%.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(LIB) $(LDFLAGS) $(LDLIBS)

$(OUT)/examples/%: examples/%.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(LIB) $(LDFLAGS) $(LDLIBS)

# The README's test command.
test: deps
	@$(MAKE) --no-print-directory all BUILD=$(BUILD)
	@$(CXX) -std=c++11 -Wall -Wextra -Werror -fsyntax-only -x c++ include/oir.h && echo "include/oir.h compiles as C++"
	@bash tests/run.sh $(OUT)

asan-test: deps
	@$(MAKE) --no-print-directory test BUILD=asan

demo: deps
	@$(MAKE) --no-print-directory $(OIR) BUILD=$(BUILD)
	@bash scripts/demo.sh $(OUT)

bench: deps
	@$(MAKE) --no-print-directory $(BENCHES) BUILD=release
	@for b in $(BENCHES); do echo "== $$b"; $$b || exit 1; done

venv:
	@bash scripts/venv.sh

# ---- fuzzing (tests/fuzz/, issue 10) ----------------------------------------
# `make fuzz` installs clang's fuzzer runtime when root, builds every harness
# into build/fuzz/ and runs each for FUZZ_SECONDS (scripts/fuzz.sh; FUZZ_TARGETS
# picks some). `make fuzzers BUILD=fuzz` only builds them.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?=
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
FUZZERS := $(FUZZ_SRC:tests/fuzz/%.c=$(OUT)/fuzz/%)

fuzz:
	@FUZZ_SECONDS=$(FUZZ_SECONDS) FUZZ_TARGETS="$(FUZZ_TARGETS)" bash scripts/fuzz.sh

fuzzers: $(FUZZERS)

# Per-pixel loops and Unicode table searches: libFuzzer's comparison tracing
# (a call per loop test) made a 1.6 Mpx decode take 2 s and was half of the
# tokenizer's time; edge coverage stays.
FUZZ_NO_CMP := src/io/image.c src/io/image_resize.c src/io/mask.c src/models/unicode.c
ifeq ($(BUILD),fuzz)
$(FUZZ_NO_CMP:%.c=$(OUT)/%.o): CFLAGS += -fno-sanitize-coverage=trace-cmp
endif

$(OUT)/fuzz/%: tests/fuzz/%.c tests/fuzz/fuzz_util.h $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests/fuzz -fsanitize=fuzzer -o $@ $< $(LIB) $(LDFLAGS) -fsanitize=fuzzer $(LDLIBS)

# The regression test compiles the harnesses in (tests/fuzz/fuzz_*.c).
$(OUT)/tests/test_fuzz_regressions: $(FUZZ_SRC) tests/fuzz/fuzz_util.h

clean:
	rm -rf build

-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d)

# ---- shapes-world measurements (bench/shapes/, issues 4 and 6) -------------
# bench/shapes/<prog>.c + shapes_eval.c + the CLI's option/noise helpers,
# linked against the library. `make quality` prints issue 4's four quality
# bars of the shipped models; `make bench-quality` runs issue 6's edit
# benchmark (QUALITY_ARGS / BENCH_QUALITY_ARGS pass options, e.g.
# BENCH_QUALITY_ARGS="--n 10" for a quick subset).
SHAPES_PROGS := $(OUT)/bench/shapes/quality $(OUT)/bench/shapes/edit_bench
SHAPES_OBJ := $(OUT)/bench/shapes/shapes_eval.o $(OUT)/bench/shapes/measure.o $(OUT)/src/cli/cli_args.o $(OUT)/src/cli/cli_sd.o $(OUT)/src/cli/progress.o
QUALITY_ARGS ?=
BENCH_QUALITY_ARGS ?=

$(SHAPES_PROGS): $(OUT)/bench/shapes/%: bench/shapes/%.c $(SHAPES_OBJ) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Ibench/shapes -o $@ $< $(SHAPES_OBJ) $(LIB) $(LDFLAGS) $(LDLIBS)

# tests that judge images with the shapes world's CLIP judge (bench/shapes/shapes_eval.h)
$(OUT)/tests/test_shapes_bench $(OUT)/tests/test_shapes_edit: $(OUT)/tests/%: tests/%.c $(OUT)/tests/harness.o $(SHAPES_OBJ) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests -Ibench/shapes -o $@ $< $(OUT)/tests/harness.o $(SHAPES_OBJ) $(LIB) $(LDFLAGS) $(LDLIBS)

all: $(SHAPES_PROGS)

.PHONY: quality bench-quality
quality: deps
	@$(MAKE) --no-print-directory $(OUT)/bench/shapes/quality BUILD=release
	@mkdir -p bench/results
	$(OUT)/bench/shapes/quality --model models/tiny-shapes --clip models/tiny-clip \
	  --scenes bench/scenes/heldout --json bench/results/quality.json \
	  --samples bench/results/quality_samples.png $(QUALITY_ARGS)

bench-quality: deps
	@$(MAKE) --no-print-directory $(OUT)/bench/shapes/edit_bench BUILD=release
	@mkdir -p bench/results
	$(OUT)/bench/shapes/edit_bench --model models/tiny-shapes --clip models/tiny-clip \
	  --cases bench/scenes/edit --out bench/results/edit_quality --sheets 4 $(BENCH_QUALITY_ARGS)

-include $(SHAPES_OBJ:.o=.d) $(SHAPES_PROGS:=.d) $(OUT)/tests/test_shapes_bench.d $(OUT)/tests/test_shapes_edit.d
