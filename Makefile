# The two commands: `make demo` and `make test`. Everything else is for running pieces by hand.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export DWH_DATA_DIR ?= $(CURDIR)/.data
export DAGSTER_HOME ?= $(DWH_DATA_DIR)/dagster

.PHONY: demo test install install-dev dbt-parse lint pytest dev warehouse-start warehouse-stop clean

## make demo: install, start the warehouse and the sandbox CRMs, materialize every asset, print the results
demo: install
	$(BIN)/python scripts/demo.py

## make test: install dev extras, lint (ruff, sqlfluff), run pytest
test: install-dev lint pytest

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(VENV)/.installed $@

install: $(VENV)/.installed dbt-parse $(DAGSTER_HOME)/dagster.yaml
install-dev: $(VENV)/.installed-dev dbt-parse $(DAGSTER_HOME)/dagster.yaml

## dbt-parse: prepare dbt's manifest (Dagster reads it; nothing parses dbt at import time)
dbt-parse:
	cd dbt && DWH_PG_HOST=unused DWH_PG_PORT=5432 DWH_PG_DBNAME=unused DWH_PG_USER=unused \
		../$(BIN)/dbt parse --quiet --profiles-dir .

$(DAGSTER_HOME)/dagster.yaml: dagster_project/dagster.yaml
	mkdir -p $(DAGSTER_HOME)
	cp $< $@

lint:
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	eval "$$($(BIN)/python -m dwh warehouse env)" && $(BIN)/sqlfluff lint dbt/models

pytest:
	$(BIN)/pytest

## dev: the Dagster UI on http://127.0.0.1:3000 (schedules are off until you turn them on)
dev: install
	$(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

warehouse-start: install
	$(BIN)/python -m dwh warehouse start

warehouse-stop:
	$(BIN)/python -m dwh warehouse stop

clean: warehouse-stop
	rm -rf $(DWH_DATA_DIR) dbt/target
