"""Reading a topic to the end it had at the start, and translating Kafka's errors.

The consumer is a fake that keeps librdkafka's contract for what the reader
uses: watermarks, offsets by time, positions that move past compaction gaps
and trailing control records, and records that arrive after the read began.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition

from streams.dead_letters.ledger import read_replayed
from streams.dead_letters.reader import (
    KafkaUnreachableError,
    MissingTopicError,
    TopicReader,
    TopicReadError,
)

T0 = 1_793_606_400_000  # 2026-11-02T08:00:00Z


@dataclass
class Stored:
    offset: int
    timestamp_ms: int
    key: bytes | None = b"k"
    value: bytes | None = b"v"
    error: KafkaError | None = None


@dataclass
class FakePartition:
    records: list[Stored]
    high: int
    low: int = 0
    late: list[Stored] = field(default_factory=list)
    """Written after the reader opened: beyond the high watermark it saw."""


@dataclass
class FakeMessage:
    topic_name: str
    partition_number: int
    stored: Stored

    def error(self) -> KafkaError | None:
        return self.stored.error

    def topic(self) -> str:
        return self.topic_name

    def partition(self) -> int:
        return self.partition_number

    def offset(self) -> int:
        return self.stored.offset

    def timestamp(self) -> tuple[int, int]:
        return (1, self.stored.timestamp_ms)

    def key(self) -> bytes | None:
        return self.stored.key

    def value(self) -> bytes | None:
        return self.stored.value

    def headers(self) -> list[tuple[str, bytes]]:
        return [("h", b"1")]


class FakeConsumer:
    def __init__(
        self,
        config: dict[str, Any],
        topics: dict[str, dict[int, FakePartition]],
        *,
        unreachable: bool = False,
        silent: bool = False,
    ) -> None:
        self.config = config
        self.topics = topics
        self.unreachable = unreachable
        self.silent = silent
        self.positions: dict[tuple[str, int], int] = {}
        self.paused: set[tuple[str, int]] = set()
        self.closed = False
        self.committed = False

    def list_topics(self, timeout: float) -> Any:
        if self.unreachable:
            raise KafkaException(
                KafkaError(KafkaError._TRANSPORT, "Broker transport failure")
            )

        @dataclass
        class Partition:
            replicas: list[int]

        @dataclass
        class Topic:
            partitions: dict[int, Partition]
            error: None = None

        @dataclass
        class Metadata:
            topics: dict[str, Topic]

        return Metadata(
            {
                name: Topic({p: Partition([1, 2]) for p in partitions})
                for name, partitions in self.topics.items()
            }
        )

    def get_watermark_offsets(
        self, partition: TopicPartition, timeout: float
    ) -> tuple[int, int]:
        found = self.topics[partition.topic][partition.partition]
        return found.low, found.high

    def offsets_for_times(
        self, partitions: list[TopicPartition], timeout: float
    ) -> list[TopicPartition]:
        answers = []
        for wanted in partitions:
            stored = self.topics[wanted.topic][wanted.partition].records
            offset = next(
                (s.offset for s in stored if s.timestamp_ms >= wanted.offset), -1
            )
            answers.append(TopicPartition(wanted.topic, wanted.partition, offset))
        return answers

    def assign(self, partitions: list[TopicPartition]) -> None:
        for assigned in partitions:
            self.positions[(assigned.topic, assigned.partition)] = assigned.offset

    def consume(self, num_messages: int, timeout: float) -> list[FakeMessage]:
        if self.silent:
            return []
        messages = []
        for (topic, number), position in self.positions.items():
            if (topic, number) in self.paused:
                continue
            partition = self.topics[topic][number]
            for stored in [*partition.records, *partition.late]:
                if stored.offset >= position:
                    messages.append(FakeMessage(topic, number, stored))
                    position = stored.offset + 1
            # Past the last record: control records and gaps are skipped.
            last = max(partition.high, position)
            self.positions[(topic, number)] = last if not partition.late else position
        return messages[:num_messages]

    def position(self, partitions: list[TopicPartition]) -> list[TopicPartition]:
        return [
            TopicPartition(p.topic, p.partition, self.positions[(p.topic, p.partition)])
            for p in partitions
        ]

    def pause(self, partitions: list[TopicPartition]) -> None:
        self.paused.update((p.topic, p.partition) for p in partitions)

    def commit(self, *args: Any, **kwargs: Any) -> None:
        self.committed = True

    def close(self) -> None:
        self.closed = True


def open_reader(
    topics: dict[str, dict[int, FakePartition]], topic: str = "dlq", **options: Any
) -> tuple[TopicReader, list[FakeConsumer]]:
    made: list[FakeConsumer] = []
    fake_options = {
        name: options.pop(name) for name in ("unreachable", "silent") if name in options
    }

    def factory(config: dict[str, Any]) -> FakeConsumer:
        made.append(FakeConsumer(config, topics, **fake_options))
        return made[-1]

    reader = TopicReader(
        {"bootstrap.servers": "127.0.0.1:1"},
        topic,
        consumer_factory=factory,
        **options,
    )
    return reader, made


def test_reads_every_partition_to_the_end_it_saw_and_ignores_later_records() -> None:
    topics = {
        "dlq": {
            0: FakePartition(
                [Stored(0, T0), Stored(1, T0)], high=2, late=[Stored(2, T0)]
            ),
            1: FakePartition([Stored(3, T0), Stored(7, T0)], high=9, low=3),
            2: FakePartition([], high=0),
        },
        "events.tickets": {0: FakePartition([], high=0)},
    }

    reader, made = open_reader(topics)
    with reader:
        read = [(record.partition, record.offset) for record in reader]

    assert read == [(0, 0), (0, 1), (1, 3), (1, 7)]
    assert reader.end_offsets == {0: 2, 1: 9, 2: 0}
    assert reader.topic_partitions == {"dlq": 3, "events.tickets": 1}
    assert reader.replication_factor == 2
    consumer = made[0]
    assert consumer.closed and not consumer.committed
    assert consumer.config["enable.auto.commit"] is False
    assert consumer.config["group.id"].startswith("streams-dlq-reader-")


def test_since_starts_at_the_first_record_that_recent() -> None:
    topics = {
        "dlq": {
            0: FakePartition(
                [Stored(0, T0), Stored(1, T0 + 60_000), Stored(2, T0 + 120_000)],
                high=3,
            ),
            1: FakePartition([Stored(0, T0)], high=1),
        }
    }
    since = datetime.fromtimestamp((T0 + 60_000) / 1000, UTC)

    reader, _ = open_reader(topics, since=since)
    with reader:
        read = [(record.partition, record.offset) for record in reader]

    assert reader.start_offsets == {0: 1, 1: 1}
    assert read == [(0, 1), (0, 2)]


def test_an_empty_topic_is_read_without_assigning_anything() -> None:
    reader, made = open_reader({"dlq": {0: FakePartition([], high=0)}})

    with reader:
        assert list(reader) == []
    assert made[0].positions == {}


def test_an_unreachable_cluster_is_one_clear_error() -> None:
    with pytest.raises(
        KafkaUnreachableError, match=r"cannot reach Kafka at 127\.0\.0\.1:1"
    ):
        open_reader({}, unreachable=True)


def test_a_missing_topic_is_named_and_the_consumer_closed() -> None:
    made: list[FakeConsumer] = []

    def factory(config: dict[str, Any]) -> FakeConsumer:
        made.append(FakeConsumer(config, {"other": {0: FakePartition([], high=0)}}))
        return made[-1]

    with pytest.raises(MissingTopicError, match="topic dlq does not exist"):
        TopicReader({"bootstrap.servers": "b:1"}, "dlq", consumer_factory=factory)
    assert made[0].closed


def test_a_read_without_progress_stops_with_an_error() -> None:
    reader, _ = open_reader(
        {"dlq": {0: FakePartition([Stored(0, T0)], high=1)}},
        silent=True,
        stall_timeout_s=0.2,
    )

    with reader, pytest.raises(TopicReadError, match="no progress"):
        list(reader)


def test_a_transient_message_error_is_passed_over_and_a_fatal_one_raised() -> None:
    transient = KafkaError(KafkaError._TRANSPORT, "blip", retriable=True)
    fatal = KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED)
    topics = {
        "dlq": {
            0: FakePartition([Stored(0, T0, error=transient), Stored(1, T0)], high=2)
        }
    }

    reader, _ = open_reader(topics)
    with reader:
        assert [record.offset for record in reader] == [1]

    topics["dlq"][0].records[1].error = fatal
    reader, _ = open_reader(topics)
    with reader, pytest.raises(TopicReadError, match="authorization"):
        list(reader)


def test_the_ledger_counts_a_key_until_its_last_entry_is_a_tombstone() -> None:
    entries = [
        Stored(0, T0, key=b"dlq:0:1", value=b"{}"),
        Stored(1, T0, key=b"dlq:0:2", value=b"{}"),
        Stored(2, T0, key=b"dlq:0:1", value=None),
        Stored(3, T0, key=None, value=b"{}"),
        Stored(5, T0, key=b"dlq:1:0", value=b"{}"),
    ]
    topics = {
        "dlq": {0: FakePartition([], high=0)},
        "dlq.replayed": {0: FakePartition(entries, high=6)},
    }

    def factory(config: dict[str, Any]) -> FakeConsumer:
        return FakeConsumer(config, topics)

    replayed = read_replayed({}, "dlq", consumer_factory=factory)
    assert replayed == {"dlq:0:2", "dlq:1:0"}

    del topics["dlq.replayed"]
    assert read_replayed({}, "dlq", consumer_factory=factory) == set()
