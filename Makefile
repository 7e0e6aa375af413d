# Two entry points for people (README): `make demo` and `make test`. Both create the development venv on
# first use. The venv is cached outside the clone, keyed by the hash of the dependency declarations
# (.ci/deps_hash.py), so CI and fresh clones reuse it; only the editable install of this clone is redone.
SHELL := /bin/bash
PYTHON ?= python3
M2V_CACHE ?= $(HOME)/.cache/m2v-bench
VENV ?= $(M2V_CACHE)/venv-$(shell $(PYTHON) .ci/deps_hash.py)
BIN := $(VENV)/bin
CONSTRAINTS := requirements/constraints.txt
DEMO_OUT ?= runs/demo
PYTEST_ARGS ?=

# Nothing in tests or the demo may reach a model/dataset hub; 1 OpenMP thread keeps CPU steps fast.
export HF_HUB_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export OMP_NUM_THREADS ?= 1

.PHONY: demo test lint install venv bench browser clean-venvs

demo: install
	$(BIN)/m2v-bench demo --out $(DEMO_OUT)

test: install lint browser
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The leaderboard site is checked in headless Chromium (Debian's package; Playwright's download cannot work here).
browser:
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } || \
		echo "chromium not installed (needs root for apt-get): the browser test will be skipped"

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Point the cached venv's editable install at this clone (a few seconds; no dependency is touched).
install: venv
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation --editable .

venv: $(VENV)/.complete

$(VENV)/.complete:
	@echo "creating the development venv in $(VENV) (first time only; ~2-4 minutes)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "setuptools>=69" wheel
	$(BIN)/python -m pip install --quiet -c $(CONSTRAINTS) --editable ".[dev]"
	$(BIN)/python -m pip check
	touch $@
	@# a new venv replaces the ones made for older dependency declarations (7 GB each)
	find $(M2V_CACHE) -maxdepth 1 -name 'venv-*' ! -path '$(VENV)' -exec rm -rf {} +

bench: install
	$(BIN)/python bench/frames.py
	$(BIN)/python bench/train.py
	$(BIN)/python bench/leaderboard.py

# Remove cached venvs other than the current one.
clean-venvs:
	find $(M2V_CACHE) -maxdepth 1 -name 'venv-*' ! -path '$(VENV)' -exec rm -rf {} +
