# The two commands of the README: `make serve` and `make test`. Both set everything up first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: serve test lint install

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Stamps re-run the install whenever pyproject.toml changes.
$(VENV)/.runtime: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.runtime

install: $(VENV)/.runtime

serve: $(VENV)/.runtime
	$(BIN)/bytespike serve

lint: $(VENV)/.test
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests
	$(BIN)/mypy

# The npm clients the end-to-end tests drive (Codex CLI, Claude Code); skipped without npm.
CLIENTS := tests/clients
$(CLIENTS)/node_modules/.installed: $(CLIENTS)/package-lock.json
	if command -v npm >/dev/null; then npm ci --prefix $(CLIENTS) --no-audit --no-fund --silent && touch $@; fi

test: lint $(CLIENTS)/node_modules/.installed
	$(BIN)/pytest
