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

test: format-check test-cpp test-python test-robustness

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
	rm -rf $(BUILD) build-san

# Robustness (README "Failure behaviour"), part of `make test`: one build in
# build-san/ with clang, ASan and UBSan (and libFuzzer's coverage hooks) holds the
# program, the test binary and the libFuzzer harnesses of fuzz/ (safetensors reader,
# configuration, grid reader, `task sample` command line).
# `make fuzz`: each harness replays fuzz/regressions/<name>, then fuzzes for
# FUZZ_SECONDS from its seed corpus fuzz/corpus/<name>, JOBS at a time (fuzz/run.sh), with
# libFuzzer's seed FUZZ_SEED (1: the same inputs every time; 0: new ones each run);
# any finding fails, its input left in build-san/findings/<name>/.
# `make test-asan`: the whole ctest suite on the sanitizer build; the MPI test without
# LeakSanitizer, because Open MPI's plugins leak at exit in frames it cannot name
# (memory errors and undefined behaviour are still checked there).
FUZZ_SECONDS ?= 50
FUZZ_SEED ?= 1
FUZZERS := fuzz_safetensors fuzz_config fuzz_grid fuzz_task_cli
SAN_BUILD := build-san
CCACHE := $(shell command -v ccache 2>/dev/null)
LAUNCHER := $(if $(CCACHE),-DCMAKE_CXX_COMPILER_LAUNCHER=$(CCACHE))
SANITIZE := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
.PHONY: test-robustness san-build fuzz test-asan

test-robustness: fuzz test-asan

san-build: deps corpus
	cmake -S . -B $(SAN_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++-14 \
	  -DATTNLAB_FUZZ=ON $(LAUNCHER) -DCMAKE_CXX_FLAGS="-fsanitize=fuzzer-no-link $(SANITIZE)" > /dev/null
	cmake --build $(SAN_BUILD) -j $(JOBS) --target attnlab attnlab_tests $(FUZZERS)

fuzz: san-build
	printf '%s\n' $(FUZZERS) | xargs -P $(JOBS) -I{} fuzz/run.sh $(SAN_BUILD) {} $(FUZZ_SECONDS) $(FUZZ_SEED)

test-asan: san-build
	cd $(SAN_BUILD) && UBSAN_OPTIONS=print_stacktrace=1 ctest -j $(JOBS) --output-on-failure -E '^mpi_train$$'
	cd $(SAN_BUILD) && UBSAN_OPTIONS=print_stacktrace=1 ASAN_OPTIONS=detect_leaks=0 \
	  ctest --output-on-failure -R '^mpi_train$$'

# Formatting: every C++ file of src/, tests/, fuzz/ and bench/*.cpp against the
# committed .clang-format; lists the differences and fails, changes nothing.
.PHONY: format-check
FORMAT_FILES = $(shell find src tests fuzz -name '*.cpp' -o -name '*.h' | sort) $(wildcard bench/*.cpp)
format-check:
	clang-format-14 --dry-run -Werror $(FORMAT_FILES)
