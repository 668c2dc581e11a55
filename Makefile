# Parley: the two commands are `make run` and `make test` (see README.md).
# This Makefile wraps CMake + Ninja; everything is built into build/.
#   make            build the server, examples and web assets (release, build/)
#   make run        install what is missing, build, start `parley serve` with the demo project
#   make test       install what is missing, build (also ASan+UBSan), run every test
#   make bench      run the benchmarks in bench/ (see bench/README.md)
#   make fuzz       build the libFuzzer targets and run each for FUZZ_SECONDS (default 60)
#   make clean      remove build/

BUILD       ?= build
ASAN_BUILD  ?= $(BUILD)/asan
FUZZ_BUILD  ?= $(BUILD)/fuzz
FUZZ_SECONDS ?= 60
CMAKE_FLAGS ?=
WERROR      ?= $(if $(CI),ON,OFF)
JOBS        ?= $(shell nproc)

.PHONY: all build web run test unit integration fuzz fuzz-build bench clean bootstrap bootstrap-test asan

all: build

bootstrap:
	@scripts/bootstrap.sh run

bootstrap-test:
	@scripts/bootstrap.sh test

$(BUILD)/build.ninja:
	cmake -S . -B $(BUILD) -G Ninja -DPARLEY_WERROR=$(WERROR) $(CMAKE_FLAGS)

build: bootstrap $(BUILD)/build.ninja
	cmake --build $(BUILD) -j $(JOBS)
	@$(MAKE) --no-print-directory web

# Web assets (widget, dashboard) are bundled by esbuild into build/web when their sources exist.
web:
	@mkdir -p $(BUILD)/web
	@if [ -f web/build.mjs ]; then node web/build.mjs $(BUILD)/web; fi

run: build
	./$(BUILD)/parley serve --demo

$(ASAN_BUILD)/build.ninja:
	cmake -S . -B $(ASAN_BUILD) -G Ninja -DPARLEY_SANITIZE=ON -DPARLEY_WERROR=$(WERROR) $(CMAKE_FLAGS)

asan: bootstrap-test $(ASAN_BUILD)/build.ninja
	cmake --build $(ASAN_BUILD) -j $(JOBS)
	@rm -rf $(ASAN_BUILD)/web && ln -s ../web $(ASAN_BUILD)/web

# Sanitizer settings for every test that runs the ASan build.
export ASAN_OPTIONS  ?= detect_leaks=1:abort_on_error=0:halt_on_error=1:detect_stack_use_after_return=1
export UBSAN_OPTIONS ?= halt_on_error=1:print_stacktrace=1
export LSAN_OPTIONS  ?= suppressions=$(CURDIR)/tests/lsan.supp:print_suppressions=0

test: bootstrap-test build asan
	@echo "== unit tests (release)"
	ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS)
	@echo "== unit tests (ASan+UBSan)"
	ctest --test-dir $(ASAN_BUILD) --output-on-failure -j $(JOBS)
	@echo "== store tests against a throwaway PostgreSQL (release, ASan+UBSan)"
	tests/unit/store/run-pg.sh $(BUILD)
	tests/unit/store/run-pg.sh $(ASAN_BUILD)
	@echo "== integration tests (release)"
	PARLEY_BIN=$(CURDIR)/$(BUILD)/parley PARLEY_BUILD=$(CURDIR)/$(BUILD) \
	  node --test --test-concurrency=2 tests/integration/
	@echo "== integration tests (ASan+UBSan, leak checking on)"
	PARLEY_BIN=$(CURDIR)/$(ASAN_BUILD)/parley PARLEY_BUILD=$(CURDIR)/$(ASAN_BUILD) PARLEY_SANITIZED=1 \
	  node --test --test-concurrency=2 tests/integration/
	@echo "== visitor and agent integration tests on PostgreSQL + Redis (ASan+UBSan, leak checking on)"
	PARLEY_SANITIZED=1 tests/integration/run-scale.sh $(ASAN_BUILD)
	@echo "== browser tests (headless Chromium)"
	PARLEY_BIN=$(CURDIR)/$(BUILD)/parley PARLEY_WEB_ROOT=$(CURDIR)/$(BUILD)/web \
	  node --test --test-concurrency=2 tests/e2e/
	@$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=$(or $(TEST_FUZZ_SECONDS),12)

fuzz-build: bootstrap-test
	@[ -f $(FUZZ_BUILD)/build.ninja ] || cmake -S . -B $(FUZZ_BUILD) -G Ninja \
	  -DCMAKE_C_COMPILER=clang -DPARLEY_FUZZ=ON $(CMAKE_FLAGS)
	cmake --build $(FUZZ_BUILD) -j $(JOBS)

# Each target runs for FUZZ_SECONDS on a copy of its seed corpus; a crash, leak or UBSan
# report fails the run (and leaves the reproducer in $(FUZZ_BUILD)/findings).
fuzz: fuzz-build
	@set -e; mkdir -p $(FUZZ_BUILD)/findings; \
	for t in $(FUZZ_BUILD)/fuzz_*; do \
	  [ -x "$$t" ] || continue; name=$$(basename $$t); name=$${name#fuzz_}; \
	  corpus=$(FUZZ_BUILD)/corpus/$$name; mkdir -p $$corpus; \
	  [ -d tests/fuzz/corpus/$$name ] && cp -n tests/fuzz/corpus/$$name/* $$corpus/ 2>/dev/null || true; \
	  echo "== fuzz $$name for $(FUZZ_SECONDS)s"; \
	  $$t -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 -artifact_prefix=$(FUZZ_BUILD)/findings/ \
	    $$corpus 2>$(FUZZ_BUILD)/fuzz_$$name.log || { tail -50 $(FUZZ_BUILD)/fuzz_$$name.log; exit 1; }; \
	  grep -E "stat::number_of_executed_units|cov:" $(FUZZ_BUILD)/fuzz_$$name.log | tail -2; \
	done

bench: build
	@if [ -f bench/run.sh ]; then bench/run.sh; else echo "no benchmark yet"; fi

clean:
	rm -rf $(BUILD)
