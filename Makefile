# runexp-tui — every target creates the virtual environment it needs.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PYTEST := $(BIN)/python -m pytest -q -p no:cacheprovider
# pytest-xdist workers (tests that cannot share the machine are kept on one worker: see
# tests/conftest.py). make test defaults to one process (JOBS=0), the steadiest on a loaded
# 2-core CI box; JOBS=2 halves its time. make test-fast uses FAST_JOBS workers.
JOBS   ?= 0
FAST_JOBS ?= 2

.DEFAULT_GOAL := help
.PHONY: help demo test test-fast check lint fmt bench reliability screenshots sysdeps clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS=":.*## "} {printf "  make %-8s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo 'Installing runexp-tui and its dev tools into $(VENV) (first time only)…'
	@$(BIN)/python -m pip install -q --disable-pip-version-check --upgrade pip
	@# PYTHONWARNINGS reaches pip's isolated build: setuptools' editable-install banner stays out
	@PYTHONWARNINGS=ignore $(BIN)/python -m pip install -q --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

sysdeps: ## system packages the tests drive for real: tmux, sshd, Slurm + munge (installed when root)
	@scripts/sysdeps.sh

demo: $(STAMP) ## run the dashboard on the bundled example repo (simulated GPUs where none exist)
	$(BIN)/runexp-tui --demo

test: $(STAMP) sysdeps ## run the whole test suite (one process; JOBS=2 for two workers), then the snapshot tests
	$(PYTEST) -n $(JOBS) --dist loadgroup --ignore=tests/snapshots
	$(PYTEST) tests/snapshots

test-fast: $(STAMP) ## unit, Pilot and snapshot tests, without the slow real-process and tmux ones
	$(PYTEST) -n $(FAST_JOBS) --dist loadgroup -m 'not slow and not e2e'

check: $(STAMP) ## ruff format + lint, mypy on the whole package, import contracts, then the tests
	$(BIN)/ruff format --check runexp_tui tests bench
	$(BIN)/ruff check runexp_tui tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(MAKE) test

fmt: $(STAMP) ## format the code
	$(BIN)/ruff format runexp_tui tests bench
	$(BIN)/ruff check --fix runexp_tui tests bench

screenshots: $(STAMP) ## redraw the app's screenshots (the snapshot tests) and copy them into docs/screens for the guide
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/snapshots --snapshot-update
	$(BIN)/python scripts/screenshots.py

reliability: $(STAMP) ## the long reliability run (10,000 generated scripts, 200 kills, write faults, NVML hangs, memory; a bounded one is in make test)
	$(BIN)/python scripts/reliability.py --write

bench: $(STAMP) ## run the benchmarks (they print figures; not part of make test)
	@for b in bench/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean: ## remove the virtual environment and caches
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
