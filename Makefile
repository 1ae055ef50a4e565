# Every habit is a target. `make demo` and `make test` set everything up themselves.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEMO_STAMP := $(VENV)/.installed-demo

.PHONY: install install-demo system-deps demo test test-unit lint format typecheck bench check-rules settings-doc clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

# The demo needs only the project's runtime dependencies (examples/ imports nothing
# else): no dev extra. It runs from this checkout (`python -m watchdog`, the repository
# its working directory), so the project itself is not built (no build environment,
# no setuptools to fetch); and nothing is byte-compiled ahead (Python compiles what it
# imports). A cold install is most of a cold `make demo` (README).
$(DEMO_STAMP): pyproject.toml | $(VENV)/bin/python
	$(BIN)/python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > $(VENV)/requirements-demo.txt
	$(BIN)/python -m pip install --quiet --no-compile -r $(VENV)/requirements-demo.txt
	touch $(DEMO_STAMP)

$(STAMP): pyproject.toml | $(VENV)/bin/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP) $(DEMO_STAMP)

## install: the virtual environment with the project and its dev tools, and the servers tests use
install: $(STAMP) system-deps

## install-demo: the project alone, and the Debian packages the demo runs (Prometheus)
install-demo: $(DEMO_STAMP)
	@scripts/system-deps.sh demo

## system-deps: every Debian package scripts/system-deps.txt lists (apt when root)
system-deps:
	@scripts/system-deps.sh

## demo: Prometheus + demo app + watchdog; inject a 5xx spike; watch it roll back once
demo: install-demo
	$(BIN)/python -m tests.preflight demo
	$(BIN)/python -m examples.demo

## test: the whole suite against real servers started by fixtures (the preflight first:
## a missing program fails in seconds, naming its Debian package), on 3 xdist workers:
## most tests wait on servers, so a few at once share 2 cores (tests/conftest.py)
TEST_WORKERS ?= 3
test: install
	$(BIN)/python -m tests.preflight test
	$(BIN)/python -m pytest -q -p no:cacheprovider -ra -n $(TEST_WORKERS) --dist loadscope --no-loadscope-reorder

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
	$(BIN)/python -m watchdog.config.settingsdoc > docs/settings.md

check-rules: $(STAMP)
	$(BIN)/watchdog check rules/

clean:
	rm -rf $(VENV) .demo .pytest_cache .mypy_cache .ruff_cache test-artifacts
