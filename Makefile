# The two commands of the README: `make serve` and `make test`. Both set everything up first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: serve test lint install chromium screenshots valgrind

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

# Debian's Chromium for the console's browser tests (Playwright drives it; its own browser
# download cannot work here). Installed when missing; without root or apt the tests skip.
chromium:
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium) \
		|| echo "chromium not installed: the console's browser tests will skip"

# Debian's valgrind, for bench/instructions.py (instructions per call under callgrind).
valgrind:
	command -v valgrind >/dev/null || (apt-get update -qq && apt-get install -y -qq valgrind)

test: lint $(CLIENTS)/node_modules/.installed chromium
	$(BIN)/pytest

# Screenshots of every console page at 360 px and 1280 px, into docs/console/.
screenshots: $(VENV)/.test chromium
	$(BIN)/python scripts/screenshots.py
