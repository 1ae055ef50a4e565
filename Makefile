# Every habit is a target. `make demo` and `make test` set everything up themselves.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install system-deps demo test test-unit lint format typecheck bench check-rules settings-doc clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

## install: the virtual environment with the project and its dev tools, and the servers tests use
install: $(STAMP) system-deps

## system-deps: PostgreSQL, Redis, Prometheus, Alertmanager (apt when root)
system-deps:
	@scripts/system-deps.sh

## demo: Prometheus + demo app + watchdog; inject a 5xx spike; watch it roll back once
demo: install
	$(BIN)/python -m examples.demo

## test: the whole suite against real servers started by fixtures
test: install
	$(BIN)/python -m pytest -q -p no:cacheprovider

test-unit: $(STAMP)
	$(BIN)/python -m pytest -q tests/unit

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

typecheck: $(STAMP)
	$(BIN)/mypy

## bench: benchmarks at full size; results go to docs/benchmarks.md
bench: install
	$(BIN)/python -m bench

## settings-doc: regenerate docs/settings.md from the Settings model (a test checks it)
settings-doc: $(STAMP)
	$(BIN)/python -m watchdog.settingsdoc > docs/settings.md

check-rules: $(STAMP)
	$(BIN)/watchdog check rules/

clean:
	rm -rf $(VENV) .demo .pytest_cache .mypy_cache .ruff_cache test-artifacts
