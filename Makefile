# genesis: the two commands of the README are `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup demo test test-fast chaos-long check bench down clean

## setup: .venv with genesis (editable), its test and spark extras, and the Kafka broker's and
## Spark connector's jars from Maven Central
setup: $(STAMP)
	$(BIN)/genesis cluster fetch
	$(BIN)/genesis spark --fetch

# the compiled decoder (native/) is built by the editable install when cargo is on PATH
$(STAMP): pyproject.toml constraints.txt native/Cargo.toml native/Cargo.lock $(wildcard native/src/*.rs)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[test,spark]"
	touch $(STAMP)

## demo: start the local 3-broker cluster, load the demo topics, stream from them as the notebook does
demo: setup
	$(BIN)/genesis cluster up --demo
	$(BIN)/python -m genesis.demo

## test: unit and integration tests (the integration tests start their own cluster on free ports),
## then the unit and decoding tests again on the pure-Python path (fastavro, GENESIS_NATIVE=0)
test: setup
	$(BIN)/python -m pytest -ra --durations=40
	GENESIS_NATIVE=0 $(BIN)/python -m pytest -ra tests/unit tests/integration/test_decoding.py

test-fast: setup
	$(BIN)/python -m pytest -ra -m "not chaos"

## chaos-long: the nemesis (tests/integration/test_nemesis.py) for 30 minutes at a quarter of the LSST
## rate (the full rate would keep ~110 GB of replicas); GENESIS_NEMESIS_SEED=N replays a schedule
chaos-long: setup
	GENESIS_NEMESIS_SECONDS=1800 GENESIS_NEMESIS_RATE=$${GENESIS_NEMESIS_RATE:-2500/40s} \
		$(BIN)/python -m pytest -ra -s tests/integration/test_nemesis.py

## check: lint and format (ruff) and types (mypy) of genesis/; CI runs it before the tests
check: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

## bench: every benchmark under bench/, results into bench/RESULTS.md
bench: setup
	$(BIN)/python bench/run_all.py

## down: stop the demo cluster and remove its data
down:
	$(BIN)/genesis cluster down

clean: down
	rm -rf $(VENV) build *.egg-info
