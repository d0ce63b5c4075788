"""The sample producer against a fake broker: order, back-pressure, failures, report."""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from streams.data.malformed import MALFORMED_KINDS
from streams.data.plan import PlannedRecord, plan_records
from streams.data.produce import (
    DeliveryCallback,
    DeliveryFailedError,
    produce_events,
    producer_config,
    send_records,
)
from streams.data.sample import default_data_dir, load_pipeline_events

PARTITIONS = 3


@dataclass(frozen=True)
class FakeMessage:
    topic: str
    partition_number: int
    offset_number: int

    def partition(self) -> int | None:
        return self.partition_number

    def offset(self) -> int | None:
        return self.offset_number


@dataclass(frozen=True)
class FakeKafkaError:
    reason: str

    def __str__(self) -> str:
        return self.reason


@dataclass
class FakeProducer:
    """A broker in memory with a bounded local queue, like librdkafka's.

    ``produce`` appends to the queue or raises ``BufferError`` when it is full;
    ``poll`` and ``flush`` deliver what is queued, assigning the partition from
    the key and the next offset of that partition. With ``slow_broker`` set, a
    poll that does not wait delivers nothing, as when acknowledgements lag.
    Topics in ``failing_topics`` get an error instead; with ``stuck`` set,
    nothing is ever delivered.
    """

    config: dict[str, str]
    queue_limit: int = 1_000_000
    failing_topics: frozenset[str] = frozenset()
    stuck: bool = False
    slow_broker: bool = False
    queue: list[tuple[PlannedRecordLike, DeliveryCallback]] = field(
        default_factory=list
    )
    log: list[PlannedRecordLike] = field(default_factory=list)
    next_offsets: dict[tuple[str, int], int] = field(default_factory=dict)
    buffer_errors: int = 0

    def produce(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        *,
        on_delivery: DeliveryCallback | None = None,
        headers: list[tuple[str, str | bytes | None]] | None = None,
    ) -> None:
        if len(self.queue) >= self.queue_limit:
            self.buffer_errors += 1
            raise BufferError("Local: Queue full")
        assert on_delivery is not None
        self.queue.append(
            (PlannedRecordLike(topic, key, value, tuple(headers or ())), on_delivery)
        )

    def poll(self, timeout: float = -1) -> int:
        if self.stuck or (self.slow_broker and timeout == 0):
            return 0
        served = 0
        while self.queue:
            record, on_delivery = self.queue.pop(0)
            self.log.append(record)
            served += 1
            if record.topic in self.failing_topics:
                on_delivery(FakeKafkaError("Broker: Topic authorization failed"), None)  # type: ignore[arg-type]
                continue
            partition = zlib.crc32(record.key or b"") % PARTITIONS
            offset = self.next_offsets.get((record.topic, partition), 0)
            self.next_offsets[(record.topic, partition)] = offset + 1
            on_delivery(None, FakeMessage(record.topic, partition, offset))
        return served

    def flush(self, timeout: float = -1) -> int:
        self.poll(timeout)
        return len(self.queue)


@dataclass(frozen=True)
class PlannedRecordLike:
    topic: str
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, str | bytes | None], ...]


def factory(
    **options: object,
) -> tuple[Callable[[dict[str, str]], FakeProducer], list[FakeProducer]]:
    made: list[FakeProducer] = []

    def build(config: dict[str, str]) -> FakeProducer:
        producer = FakeProducer(config, **options)  # type: ignore[arg-type]
        made.append(producer)
        return producer

    return build, made


@pytest.fixture(scope="module")
def planned() -> list[PlannedRecord]:
    return plan_records(load_pipeline_events(default_data_dir()))


def test_config_is_idempotent_and_extra_settings_win() -> None:
    config = producer_config("127.0.0.1:9092", {"linger.ms": "20", "client.id": "demo"})

    assert config["bootstrap.servers"] == "127.0.0.1:9092"
    assert config["enable.idempotence"] == "true"
    assert config["acks"] == "all"
    assert config["compression.type"] == "lz4"
    assert config["linger.ms"] == "20"
    assert config["client.id"] == "demo"


def test_produce_events_writes_the_plan_in_order_and_reports_it(
    planned: list[PlannedRecord],
) -> None:
    build, made = factory()

    report = produce_events(
        "127.0.0.1:9092",
        data_dir=default_data_dir(),
        producer_factory=build,
        extra_config={"client.id": "unit-test"},
    )

    (producer,) = made
    assert producer.config["client.id"] == "unit-test"
    assert [(r.topic, r.key, r.value) for r in producer.log] == [
        (r.topic, r.key, r.value) for r in planned
    ]
    assert (
        report.total == len(planned) == 600 + 41 + 360 + 100 + 3 * len(MALFORMED_KINDS)
    )
    assert report.count_by_kind()["duplicate"] == 60 + 4 + 36
    assert report.count_by_outcome() == {
        "enriched": 600 + 41 + 360 + 100 + 3 * 2,
        "dead_letter": 3 * (len(MALFORMED_KINDS) - 2),
    }
    assert [(r.event_id, r.kind) for r in report.records] == [
        (r.event_id, r.kind) for r in planned
    ]


def test_report_positions_come_from_the_delivery_reports(
    planned: list[PlannedRecord],
) -> None:
    build, made = factory()
    report = send_records(build({}), planned)

    seen = {(r.topic, r.partition, r.offset) for r in report.records}
    assert len(seen) == report.total
    assert all(0 <= r.partition < PARTITIONS for r in report.records)
    assert sum(made[0].next_offsets.values()) == report.total


def test_tombstones_and_headers_reach_the_producer_unchanged(
    planned: list[PlannedRecord],
) -> None:
    build, made = factory()
    send_records(build({}), planned)

    assert len(made[0].log) == len(planned)
    for sent, record in zip(made[0].log, planned, strict=True):
        assert (sent.topic, sent.key, sent.value) == (
            record.topic,
            record.key,
            record.value,
        )
        assert sent.headers == record.headers


def test_full_queue_is_waited_out_without_losing_records(
    planned: list[PlannedRecord],
) -> None:
    build, made = factory(queue_limit=7, slow_broker=True)

    report = send_records(build({}), planned[:200])

    assert made[0].buffer_errors > 0
    assert report.total == 200
    assert [r.value for r in made[0].log] == [r.value for r in planned[:200]]


def test_failed_deliveries_raise(planned: list[PlannedRecord]) -> None:
    build, _ = factory(failing_topics=frozenset({"events.emails"}))

    with pytest.raises(DeliveryFailedError, match="authorization failed"):
        send_records(build({}), planned)


def test_unconfirmed_records_raise_after_the_flush(
    planned: list[PlannedRecord],
) -> None:
    build, _ = factory(stuck=True)

    with pytest.raises(DeliveryFailedError, match="10 of 10"):
        send_records(build({}), planned[:10], flush_timeout_s=0.01)


def test_a_queue_that_stays_full_raises(planned: list[PlannedRecord]) -> None:
    build, _ = factory(queue_limit=1, stuck=True)

    with pytest.raises(DeliveryFailedError, match="stayed full"):
        send_records(build({}), planned[:3], flush_timeout_s=0.05)


def test_report_json_lists_counts_and_records(planned: list[PlannedRecord]) -> None:
    build, _ = factory()
    report = send_records(build({}), planned)

    decoded = json.loads(report.to_json())

    assert decoded["total"] == report.total
    assert decoded["counts"]["by_topic"] == report.count_by_topic()
    by_topic_and_kind = decoded["counts"]["by_topic_and_kind"]
    assert by_topic_and_kind["events.tickets"]["malformed:big_integer"] == 1
    first = decoded["records"][0]
    assert set(first) == {
        "topic",
        "partition",
        "offset",
        "event_id",
        "kind",
        "expected_outcome",
        "expected_reason",
    }
    tombstones = [r for r in decoded["records"] if r["kind"] == "malformed:tombstone"]
    assert {r["expected_reason"] for r in tombstones} == {"tombstone"}
    assert all(r["event_id"] is None for r in tombstones)


def test_produce_events_checks_its_arguments_before_connecting(tmp_path: Path) -> None:
    build, made = factory()

    with pytest.raises(ValueError, match="duplicate ratio"):
        produce_events(
            "127.0.0.1:9092",
            data_dir=default_data_dir(),
            duplicate_ratio=1.5,
            producer_factory=build,
        )
    with pytest.raises(FileNotFoundError):
        produce_events("127.0.0.1:9092", data_dir=tmp_path, producer_factory=build)
    assert made == []


def test_pipelines_and_limits_narrow_the_run() -> None:
    build, _ = factory()

    report = produce_events(
        "127.0.0.1:9092",
        data_dir=default_data_dir(),
        pipelines={"emails"},
        limit_per_source=20,
        duplicate_ratio=0.25,
        producer_factory=build,
    )

    assert report.count_by_topic() == {"events.emails": 20 + 5 + len(MALFORMED_KINDS)}
