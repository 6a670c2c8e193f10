# Two commands from a fresh clone: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP_RUN := $(VENV)/.installed-run
STAMP_DEV := $(VENV)/.installed-dev

.PHONY: demo test lint format typecheck bench docs dist clean chromium

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP_RUN): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(STAMP_DEV): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[dev,validation]"
	touch $@ $(STAMP_RUN)

demo: $(STAMP_RUN)
	$(BIN)/ml4t-backtest run examples/configs/ml_topn.yaml --out results/demo

test: $(STAMP_DEV) chromium
	$(BIN)/python -m pytest

# The report's browser test needs Debian's Chromium (run as root, as CI does).
chromium:
	@command -v chromium >/dev/null 2>&1 || \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium)

lint: $(STAMP_DEV)
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/ruff format --check src tests benchmarks examples
	$(BIN)/mypy src

format: $(STAMP_DEV)
	$(BIN)/ruff format src tests benchmarks examples
	$(BIN)/ruff check --fix src tests benchmarks examples

bench: $(STAMP_DEV)
	$(BIN)/python benchmarks/bench_core.py
	$(BIN)/python benchmarks/bench_peers.py

# The documentation site, built strictly (a warning fails it) into site/.
docs: $(STAMP_DEV)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

# A wheel and an sdist in dist/.
dist: $(STAMP_DEV)
	$(BIN)/python -m build --outdir dist

clean:
	rm -rf $(VENV) results site dist .pytest_cache .mypy_cache .ruff_cache
	find src -name '*.nbi' -delete -o -name '*.nbc' -delete
