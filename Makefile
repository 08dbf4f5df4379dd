# genesis: the two commands of the README are `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup demo test test-fast bench down clean

## setup: .venv with genesis (editable) and its test extras, and the Kafka jars from Maven Central
setup: $(STAMP)
	$(BIN)/genesis cluster fetch

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[test]"
	touch $(STAMP)

## demo: start the local 3-broker cluster, load the demo topics, stream from them as the notebook does
demo: setup
	$(BIN)/genesis cluster up --demo
	$(BIN)/python -m genesis.demo

## test: unit and integration tests (the integration tests start their own cluster on free ports)
test: setup
	$(BIN)/python -m pytest -ra

test-fast: setup
	$(BIN)/python -m pytest -ra -m "not chaos"

## bench: every benchmark under bench/, results into bench/RESULTS.md
bench: setup
	$(BIN)/python bench/run_all.py

## down: stop the demo cluster and remove its data
down:
	$(BIN)/genesis cluster down

clean: down
	rm -rf $(VENV) build *.egg-info
