# attnlab: `make demo` and `make test` set everything up on a fresh Debian 12
# (as root: missing packages are installed with apt-get), build in build/, run.
.PHONY: all deps build demo test test-cpp test-python gradcheck bench clean

BUILD ?= build
JOBS ?= $(shell nproc)
PYTHON := /usr/bin/python3
PACKAGES := g++ make cmake pkg-config libopenblas-openmp-dev libcli11-dev libtomlplusplus-dev \
            nlohmann-json3-dev libfmt-dev libgtest-dev libgmock-dev libbenchmark-dev \
            python3 python3-torch python3-numpy python3-pytest

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

build: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release > /dev/null
	cmake --build $(BUILD) -j $(JOBS)

demo: build
	$(BUILD)/attnlab train --recipe iarc-quick --out runs/iarc-quick --force

gradcheck: build
	$(BUILD)/attnlab gradcheck

test-cpp: build
	$(BUILD)/attnlab gradcheck
	cd $(BUILD) && ctest -j $(JOBS) --output-on-failure

test-python: build
	ATTNLAB_BIN=$(CURDIR)/$(BUILD)/attnlab ATTNLAB_REQUIRE_GOLDEN=1 $(PYTHON) -m pytest -q tests/python

test: test-cpp test-python

clean:
	rm -rf $(BUILD)
