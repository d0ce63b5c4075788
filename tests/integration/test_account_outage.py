"""HTTP 402 on every call for longer than the poll interval: pause, never leave.

On the real broker, with ``max.poll.interval.ms`` at 10 s and a 402 on every
call for 12 s: the circuit opens, the worker keeps polling and stays in its
group, nothing is dead-lettered for it, the outage is visible in the circuit
metric, and once the account works again every record is enriched once.
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

pytestmark = pytest.mark.broker

RECORDS = 20
OUTAGE_S = 12.0


@pytest.fixture
def account_simulator(tmp_path: Path) -> Iterator[SimulatorProcess]:
    with own_simulator(tmp_path, "--latency-mean-ms", "20") as process:
        yield process


def post_json(url: str, body: object) -> None:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as reply:
        assert reply.status == 200


def get_json(url: str) -> dict[str, object]:
    with urllib.request.urlopen(url, timeout=10) as reply:
        result: dict[str, object] = json.loads(reply.read())
        return result


def test_a_402_outage_opens_the_circuit_without_leaving_the_group_or_dead_letters(
    tmp_path: Path, kafka_bootstrap: str, account_simulator: SimulatorProcess
) -> None:
    isolated = isolate(
        tmp_path,
        kafka_bootstrap,
        account_simulator.url,
        kafka={"session_timeout_ms": 6_000, "max_poll_interval_ms": 10_000},
        worker={"max_buffered": 10},
        partitions=1,
    )
    topic = isolated.topics["tickets"]
    expected: set[tuple[str, int, int]] = set()

    def delivered(error: object, message: Message) -> None:
        assert error is None
        expected.add((topic, message.partition() or 0, message.offset() or 0))

    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    for index in range(RECORDS):
        body = {
            "specversion": "1.0",
            "id": f"tkt-outage-{index}",
            "source": "/helpdesk/test",
            "type": "support.ticket.created",
            "time": "2026-11-02T08:00:00Z",
            "datacontenttype": "application/json",
            "data": {
                "ticket_id": f"T-{index}",
                "channel": "chat",
                "text": f"I was charged twice for order {index}, please refund",
            },
        }
        producer.produce(topic, value=orjson.dumps(body), on_delivery=delivered)
    assert producer.flush(30) == 0

    service = build_service(isolated.settings)
    worker = service.worker
    registry = worker.metrics.registry
    ledger = isolated.ledger()
    circuit_labels = {"endpoint": isolated.settings.llm.base_url}

    def sample(name: str, labels: dict[str, str] | None = None) -> float:
        return registry.get_sample_value(name, labels or {}) or 0.0

    async def scenario() -> dict[str, float]:
        # Every call answers 402 for the first OUTAGE_S seconds from now.
        window = {"kind": "insufficient_balance", "start_s": 0, "end_s": OUTAGE_S}
        await asyncio.to_thread(
            post_json, account_simulator.url + "/admin/faults", {"schedule": [window]}
        )
        stop = asyncio.Event()
        task = asyncio.create_task(worker.run(stop))
        seen: dict[str, float] = {"circuit_open": 0.0, "paused": 0.0}
        try:
            deadline = time.monotonic() + OUTAGE_S - 1.0
            while time.monotonic() < deadline:
                await asyncio.sleep(0.2)
                if sample("streams_circuit_state", circuit_labels) == 2:
                    seen["circuit_open"] = 1.0
                seen["paused"] = max(
                    seen["paused"], sample("streams_partitions_paused")
                )
                assert worker.stats.dead_lettered == 0
                assert not task.done()
            seen["enriched_during_outage"] = worker.stats.enriched
            deadline = time.monotonic() + 60
            while worker.stats.enriched < RECORDS and time.monotonic() < deadline:
                assert not task.done()
                await asyncio.sleep(0.2)
            seen["revoke"] = sample("streams_rebalances_total", {"kind": "revoke"})
            seen["lost"] = sample("streams_rebalances_total", {"kind": "lost"})
            seen["assign"] = sample("streams_rebalances_total", {"kind": "assign"})
        finally:
            stop.set()
            await task
        return seen

    try:
        seen = asyncio.run(scenario())
        deadline = time.monotonic() + 20
        while ledger.missing(expected) and time.monotonic() < deadline:
            ledger.poll(0.5)
        outcomes = dict(ledger.outcomes)
    finally:
        ledger.close()

    stats = get_json(account_simulator.url + "/stats")
    assert stats["faults_by_kind"] == {
        "insufficient_balance": stats["responses_by_status"]["402"]  # type: ignore[index]
    }
    assert seen["circuit_open"] == 1.0
    assert seen["paused"] >= 1  # intake paused while the bound was full
    assert seen["enriched_during_outage"] == 0
    assert seen["assign"] == 1
    assert seen["revoke"] == 0
    assert seen["lost"] == 0
    assert worker.stats.dead_lettered == 0
    assert worker.stats.enriched == RECORDS
    assert sample("streams_circuit_state", circuit_labels) == 0
    assert set(outcomes) == expected
    for found in outcomes.values():
        assert [outcome.kind for outcome in found] == ["enriched"]
