# Two commands: `make demo` runs the main job on embedded defaults; `make test` runs every gate.
# Both set up a fresh Debian machine first (system packages, uv, the locked Python env, llama-server).
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

UV_VERSION   := 0.13.9
APT_PACKAGES := redis-server nix-bin wordnet-base dataset-fashion-mnist cmake g++ make git acl
PYDIR        := python
UV           := uv
RUN          := cd $(PYDIR) && $(UV) run --locked
SUDO         := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
export EMILY_LLAMA_SERVER_CACHE ?= $(HOME)/.cache/emily
# Bytecode caches are what make Python start fast: every CLI call, DVC stage, MLflow and Feast
# server recompiles thousands of modules without them (`emily status` 3.7 s instead of 1.7 s).
unexport PYTHONDONTWRITEBYTECODE

.PHONY: help setup system-deps uv python-env llama-server lint typecheck nix-check pytest test demo bench clean

help:
	@echo "make demo   - set up everything, start the local stack and run the main job"
	@echo "make test   - set up everything and run lint, types, Nix checks and the test suite"
	@echo "make setup  - only the set-up steps"

setup: system-deps uv python-env llama-server

system-deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq; \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi
	@# Debian starts redis-server as a system service; we run our own per state dir.
	@if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet redis-server 2>/dev/null; then $(SUDO) systemctl stop redis-server || true; fi

uv:
	@if ! command -v $(UV) >/dev/null 2>&1 || [ "$$($(UV) --version | cut -d' ' -f2)" != "$(UV_VERSION)" ]; then \
	  echo "installing uv $(UV_VERSION)"; python3 -m pip install --quiet "uv==$(UV_VERSION)"; \
	fi

python-env: uv
	cd $(PYDIR) && $(UV) sync --locked

llama-server:
	@bash scripts/build-llama-server.sh "$(EMILY_LLAMA_SERVER_CACHE)" >/dev/null

lint: python-env
	$(RUN) ruff check src tests
	$(RUN) ruff format --check src tests

typecheck: python-env
	$(RUN) mypy

nix-check:
	bash scripts/nix-check.sh

pytest: setup
	$(RUN) pytest -p no:cacheprovider --durations=25 --cov=emily --cov-report=term --cov-fail-under=85

test: setup lint typecheck nix-check pytest

demo: setup
	$(RUN) emily demo

clean:
	rm -rf $(PYDIR)/.venv demo-report
