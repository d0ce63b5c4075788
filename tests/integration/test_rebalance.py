"""A partition revoked while a record is in flight, then assigned back.

On the real broker: the worker owns both partitions of a topic and holds one
record of each in flight. A second member joins the group, so the cooperative
assignor moves one partition to it. The revoked partition's committed offset
must stay at its record in flight while the other member owns it, the
worker's late result for that record must never be produced, and when the
partition comes back the record is redone from the committed offset.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import orjson
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from streams.demo.local_services import SimulatorProcess
from streams.llm.circuit_breaker import CircuitBreaker
from streams.llm.client import ChatClient, ChatRequest, ChatResponse
from streams.llm.pricing import PriceList
from streams.llm.retry_policy import RetryPolicy
from streams.pipeline.config import load_pipelines
from streams.pipeline.enricher import Enricher
from streams.worker import Worker
from tests.integration.harness import isolate
from tests.unit.conftest import ticket_body

pytestmark = pytest.mark.broker

PER_PARTITION = 10
HELD_OFFSET = 3
HELD_TEXT = "hold this ticket of partition {partition} until the test says so"


class GatedChat:
    """The real client, except that the held tickets wait for a gate."""

    def __init__(self, chat: ChatClient) -> None:
        self.chat = chat
        self.gate = asyncio.Event()
        self.held = 0

    async def complete(self, request: ChatRequest) -> ChatResponse:
        if "hold this ticket" in request.messages[-1]["content"]:
            self.held += 1
            await self.gate.wait()
        return await self.chat.complete(request)


def committed(bootstrap: str, group: str, topic: str) -> dict[int, int]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        positions = consumer.committed(
            [TopicPartition(topic, 0), TopicPartition(topic, 1)], timeout=10
        )
    finally:
        consumer.close()
    return {tp.partition: tp.offset for tp in positions}


def join_until_assigned(member: Consumer, timeout_s: float) -> list[int]:
    """Polls the second member until the group has given it partitions."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        member.consume(100, timeout=0.2)  # records it receives are ignored
        owned = member.assignment()
        if owned:
            return [tp.partition for tp in owned]
    raise AssertionError("the second member got no partition")


async def wait_for(condition: object, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)


def test_a_revoked_partition_keeps_its_offset_and_drops_the_late_result(
    tmp_path: Path, kafka_bootstrap: str, simulator: SimulatorProcess
) -> None:
    isolated = isolate(tmp_path, kafka_bootstrap, simulator.url, partitions=2)
    settings = isolated.settings
    topic = isolated.topics["tickets"]
    group = settings.kafka.group_id
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    for partition in (0, 1):
        for offset in range(PER_PARTITION):
            text = (
                HELD_TEXT.format(partition=partition)
                if offset == HELD_OFFSET
                else f"order {partition}-{offset} has not arrived"
            )
            body = ticket_body(text)
            body["id"] = f"tkt-rebalance-{partition}-{offset}"
            producer.produce(topic, value=orjson.dumps(body), partition=partition)
    assert producer.flush(30) == 0

    pipelines = load_pipelines(
        settings.pipelines_dir, settings.schemas_dir, ["tickets"]
    )
    chat = GatedChat(ChatClient(settings.llm))
    enricher = Enricher(
        chat,
        policy=RetryPolicy(),
        breaker=CircuitBreaker("test"),
        prices=PriceList(settings.pricing),
        max_in_flight=64,
    )
    worker = Worker(settings, pipelines, enricher)
    registry = worker.metrics.registry
    ledger = isolated.ledger()

    def rebalances(kind: str) -> float:
        return (
            registry.get_sample_value("streams_rebalances_total", {"kind": kind}) or 0
        )

    async def scenario() -> tuple[int, float]:
        stop = asyncio.Event()
        task = asyncio.create_task(worker.run(stop))
        try:
            await wait_for(
                lambda: (
                    chat.held == 2 and worker.stats.enriched == 2 * PER_PARTITION - 2
                ),
                60,
                "both held records in flight and the rest enriched",
            )
            await asyncio.sleep(1.0)  # several commit intervals
            assert await asyncio.to_thread(
                committed, kafka_bootstrap, group, topic
            ) == {0: HELD_OFFSET, 1: HELD_OFFSET}

            # A second member joins; one partition moves to it.
            member = Consumer(
                {
                    "bootstrap.servers": kafka_bootstrap,
                    "group.id": group,
                    "enable.auto.commit": False,
                    "partition.assignment.strategy": "cooperative-sticky",
                    "session.timeout.ms": 6_000,
                }
            )
            member.subscribe([topic])
            (moved,) = await asyncio.to_thread(join_until_assigned, member, 60)
            kept = 1 - moved
            await wait_for(lambda: rebalances("revoke") == 1, 30, "the revocation")
            assert worker.assigned_partitions == 1

            # The held calls may now answer: the kept partition's record is
            # produced; the moved partition's record belongs to the other
            # member, so the worker's late result must go nowhere.
            chat.gate.set()
            await wait_for(
                lambda: worker.stats.enriched == 2 * PER_PARTITION - 1,
                30,
                "the kept partition's held record",
            )
            await asyncio.sleep(1.5)  # several commit intervals
            while_moved = await asyncio.to_thread(
                committed, kafka_bootstrap, group, topic
            )
            assert while_moved == {moved: HELD_OFFSET, kept: PER_PARTITION}
            await asyncio.to_thread(ledger.poll, 1.0)
            assert not ledger.outcomes.get((topic, moved, HELD_OFFSET))

            # The other member leaves; the partition comes back and is redone
            # from its committed offset.
            await asyncio.to_thread(member.close)
            await wait_for(
                lambda: worker.assigned_partitions == 2, 60, "the reassignment"
            )
            await wait_for(
                lambda: (
                    worker.stats.enriched
                    >= 2 * PER_PARTITION - 1 + PER_PARTITION - HELD_OFFSET
                ),
                60,
                "the moved partition redone",
            )
            revocations = rebalances("revoke")  # shutdown revokes again
        finally:
            stop.set()
            await task
        return moved, revocations

    try:
        moved, revocations = asyncio.run(scenario())
        final = committed(kafka_bootstrap, group, topic)
        deadline = time.monotonic() + 10
        while len(ledger.outcomes) < 2 * PER_PARTITION and time.monotonic() < deadline:
            ledger.poll(0.5)
        outcomes = dict(ledger.outcomes)
    finally:
        ledger.close()

    assert final == {0: PER_PARTITION, 1: PER_PARTITION}
    assert revocations == 1
    assert rebalances("lost") == 0
    for partition in (0, 1):
        for offset in range(PER_PARTITION):
            found = outcomes.get((topic, partition, offset), [])
            assert all(outcome.kind == "enriched" for outcome in found)
            # Below the held record: done once. The held record: once, by the
            # second assignment. Above it on the moved partition: redone.
            if offset <= HELD_OFFSET or partition != moved:
                assert len(found) == 1, (partition, offset, found)
            else:
                assert len(found) == 2, (partition, offset, found)
