# Tokenmill: the two commands a newcomer needs are `make run` and `make test`.
# Both install what is missing first: libzstd-dev, libxxhash-dev, liblz4-dev, libbrotli-dev
# and pkg-config through apt-get (as root or with sudo), and the Python packages into
# build/venv.

SWIFT ?= swift
VENV := build/venv
PY := $(VENV)/bin/python
BIN := .build/release/tokenmill
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: all deps sysdeps venv browser build run test test-swift test-python bench bench-minhash bench-ingest bench-e2e bench-export slurm-demo clean

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

run: build
	$(BIN) build Specs/demo.json --out build/demo
	$(BIN) verify build/demo
	$(BIN) inspect build/demo

test: deps $(VENV)/.trainers browser
	$(SWIFT) build -c release --product tokenmill
	$(SWIFT) test -c release
	TOKENMILL_BIN=$(CURDIR)/$(BIN) $(PY) -m pytest -q python/tests

# Benchmarks: peers that install from PyPI are added to the venv (failures are reported
# in the table, not fatal).
bench: deps build
	$(SWIFT) build -c release --product tokenmill-bench
	-@$(VENV)/bin/pip install -q fastokens splintr-rs quicktok-v1 rs-bpe rensa 2>/dev/null
	$(PY) Benchmarks/bench_tokenizers.py
	$(PY) Benchmarks/bench_minhash.py

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
