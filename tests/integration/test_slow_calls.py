"""Calls slower than max.poll.interval.ms never evict the worker from its group.

Every call takes about 20 s while librdkafka evicts a member that does not
poll for 10 s. The worker must keep polling while the calls run, stay in its
group (one assignment, no revocation, no loss) and make each call once.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from confluent_kafka import Message, Producer

from streams.demo.local_services import SimulatorProcess
from streams.service import build_service
from tests.integration.harness import isolate, own_simulator
from tests.unit.conftest import ticket_body

pytestmark = pytest.mark.broker

RECORDS = 10
CALL_MS = 20_000
MAX_POLL_INTERVAL_MS = 10_000


@pytest.fixture
def very_slow_simulator(tmp_path: Path) -> Iterator[SimulatorProcess]:
    with own_simulator(
        tmp_path, "--latency-mean-ms", str(CALL_MS), "--latency-sigma", "0.02"
    ) as process:
        yield process


def test_twenty_second_calls_with_a_ten_second_poll_interval_keep_the_member(
    tmp_path: Path, kafka_bootstrap: str, very_slow_simulator: SimulatorProcess
) -> None:
    isolated = isolate(
        tmp_path,
        kafka_bootstrap,
        very_slow_simulator.url,
        kafka={
            "session_timeout_ms": 6_000,
            "max_poll_interval_ms": MAX_POLL_INTERVAL_MS,
        },
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
    worker = service.worker
    registry = worker.metrics.registry
    ledger = isolated.ledger()

    def rebalances(kind: str) -> float:
        return (
            registry.get_sample_value("streams_rebalances_total", {"kind": kind}) or 0
        )

    async def scenario() -> tuple[float, float, float]:
        stop = asyncio.Event()
        task = asyncio.create_task(worker.run(stop))
        longest_gap = 0.0
        try:
            deadline = time.monotonic() + 120
            while worker.stats.enriched < RECORDS and time.monotonic() < deadline:
                assert not task.done()
                await asyncio.sleep(0.5)
                if worker.in_flight:
                    longest_gap = max(longest_gap, time.monotonic() - worker.last_poll)
            await asyncio.sleep(1.0)  # a late eviction would show up here
            revoked = rebalances("revoke")  # shutdown revokes; count before it
        finally:
            stop.set()
            await task
        return longest_gap, revoked, rebalances("lost")

    try:
        longest_gap, revoked, lost = asyncio.run(scenario())
        deadline = time.monotonic() + 20
        while ledger.missing(expected) and time.monotonic() < deadline:
            ledger.poll(0.5)
        outcomes = dict(ledger.outcomes)
    finally:
        ledger.close()

    with urllib.request.urlopen(
        very_slow_simulator.url + "/stats", timeout=10
    ) as reply:
        requests = json.loads(reply.read())["requests_total"]

    assert worker.stats.enriched == RECORDS
    assert longest_gap < 2.0  # polling went on while the calls ran
    assert rebalances("assign") == 1
    assert revoked == 0
    assert lost == 0
    assert requests == RECORDS  # no call made twice
    assert set(outcomes) == expected
    assert all(len(found) == 1 for found in outcomes.values())
