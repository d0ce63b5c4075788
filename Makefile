# The two commands a newcomer needs: `make demo` and `make test`.
# Everything else is here for day-to-day work.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test unit lint format broker-start broker-stop broker-status simulator clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

setup: $(STAMP) ## create .venv and install the project with its dev tools

demo: setup ## broker + simulator + sample data + worker, then a summary
	@mkdir -p out
	$(BIN)/streams demo --summary-json out/demo-summary.json

test: setup ## every test; starts and stops its own Kafka broker and simulator
	$(BIN)/python -m pytest

unit: setup ## unit tests only (no broker, no network)
	$(BIN)/python -m pytest tests/unit

lint: setup ## ruff and mypy --strict
	$(BIN)/ruff check streams tests
	$(BIN)/ruff format --check streams tests
	$(BIN)/mypy

format: setup
	$(BIN)/ruff format streams tests
	$(BIN)/ruff check --fix streams tests

broker-start: setup
	$(BIN)/streams broker start

broker-stop: setup
	$(BIN)/streams broker stop

broker-status: setup
	$(BIN)/streams broker status

simulator: setup ## the DeepSeek-compatible simulator on 127.0.0.1:8089
	$(BIN)/streams simulate-llm --port 8089

clean:
	rm -rf .state out .pytest_cache .mypy_cache .ruff_cache
