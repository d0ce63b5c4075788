# The two commands a newcomer needs: `make demo` and `make test`.
# Everything else is here for day-to-day work.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup bench-setup prometheus-tools demo test unit lint format bench bench-quick broker-start broker-stop broker-status simulator clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

setup: $(STAMP) ## create .venv and install the project with its dev tools

BENCH_STAMP := $(VENV)/.bench-installed

$(BENCH_STAMP): $(STAMP) pyproject.toml
	$(BIN)/python -m pip install --quiet -e ".[dev,bench]"
	touch $(BENCH_STAMP)

bench-setup: $(BENCH_STAMP) ## the project with faust-streaming and matplotlib for the benchmark

# The full benchmark takes long and wants a quiet machine (docs/benchmark.md).
bench: bench-setup ## ours against naive, faust and pass-through; report in out/bench/
	@mkdir -p out/bench
	$(BIN)/streams --log-level WARNING bench --markdown out/bench/report.md --json out/bench/report.json --plot out/bench/throughput.png

bench-quick: bench-setup ## the same in a few minutes, with small counts
	@mkdir -p out/bench
	$(BIN)/streams --log-level WARNING bench --quick --markdown out/bench/quick.md --json out/bench/quick.json --plot out/bench/quick.png

demo: setup ## broker + simulator + sample data + worker, then a summary
	@mkdir -p out
	$(BIN)/streams demo --summary-json out/demo-summary.json

test: setup bench-setup prometheus-tools ## every test; starts and stops its own Kafka broker and simulator
	$(BIN)/python -m pytest

# The dashboard and alert tests run the real prometheus and promtool. As root,
# a missing pair comes from the distribution's package; its service is stopped
# again at once, because the tests start their own server on a free port.
prometheus-tools: ## prometheus and promtool on PATH (installed as root when missing)
	@if command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1; then \
		exit 0; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		apt-get update && \
		apt-get install -y --no-install-recommends prometheus && \
		if [ -d /run/systemd/system ]; then \
			systemctl disable --now prometheus.service || true; \
		elif [ -x /etc/init.d/prometheus ]; then \
			/etc/init.d/prometheus stop || true; \
		fi; \
	else \
		echo "prometheus and promtool are not on PATH: install them, for example" \
			"with 'sudo apt-get install prometheus' on Debian or Ubuntu, or put the" \
			"binaries of a Prometheus release on PATH, then run make test again" >&2; \
		exit 1; \
	fi

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
