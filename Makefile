# gstdlc: `make test` and `make demo` set up everything they need on Debian 12 (apt packages,
# a Python venv with ONNX Runtime, fixture models), then build and run.

SHELL := /bin/bash
VENV := .venv
PYTHON := $(VENV)/bin/python
FIXTURES := target/fixtures/models
PREFIX := $(CURDIR)/target/install-check
# The install check's meson build directory: under target/, so that README's `meson setup
# builddir…` recipes never find a directory already configured for this scratch prefix.
MESON_BUILDDIR := target/meson-install-check
# The ONNX Runtime library from the venv's wheel (onnxruntime/capi/libonnxruntime.so.1.x).
ORT_LIB = $(firstword $(wildcard $(CURDIR)/$(VENV)/lib/python3*/site-packages/onnxruntime/capi/libonnxruntime.so.1*))
# DLC_REQUIRE_ALL: a test whose prerequisite (ONNX Runtime, fixtures, the reference's Python) is
# missing fails with the reason instead of skipping; only ../shared/testdata may be absent.
TEST_ENV = DLC_REQUIRE_ALL=1 ORT_DYLIB_PATH=$(ORT_LIB) DLC_PYTHON=$(CURDIR)/$(PYTHON) DLC_FIXTURES_DIR=$(CURDIR)/$(FIXTURES) GST_REGISTRY=$(CURDIR)/target/test-registry.bin

.PHONY: all setup fixtures build test install-check windows windows-check demo bench docs-cache fuzz soak memcheck clean

all: build

setup:
	@command -v cargo >/dev/null || { echo "cargo not found: install Rust with rustup first (https://rustup.rs)"; exit 1; }
	bash scripts/setup-debian.sh

# Every generator in tests/fixtures/ (make_models.py imports the others) remakes the fixtures.
$(FIXTURES)/.stamp: $(wildcard tests/fixtures/*.py) | setup
	$(PYTHON) tests/fixtures/make_models.py $(FIXTURES) --check
	touch $@

fixtures: setup $(FIXTURES)/.stamp

build: setup
	cargo build --locked

# Builds and installs the plugin the way GStreamer projects do (meson), into a scratch prefix,
# and checks that gst-inspect finds the installed plugin with its four elements.
install-check: setup
	rm -rf $(MESON_BUILDDIR) $(PREFIX)
	meson setup $(MESON_BUILDDIR) --prefix=$(PREFIX) --libdir=lib -Dbuildtype=debug >/dev/null
	meson install -C $(MESON_BUILDDIR)
	rm -f target/install-registry.bin
	GST_REGISTRY=$(CURDIR)/target/install-registry.bin GST_PLUGIN_PATH=$(PREFIX)/lib/gstreamer-1.0 \
	  gst-inspect-1.0 dlc | tee target/install-check.txt
	@for e in dlcdetect dlcswap dlcenhance dlcoverlay; do \
	  grep -q "$$e" target/install-check.txt || { echo "install-check: $$e missing from the installed plugin"; exit 1; }; \
	done
	@echo "install-check: the installed plugin lists dlcdetect, dlcswap, dlcenhance and dlcoverlay"

test: fixtures install-check
	rm -f target/test-registry.bin
	@[ -d ../shared/testdata ] || echo "note: ../shared/testdata is absent: tests that need the real SCRFD models and face pictures skip"
	set -o pipefail; $(TEST_ENV) cargo test --locked -- --test-threads=2 2>&1 | tee target/test.log
	@awk '/^test result:/ { p += $$4; f += $$6 } END { printf "make test: %d passed, %d failed\n", p, f }' target/test.log

# Windows (x86_64-pc-windows-gnu) build from Debian with MinGW, against GStreamer 1.28's and ONNX
# Runtime's win_amd64 wheels from PyPI (pinned in scripts/windows.sh, unpacked in target/windows/):
# target/x86_64-pc-windows-gnu/release/gstdlc.dll and the examples as .exe.
windows: setup
	bash scripts/windows.sh build

# Runs that build under Wine (Debian's wine64 8.0): gst-inspect-1.0.exe loads the plugin, dlcdetect
# finds the same faces as the Linux build, the test binaries pass (scripts/windows-check.sh).
windows-check: windows fixtures
	bash scripts/windows-check.sh

# File-to-file face swap with sample media (needs the models: see models/README.md).
demo: setup
	bash scripts/demo.sh

# Prints the CPU figures of BENCHMARKS.md (needs ../shared/testdata for the detector and the
# pictures): every chain, frame size and face count on the CPU provider, then the per-face
# overhead. The bench loads the release plugin from its file (target/release/libgstdlc.so).
bench: fixtures
	cargo build --release --locked
	cargo build --release --locked --example bench
	$(TEST_ENV) target/release/examples/bench run --provider cpu
	$(TEST_ENV) target/release/examples/bench overhead

# Rewrites docs/plugins/gst_plugins_cache.json, the plugin documentation cache in GStreamer's
# format, from the plugin's elements, properties and types; tests/docs_cache.rs fails until the
# committed file matches them.
docs-cache:
	DLC_UPDATE_DOCS_CACHE=1 cargo test --locked --test docs_cache -- documentation_cache_is_up_to_date

# Reliability checks (see RELIABILITY.md), none of them part of `make test`.
# fuzz: each cargo-fuzz target in fuzz/ for FUZZ_SECONDS under libFuzzer with AddressSanitizer
# (nightly toolchain; installs cargo-fuzz when missing). The corpus grows in fuzz/corpus/TARGET
# from the seeds in fuzz/seeds/TARGET (and the small fixture models for onnx_graph); a crash
# leaves its input in fuzz/artifacts/TARGET and fails the run.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= scrfd_decode onnx_graph face_map picture facefusion_face
fuzz: fixtures
	@command -v cargo-fuzz >/dev/null || cargo +nightly install cargo-fuzz --locked
	cd fuzz && cargo +nightly fuzz build
	@for t in $(FUZZ_TARGETS); do \
	  mkdir -p fuzz/corpus/$$t; \
	  [ -d fuzz/seeds/$$t ] && cp -n fuzz/seeds/$$t/* fuzz/corpus/$$t/; \
	  [ $$t = onnx_graph ] && find $(FIXTURES) -name '*.onnx' -size -8k -exec cp -n {} fuzz/corpus/$$t/ \; ; \
	  echo "fuzz: $$t for $(FUZZ_SECONDS) s"; \
	  (cd fuzz && cargo +nightly fuzz run $$t corpus/$$t -- -max_total_time=$(FUZZ_SECONDS) -timeout=10 -print_final_stats=1) \
	    > target/fuzz-$$t.log 2>&1 \
	    || { tail -40 target/fuzz-$$t.log; echo "fuzz: $$t failed: its input is in fuzz/artifacts/$$t (log: target/fuzz-$$t.log)"; exit 1; }; \
	  grep -E '^#[0-9]+[[:space:]]+DONE' target/fuzz-$$t.log | sed "s/^/fuzz: $$t: /"; \
	done

# soak: SOAK_FRAMES 1080p frames (after 300 warm-up frames) through dlcdetect ! dlcswap !
# dlcenhance on the CPU; fails when resident memory grew by 5 % or more. Uses the real detector and
# portraits of ../shared/testdata when present, else the fixture detector.
SOAK_FRAMES ?= 20000
soak: fixtures
	cargo build --release --locked --example soak
	$(TEST_ENV) target/release/examples/soak --frames $(SOAK_FRAMES)

# memcheck: a few 640x480 frames of the soak chain under valgrind (installed when missing); fails on
# any error or definite leak with gstdlc code on its stack (scripts/memcheck.sh).
memcheck: fixtures
	cargo build --locked --example soak
	$(TEST_ENV) bash scripts/memcheck.sh target/debug/examples/soak

clean:
	cargo clean
