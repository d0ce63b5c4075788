"""Calls slower than max.poll.interval.ms never evict the worker from its group."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from confluent_kafka import Message, Producer

from streams.demo.local_services import SimulatorProcess
from streams.service import build_service
from tests.integration.harness import isolate, own_simulator, run_worker_until
from tests.unit.conftest import ticket_body

pytestmark = pytest.mark.broker

RECORDS = 30


@pytest.fixture
def very_slow_simulator(tmp_path: Path) -> Iterator[SimulatorProcess]:
    with own_simulator(
        tmp_path, "--latency-mean-ms", "9000", "--latency-sigma", "0.05"
    ) as process:
        yield process


def test_nine_second_calls_with_a_six_second_poll_interval_keep_the_member(
    tmp_path: Path, kafka_bootstrap: str, very_slow_simulator: SimulatorProcess
) -> None:
    isolated = isolate(
        tmp_path,
        kafka_bootstrap,
        very_slow_simulator.url,
        kafka={"session_timeout_ms": 6_000, "max_poll_interval_ms": 6_000},
        llm={"call_deadline_s": 60},
        worker={"max_buffered": 20},
    )
    topic = isolated.topics["tickets"]
    expected: set[tuple[str, int, int]] = set()

    def delivered(error: object, message: Message) -> None:
        assert error is None
        expected.add((topic, message.partition() or 0, message.offset() or 0))

    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    for index in range(RECORDS):
        body = ticket_body(f"my parcel number {index} is late, where is it?")
        body["id"] = f"tkt-slow-{index}"
        producer.produce(topic, value=orjson.dumps(body), on_delivery=delivered)
    assert producer.flush(30) == 0
    assert len(expected) == RECORDS

    service = build_service(isolated.settings)
    ledger = isolated.ledger()
    try:
        missing = asyncio.run(
            run_worker_until(service.worker.run, ledger, expected, timeout_s=120)
        )
    finally:
        ledger.close()

    assert not missing
    registry = service.worker.metrics.registry
    # One assignment at the start; no loss and no revocation during the run.
    assert (
        registry.get_sample_value("streams_rebalances_total", {"kind": "assign"}) == 1
    )
    assert (
        registry.get_sample_value("streams_rebalances_total", {"kind": "lost"}) is None
    )
    assert all(len(outcomes) == 1 for outcomes in ledger.outcomes.values())
