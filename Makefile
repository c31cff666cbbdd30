# Every target creates .venv when it is missing and installs what it needs into it.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# `make demo` installs only what the demo needs; every other target installs everything.
DEMO_EXTRAS ?= demo
EXTRAS      ?= test,demo,bench,hf,s3,parquet,reference,ray,jax
HASH        := $(shell cat pyproject.toml | cksum | cut -d' ' -f1)
STAMP       := $(VENV)/.installed-all-$(HASH)
DEMO_STAMP  := $(VENV)/.installed-demo-$(HASH)

# Quiet TensorFlow for the tests and benchmarks. Not for `make demo`: `hublayer` filters
# TensorFlow's start-up notices itself, and a TF_CPP_MIN_LOG_LEVEL set from outside turns
# that filter off (level 2 does not hide the lines logged before absl starts).
pytest pytest-fast bench bench-full: export TF_CPP_MIN_LOG_LEVEL ?= 2
export PYTHONDONTWRITEBYTECODE = 1

.PHONY: demo test lint typecheck pytest pytest-fast bench bench-full clean venv

venv: $(STAMP)

# A stamp names the pyproject.toml it was installed from; a changed file reinstalls.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[$(EXTRAS)]"
	rm -f $(VENV)/.installed-*
	touch $@ $(DEMO_STAMP)

$(DEMO_STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[$(DEMO_EXTRAS)]"
	rm -f $(VENV)/.installed-demo-*
	touch $@

## make demo: the main job on the built-in default, fully offline.
demo: $(DEMO_STAMP)
	$(BIN)/hublayer demo

## make test: ruff, mypy, then the whole pytest suite (slow tests included).
test: lint typecheck pytest

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/ruff format --check src tests benchmarks examples

typecheck: $(STAMP)
	$(BIN)/mypy

# Two workers, one test file each at a time (module fixtures such as a local Ray or an
# exported MiniLM are built once); the slowest files run in subprocesses of their own anyway.
PYTEST_WORKERS ?= 2

pytest: $(STAMP)
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadfile

## make pytest-fast: everything but the tests marked slow.
pytest-fast: $(STAMP)
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadfile -m "not slow"

## make bench: the quick benchmark suite (under 10 minutes on 2 cores).
bench: $(STAMP)
	$(BIN)/python -m benchmarks --suite quick

bench-full: $(STAMP)
	$(BIN)/python -m benchmarks --suite full

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache build dist src/*.egg-info
