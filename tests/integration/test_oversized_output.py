"""Inputs whose enriched form is too large: dead-lettered quickly, never a hang.

Two records on the real broker. One of 996 KB leaves no room for its
enrichment within the worker's 1 MB limit, so it is dead-lettered before any
call. One of 900 KB fits the worker's limit, but the output and dead-letter
topics accept only 600 KB: the broker refuses the enriched record, and the
dead letter that would carry it, so a pointer to the input is dead-lettered.
"""

from __future__ import annotations

import asyncio
import base64
import os
import time
from pathlib import Path

import orjson
import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ResourceType,
)

from streams.demo.local_services import SimulatorProcess
from streams.service import build_service
from tests.integration.harness import isolate
from tests.unit.conftest import ticket_body

pytestmark = pytest.mark.broker

TOPIC_LIMIT = 600_000


def limit_topics(bootstrap: str, topics: list[str], max_bytes: int) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    resources = [
        ConfigResource(
            ResourceType.TOPIC,
            topic,
            incremental_configs=[
                ConfigEntry(
                    "max.message.bytes",
                    str(max_bytes),
                    incremental_operation=AlterConfigOpType.SET,
                )
            ],
        )
        for topic in topics
    ]
    for future in admin.incremental_alter_configs(resources).values():
        future.result(timeout=30)


def big_ticket(event_id: str, size: int) -> bytes:
    """A valid ticket whose size comes from an attached history, not its text.

    The history is random, so compression cannot shrink the record below the
    topic's limit.
    """
    history = base64.b64encode(os.urandom(size))[:size].decode()
    body = ticket_body(f"order {event_id} arrived broken", history=history)
    body["id"] = event_id
    return orjson.dumps(body)


def test_too_large_outputs_are_dead_lettered_before_the_call_or_as_a_pointer(
    tmp_path: Path, kafka_bootstrap: str, simulator: SimulatorProcess
) -> None:
    isolated = isolate(tmp_path, kafka_bootstrap, simulator.url, partitions=1)
    kafka = isolated.settings.kafka
    limit_topics(
        kafka_bootstrap, [kafka.output_topic, kafka.dead_letter_topic], TOPIC_LIMIT
    )
    topic = isolated.topics["tickets"]
    producer = Producer(
        {"bootstrap.servers": kafka_bootstrap, "message.max.bytes": 2_000_000}
    )
    no_room = big_ticket("tkt-no-room", 996_000)
    refused = big_ticket("tkt-refused-by-topic", 900_000)
    producer.produce(topic, key=b"no-room", value=no_room)
    producer.produce(topic, key=b"refused", value=refused)
    assert producer.flush(30) == 0
    expected = {(topic, 0, 0), (topic, 0, 1)}

    service = build_service(isolated.settings)
    worker = service.worker
    ledger = isolated.ledger()

    async def scenario() -> float:
        stop = asyncio.Event()
        task = asyncio.create_task(worker.run(stop))
        started = time.monotonic()
        try:
            while worker.stats.dead_lettered < 2 and time.monotonic() - started < 60:
                assert not task.done()
                await asyncio.sleep(0.1)
            return time.monotonic() - started
        finally:
            stop.set()
            await task

    try:
        elapsed = asyncio.run(scenario())
        deadline = time.monotonic() + 20
        while ledger.missing(expected) and time.monotonic() < deadline:
            ledger.poll(0.5)
        outcomes = dict(ledger.outcomes)
    finally:
        ledger.close()

    assert worker.stats.dead_lettered == 2, f"after {elapsed:.0f} s"
    assert elapsed < 30
    assert worker.stats.enriched == 0
    assert worker.stats.llm_calls == 1  # only the record that fitted the limit

    (before_call,) = outcomes[(topic, 0, 0)]
    assert before_call.kind == "dead_letter"
    assert before_call.reason == "output_too_large"
    assert before_call.stage == "enrich"
    assert before_call.headers["dlq.attempts"] == b"0"

    (after_call,) = outcomes[(topic, 0, 1)]
    assert after_call.kind == "dead_letter"
    assert after_call.reason == "output_too_large"
    assert after_call.stage == "produce"

    # Neither dead letter fits the 600 KB topic with its payload: both point
    # at the input instead of carrying it.
    for outcome, offset in ((before_call, 0), (after_call, 1)):
        assert outcome.key is not None
        assert outcome.headers["dlq.payload.omitted"] == b"true"
        assert outcome.value is not None and len(outcome.value) < 10_000
        pointer = orjson.loads(outcome.value)
        assert (pointer["topic"], pointer["partition"], pointer["offset"]) == (
            topic,
            0,
            offset,
        )
