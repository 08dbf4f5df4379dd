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
## and the unit and decoding tests again on the pure-Python path (fastavro, GENESIS_NATIVE=0).
## Three pytest-xdist workers (two cores: a third pays for the time tests spend waiting on brokers and
## clocks), each with its own session cluster, a test file to a worker, the longest files first
## (tests/conftest.py's order: --no-loadscope-reorder keeps it; xdist would sort files by their number
## of tests and start the one-test files of minutes last); the time per test file goes to
## build/test-timing.md
## The demo sets are built into genesis' cache first (once per machine: minutes of encoding, which
## no test's time limit should carry, and which the workers would otherwise wait on).
## The pure-Python run goes alongside (niced, one process, its output in build/test-pure-python.log,
## shown after the first): it is CPU work that fills the time the first run's tests wait on brokers.
test: setup
	@mkdir -p build
	$(BIN)/python -c "import genesis.demo; genesis.demo.prepare_demo_sets()"
	@GENESIS_NATIVE=0 nice -n 10 $(BIN)/python -m pytest -ra -p no:cacheprovider tests/unit \
		tests/integration/test_decoding.py > build/test-pure-python.log 2>&1 & pure=$$!; \
	$(BIN)/python -m pytest -ra --durations=40 --timing-table -n 3 --dist loadfile --no-loadscope-reorder; first=$$?; \
	wait $$pure; second=$$?; \
	echo "=== the unit and decoding tests again on the pure-Python path (GENESIS_NATIVE=0) ==="; \
	cat build/test-pure-python.log; \
	test $$first -eq 0 -a $$second -eq 0

## test-fast: the edit loop (a few minutes): the unit tests and one integration test per module
## (marked edit_loop), on the shared clusters
test-fast: setup
	$(BIN)/python -c "import genesis.demo; genesis.demo.prepare_demo_sets()"
	$(BIN)/python -m pytest -ra --edit-loop -n 2 --dist loadfile --no-loadscope-reorder

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
