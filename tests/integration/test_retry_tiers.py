"""Retry tiers on the real broker: late success, exhaustion, and no record lost.

Each test runs its own simulator whose faults it sets through
``/admin/faults``. Blank answers (``blank_content``) are the transient
failure: they come with HTTP 200, so the circuit breaker stays closed and
every failure uses up an attempt, which is what sends a record to a tier.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from confluent_kafka import Consumer, Message, Producer, TopicPartition

from streams import paths
from streams.data.produce import produce_events
from streams.demo.ledger import Coordinates, OutputLedger
from streams.demo.local_services import SimulatorProcess
from streams.kafka.dead_letter import header_list
from streams.kafka.retry_topics import retry_tiers
from streams.pipeline.config import compile_schema
from streams.service import build_service
from streams.worker import Worker
from tests.integration.harness import Isolated, isolate, own_simulator
from tests.unit.conftest import ticket_body

pytestmark = pytest.mark.broker

ALWAYS_BLANK = {"rates": {"blank_content": 1.0}}
NO_FAULTS: dict[str, Any] = {}


@pytest.fixture
def simulator_here(tmp_path: Path) -> Iterator[SimulatorProcess]:
    with own_simulator(tmp_path, "--latency-mean-ms", "20") as process:
        yield process


def set_faults(simulator: SimulatorProcess, faults: dict[str, Any]) -> None:
    # Only the loopback simulator this test started.
    request = urllib.request.Request(
        f"{simulator.url}/admin/faults",
        data=json.dumps(faults).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200


def isolated_with_tiers(
    tmp_path: Path, bootstrap: str, simulator: SimulatorProcess
) -> Isolated:
    return isolate(
        tmp_path,
        bootstrap,
        simulator.url,
        llm={"max_attempts": 2},
        retry={"tiers_s": [1, 2]},
    )


def produce_tickets(isolated: Isolated, prefix: str, count: int) -> list[Coordinates]:
    """Writes ``count`` distinct tickets; returns their coordinates in order."""
    topic = isolated.topics["tickets"]
    produced: list[Coordinates] = []

    def delivered(error: object, message: Message) -> None:
        assert error is None
        produced.append((topic, message.partition() or 0, message.offset() or 0))

    producer = Producer(
        {"bootstrap.servers": isolated.settings.kafka.bootstrap_servers}
    )
    for index in range(count):
        body = ticket_body(f"parcel {prefix}-{index} never arrived, please help")
        body["id"] = f"tkt-{prefix}-{index}"
        producer.produce(
            topic,
            key=f"{prefix}-{index}".encode(),
            value=orjson.dumps(body),
            headers=[("trace", f"{prefix}-{index}".encode())],
            on_delivery=delivered,
        )
    assert producer.flush(30) == 0
    assert len(produced) == count
    return produced


class TierReader:
    """Reads every tier topic from the beginning, as a bystander (no group commits)."""

    def __init__(self, isolated: Isolated) -> None:
        self.topics = [tier.topic for tier in retry_tiers(isolated.settings.retry)]
        self._consumer = Consumer(
            {
                "bootstrap.servers": isolated.settings.kafka.bootstrap_servers,
                "group.id": f"tier-reader-{isolated.suffix}",
                "enable.auto.commit": False,
            }
        )
        metadata = self._consumer.list_topics(timeout=10)
        self._consumer.assign(
            [
                TopicPartition(topic, partition, 0)
                for topic in self.topics
                for partition in metadata.topics[topic].partitions
            ]
        )
        self.records: list[
            tuple[str, bytes | None, bytes | None, dict[str, bytes]]
        ] = []

    def poll(self, timeout_s: float = 0.2) -> None:
        for message in self._consumer.consume(1000, timeout=timeout_s):
            if message.error() is None:
                headers = {
                    name: value or b"" for name, value in header_list(message.headers())
                }
                self.records.append(
                    (message.topic() or "", message.key(), message.value(), headers)
                )

    def close(self) -> None:
        self._consumer.close()


def committed_and_end(
    isolated: Isolated, topics: list[str]
) -> dict[tuple[str, int], tuple[int, int]]:
    """The group's committed offset and the end offset of every partition."""
    consumer = Consumer(
        {
            "bootstrap.servers": isolated.settings.kafka.bootstrap_servers,
            "group.id": isolated.settings.kafka.group_id,
            "enable.auto.commit": False,
        }
    )
    try:
        metadata = consumer.list_topics(timeout=10)
        partitions = [
            TopicPartition(topic, partition)
            for topic in topics
            for partition in metadata.topics[topic].partitions
        ]
        found = {}
        for tp in consumer.committed(partitions, timeout=10):
            _low, high = consumer.get_watermark_offsets(tp, timeout=10)
            found[(tp.topic, tp.partition)] = (tp.offset, high)
        return found
    finally:
        consumer.close()


def assert_everything_committed(isolated: Isolated) -> None:
    topics = [*isolated.topics.values(), *tier_topics(isolated)]
    for (topic, partition), (committed, end) in committed_and_end(
        isolated, topics
    ).items():
        if end > 0:
            assert committed == end, (topic, partition, committed, end)


def tier_topics(isolated: Isolated) -> list[str]:
    return [tier.topic for tier in retry_tiers(isolated.settings.retry)]


def output_times(isolated: Isolated) -> dict[Coordinates, int]:
    """When each enriched record was written (its timestamp), by input coordinates."""
    topic = isolated.settings.kafka.output_topic
    consumer = Consumer(
        {
            "bootstrap.servers": isolated.settings.kafka.bootstrap_servers,
            "group.id": f"output-reader-{isolated.suffix}",
            "enable.auto.commit": False,
        }
    )
    try:
        metadata = consumer.list_topics(timeout=10)
        consumer.assign(
            [TopicPartition(topic, p, 0) for p in metadata.topics[topic].partitions]
        )
        found: dict[Coordinates, int] = {}
        empty_polls = 0
        while empty_polls < 2:
            messages = consumer.consume(1000, timeout=0.5)
            empty_polls = 0 if messages else empty_polls + 1
            for message in messages:
                source = orjson.loads(message.value() or b"{}")["enrichment_metadata"][
                    "source"
                ]
                found[(source["topic"], source["partition"], source["offset"])] = (
                    message.timestamp()[1]
                )
        return found
    finally:
        consumer.close()


async def run_worker(
    worker: Worker,
    ledger: OutputLedger,
    expected: set[Coordinates],
    timeout_s: float,
    between_polls: Any = None,
) -> set[Coordinates]:
    """Runs the worker until every expected input has an outcome, then stops it."""
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline and not task.done():
            await asyncio.to_thread(ledger.poll, 0.2)
            if between_polls is not None:
                await between_polls()
            if not ledger.missing(expected):
                break
    finally:
        stop.set()
        await task
    ledger.poll(0.5)
    return ledger.missing(expected)


def test_a_record_failing_for_a_while_is_enriched_through_both_tiers_while_others_flow(
    tmp_path: Path, kafka_bootstrap: str, simulator_here: SimulatorProcess
) -> None:
    isolated = isolated_with_tiers(tmp_path, kafka_bootstrap, simulator_here)
    first_tier, second_tier = tier_topics(isolated)
    set_faults(simulator_here, ALWAYS_BLANK)
    (slow,) = produce_tickets(isolated, "slow", 1)
    expected = {slow}
    others: list[Coordinates] = []
    waiting_seen: list[float] = []
    service = build_service(isolated.settings)
    registry = service.worker.metrics.registry
    ledger = isolated.ledger()
    tiers = TierReader(isolated)

    async def watch() -> None:
        waiting_seen.append(
            registry.get_sample_value("streams_retry_partitions_waiting") or 0.0
        )
        if others:
            return
        await asyncio.to_thread(tiers.poll, 0.1)
        if any(topic == second_tier for topic, *_ in tiers.records):
            # The slow record waits in the second tier: the provider recovers,
            # and new records must not wait behind it.
            set_faults(simulator_here, NO_FAULTS)
            others.extend(await asyncio.to_thread(produce_tickets, isolated, "fast", 6))
            expected.update(others)

    try:
        missing = asyncio.run(
            run_worker(service.worker, ledger, expected, 45, between_polls=watch)
        )
        tiers.poll(0.5)
    finally:
        ledger.close()
        tiers.close()

    assert others, "the record never reached the second tier"
    assert not missing
    (outcome,) = ledger.outcomes[slow]
    assert outcome.kind == "enriched"
    assert outcome.key == b"slow-0"
    assert outcome.metadata["source"]["topic"] == slow[0]
    assert outcome.metadata["source"]["offset"] == slow[2]
    for coordinates in others:
        assert [o.kind for o in ledger.outcomes[coordinates]] == ["enriched"]

    # The record went to each tier once, bytes untouched, the origin kept.
    assert [topic for topic, *_ in tiers.records] == [first_tier, second_tier]
    for count, (_topic, key, value, headers) in enumerate(tiers.records, start=1):
        assert key == b"slow-0"
        assert value is not None and b"tkt-slow-0" in value
        assert headers["trace"] == b"slow-0"
        assert headers["retry.count"] == str(count).encode()
        assert headers["retry.original.topic"] == slow[0].encode()
        assert headers["retry.original.partition"] == str(slow[1]).encode()
        assert headers["retry.original.offset"] == str(slow[2]).encode()
        assert headers["retry.first.error.reason"] == b"blank_content"
    second_due_ms = int(tiers.records[1][3]["retry.due.timestamp"])

    # Others flowed while the slow record's partition waited: produced after
    # it entered the second tier, they were written before it was retried,
    # and that retry waited until it was due.
    written = output_times(isolated)
    assert max(written[c] for c in others) < written[slow]
    assert written[slow] >= second_due_ms
    assert max(waiting_seen) >= 1
    assert service.worker.stats.retried == 2
    assert (
        registry.get_sample_value(
            "streams_records_retried_total", {"pipeline": "tickets", "tier": "1s"}
        )
        == 1
    )
    assert (
        registry.get_sample_value(
            "streams_records_retried_total", {"pipeline": "tickets", "tier": "2s"}
        )
        == 1
    )
    assert_everything_committed(isolated)


def test_a_record_that_always_fails_is_dead_lettered_after_the_last_tier(
    tmp_path: Path, kafka_bootstrap: str, simulator_here: SimulatorProcess
) -> None:
    isolated = isolated_with_tiers(tmp_path, kafka_bootstrap, simulator_here)
    set_faults(simulator_here, ALWAYS_BLANK)
    # Several records, so some share a tier partition and wait behind another.
    produced = produce_tickets(isolated, "doomed", 6)
    service = build_service(isolated.settings)
    ledger = isolated.ledger()
    try:
        missing = asyncio.run(run_worker(service.worker, ledger, set(produced), 45))
    finally:
        ledger.close()

    assert not missing
    validate = compile_schema(paths.SCHEMAS_DIR, "dead_letter.schema.json")
    for topic, partition, offset in produced:
        (outcome,) = ledger.outcomes[(topic, partition, offset)]
        assert outcome.kind == "dead_letter"
        assert outcome.reason == "blank_content"
        headers = outcome.headers
        assert outcome.event_id is not None
        assert outcome.key == outcome.event_id.removeprefix("tkt-").encode()
        assert outcome.value is not None
        assert outcome.event_id.encode() in outcome.value
        assert headers["dlq.original.topic"] == topic.encode()
        assert headers["dlq.original.partition"] == str(partition).encode()
        assert headers["dlq.original.offset"] == str(offset).encode()
        assert headers["dlq.retry.count"] == b"2"
        assert headers["dlq.first.error.reason"] == b"blank_content"
        assert headers["dlq.attempts"] == b"2"
        assert headers["dlq.first.failure.time"] < headers["dlq.last.failure.time"]
        validate({k: v.decode() for k, v in headers.items() if k.startswith("dlq.")})
    assert service.worker.stats.retried == 2 * len(produced)
    assert service.worker.stats.dead_lettered == len(produced)
    assert_everything_committed(isolated)


def test_under_random_failures_every_input_ends_enriched_or_dead_lettered_once(
    tmp_path: Path, kafka_bootstrap: str, simulator_here: SimulatorProcess
) -> None:
    isolated = isolate(
        tmp_path,
        kafka_bootstrap,
        simulator_here.url,
        llm={"max_attempts": 1},
        retry={"tiers_s": [1, 2]},
    )
    # Transient blank answers, and a few refusals, which are permanent.
    set_faults(
        simulator_here, {"rates": {"blank_content": 0.5, "content_refusal": 0.05}}
    )
    report = produce_events(
        kafka_bootstrap,
        data_dir=None,
        limit_per_source=6,
        duplicate_ratio=0.3,
        topics=isolated.topics,
    )
    expected = {(r.topic, r.partition, r.offset) for r in report.records}
    service = build_service(isolated.settings)
    ledger = isolated.ledger()
    try:
        missing = asyncio.run(run_worker(service.worker, ledger, expected, 50))
    finally:
        ledger.close()

    assert not missing, f"{len(missing)} inputs have no outcome"
    kinds = {"enriched": 0, "dead_letter": 0}
    for record in report.records:
        outcomes = ledger.outcomes[(record.topic, record.partition, record.offset)]
        assert len(outcomes) == 1, record
        kinds[outcomes[0].kind] += 1
        if record.expected_outcome == "dead_letter":
            # Malformed input never reaches the model, so never a tier.
            assert outcomes[0].kind == "dead_letter", record
            assert outcomes[0].headers["dlq.retry.count"] == b"0"
        if (
            outcomes[0].kind == "dead_letter"
            and outcomes[0].headers.get("dlq.retry.count", b"0") != b"0"
        ):
            # Only a transient failure sends a record to a tier.
            assert outcomes[0].headers["dlq.first.error.reason"] == b"blank_content"
    assert set(ledger.outcomes) == expected
    assert service.worker.stats.retried > 0
    assert kinds["enriched"] + kinds["dead_letter"] == len(report.records)
    assert_everything_committed(isolated)


def test_a_record_waiting_in_a_tier_when_the_worker_stops_is_redone_by_the_next(
    tmp_path: Path, kafka_bootstrap: str, simulator_here: SimulatorProcess
) -> None:
    isolated = isolate(
        tmp_path,
        kafka_bootstrap,
        simulator_here.url,
        llm={"max_attempts": 1},
        retry={"tiers_s": [3]},
    )
    (tier_topic,) = tier_topics(isolated)
    set_faults(simulator_here, ALWAYS_BLANK)
    (waiting,) = produce_tickets(isolated, "parked", 1)
    first = build_service(isolated.settings)
    registry = first.worker.metrics.registry

    async def run_until_parked() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(first.worker.run(stop))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not task.done():
            if registry.get_sample_value("streams_retry_partitions_waiting"):
                break
            await asyncio.sleep(0.05)
        stop.set()
        await task

    asyncio.run(run_until_parked())
    assert first.worker.stats.retried == 1
    assert first.worker.stats.enriched == first.worker.stats.dead_lettered == 0

    # The input is committed (its tier record was acknowledged); the tier
    # record is not, so the next worker of the group reads it again.
    positions = committed_and_end(isolated, [waiting[0], tier_topic])
    assert positions[(waiting[0], waiting[1])] == (waiting[2] + 1, waiting[2] + 1)
    tier_positions = [p for (t, _), p in positions.items() if t == tier_topic]
    assert sorted(end for _, end in tier_positions) == [0, 0, 1]
    assert all(committed < 1 for committed, _ in tier_positions)

    set_faults(simulator_here, NO_FAULTS)
    second = build_service(isolated.settings)
    ledger = isolated.ledger()
    try:
        missing = asyncio.run(run_worker(second.worker, ledger, {waiting}, 30))
    finally:
        ledger.close()
    assert not missing
    assert [o.kind for o in ledger.outcomes[waiting]] == ["enriched"]
    assert_everything_committed(isolated)
