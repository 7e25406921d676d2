# oir build. `make` builds the release binaries; `make test` runs the tests;
# `make demo` runs the demo; `make asan-test` runs the tests under
# AddressSanitizer + UndefinedBehaviorSanitizer; `make fuzz` runs the
# libFuzzer harnesses of tests/fuzz/ (scripts/fuzz.sh). Sources are discovered
# by directory, so adding a file under src/ needs no change here.

BUILD ?= release
OUT := build/$(BUILD)
PREFIX ?= /usr/local

CC ?= cc
FUZZ_CC ?= clang
CXX ?= c++
WARN := -Wall -Wextra -Wshadow -Wno-unused-parameter
# PORTABLE=1: no -march=native, so the binaries run on any x86-64 (the SIMD
# kernels fall back to plain C; slower). Built in build/<BUILD>-portable.
PORTABLE ?= 0
ifeq ($(BUILD),asan)
  # -march=native: the suite checks the SIMD kernels the release build runs
  # (and in a third of the time of the plain-C fallbacks under ASan).
  OPT := -O2 -march=native -g -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
  LDOPT := -fsanitize=address,undefined
else ifeq ($(BUILD),fuzz)
  # libFuzzer build (scripts/fuzz.sh): clang, coverage + ASan + UBSan on the
  # whole library (the parsers never start the worker pool's threads).
  CC := $(FUZZ_CC)
  OPT := -O1 -g -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
  LDOPT := -fsanitize=address,undefined
else ifeq ($(PORTABLE),1)
  OPT := -O3 -g
  LDOPT :=
  OUT := build/$(BUILD)-portable
else
  OPT := -O3 -march=native -g
  LDOPT :=
endif
# -fPIC: the same objects make liboir.a and liboir.so.
BASE := -std=c11 -D_GNU_SOURCE -pthread -fPIC -Iinclude -Isrc -MMD -MP
CFLAGS += $(BASE) $(WARN) $(OPT)
# The Vulkan compute backend (src/vulkan/, docs/BACKENDS.md): OIR_VULKAN=auto
# (default) builds it when `pkg-config vulkan` (libvulkan-dev) and glslc are
# found; 1 requires them; 0 builds the CPU alone, in build/<BUILD>-novulkan.
# The shaders (src/vulkan/shaders/*.comp) are compiled to SPIR-V by glslc and
# embedded as C arrays ($(OUT)/gen/vk_spirv.c); libvulkan is opened at run
# time, so the library never needs a GPU or a loader to start.
OIR_VULKAN ?= auto
GLSLC ?= glslc
HAVE_VULKAN :=
ifeq ($(OIR_VULKAN),0)
  OUT := $(OUT)-novulkan
else
  HAVE_VULKAN := $(shell pkg-config --exists vulkan 2>/dev/null && command -v $(GLSLC) >/dev/null 2>&1 && echo 1)
  ifeq ($(OIR_VULKAN)$(HAVE_VULKAN),1)
    $(error OIR_VULKAN=1 needs libvulkan-dev (pkg-config vulkan) and glslc: run scripts/deps.sh as root)
  endif
endif
VK_SRC :=
VK_GEN_OBJ :=
ifeq ($(HAVE_VULKAN),1)
  CFLAGS += -DOIR_HAVE_VULKAN $(shell pkg-config --cflags vulkan)
  VK_SRC := $(wildcard src/vulkan/*.c)
  VK_SHADERS := $(wildcard src/vulkan/shaders/*.comp)
  VK_SPV := $(VK_SHADERS:src/vulkan/shaders/%.comp=$(OUT)/gen/spv/%.inc)
  VK_GEN_OBJ := $(OUT)/gen/vk_spirv.o
endif
# The kernels run on their own worker pool (src/core/pool.h) and call BLAS
# single-threaded from several threads at once: OpenBLAS's pthread build is
# safe for that (its OpenMP build may share buffers between callers that are
# not OpenMP threads). Fall back to whichever -lopenblas exists.
MULTIARCH := $(shell $(CC) -print-multiarch 2>/dev/null)
OPENBLAS_PT := /usr/lib/$(MULTIARCH)/openblas-pthread
ifneq ($(wildcard $(OPENBLAS_PT)/libopenblas.so),)
  BLAS := -L$(OPENBLAS_PT) -Wl,-rpath,$(OPENBLAS_PT) -lopenblas
else
  BLAS := -lopenblas
endif
LDLIBS := $(BLAS) -lcjson -lpng -ljpeg -lyaml -lm -ldl
LDFLAGS += -pthread $(LDOPT)

LIB_SRC := $(wildcard src/core/*.c src/io/*.c src/models/*.c src/diffusion/*.c src/edit/*.c) $(VK_SRC)
# src/serve/ (oir serve, the web editor) is part of the oir binary, not the library
CLI_SRC := $(wildcard src/cli/*.c src/serve/*.c)
TEST_SRC := $(wildcard tests/test_*.c)
BENCH_SRC := $(wildcard bench/bench_*.c)
EXAMPLE_SRC := $(wildcard examples/*.c)

LIB_OBJ := $(LIB_SRC:%.c=$(OUT)/%.o) $(VK_GEN_OBJ)
CLI_OBJ := $(CLI_SRC:%.c=$(OUT)/%.o) $(OUT)/gen/web_assets.o
LIB := $(OUT)/liboir.a
SOLIB := $(OUT)/liboir.so
OIR := $(OUT)/oir
TESTS := $(TEST_SRC:tests/%.c=$(OUT)/tests/%)
BENCHES := $(BENCH_SRC:bench/%.c=$(OUT)/bench/%)
EXAMPLES := $(EXAMPLE_SRC:examples/%.c=$(OUT)/examples/%)
# C tools linked against the library (tools/make_random_sd.c: a random SD 1.x
# folder without Python, for scripts/gpu_check.sh and the tests)
TOOLS := $(OUT)/tools/make_random_sd

.PHONY: all deps test asan-test demo bench bench-estimate clean venv install fuzz fuzzers
# keep intermediate objects (harness.o) between test links
.SECONDARY:
all: $(OIR) $(SOLIB) $(TESTS) $(BENCHES) $(EXAMPLES) $(TOOLS)

deps:
	@bash scripts/deps.sh

# Objects depend on the compiler command line, so changing flags rebuilds.
FLAGS_STAMP := $(OUT)/.cflags
.PHONY: FORCE
$(FLAGS_STAMP): FORCE
	@mkdir -p $(OUT)
	@echo '$(CC) $(CFLAGS)' | cmp -s - $@ || echo '$(CC) $(CFLAGS)' > $@

$(OUT)/%.o: %.c $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

# The built-in CLIP vocabulary: .incbin'd merges.txt, which -MMD cannot track.
$(OUT)/src/models/tokenizer_builtin.o: data/clip-tokenizer/merges.txt

# SPIR-V of each shader as a C initializer (glslc -mfmt=c), then one C file
# with the table (scripts/embed_spirv.sh). The cooperative-matrix GEMMs
# (*_cm) use subgroup built-ins: SPIR-V 1.3, Vulkan 1.1.
$(OUT)/gen/spv/%.inc: src/vulkan/shaders/%.comp
	@mkdir -p $(dir $@)
	$(GLSLC) --target-env=$(if $(filter %_cm,$*),vulkan1.1,vulkan1.0) -O -mfmt=c -MD -MF $@.d -o $@ $<

$(OUT)/gen/vk_spirv.c: $(VK_SPV) scripts/embed_spirv.sh
	@bash scripts/embed_spirv.sh $@ $(VK_SPV)

$(OUT)/gen/vk_spirv.o: $(OUT)/gen/vk_spirv.c $(FLAGS_STAMP)
	$(CC) $(CFLAGS) -c $< -o $@

-include $(VK_SPV:=.d)

$(LIB): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	ar rcs $@ $^

# The shared library carries its dependencies (BLAS, image codecs, ...), so a
# program links it with -loir alone (see oir.pc.in).
$(SOLIB): $(LIB_OBJ)
	$(CC) -shared -Wl,-soname,liboir.so.0 -o $@ $^ $(LDFLAGS) $(LDLIBS)

$(OIR): $(CLI_OBJ) $(LIB)
	$(CC) $(LDFLAGS) -o $@ $(CLI_OBJ) $(LIB) $(LDLIBS) $(MHD_LIBS)

# ---- oir serve (issue 16) ---------------------------------------------------
# The HTTP server is libmicrohttpd (Debian's libmicrohttpd-dev, scripts/deps.sh).
# Without it (pkg-config cannot find it, or SERVE=0) the build still succeeds
# and `oir serve` says this build has no server. A stamp records which it was,
# so the objects that depend on it are rebuilt when that changes.
SERVE ?= 1
ifeq ($(SERVE),1)
  MHD_OK := $(shell pkg-config --exists libmicrohttpd 2>/dev/null && echo 1)
endif
ifeq ($(MHD_OK),1)
  MHD_CFLAGS := -DOIR_HAVE_MHD $(shell pkg-config --cflags libmicrohttpd)
  MHD_LIBS := $(shell pkg-config --libs libmicrohttpd)
endif
SERVE_STAMP := $(OUT)/.serve-flags
$(SERVE_STAMP): FORCE
	@mkdir -p $(OUT)
	@echo 'MHD_OK=$(MHD_OK) $(MHD_CFLAGS) $(MHD_LIBS)' | cmp -s - $@ || echo 'MHD_OK=$(MHD_OK) $(MHD_CFLAGS) $(MHD_LIBS)' > $@
SERVE_OBJ := $(OUT)/src/serve/server.o $(OUT)/src/serve/http.o $(OUT)/tests/test_serve
# (private: the flag is not passed on to their prerequisites, the library)
$(SERVE_OBJ): private CFLAGS += $(MHD_CFLAGS)
$(SERVE_OBJ): $(SERVE_STAMP)
# The page (web/: index.html, app.js, style.css) compiled in by a generator
# (src/serve/gen/embed.c, a plain C program: no xxd, no npm, no network).
WEB_FILES := $(sort $(wildcard web/*))
EMBED := $(OUT)/gen/embed
$(EMBED): src/serve/gen/embed.c
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -O1 -o $@ $<
$(OUT)/gen/web_assets.c: $(WEB_FILES) $(EMBED)
	$(EMBED) $@ $(WEB_FILES)
$(OUT)/gen/web_assets.o: $(OUT)/gen/web_assets.c $(FLAGS_STAMP)
	$(CC) $(CFLAGS) -c $< -o $@

# `make test-ui`: the page in a real browser (Debian's chromium and
# chromium-driver, Selenium from PyPI in a small venv under build/; installed
# when root): tests/ui/test_ui.py via scripts/ui_test.sh.
.PHONY: test-ui
test-ui: deps
	@$(MAKE) --no-print-directory $(OIR) BUILD=$(BUILD)
	@bash scripts/ui_test.sh $(OUT)

$(OUT)/tests/%: tests/%.c $(OUT)/tests/harness.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests -o $@ $< $(OUT)/tests/harness.o $(LIB) $(LDFLAGS) $(LDLIBS)

$(OUT)/bench/%: bench/%.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(LIB) $(LDFLAGS) $(LDLIBS)

$(OUT)/tools/%: tools/%.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(LIB) $(LDFLAGS) $(LDLIBS)

# the test runs the tool
$(OUT)/tests/test_make_random_sd: | $(OUT)/tools/make_random_sd

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

# issue 15: each op of the backend table on the CPU and on vulkan:0
# (bench/bench_backend.c; BENCH_BACKEND_ARGS, e.g. "--shapes sd15").
BENCH_BACKEND_ARGS ?=
.PHONY: bench-backend
bench-backend: deps
	@$(MAKE) --no-print-directory $(OUT)/bench/bench_backend BUILD=release
	$(OUT)/bench/bench_backend $(BENCH_BACKEND_ARGS)

# How close the plan line's time estimate comes to the run (the demo edit on
# the tiny model; scripts/bench_estimate.sh): ESTIMATE_ARGS go to oir edit.
ESTIMATE_ARGS ?=
REPS ?= 1
bench-estimate: deps
	@$(MAKE) --no-print-directory $(OIR) BUILD=$(BUILD)
	@REPS=$(REPS) bash scripts/bench_estimate.sh $(OUT) $(ESTIMATE_ARGS)

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

# `make install PREFIX=DIR` (default /usr/local; DESTDIR for staging):
# bin/oir, lib/liboir.{a,so}, include/oir.h, lib/pkgconfig/oir.pc and the
# shipped models in share/oir/models, where oir_models_dir() finds them.
SOVERSION := $(shell sed -n 's/^\#define OIR_VERSION_STRING "\(.*\)"/\1/p' include/oir.h)
install: deps
	@$(MAKE) --no-print-directory $(OIR) $(LIB) $(SOLIB)
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/pkgconfig \
	  $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/share/oir
	install -m 755 $(OIR) $(DESTDIR)$(PREFIX)/bin/oir
	install -m 644 $(LIB) $(DESTDIR)$(PREFIX)/lib/liboir.a
	install -m 755 $(SOLIB) $(DESTDIR)$(PREFIX)/lib/liboir.so.$(SOVERSION)
	ln -sf liboir.so.$(SOVERSION) $(DESTDIR)$(PREFIX)/lib/liboir.so.0
	ln -sf liboir.so.0 $(DESTDIR)$(PREFIX)/lib/liboir.so
	install -m 644 include/oir.h $(DESTDIR)$(PREFIX)/include/oir.h
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@VERSION@|$(SOVERSION)|g' \
	  -e 's|@LIBS_PRIVATE@|$(LDFLAGS) $(LDLIBS)|g' oir.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/oir.pc
	rm -rf $(DESTDIR)$(PREFIX)/share/oir/models
	cp -R models $(DESTDIR)$(PREFIX)/share/oir/models
	@echo "installed oir $(SOVERSION) into $(DESTDIR)$(PREFIX)"

-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d)

# ---- shapes-world measurements (bench/shapes/, issues 4 and 6) -------------
# bench/shapes/<prog>.c + shapes_eval.c + the CLI's option/noise helpers,
# linked against the library. `make quality` prints issue 4's four quality
# bars of the shipped models; `make bench-quality` runs issue 6's edit
# benchmark (QUALITY_ARGS / BENCH_QUALITY_ARGS pass options, e.g.
# BENCH_QUALITY_ARGS="--n 10" for a quick subset).
SHAPES_PROGS := $(OUT)/bench/shapes/quality $(OUT)/bench/shapes/edit_bench $(OUT)/bench/shapes/search_bench \
  $(OUT)/bench/shapes/attn_probe $(OUT)/bench/shapes/mask_bench $(OUT)/bench/shapes/mask_edit_bench
SHAPES_OBJ := $(OUT)/bench/shapes/shapes_eval.o $(OUT)/bench/shapes/shapes_pixel.o $(OUT)/bench/shapes/measure.o $(OUT)/src/cli/cli_args.o $(OUT)/src/cli/cli_sd.o $(OUT)/src/cli/progress.o
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

# issue 12: the search strategies against exhaustive (SEARCH_ARGS, e.g.
# SEARCH_ARGS="--steps 50 --n 30 --out bench/results/search_t50").
SEARCH_ARGS ?=
bench-search: deps
	@$(MAKE) --no-print-directory $(OUT)/bench/shapes/search_bench BUILD=release
	@mkdir -p bench/results
	$(OUT)/bench/shapes/search_bench --model models/tiny-shapes --clip models/tiny-clip \
	  --cases bench/scenes/edit $(SEARCH_ARGS)

.PHONY: quality bench-quality bench-search
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
