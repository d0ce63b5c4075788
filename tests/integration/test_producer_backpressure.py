"""A burst of cache hits faster than the broker accepts: back-pressure, no loss."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import orjson
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from streams.demo.local_services import SimulatorProcess
from streams.service import build_service
from tests.integration.harness import isolate
from tests.unit.conftest import ticket_body

pytestmark = pytest.mark.broker

RECORDS = 100_000
PARTITIONS = 3
# The producer's local queue holds this many records at most, far fewer than
# the worker has ready to send, so produce() finds it full again and again.
QUEUE_MESSAGES = 500


def produce_inputs(bootstrap: str, topic: str) -> None:
    """Writes RECORDS events of one content, so all but the first are cache hits."""
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20})
    failures: list[object] = []

    def delivered(error: object, _message: object) -> None:
        if error is not None:
            failures.append(error)

    for index in range(RECORDS):
        body = ticket_body("my parcel is late, where is it?")
        body["id"] = f"tkt-burst-{index}"
        value = orjson.dumps(body)
        while True:
            try:
                producer.produce(topic, value=value, on_delivery=delivered)
                break
            except BufferError:
                producer.poll(0.05)
    assert producer.flush(60) == 0
    assert not failures


def input_coordinates(bootstrap: str, topic: str) -> set[tuple[int, int]]:
    """(partition, offset) of every record in ``topic``."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "watermarks"})
    try:
        return {
            (partition, offset)
            for partition in range(PARTITIONS)
            for offset in range(
                *consumer.get_watermark_offsets(
                    TopicPartition(topic, partition), timeout=10
                )
            )
        }
    finally:
        consumer.close()


def read_sources(bootstrap: str, topic: str) -> tuple[int, set[tuple[int, int]]]:
    """Counts the records of ``topic`` and the distinct inputs they answer."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"reader-{topic}",
            "enable.auto.commit": False,
        }
    )
    metadata = consumer.list_topics(topic, timeout=10)
    partitions = sorted(metadata.topics[topic].partitions)
    ends = {
        partition: consumer.get_watermark_offsets(
            TopicPartition(topic, partition), timeout=10
        )[1]
        for partition in partitions
    }
    consumer.assign([TopicPartition(topic, partition, 0) for partition in partitions])
    count = 0
    sources: set[tuple[int, int]] = set()
    positions = dict.fromkeys(partitions, 0)
    deadline = time.monotonic() + 120
    while any(positions[p] < ends[p] for p in partitions):
        assert time.monotonic() < deadline, "the output topic could not be read"
        for message in consumer.consume(5_000, timeout=1.0):
            assert message.error() is None
            partition, offset = message.partition(), message.offset()
            assert partition is not None and offset is not None
            positions[partition] = offset + 1
            count += 1
            source = orjson.loads(message.value() or b"{}")["enrichment_metadata"][
                "source"
            ]
            sources.add((source["partition"], source["offset"]))
    consumer.close()
    return count, sources


def test_a_burst_of_cache_hits_waits_for_the_producer_and_loses_nothing(
    tmp_path: Path, kafka_bootstrap: str, simulator: SimulatorProcess
) -> None:
    isolated = isolate(
        tmp_path,
        kafka_bootstrap,
        simulator.url,
        kafka={"client_config": {"queue.buffering.max.messages": str(QUEUE_MESSAGES)}},
        partitions=PARTITIONS,
    )
    topic = isolated.topics["tickets"]
    produce_inputs(kafka_bootstrap, topic)

    service = build_service(isolated.settings)
    worker = service.worker

    async def scenario() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(worker.run(stop))
        deadline = time.monotonic() + 300
        while (  # noqa: ASYNC110  # the counter has no event to wait on
            worker.stats.enriched < RECORDS
            and not task.done()
            and time.monotonic() < deadline
        ):
            await asyncio.sleep(0.2)
        stop.set()
        await task  # a BufferError would have stopped the worker: it re-raises

    started = time.monotonic()
    asyncio.run(scenario())
    elapsed = time.monotonic() - started

    stats = worker.stats
    assert stats.enriched == RECORDS, f"{stats.enriched} enriched in {elapsed:.0f} s"
    assert stats.dead_lettered == 0
    assert stats.llm_calls == 1  # one call, every other record a cache hit
    backpressure = worker.metrics.registry.get_sample_value(
        "streams_produce_backpressure_total"
    )
    assert backpressure is not None and backpressure > 0

    count, sources = read_sources(kafka_bootstrap, isolated.settings.kafka.output_topic)
    assert count == RECORDS
    assert sources == input_coordinates(kafka_bootstrap, topic)
