# framebus developer targets. `make` alone lists them.
.DEFAULT_GOAL := help
SHELL := /bin/bash

VENV       ?= .venv
PY         := $(VENV)/bin/python
PYTEST_ARGS ?=
CAMERAS    ?= 1
ALGORITHM  ?= 0

.PHONY: help setup setup-run test compose-test run lint fmt clean bench soak

help: ## list the targets
	@echo "framebus make targets:"
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  %-10s %s\n", $$1, $$2}'
	@echo "variables: PYTEST_ARGS='...' (test), CAMERAS=2 (run), ALGORITHM=1 (run), TRANSPORT=redis|http (run), QUICK=1 (bench)"

setup: ## install Debian packages (if root) and the venv for tests/bench
	@scripts/setup.sh test

setup-run: ## minimal set-up for `make run` (redis-server + venv)
	@scripts/setup.sh run

test: setup ## run the test suite (PYTEST_ARGS='-k foo' to select)
	$(PY) -m pytest $(PYTEST_ARGS)

compose-test: setup ## `docker compose up` for real: builds, starts the stacks, checks them (root or a Docker engine)
	scripts/compose_test.sh

run: setup-run ## run redis (if needed) + gateway + capture + viewer locally (CAMERAS=2, TRANSPORT=http)
	CAMERAS=$(CAMERAS) ALGORITHM=$(ALGORITHM) scripts/run_local.sh

lint: setup ## ruff check, ruff format --check, mypy
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy shared services framebus tests bench

fmt: ## ruff fix + format
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean: ## remove caches, .run/, build artefacts (keeps .venv; `make clean VENV_TOO=1` removes it)
	rm -rf .pytest_cache .mypy_cache .ruff_cache .hypothesis .run build *.egg-info
	find . -path ./.venv -prune -o -name __pycache__ -type d -exec rm -rf {} +
	$(if $(VENV_TOO),rm -rf $(VENV),)

# ---- bench / soak (owned by the bench authors; modules bench/__main__.py, bench/soak.py) ----
bench: setup ## benchmarks (QUICK=1 for a short run)
	$(PY) -m bench $(if $(QUICK),--quick,)

soak: setup ## long-running soak test
	$(PY) -m bench.soak
# ---- end bench / soak ----
