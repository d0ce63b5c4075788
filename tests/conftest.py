"""Session-wide services for the tests: the real broker and the LLM simulator.

The broker is the project's own single-node KRaft broker on test ports
(29092/29093, or ``STREAMS_TEST_BROKER_PORT`` and the port after it), started
once per session and stopped at the end. Set ``STREAMS_TEST_BOOTSTRAP`` to use
an existing cluster instead. Nothing skips
when the broker cannot start: the broker tests fail, loudly.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from streams import paths
from streams.broker.runtime import start_broker, stop_broker
from streams.demo.local_services import SimulatorProcess, start_simulator
from streams.settings import BrokerSettings

_PORT = int(os.environ.get("STREAMS_TEST_BROKER_PORT", "29092"))
TEST_BROKER = BrokerSettings(
    port=_PORT,
    controller_port=_PORT + 1,
    state_dir=paths.STATE_DIR / f"test-broker-{_PORT}",
)


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """A reachable Kafka bootstrap address for the whole session."""
    external = os.environ.get("STREAMS_TEST_BOOTSTRAP")
    if external:
        yield external
        return
    status = start_broker(TEST_BROKER)
    try:
        yield status.bootstrap
    finally:
        stop_broker(TEST_BROKER)


@pytest.fixture(scope="session")
def simulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimulatorProcess]:
    """A fast simulator (20 ms mean latency) shared by the session."""
    log = (tmp_path_factory.mktemp("simulator") / "simulator.log").open("wb")
    process = start_simulator(["--latency-mean-ms", "20"], log=log)
    try:
        yield process
    finally:
        process.stop()
        log.close()


@pytest.fixture
def simulator_log_dir(tmp_path: Path) -> Path:
    return tmp_path
