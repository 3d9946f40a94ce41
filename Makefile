# Tokenmill: the two commands a newcomer needs are `make run` and `make test`.
# Both install what is missing first: libzstd-dev, libxxhash-dev, liblz4-dev, libbrotli-dev
# and pkg-config through apt-get (as root or with sudo), and the Python packages into
# build/venv.

SWIFT ?= swift
VENV := build/venv
PY := $(VENV)/bin/python
BIN := .build/release/tokenmill
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: all deps sysdeps venv browser build install run test test-swift test-python bench bench-encode bench-minhash bench-ingest bench-e2e bench-export slurm-demo fuzz clean

all: build

sysdeps:
	@if ! command -v pkg-config >/dev/null 2>&1 || ! pkg-config --exists libzstd libxxhash zlib liblz4 libbrotlidec; then \
	  echo "== installing system packages: libzstd-dev libxxhash-dev zlib1g-dev liblz4-dev libbrotli-dev pkg-config"; \
	  $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq libzstd-dev libxxhash-dev zlib1g-dev liblz4-dev libbrotli-dev pkg-config >/dev/null; \
	fi

$(VENV)/.installed: python/requirements.txt
	@echo "== creating $(VENV)"
	@mkdir -p build
	@python3 -m venv $(VENV) 2>/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq python3-venv >/dev/null && python3 -m venv $(VENV); }
	@$(VENV)/bin/pip install -q --disable-pip-version-check -r python/requirements.txt
	@touch $@

venv: $(VENV)/.installed

# The trainers' readers for the export and PyTorch tests (large; a failure only makes
# those tests skip, saying so).
$(VENV)/.trainers: python/requirements-trainers.txt $(VENV)/.installed
	@echo "== installing the trainers' readers (torch, megatron-core, datatrove, mosaicml-streaming, datasets)"
	@$(VENV)/bin/pip install -q --disable-pip-version-check -r python/requirements-trainers.txt >/dev/null 2>&1 \
	  && touch $@ || echo "== could not install them: the export and torch tests will skip"

# Chromium renders report.html in its test (skipped, saying so, without it).
browser:
	@command -v chromium >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium >/dev/null 2>&1; } \
	  || echo "== could not install chromium: the report.html test will skip"

deps: sysdeps venv

build: sysdeps
	$(SWIFT) build -c release --product tokenmill

# A tokenmill outside the source tree finds the built-in vocabularies in ../share/tokenmill.
PREFIX ?= /usr/local
install: build
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/tokenmill
	install -m 755 $(BIN) $(DESTDIR)$(PREFIX)/bin/tokenmill
	install -m 644 Sources/BPE/Resources/*.tiktoken $(DESTDIR)$(PREFIX)/share/tokenmill/

run: build
	$(BIN) build Specs/demo.json --out build/demo
	$(BIN) verify build/demo
	$(BIN) inspect build/demo

# The binaries' compiled-vocabulary cache (docs/BPE.md) stays in the build folder under
# the tests, not in the user's home.
# The Python tests in two worker processes (pytest-xdist): one process kept ~1.2 of the two
# CPUs busy (waiting on the binary and on tiktoken in turn); two took the suite from 7m11s
# to 5m02s here. PYTEST_WORKERS=1 runs them in one.
PYTEST_WORKERS ?= 2
test: export TOKENMILL_CACHE_DIR ?= $(CURDIR)/build/test-cache/vocab
test: deps $(VENV)/.trainers browser
	$(SWIFT) build -c release --product tokenmill
	$(SWIFT) test -c release
	TOKENMILL_BIN=$(CURDIR)/$(BIN) $(PY) -m pytest -q -n $(PYTEST_WORKERS) python/tests

# Benchmarks: peers that install from PyPI are added to the venv (failures are reported
# in the table, not fatal).
bench: deps build
	$(SWIFT) build -c release --product tokenmill-bench
	-@$(VENV)/bin/pip install -q fastokens splintr-rs quicktok-v1 rs-bpe rensa 2>/dev/null
	$(PY) Benchmarks/bench_tokenizers.py
	$(PY) Benchmarks/bench_minhash.py

# `tokenmill encode` end to end next to the library's encoder and the peers, on texts each
# tool sees once; the peers get a venv of their own (their numpy/tokenizers pins differ
# from the test venv's).
BENCH_VENV := build/venv-bench
bench-encode: deps build
	$(SWIFT) build -c release --product tokenmill-bench
	@# The piece loop must have its scanner inlined (see PieceEnds in Sources/BPE/Pretokenizer.swift).
	@if command -v objdump >/dev/null && objdump -d --no-show-raw-insn $(BIN) | grep -q 'call.*PiecesV3end'; then \
	  echo "warning: $(BIN) calls the scanner out of line; rebuild it from scratch before timing it"; fi
	@test -x $(BENCH_VENV)/bin/python || python3 -m venv $(BENCH_VENV)
	-@$(BENCH_VENV)/bin/pip install -q tiktoken tokenizers numpy fastokens bpe-openai tokie gigatok splintr-rs 2>/dev/null
	$(BENCH_VENV)/bin/python Benchmarks/bench_encode.py $(ARGS)

bench-ingest: deps build
	$(SWIFT) build -c release --product tokenmill-bench
	-@$(VENV)/bin/pip install -q orjson 2>/dev/null
	$(PY) Benchmarks/bench_ingest.py

bench-minhash: deps build
	$(SWIFT) build -c release --product tokenmill-bench
	-@$(VENV)/bin/pip install -q rensa 2>/dev/null
	$(PY) Benchmarks/bench_minhash.py

clean:
	rm -rf .build build

# End to end: tokenmill build next to bare tokenmill encode on ../shared's mixed corpus (MB/s,
# peak RSS, ratios); add ARGS=--datatrove to run datatrove's pipeline too (installs it into
# build/venv-bench, apart from the test venv, whose trainer packages pin other versions).
bench-e2e: deps build
	@test -x build/venv-bench/bin/python || python3 -m venv build/venv-bench
	@build/venv-bench/bin/pip install -q --disable-pip-version-check numpy zstandard xxhash tiktoken==0.14.0 2>/dev/null || true
	@if echo "$(ARGS)" | grep -q datatrove; then build/venv-bench/bin/pip install -q "datatrove[processing]==0.10.1" spacy transformers psutil orjson 2>/dev/null || true; fi
	build/venv-bench/bin/python Benchmarks/bench_e2e.py $(ARGS)

# tokenmill export next to reading the shards and writing the same bytes (Benchmarks/RESULTS.md).
bench-export: deps build
	$(PY) Benchmarks/bench_export.py $(ARGS)

# A one-node Slurm cluster on this machine (apt-get: slurmctld, slurmd, munge; needs root or
# sudo), the demo submitted as `tokenmill plan --slurm` prints it, compared with a one-process build.
slurm-demo: build
	bash Tests/slurm/start_cluster.sh
	rm -rf build/slurm-demo build/slurm-demo-one
	$(BIN) build Specs/demo.json --out build/slurm-demo-one --quiet
	$(BIN) plan Specs/demo.json --slurm --tasks 2 --cpus-per-task 1 --out build/slurm-demo --logs build/slurm-demo-logs > build/slurm-demo.sh
	bash build/slurm-demo.sh
	@echo "== waiting for the jobs"; for i in $$(seq 1 600); do [ -z "$$(squeue -h)" ] && break; sleep 1; done
	@for f in $$(cd build/slurm-demo-one && ls | grep -v report.json); do cmp build/slurm-demo-one/$$f build/slurm-demo/$$f || exit 1; done
	@echo "== the Slurm build equals the one-process build byte for byte"

# Fuzzing (docs/FUZZING.md): every reader of untrusted bytes under libFuzzer with
# AddressSanitizer, FUZZ_SECONDS a target (FUZZ_TARGETS: all by default). Each runs on a
# working copy of its corpus in build/fuzz; inputs that add coverage are merged back into
# Fuzz/corpus/<target> (kept in the repository, replayed by the tests).
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= json jsonl json-array csv parquet gzip zstd shard tokenizer-json spec
# FUZZ_RUNS=N: each target runs N executions (-runs) instead of FUZZ_SECONDS of time.
FUZZ_RUNS ?=
FUZZ_TIMEOUT ?= 10
FUZZ_LIMIT = $(if $(FUZZ_RUNS),-runs=$(FUZZ_RUNS),-max_total_time=$(FUZZ_SECONDS))
FUZZ_BIN = .build-fuzz/release/tokenmill-fuzz
fuzz: sysdeps
	TOKENMILL_FUZZ=1 swift build -c release --scratch-path .build-fuzz --product tokenmill-fuzz \
	  -Xswiftc -sanitize=fuzzer -Xswiftc -sanitize=address -Xswiftc -use-ld=lld \
	  -Xswiftc -sanitize-coverage=edge,inline-8bit-counters,pc-table,trace-cmp
	@for t in $(FUZZ_TARGETS); do \
	  mkdir -p build/fuzz/$$t build/fuzz/crashes/$$t; cp -n Fuzz/corpus/$$t/* build/fuzz/$$t/ 2>/dev/null; \
	  echo "== $$t ($(FUZZ_LIMIT))"; \
	  TOKENMILL_FUZZ_TARGET=$$t ASAN_OPTIONS=detect_leaks=1 $(FUZZ_BIN) build/fuzz/$$t $(FUZZ_LIMIT) \
	    -max_len=65536 -timeout=$(FUZZ_TIMEOUT) -rss_limit_mb=2048 -artifact_prefix=build/fuzz/crashes/$$t/ -print_final_stats=1 2>build/fuzz/$$t.log; \
	  status=$$?; grep -E "stat::number_of_executed_units|cov:" build/fuzz/$$t.log | tail -2; \
	  if [ $$status -ne 0 ]; then echo "FOUND: see build/fuzz/$$t.log and build/fuzz/crashes/$$t"; exit 1; fi; \
	  TOKENMILL_FUZZ_TARGET=$$t $(FUZZ_BIN) -merge=1 Fuzz/corpus/$$t build/fuzz/$$t 2>/dev/null | tail -0; \
	done
