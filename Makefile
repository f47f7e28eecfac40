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

# `make demo LLM=local`: expansions come from SmolLM2-135M-Instruct on a local llama.cpp
# server (llama-cpp-python in var/llama-venv, set up by scripts/llama-setup and started by
# the demo) instead of the simulator. The server takes one request at a time and must not
# interrupt a running one for a new one: --interrupt_requests False (see README).
LLM ?= simulated
LLAMA_PORT ?= 8793
LLAMA_N_CTX ?= 8192
LLAMA_ALIAS := smollm2-135m-local

demo: $(VENV)/.installed
ifeq ($(LLM),local)
	@eval "$$(scripts/llama-setup)" && \
	DEBUG=$${DEBUG:-1} LLM_BASE_URL=http://127.0.0.1:$(LLAMA_PORT)/v1 LLM_MODEL=$(LLAMA_ALIAS) \
	LLM_API_KEY=$${LLM_API_KEY:-local} \
	DEMO_LLM_SERVER="$$LLAMA_SERVER_PYTHON -m llama_cpp.server --model $$LLAMA_MODEL_PATH \
	--model_alias $(LLAMA_ALIAS) --host 127.0.0.1 --port $(LLAMA_PORT) --n_ctx $(LLAMA_N_CTX) \
	--interrupt_requests False" $(BIN)/python manage.py demo
else ifeq ($(LLM),simulated)
	DEBUG=$${DEBUG:-1} $(BIN)/python manage.py demo
else
	@echo "LLM must be simulated (the default) or local, not $(LLM)" >&2; exit 2
endif

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
