# The two commands a newcomer needs: `make demo` and `make test` (see README).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Quiet installs: the demo's address and passwords should not scroll away under pip's notices.
PIP := $(BIN)/python -m pip --quiet --disable-pip-version-check

.PHONY: demo test lint format browser-deps fuzz

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(PIP) install -e ".[dev]"
	touch $@

demo: $(VENV)/.installed
	DEBUG=$${DEBUG:-1} $(BIN)/python manage.py demo

# Browser tests drive Debian's Chromium; install it when we can (root with apt), otherwise
# those tests are skipped with a message saying so.
browser-deps:
	@if [ ! -x /usr/bin/chromium ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && apt-get install -y -qq chromium >/dev/null; fi

test: $(VENV)/.installed browser-deps
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.installed
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

format: $(VENV)/.installed
	$(BIN)/ruff format . && $(BIN)/ruff check --fix .

# Schemathesis against the live API schema (no 5xx, no response contradicting the schema).
fuzz: $(VENV)/.installed
	scripts/fuzz-api $${EXAMPLES:-10}
