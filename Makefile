# The commands the README gives. `make run` and `make test` work on a fresh clone.
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
PYTHON ?= python3

.PHONY: install run test lint unit bench histories clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: install
	$(PY) embedded.py

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

test: lint
	$(VENV)/bin/pytest

# Facade vs bare SDK on a private embedded stack; e.g. BENCH_ARGS='--sessions 10000'.
bench: install
	$(PY) -m bench.run $(BENCH_ARGS)

histories: install
	$(PY) -m tests.histories.capture

unit: install
	$(VENV)/bin/pytest tests/workflows/test_domain.py

clean:
	rm -rf $(VENV) .data .mypy_cache .pytest_cache .ruff_cache
