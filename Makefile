# Two commands on a fresh machine: `make demo` and `make test`.
# Each creates .venv and installs what it needs (package registries only).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: demo test test-fast lint install install-dev clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip

# Stamps are keyed on pyproject.toml so a dependency change reinstalls.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install torch==2.13.0
	$(BIN)/pip install -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install torch==2.13.0
	$(BIN)/pip install -e '.[dev]'
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

demo: $(VENV)/.installed
	$(BIN)/reidbench demo

test: lint
	$(BIN)/python -m pytest

# The quick loop: everything but the tests marked slow (end-to-end runs, real models).
test-fast: $(VENV)/.installed-dev
	$(BIN)/ruff check src tests bench
	$(BIN)/python -m pytest -m "not slow"

# ruff (lint + format) and mypy (settings and pinned version in pyproject.toml).
lint: $(VENV)/.installed-dev
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/python -m mypy

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info
