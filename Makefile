# make demo   — sets up .venv if needed, then runs the sample day on the embedded SQLite database
# make test   — sets up .venv if needed, then runs the whole suite (SQLite and PostgreSQL)
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

export PREFECT_SERVER_ANALYTICS_ENABLED ?= false
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS ?= 90

.PHONY: setup demo test lint bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml reconcile/_gb18030.c
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "$(PYTHON) is needed (Python 3.11)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: setup
	$(BIN)/recon demo

test: setup
	$(BIN)/pytest -q

lint: setup
	$(BIN)/ruff check flows reconcile schemas tests bench
	$(BIN)/mypy

bench: setup
	$(BIN)/pip install --quiet -e '.[test,bench]'
	$(BIN)/python bench/bench_night.py
	$(BIN)/python bench/bench_run.py --loans 140000
	$(BIN)/python bench/bench_bulk_write.py --rows 1000000
	$(BIN)/python bench/bench_ingest.py --records 1000000
	$(BIN)/python bench/bench_gb18030.py --records 1000000
	$(BIN)/python bench/bench_matcher.py --records 1000000
	$(BIN)/python bench/bench_workbook.py --rows 100000

clean:
	rm -rf $(VENV) var
