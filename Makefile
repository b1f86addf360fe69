# Quick start: `make demo` and `make test`. Everything is installed into .venv by this file.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DEMO_DB ?= demo.duckdb
PYTEST_ARGS ?=

.PHONY: demo test lint bench clean

$(BIN)/flopledger: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

demo: $(BIN)/flopledger
	rm -f $(DEMO_DB) $(DEMO_DB).wal
	$(BIN)/flopledger demo --db $(DEMO_DB)

# pytest exits 5 when a marker selects no test; that is not a failure.
test: $(BIN)/flopledger
	$(BIN)/python -m pytest $(PYTEST_ARGS); rc=$$?; if [ $$rc -eq 5 ]; then rc=0; fi; exit $$rc

lint: $(BIN)/flopledger
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy

bench: $(BIN)/flopledger
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) $(DEMO_DB) $(DEMO_DB).wal .pytest_cache .mypy_cache .ruff_cache
