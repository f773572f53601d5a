# Makefile - the short way into the meson build (meson.build is the build).
#
#   make                      configure build/ if needed, then build
#   make check                build; run the other meson tests and a clang
#                             -Werror build quietly; run the Check runner last
#                             (its summary line is the last line of output)
#   make demo                 build and run the shifted-preference benchmark
#                             (examples/drpo-bench): tables on stdout, tables
#                             and SVG plots in out/demo/
#   make demo-objective       build and run examples/drpo-demo (the worst case
#                             of one batch under every set)
#   make bench                build and run the benchmarks (bench/: floors and
#                             PyTorch baselines, ~10 minutes): one table on
#                             stdout, its numbers into docs/performance.md
#   make check-asan           build-asan/ (-Db_sanitize=address,undefined,
#                             -fno-sanitize-recover): the Check runner and the
#                             other C tests
#   make check-valgrind       the Check runner under memcheck (CK_FORK=no, one
#                             valgrind per suite in parallel): no errors, no
#                             leaks
#   make fuzz                 build the libFuzzer targets (clang) in
#                             build-fuzz/ and run each FUZZ_SECONDS (60)
#   make check-tsan           build-tsan/ (-Db_sanitize=thread): the threads
#                             suite (not part of CI)
#   make check-instances      build-isa0/ and build-isa1/ (DRPO_ISA_MAX 0 and
#                             1): the Check runner on the SSE2 baseline and on
#                             the AVX2 kernel instances
#   make abi-check            abidiff the built libdrpo.so against
#                             tests/abi/libdrpo.abi (public header only)
#   make abi-update           regenerate tests/abi/libdrpo.abi
#   make install PREFIX=DIR   install under DIR (default /usr/local; DESTDIR
#                             is honoured for staged installs)
#   make clean                remove the build directories
#   make deps                 check the Debian packages the build needs: as
#                             root install the missing ones, otherwise print
#                             the apt-get line and stop
#
# Every target that builds runs `deps` first; it prints nothing when all is
# present.

PREFIX      ?= /usr/local
BUILD       ?= build
CLANG_BUILD ?= build-clang
MESON       ?= meson
NINJA       ?= ninja

# The Check runner: `make check` runs it last, on its own.
RUNNER := drpo-tests

DEB_PACKAGES := meson ninja-build pkg-config gcc libc6-dev libblis-dev libxxhash-dev check \
                python3-numpy

.PHONY: all deps build check clang-check demo demo-objective bench install clean \
        check-asan check-valgrind check-tsan check-instances fuzz abi-check abi-update

all: build

deps:
	@command -v dpkg-query >/dev/null 2>&1 || exit 0; \
	missing=; \
	for p in $(DEB_PACKAGES); do \
	  dpkg-query -W -f='$${Status}\n' "$$p" 2>/dev/null | grep -q ' installed$$' \
	    || missing="$$missing $$p"; \
	done; \
	[ -z "$$missing" ] && exit 0; \
	if [ "$$(id -u)" = 0 ]; then \
	  echo "libdrpo: installing missing Debian packages:$$missing"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get update -q && apt-get install -y -q$$missing || exit 1; \
	else \
	  echo "libdrpo: missing Debian packages; install them with:" >&2; \
	  echo "sudo apt-get install -y$$missing" >&2; \
	  exit 1; \
	fi

# Configure once; afterwards ninja re-runs meson by itself when meson.build
# changes.  An interrupted setup is redone with --reconfigure.
$(BUILD)/build.ninja: | deps
	@echo "libdrpo: configuring $(BUILD)/ with meson"; \
	out=$$($(MESON) setup $(if $(wildcard $(BUILD)/meson-private/coredata.dat),--reconfigure) \
	       $(BUILD) 2>&1) || { printf '%s\n' "$$out" >&2; exit 1; }

# ninja, its output (meson's regeneration chatter included) shown on failure only.
ninja_quiet = out=$$($(NINJA) -C $(1) --quiet 2>&1) || { printf '%s\n' "$$out" >&2; exit 1; }

build: deps $(BUILD)/build.ninja
	@$(call ninja_quiet,$(BUILD))

# The same sources built with clang under -Wall -Wextra -Werror (the project
# defaults, spelt out); skipped when clang is not installed.
clang-check: deps
	@if ! command -v clang >/dev/null 2>&1; then \
	  echo "clang build check: skipped (clang not installed)"; exit 0; \
	fi; \
	if [ ! -f $(CLANG_BUILD)/build.ninja ]; then \
	  out=$$(CC=clang $(MESON) setup -Dwarning_level=2 -Dwerror=true \
	         $(if $(wildcard $(CLANG_BUILD)/meson-private/coredata.dat),--reconfigure) \
	         $(CLANG_BUILD) 2>&1) || { printf '%s\n' "$$out" >&2; exit 1; }; \
	fi; \
	$(call ninja_quiet,$(CLANG_BUILD)); \
	echo "clang build check (-Wall -Wextra -Werror): ok"

# Every meson test but the runner, output shown only on failure; then the
# runner, so that Check's summary line is the last line.
check: build clang-check
	@list=$$($(MESON) test -C $(BUILD) --no-rebuild --list 2>&1) \
	  || { printf '%s\n' "$$list" >&2; exit 1; }; \
	others=$$(printf '%s\n' "$$list" | sed 's|.* / ||' | grep -vx '$(RUNNER)'); \
	if [ -n "$$others" ]; then \
	  out=$$(printf '%s\n' "$$others" | tr '\n' '\0' \
	         | xargs -0 $(MESON) test -C $(BUILD) --no-rebuild --print-errorlogs 2>&1) \
	    || { printf '%s\n' "$$out"; echo "meson tests failed (logs in $(BUILD)/meson-logs/)" >&2; exit 1; }; \
	  echo "meson tests: ok ("$$others")"; \
	fi
	@$(BUILD)/tests/$(RUNNER)

DEMO_OUT ?= out/demo

demo: build
	@mkdir -p $(DEMO_OUT)
	@$(BUILD)/examples/drpo-bench --out $(DEMO_OUT)

demo-objective: build
	@$(BUILD)/examples/drpo-demo

# The benchmarks: C programs of bench/ and PyTorch baselines run by Debian's
# /usr/bin/python3 (python3-torch); never part of `make check`.
bench: build
	@/usr/bin/python3 bench/run.py $(BUILD)

# ---- reliability (docs/reliability.md) ----------------------------------------

ASAN_BUILD   ?= build-asan
TSAN_BUILD   ?= build-tsan
FUZZ_BUILD   ?= build-fuzz
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := fuzz-csv fuzz-checkpoint fuzz-solve fuzz-api
JOBS         ?= $(shell nproc 2>/dev/null || echo 2)
# The runner's suites, for one valgrind per suite.
SUITES = $(shell sed -n 's/^ *suite_\([a-z_]*\),$$/\1/p' tests/runner.c)

# Configure a build directory once: $(1) directory, $(2) environment, $(3)
# options (write a comma inside them as $(comma): make's $(call) splits on it).
comma := ,
setup_once = if [ ! -f $(1)/build.ninja ]; then \
	  out=$$($(2) $(MESON) setup $(3) $(1) 2>&1) || { printf '%s\n' "$$out" >&2; exit 1; }; fi

# The C tests under ASan + UBSan (any report is fatal).  Not the Python and
# Rust tests (an instrumented library cannot be loaded into an uninstrumented
# interpreter), the install test (its consumer links without the sanitizer
# runtime) nor the MPI example (Open MPI's own runtime is not ASan-clean).
# Check's per-test timeouts (4 s unless a suite sets its own) are scaled by
# 4: instrumented and on a loaded machine, the csv and losses suites ran past
# them (a timeout there says nothing about the code).
ASAN_TESTS := header train-e2e c-example cpp-example
check-asan: deps
	@$(call setup_once,$(ASAN_BUILD),,-Db_sanitize=address$(comma)undefined \
	  -Dc_args=-fno-sanitize-recover=all -Dcpp_args=-fno-sanitize-recover=all)
	@$(call ninja_quiet,$(ASAN_BUILD))
	@out=$$($(MESON) test -C $(ASAN_BUILD) --no-rebuild --print-errorlogs $(ASAN_TESTS) 2>&1) \
	  || { printf '%s\n' "$$out"; exit 1; }; echo "asan: meson tests ok ($(ASAN_TESTS))"
	@out=$$(ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	        CK_TIMEOUT_MULTIPLIER=4 $(ASAN_BUILD)/tests/$(RUNNER) 2>&1) \
	  || { printf '%s\n' "$$out"; exit 1; }; \
	  echo "asan: $$(printf '%s\n' "$$out" | tail -n 1)"

# The Check runner on builds capped to the narrower kernel instances
# (DRPO_ISA_MAX: 0 the SSE2 baseline, 1 AVX2), so that a CPU that has AVX2
# or AVX-512 tests every instance the library ships against the same
# reference values; the instances agree bit for bit, so nothing else changes.
ISA_BUILD ?= build-isa
check-instances: deps
	@for isa in 0 1; do \
	  $(call setup_once,$(ISA_BUILD)$$isa,,-Dc_args=-DDRPO_ISA_MAX=$$isa); \
	  $(call ninja_quiet,$(ISA_BUILD)$$isa); \
	  out=$$($(ISA_BUILD)$$isa/tests/$(RUNNER) 2>&1) || { printf '%s\n' "$$out"; exit 1; }; \
	  echo "instances up to $$( [ $$isa = 0 ] && echo baseline || echo AVX2): $$(printf '%s\n' "$$out" | tail -n 1)"; \
	done

# memcheck on the runner, one valgrind per suite (CK_FORK=no: in process),
# JOBS at a time.  BLIS and OpenMP one thread each (OMP_WAIT_POLICY=passive:
# spinning OpenMP threads are very slow under valgrind).  Errors: any memory
# error, and definite, indirect or possible leaks; tests/valgrind.supp
# suppresses only the known blocks of the BLIS/OpenMP runtime.
VALGRIND = valgrind -q --error-exitcode=99 --leak-check=full \
	   --errors-for-leak-kinds=definite,indirect,possible \
	   --suppressions=tests/valgrind.supp
check-valgrind: build
	@echo $(SUITES) | tr ' ' '\n' | xargs -P $(JOBS) -I{} sh -c \
	  'out=$$(CK_FORK=no CK_RUN_SUITE={} OMP_NUM_THREADS=1 BLIS_NUM_THREADS=1 \
	          OMP_WAIT_POLICY=passive $(VALGRIND) $(BUILD)/tests/$(RUNNER) 2>&1) \
	     || { printf "%s\n" "$$out"; echo "valgrind: suite {} FAILED"; exit 255; }; \
	   echo "valgrind: {}: $$(printf "%s\n" "$$out" | tail -n 1)"'

# ThreadSanitizer on the threads suite (and the collective suite's threads).
check-tsan: deps
	@$(call setup_once,$(TSAN_BUILD),,-Db_sanitize=thread -Ddefault_library=static)
	@$(call ninja_quiet,$(TSAN_BUILD))
	@for s in threads collective; do \
	  out=$$(TSAN_OPTIONS=halt_on_error=1 CK_FORK=no CK_RUN_SUITE=$$s \
	         $(TSAN_BUILD)/tests/$(RUNNER) 2>&1) || { printf '%s\n' "$$out"; exit 1; }; \
	  echo "tsan: $$s: $$(printf '%s\n' "$$out" | tail -n 1)"; \
	done

# libFuzzer targets: clang with -fsanitize=fuzzer-no-link,address,undefined on
# everything, -fsanitize=fuzzer on the targets.  Each runs FUZZ_SECONDS over a
# working corpus in $(FUZZ_BUILD)/corpus/<target> seeded from
# tests/fuzz/corpus/<target>; crashes go to $(FUZZ_BUILD)/artifacts/.
fuzz: deps
	@$(call setup_once,$(FUZZ_BUILD),CC=clang,-Dfuzz=true -Db_sanitize=address$(comma)undefined \
	  -Db_lundef=false -Dc_args="-fsanitize=fuzzer-no-link -fno-sanitize-recover=all")
	@out=$$($(NINJA) -C $(FUZZ_BUILD) $(addprefix tests/fuzz/,$(FUZZ_TARGETS)) 2>&1) \
	  || { printf '%s\n' "$$out" >&2; exit 1; }
	@mkdir -p $(FUZZ_BUILD)/artifacts; \
	for t in $(FUZZ_TARGETS); do \
	  mkdir -p $(FUZZ_BUILD)/corpus/$$t; \
	  $(FUZZ_BUILD)/tests/fuzz/$$t -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	    -artifact_prefix=$(FUZZ_BUILD)/artifacts/$$t- $(FUZZ_BUILD)/corpus/$$t \
	    tests/fuzz/corpus/$$t > $(FUZZ_BUILD)/$$t.log 2>&1 \
	    || { tail -n 60 $(FUZZ_BUILD)/$$t.log; echo "fuzz: $$t FAILED (log: $(FUZZ_BUILD)/$$t.log)"; exit 1; }; \
	  echo "fuzz: $$t: $$(grep -o 'stat::number_of_executed_units: *[0-9]*' $(FUZZ_BUILD)/$$t.log \
	    | grep -o '[0-9]*$$') runs, $$(grep -E '^#[0-9]+' $(FUZZ_BUILD)/$$t.log | tail -n 1 \
	    | grep -oE 'cov: [0-9]+ ft: [0-9]+')"; \
	done

# The ABI baseline: abidw of the -g shared library of build/ (debugoptimized),
# with only the types reachable from include/ counted; abidiff against it
# fails on any difference (any non-zero exit).  Compatible additions: run
# abi-update and commit the new baseline; breaking changes bump the soversion
# (docs/api.md, "ABI rules").
ABI_BASELINE := tests/abi/libdrpo.abi
abi-check: build
	@command -v abidiff >/dev/null || { echo "abi-check: abidiff missing (Debian: abigail-tools)" >&2; exit 1; }
	@abidiff --headers-dir1 include --headers-dir2 include $(ABI_BASELINE) $(BUILD)/libdrpo.so \
	  && echo "abi-check: libdrpo.so matches $(ABI_BASELINE)"

abi-update: build
	@mkdir -p $(dir $(ABI_BASELINE))
	@abidw --headers-dir include --drop-private-types --no-corpus-path --out-file $(ABI_BASELINE) $(BUILD)/libdrpo.so
	@echo "abi-update: wrote $(ABI_BASELINE)"

# The prefix is a meson option of build/: set it, rebuild what depends on it
# (libdrpo.pc), install.
install: deps $(BUILD)/build.ninja
	@out=$$($(MESON) configure $(BUILD) -Dprefix=$(abspath $(PREFIX)) 2>&1) \
	  || { printf '%s\n' "$$out" >&2; exit 1; }
	@$(call ninja_quiet,$(BUILD))
	@$(MESON) install -C $(BUILD) --no-rebuild $(if $(DESTDIR),--destdir $(abspath $(DESTDIR)))

clean:
	rm -rf $(BUILD) $(CLANG_BUILD) $(ASAN_BUILD) $(TSAN_BUILD) $(FUZZ_BUILD) $(ISA_BUILD)0 $(ISA_BUILD)1
