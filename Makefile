# attnlab: `make demo` and `make test` set everything up on a fresh Debian 12
# (as root: missing packages are installed with apt-get), build in build/, run.
.PHONY: all deps build demo test test-cpp test-python gradcheck bench bench-all microbench clean

BUILD ?= build
JOBS ?= $(shell nproc)
PYTHON := /usr/bin/python3
PACKAGES := g++ make cmake pkg-config libopenblas-openmp-dev libcli11-dev libtomlplusplus-dev \
            nlohmann-json3-dev libfmt-dev libgtest-dev libgmock-dev libbenchmark-dev \
            python3 python3-torch python3-numpy python3-pytest bible-kjv \
            openmpi-bin libopenmpi-dev slurm-wlm munge \
            zlib1g-dev libpng-dev dataset-fashion-mnist \
            clang-14 libclang-rt-14-dev libomp-14-dev clang-format-14

all: build

# Installs only what is missing; does nothing when everything is there.
deps:
	@missing=""; for p in $(PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing missing Debian packages:$$missing"; \
	  if [ "$$(id -u)" != 0 ]; then echo "error: run as root (or: sudo apt-get install$$missing)"; exit 1; fi; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get update -q && apt-get install -y -q --no-install-recommends $$missing; \
	fi

build: deps corpus
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release > /dev/null
	cmake --build $(BUILD) -j $(JOBS)

# The text task's default corpus: the King James Bible (public domain), printed by
# the program of the Debian package bible-kjv, one verse per line (4.3 MB).
.PHONY: corpus
corpus: data/kjv.txt
data/kjv.txt: | deps
	mkdir -p data
	bible -l 100000 gen1:1-rev22:21 < /dev/null > $@.tmp && mv $@.tmp $@

demo: build
	$(BUILD)/attnlab train --recipe iarc-quick --out runs/iarc-quick --force

gradcheck: build
	$(BUILD)/attnlab gradcheck

test-cpp: build
	$(BUILD)/attnlab gradcheck
	cd $(BUILD) && ctest -j $(JOBS) --output-on-failure

test-python: build
	ATTNLAB_BIN=$(CURDIR)/$(BUILD)/attnlab ATTNLAB_REQUIRE_GOLDEN=1 $(PYTHON) -m pytest -q tests/python

test: format-check test-cpp test-python

# Speed (docs/performance.md): attnlab against PyTorch on the reference recipes
# bench-r1 .. bench-r4, softmax and cog maps (bench-all: every map), 1 and 2
# threads, plus R1's context scaling. Run it on a quiet machine.
bench: build
	$(PYTHON) bench/run_bench.py --attnlab $(BUILD)/attnlab

bench-all: build
	$(PYTHON) bench/run_bench.py --attnlab $(BUILD)/attnlab --all

# Google Benchmark timings of single kernels (every attention map, forward and backward).
microbench: build
	$(BUILD)/attnlab_microbench

# Experiments (RESULTS.md): `make exp-NAME` sweeps experiments/NAME.toml into
# runs/exp-NAME, one run per core (run it again to resume), then writes
# runs/exp-NAME/report.html, report.md and accuracy.svg.
EXPERIMENTS := ladder ladder-long ladder-10x multitask iarc iarc-quick cog cog-text iarc-paper iarc-paper-difficulty cog-diffusion
.PHONY: $(addprefix exp-,$(EXPERIMENTS))
$(addprefix exp-,$(EXPERIMENTS)): exp-%: build
	$(BUILD)/attnlab sweep --grid experiments/$*.toml --out runs/exp-$* --jobs $(JOBS)
	$(BUILD)/attnlab report runs/exp-$*

clean:
	rm -rf $(BUILD) build-fuzz build-asan

# Robustness (README "Failure behaviour"). `make fuzz`: the libFuzzer harnesses of fuzz/
# (safetensors reader, configuration, grid reader, `task sample` command line), built with
# clang, ASan and UBSan in build-fuzz/, each run for FUZZ_SECONDS from its seed corpus
# fuzz/corpus/<name> after replaying fuzz/regressions/<name>; any finding fails, and the
# input that caused it is left in build-fuzz/findings/<name>/.
# `make test-asan`: the ctest suite built with ASan and UBSan (g++) in build-asan/.
FUZZ_SECONDS ?= 45
FUZZERS := fuzz_safetensors fuzz_config fuzz_grid fuzz_task_cli
CCACHE := $(shell command -v ccache 2>/dev/null)
LAUNCHER := $(if $(CCACHE),-DCMAKE_CXX_COMPILER_LAUNCHER=$(CCACHE))
SANITIZE := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
ASAN_CTEST_ARGS ?=
.PHONY: fuzz fuzz-build test-asan

fuzz-build: deps corpus
	cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++-14 \
	  -DATTNLAB_FUZZ=ON $(LAUNCHER) -DCMAKE_CXX_FLAGS="-fsanitize=fuzzer-no-link $(SANITIZE)" > /dev/null
	cmake --build build-fuzz -j $(JOBS) --target $(FUZZERS)

fuzz: fuzz-build
	@for f in $(FUZZERS); do \
	  mkdir -p build-fuzz/corpus/$$f build-fuzz/findings/$$f; \
	  if [ -n "$$(ls fuzz/regressions/$$f 2>/dev/null)" ]; then \
	    build-fuzz/$$f fuzz/regressions/$$f/* > build-fuzz/$$f.log 2>&1 \
	      || { tail -40 build-fuzz/$$f.log; echo "fuzz: $$f fails on a regression input"; exit 1; }; \
	  fi; \
	  build-fuzz/$$f -max_total_time=$(FUZZ_SECONDS) -timeout=20 -rss_limit_mb=4096 -max_len=4096 \
	    -artifact_prefix=build-fuzz/findings/$$f/ -print_final_stats=1 \
	    build-fuzz/corpus/$$f fuzz/corpus/$$f > build-fuzz/$$f.log 2>&1 \
	    || { tail -60 build-fuzz/$$f.log; echo "fuzz: $$f found a problem; see build-fuzz/findings/$$f/"; exit 1; }; \
	  echo "fuzz: $$f clean, $$(grep -h '^stat::number_of_executed_units' build-fuzz/$$f.log | awk '{print $$2}') inputs in $(FUZZ_SECONDS) s"; \
	done

test-asan: deps corpus
	cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo $(LAUNCHER) \
	  -DCMAKE_CXX_FLAGS="$(SANITIZE)" > /dev/null
	cmake --build build-asan -j $(JOBS) --target attnlab attnlab_tests
	cd build-asan && UBSAN_OPTIONS=print_stacktrace=1 ctest -j $(JOBS) --output-on-failure $(ASAN_CTEST_ARGS)

# Formatting: every C++ file of src/, tests/, fuzz/ and bench/*.cpp against the
# committed .clang-format; lists the differences and fails, changes nothing.
.PHONY: format-check
FORMAT_FILES = $(shell find src tests fuzz -name '*.cpp' -o -name '*.h' | sort) $(wildcard bench/*.cpp)
format-check:
	clang-format-14 --dry-run -Werror $(FORMAT_FILES)
