"""On the real broker, the committed offset never passes an unacknowledged record."""

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

HELD_TEXT = "please hold this ticket until the test releases it"


class GatedChat:
    """The real client, except that one ticket's call waits for a gate."""

    def __init__(self, chat: ChatClient) -> None:
        self.chat = chat
        self.gate = asyncio.Event()
        self.held = asyncio.Event()

    async def complete(self, request: ChatRequest) -> ChatResponse:
        if HELD_TEXT in request.messages[-1]["content"]:
            self.held.set()
            await self.gate.wait()
        return await self.chat.complete(request)


def committed(bootstrap: str, group: str, topic: str) -> int:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        (position,) = consumer.committed([TopicPartition(topic, 0)], timeout=10)
    finally:
        consumer.close()
    return int(position.offset)


def test_commit_stops_at_the_record_still_in_flight(
    tmp_path: Path, kafka_bootstrap: str, simulator: SimulatorProcess
) -> None:
    isolated = isolate(tmp_path, kafka_bootstrap, simulator.url, partitions=1)
    settings = isolated.settings
    topic = isolated.topics["tickets"]
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    for index in range(100):
        body = ticket_body(
            HELD_TEXT if index == 3 else f"where is my order number {index}?"
        )
        body["id"] = f"tkt-offsets-{index}"
        producer.produce(topic, key=f"T-{index}".encode(), value=orjson.dumps(body))
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
    group = settings.kafka.group_id

    async def scenario() -> tuple[int, int, int]:
        stop = asyncio.Event()
        task = asyncio.create_task(worker.run(stop))
        await asyncio.wait_for(chat.held.wait(), 60)
        deadline = time.monotonic() + 60
        while worker.stats.enriched < 99 and time.monotonic() < deadline:  # noqa: ASYNC110  # the counter has no event to wait on
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.0)  # several commit intervals
        while_held = await asyncio.to_thread(committed, kafka_bootstrap, group, topic)
        enriched_while_held = worker.stats.enriched
        chat.gate.set()
        deadline = time.monotonic() + 30
        while worker.stats.enriched < 100 and time.monotonic() < deadline:  # noqa: ASYNC110  # the counter has no event to wait on
            await asyncio.sleep(0.1)
        stop.set()
        await task
        after = await asyncio.to_thread(committed, kafka_bootstrap, group, topic)
        return while_held, enriched_while_held, after

    while_held, enriched_while_held, after = asyncio.run(scenario())
    assert enriched_while_held == 99
    assert while_held == 3
    assert after == 100
