# mailinfra — every target installs what it needs on first use, so each is the only command a
# newcomer types. Dependencies come from uv.lock (uv is bootstrapped into .tools/ with pip).
SHELL := /bin/bash
PYTHON ?= python3
UV_VERSION := 0.13.9
UV := .tools/bin/uv
VENV := .venv
BIN := $(VENV)/bin
STACK ?= dev
PYTEST_ARGS ?=

.PHONY: install preview test lint lab bench clean help

help:
	@echo "make preview [STACK=dev]   plan a stack offline: build/STACK/{plan.json,review.md,dns/,hosts/}"
	@echo "make test                  the whole test suite (real postconf/opendkim/knot where installed)"
	@echo "make lint                  ruff + mypy"
	@echo "make lab [STACK=dev]       run the stack for real in a network namespace (root, Linux)"
	@echo "make bench                 benchmarks; results in docs/BENCHMARKS.md"

$(UV):
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(VENV)/.synced: $(UV) uv.lock pyproject.toml
	# Byte-compiled at install: the provider SDKs cost ~2 s to compile on every run otherwise.
	UV_COMPILE_BYTECODE=1 $(UV) sync --frozen --quiet
	# Our own modules too (uv compiles site-packages only): ~0.25 s per run where bytecode writing is off.
	$(BIN)/python -m compileall -q mailinfra components >/dev/null
	@touch $@

install: $(VENV)/.synced

preview: install
	$(BIN)/mailinfra preview $(STACK)

test: install
	$(BIN)/pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy

# The lab plans "as of" the day every IP is warm, so no pool is still gated or paced to a crawl.
lab: install
	$(BIN)/mailinfra lab up $(STACK) --as-of warmed
	$(BIN)/mailinfra lab send $(STACK) --count 3 || ($(BIN)/mailinfra lab down $(STACK); exit 1)
	$(BIN)/mailinfra lab drill $(STACK) || ($(BIN)/mailinfra lab down $(STACK); exit 1)
	$(BIN)/mailinfra lab report $(STACK) --wait 60 || ($(BIN)/mailinfra lab down $(STACK); exit 1)
	$(BIN)/mailinfra lab down $(STACK)

# Benchmarks rewrite their own section of docs/BENCHMARKS.md (medians and ratios, measured side by side).
bench: install
	$(BIN)/python bench/pulumi_mock.py --write docs/BENCHMARKS.md
	$(BIN)/python bench/preview_bench.py --runs 7 --write docs/BENCHMARKS.md
	$(BIN)/python bench/drift_bench.py prod --write
	$(BIN)/python bench/lab_bench.py dev --write   # root: runs the lab topology next to stock Postfix

clean:
	rm -rf build .pytest_cache .mypy_cache .ruff_cache
