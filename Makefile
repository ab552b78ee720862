# Every target creates .venv on first use: a fresh clone needs nothing but Python 3.11+.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test lint bench soak clean

# Bytecode is written: the tests start hundreds of Python processes (suites, the CLI), and with
# PYTHONDONTWRITEBYTECODE=1 (some images set it) each compiled deployloop again and pytest
# rewrote every plugin again: 5 CPU-minutes for the suite from a fresh clone instead of 3.
unexport PYTHONDONTWRITEBYTECODE

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/deployloop demo

test: $(STAMP)
	$(BIN)/pytest -q -n 2 --dist loadgroup

lint: $(STAMP)
	$(BIN)/ruff check deployloop tests
	$(BIN)/ruff format --check deployloop tests
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python -m tests.bench

soak: $(STAMP)
	$(BIN)/python -m tests.soak

clean:
	rm -rf $(VENV) build *.egg-info
