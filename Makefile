# Two entry points for people (README): `make demo` and `make test`. Both create this clone's venv (.venv)
# on first use, exactly from requirements/lock.txt (every package pinned with its hashes), with a pinned uv
# bootstrapped from the package index. Downloads are cached outside the clone in
# ~/.cache/m2v-bench/uv-cache-<hash of the lock>; uv hard-links them into .venv and compiles the bytecode, so a
# second clone's venv takes about half a minute. A lock change rebuilds .venv; nothing else does.
SHELL := /bin/bash
PYTHON ?= python3
M2V_CACHE ?= $(HOME)/.cache/m2v-bench
LOCK := requirements/lock.txt
UV_VERSION := $(shell sed -n 's/^uv==\([0-9.]*\).*/\1/p' requirements/uv.txt)
UV_BIN := $(M2V_CACHE)/uv-$(UV_VERSION)/bin/uv
UV := $(PYTHON) .ci/uv.py $(UV_BIN)
LOCK_HASH := $(shell sha256sum $(LOCK) | cut -c1-16)
export UV_CACHE_DIR ?= $(M2V_CACHE)/uv-cache-$(LOCK_HASH)
VENV ?= .venv
BIN := $(VENV)/bin
DEMO_OUT ?= runs/demo
PYTEST_ARGS ?=
# How the lock is resolved: the platform and Python that CI and the development machines run.
LOCK_TARGET := --python-version 3.11 --python-platform x86_64-manylinux_2_28
# Where `make canary` / `make lowest` build their throwaway venvs.
SCRATCH ?= $(M2V_CACHE)/scratch

# Nothing in tests or the demo may reach a model/dataset hub; 1 OpenMP thread keeps CPU steps fast.
export HF_HUB_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export OMP_NUM_THREADS ?= 1

.PHONY: demo test lint install venv bench browser lock canary lowest

demo: install
	$(BIN)/m2v-bench demo --out $(DEMO_OUT)

test: install lint browser
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The leaderboard site is checked in headless Chromium (Debian's package; Playwright's download cannot work here).
browser:
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } || \
		echo "chromium not installed (needs root for apt-get): the browser test will be skipped"

# ruff, then import-linter's layer and no-cycle contracts (pyproject.toml [tool.importlinter]) on the package as
# it installs (.ci/lint_imports.py lays it out: grimp cannot see the editable install's mapped folders).
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python .ci/lint_imports.py

install: $(VENV)/.editable

venv: $(VENV)/.lock-$(LOCK_HASH)

# The pinned uv, installed with pip from the package index, hash-checked (requirements/uv.txt).
$(UV_BIN):
	$(PYTHON) -m pip install --quiet --require-hashes --no-deps --target $(M2V_CACHE)/uv-$(UV_VERSION) -r requirements/uv.txt

# The venv is exactly the lock: `uv pip sync` installs what it lists and removes anything else, then
# .ci/check_lock.py compares the installed set with the lock. The stamp names the lock's hash.
$(VENV)/.lock-$(LOCK_HASH): $(LOCK) | $(UV_BIN)
	@echo "creating $(VENV) from $(LOCK) (first time, or the lock changed)"
	rm -rf $(VENV)
	$(UV) venv --quiet --python $(PYTHON) $(VENV)
	$(UV) pip sync --quiet --compile-bytecode --python $(BIN)/python --require-hashes $(LOCK)
	$(BIN)/python .ci/check_lock.py $(LOCK)
	touch $@
	@# download caches of older locks go (the venvs made from them keep their hard-linked files)
	find $(M2V_CACHE) -maxdepth 1 -name 'uv-cache-*' ! -path '$(UV_CACHE_DIR)' -exec rm -rf {} +

# This clone's own editable install of m2v-bench (redone when the lock or the package metadata change).
$(VENV)/.editable: $(VENV)/.lock-$(LOCK_HASH) pyproject.toml
	$(UV) pip install --quiet --python $(BIN)/python --no-deps --no-build-isolation --editable .
	touch $@

# Re-resolve the lock after a change of pyproject.toml's ranges, keeping every pin that still fits;
# `make lock UPGRADE=1` takes the newest versions allowed (README "Dependencies": refresh, canary, commit).
lock: | $(UV_BIN)
	$(UV) pip compile --quiet pyproject.toml --extra dev -c requirements/constraints.txt --generate-hashes \
		$(LOCK_TARGET) $(if $(UPGRADE),--upgrade) --custom-compile-command "make lock" -o $(LOCK)

# The newest releases the ranges allow (canary) or the lowest ones they name (lowest), in a throwaway venv,
# through the smoke subset (an lmms-eval run, a training step, a leaderboard submit); prints what differs
# from the lock. Not part of CI: they resolve against today's index, which is what they are for.
canary lowest: | $(UV_BIN)
	rm -rf $(SCRATCH)/$@ && mkdir -p $(SCRATCH)/$@
	$(UV) pip compile --quiet pyproject.toml --extra dev -c requirements/constraints.txt $(LOCK_TARGET) \
		$(if $(filter lowest,$@),--resolution lowest-direct) -o $(SCRATCH)/$@/requirements.txt
	$(PYTHON) .ci/check_lock.py $(LOCK) --diff $(SCRATCH)/$@/requirements.txt
	$(UV) venv --quiet --python $(PYTHON) $(SCRATCH)/$@/venv
	$(UV) pip sync --quiet --compile-bytecode --python $(SCRATCH)/$@/venv/bin/python $(SCRATCH)/$@/requirements.txt
	$(UV) pip install --quiet --python $(SCRATCH)/$@/venv/bin/python --no-deps --no-build-isolation . && rm -rf build
	cd $(SCRATCH)/$@ && venv/bin/python -m pytest -p no:cacheprovider -m smoke $(CURDIR)/tests

bench: install
	$(BIN)/python bench/frames.py
	$(BIN)/python bench/train.py
	$(BIN)/python bench/leaderboard.py
	$(BIN)/python bench/probe.py
	OMP_NUM_THREADS=1 $(BIN)/python bench/eval.py
