# The quick start: `make demo` and `make check` on a fresh Debian/Ubuntu
# machine as root.  Both install what is missing, set up meson and build.
BUILD    ?= build
ASAN     ?= build-asan
MESON    ?= meson
SUDO     := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# Build and test dependencies (Debian package names).
# What building and the demo need:
PKGS     := gcc g++ make pkg-config meson ninja-build libelf-dev libdw-dev libdebuginfod-dev binutils-dev \
            zlib1g-dev mandoc python3 procps
# and what the tests check against (each test skips, saying why, without its tool):
CHECK_PKGS := $(PKGS) gdb libc6-dbg strace libjemalloc2 musl-tools clang libclang-rt-14-dev debuginfod curl \
            libc-devtools openjdk-17-jdk-headless golang-go libxml2-utils prometheus

.PHONY: all deps check-deps build demo check check-asan bench clean

all: build

check-deps:
	@$(MAKE) --no-print-directory deps PKGS="$(CHECK_PKGS)"

# Install only what is missing; skip silently where apt-get is absent.
deps:
	@missing=""; for p in $(PKGS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if command -v apt-get >/dev/null; then \
	    $(SUDO) apt-get update -qq; \
	    avail=""; for p in $$missing; do \
	      if apt-cache show "$$p" >/dev/null 2>&1; then avail="$$avail $$p"; \
	      else echo "not available here: $$p (the tests that need it will say so and skip)"; fi; \
	    done; \
	    if [ -n "$$avail" ]; then echo "installing:$$avail"; \
	      DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$avail >/dev/null || \
	      for p in $$avail; do \
	        DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$p >/dev/null 2>&1 || \
	          echo "could not install $$p (what needs it will fail to build, or its tests will say so and skip)"; \
	      done; fi; \
	  else echo "missing packages:$$missing (no apt-get: install them by hand)"; fi; \
	fi

$(BUILD)/build.ninja:
	$(MESON) setup $(BUILD)

build: deps $(BUILD)/build.ninja
	$(MESON) compile -C $(BUILD)

$(ASAN)/build.ninja:
	$(MESON) setup $(ASAN) -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug

demo: build
	@tests/demo.sh $(BUILD)

# Every test, then the same suites again under AddressSanitizer/UBSan.  On a
# failure, the failing tests' last lines come last (CI keeps the log's tail).
check: check-deps build $(ASAN)/build.ninja
	$(MESON) test -C $(BUILD) --print-errorlogs || { python3 tests/failed.py $(BUILD); exit 1; }
	$(MESON) compile -C $(ASAN)
	MESON="$(MESON)" tests/sanitized.sh $(ASAN)

bench: build
	HEAPSCOPE=$(BUILD)/cmd/heapscope TARGETS_DIR=$(BUILD)/tests RAWREAD=$(BUILD)/tests/rawread tests/bench/run.sh

clean:
	rm -rf $(BUILD) $(ASAN)
