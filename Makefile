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

.PHONY: all deps build check clang-check demo demo-objective bench install clean

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

# The prefix is a meson option of build/: set it, rebuild what depends on it
# (libdrpo.pc), install.
install: deps $(BUILD)/build.ninja
	@out=$$($(MESON) configure $(BUILD) -Dprefix=$(abspath $(PREFIX)) 2>&1) \
	  || { printf '%s\n' "$$out" >&2; exit 1; }
	@$(call ninja_quiet,$(BUILD))
	@$(MESON) install -C $(BUILD) --no-rebuild $(if $(DESTDIR),--destdir $(abspath $(DESTDIR)))

clean:
	rm -rf $(BUILD) $(CLANG_BUILD)
