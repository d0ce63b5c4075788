"""kill -9 mid-run loses nothing; duplicates stay bounded and recognisable."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from streams.data.produce import produce_events
from streams.demo.local_services import SimulatorProcess
from tests.integration.harness import isolate, own_simulator, wait_for_outcomes

pytestmark = pytest.mark.broker

MAX_BUFFERED = 40
KILLS = 2


@pytest.fixture
def slow_simulator(tmp_path: Path) -> Iterator[SimulatorProcess]:
    with own_simulator(tmp_path, "--latency-mean-ms", "300") as process:
        yield process


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "streams", "run"],
            env={**os.environ, **env},
            stdout=out,
            stderr=out,
            stdin=subprocess.DEVNULL,
        )


def test_kill_9_mid_run_then_restart_loses_nothing(
    tmp_path: Path, kafka_bootstrap: str, slow_simulator: SimulatorProcess
) -> None:
    isolated = isolate(
        tmp_path,
        kafka_bootstrap,
        slow_simulator.url,
        worker={"max_buffered": MAX_BUFFERED, "commit_interval_s": 0.5},
        # A killed member holds its partitions until its session times out.
        kafka={"session_timeout_ms": 6_000},
    )
    report = produce_events(
        kafka_bootstrap,
        data_dir=None,
        limit_per_source=100,
        duplicate_ratio=0.1,
        topics=isolated.topics,
    )
    expected = {(r.topic, r.partition, r.offset) for r in report.records}
    ledger = isolated.ledger()
    log = tmp_path / "worker.log"

    for kill in range(KILLS):
        worker = start_worker(isolated.env(), log)
        target = (kill + 1) * len(expected) // (KILLS + 2)
        deadline = time.monotonic() + 120
        while len(ledger.outcomes) < target and time.monotonic() < deadline:
            ledger.poll(0.2)
        assert worker.poll() is None, log.read_text()[-3000:]
        worker.send_signal(signal.SIGKILL)
        worker.wait()

    worker = start_worker(isolated.env(), log)
    try:
        missing = wait_for_outcomes(ledger, expected, timeout_s=180)
    finally:
        worker.terminate()
        worker.wait(timeout=60)
    assert not missing, (
        f"{len(missing)} inputs lost; log tail: {log.read_text()[-2000:]}"
    )

    duplicates = 0
    for coordinates in expected:
        outcomes = ledger.outcomes[coordinates]
        duplicates += len(outcomes) - 1
        assert len({o.event_id for o in outcomes}) == 1  # recognisable by event id
        assert len({o.kind for o in outcomes}) == 1
    assert duplicates <= KILLS * MAX_BUFFERED
    assert worker.returncode == 0
