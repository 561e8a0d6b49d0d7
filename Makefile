# Postly MCP — the two commands a newcomer needs: `make run` and `make test`.
# Everything else (deps, build, bench, lint, fuzz) is a step they call or a tool for developers.
BUILD    ?= build
WERROR   ?= OFF
SANITIZE ?= OFF
JOBS     ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_FLAGS := -DPOSTLY_WERROR=$(WERROR) -DPOSTLY_SANITIZE=$(SANITIZE) $(EXTRA_CMAKE_FLAGS)

.PHONY: all deps test-deps build build-for-test run test bench lint format fuzz clean

all: build

deps:
	@scripts/deps.sh

test-deps: deps
	@scripts/deps.sh --test

build: deps
	cmake -S . -B $(BUILD) $(CMAKE_FLAGS) >/dev/null
	cmake --build $(BUILD) -j $(JOBS)

# The test clients (Chromium, Node.js packages) are installed before CMake configures, and
# POSTLY_REQUIRE_NODE_TESTS makes a missing one a configure error, never a silently skipped test.
build-for-test: test-deps
	cmake -S . -B $(BUILD) $(CMAKE_FLAGS) -DPOSTLY_REQUIRE_NODE_TESTS=ON >/dev/null
	cmake --build $(BUILD) -j $(JOBS)

run: build
	@scripts/run.sh $(BUILD)

test: build-for-test
	ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS)

bench: deps
	cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release >/dev/null
	cmake --build build-bench -j $(JOBS)
	@scripts/bench.sh build-bench

lint: deps
	@scripts/lint.sh

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

fuzz: deps
	@scripts/fuzz.sh $(FUZZ_SECONDS)

clean:
	rm -rf build build-* 
