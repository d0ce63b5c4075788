"""Reading a topic up to the end it had when the read began, committing nothing.

The reader assigns the topic's partitions itself (no group membership, no
rebalance) under a throwaway group id and never commits, so it leaves no trace
on the cluster. When it opens it takes each partition's high watermark; the
read is finished when every partition's position has reached that mark, so
records written meanwhile are not part of the snapshot and the read always
ends. Positions rather than offsets decide, because a compacted topic has
gaps and a transactional one ends with control records.

Errors are translated here: an unreachable cluster and a missing topic become
:class:`~streams.errors.ConfigurationError` subclasses with a sentence for the
operator; a read that stops making progress becomes :class:`TopicReadError`.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from types import TracebackType
from typing import Any

from confluent_kafka import Consumer, KafkaException, TopicPartition

from streams.errors import ConfigurationError, FatalError
from streams.kafka.dead_letter import SourceRecord, header_list

logger = logging.getLogger(__name__)

METADATA_TIMEOUT_S = 15.0
"""Longest wait for the cluster's metadata, watermarks or time lookups."""
STALL_TIMEOUT_S = 30.0
"""Longest wait for a read that is short of its end to make progress."""
BATCH_SIZE = 1_000


class KafkaUnreachableError(ConfigurationError):
    """No broker of the configured bootstrap list answered."""


class MissingTopicError(ConfigurationError):
    """The topic does not exist on the cluster.

    Args:
        topic: The topic asked for.
        bootstrap: Where it was looked for.
    """

    def __init__(self, topic: str, bootstrap: str) -> None:
        super().__init__(f"topic {topic} does not exist on {bootstrap}")
        self.topic = topic


class TopicReadError(FatalError):
    """Reading stopped short of the end it set out to reach."""

    def __init__(self, message: str) -> None:
        super().__init__(message, reason="topic_read")


class TopicReader:
    """One topic's records from a start up to the end taken when it opened.

    Args:
        client_config: librdkafka properties (bootstrap and security).
        topic: The topic to read.
        since: Start at each partition's first record at or after this moment
            (Kafka's offsets-for-times lookup); from the beginning when unset.
        timeout_s: Longest wait for metadata and offsets.
        stall_timeout_s: Longest wait for progress while short of the end.
        consumer_factory: Builds the consumer; tests pass a fake.

    Attributes:
        topic: The topic read.
        topic_partitions: Partition count of every topic on the cluster.
        replication_factor: Replicas of the topic's least replicated partition.
        start_offsets: Where each partition's read starts.
        end_offsets: Each partition's high watermark when the reader opened.

    Raises:
        KafkaUnreachableError: No broker answered within ``timeout_s``.
        MissingTopicError: The topic does not exist.
    """

    def __init__(
        self,
        client_config: dict[str, Any],
        topic: str,
        *,
        since: datetime | None = None,
        timeout_s: float = METADATA_TIMEOUT_S,
        stall_timeout_s: float = STALL_TIMEOUT_S,
        consumer_factory: Callable[[dict[str, Any]], Any] = Consumer,
    ) -> None:
        self.topic = topic
        self.topic_partitions: dict[str, int] = {}
        self.replication_factor = 1
        self.end_offsets: dict[int, int] = {}
        self.start_offsets: dict[int, int] = {}
        self._timeout_s = timeout_s
        self._stall_timeout_s = stall_timeout_s
        bootstrap = str(client_config.get("bootstrap.servers"))
        self._consumer = consumer_factory(
            {
                **client_config,
                "group.id": f"streams-dlq-reader-{uuid.uuid4().hex[:12]}",
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "auto.offset.reset": "earliest",
                "enable.partition.eof": False,
            }
        )
        try:
            self._open(since, bootstrap)
        except BaseException:
            self._consumer.close()
            raise
        logger.info(
            "topic_read.opened topic=%s partitions=%d records=%d",
            topic,
            len(self.end_offsets),
            self.remaining,
        )

    def _open(self, since: datetime | None, bootstrap: str) -> None:
        """Reads the metadata and fixes where each partition starts and ends."""
        try:
            metadata = self._consumer.list_topics(timeout=self._timeout_s)
        except KafkaException as exc:
            raise KafkaUnreachableError(
                f"cannot reach Kafka at {bootstrap}: {exc.args[0].str()}"
            ) from exc
        self.topic_partitions = {
            name: len(found.partitions)
            for name, found in metadata.topics.items()
            if found.error is None
        }
        if self.topic not in self.topic_partitions:
            raise MissingTopicError(self.topic, bootstrap)
        found_partitions = metadata.topics[self.topic].partitions
        self.replication_factor = min(
            (len(found.replicas) for found in found_partitions.values()), default=1
        )
        watermarks = {p: self._watermarks(p) for p in sorted(found_partitions)}
        self.end_offsets = {p: high for p, (_low, high) in watermarks.items()}
        self.start_offsets = self._starts(watermarks, since)

    @property
    def remaining(self) -> int:
        """Offsets between the starts and the ends (an upper bound on records)."""
        return sum(
            max(0, end - self.start_offsets[partition])
            for partition, end in self.end_offsets.items()
        )

    def _watermarks(self, partition: int) -> tuple[int, int]:
        """Low and high watermark, waiting out a leader that is not ready yet."""
        deadline = time.monotonic() + self._timeout_s
        while True:
            try:
                low, high = self._consumer.get_watermark_offsets(
                    TopicPartition(self.topic, partition), timeout=self._timeout_s
                )
            except KafkaException as exc:
                if not exc.args[0].retriable() or time.monotonic() > deadline:
                    raise TopicReadError(
                        f"cannot read the end offsets of {self.topic}"
                        f"[{partition}]: {exc.args[0].str()}"
                    ) from exc
                time.sleep(0.2)
                continue
            return int(low), int(high)

    def _starts(
        self, watermarks: dict[int, tuple[int, int]], since: datetime | None
    ) -> dict[int, int]:
        lows = {partition: low for partition, (low, _high) in watermarks.items()}
        if since is None:
            return lows
        moment_ms = int(since.timestamp() * 1000)
        try:
            found = self._consumer.offsets_for_times(
                [TopicPartition(self.topic, p, moment_ms) for p in watermarks],
                timeout=self._timeout_s,
            )
        except KafkaException as exc:
            raise TopicReadError(
                f"cannot look up offsets of {self.topic} by time: {exc.args[0].str()}"
            ) from exc
        starts = {}
        for position in found:
            # A negative answer means no record is that recent: nothing to read.
            offset = int(position.offset)
            partition = int(position.partition)
            end = self.end_offsets[partition]
            starts[partition] = end if offset < 0 else max(lows[partition], offset)
        return starts

    def __iter__(self) -> Iterator[SourceRecord]:
        """Yields every record between the starts and the ends, then stops.

        Raises:
            TopicReadError: A partition reported an error that is not
                transient, or no progress was made for ``stall_timeout_s``.
        """
        pending = {
            partition: end
            for partition, end in self.end_offsets.items()
            if self.start_offsets[partition] < end
        }
        if not pending:
            return
        self._consumer.assign(
            [
                TopicPartition(self.topic, partition, self.start_offsets[partition])
                for partition in pending
            ]
        )
        read = 0
        last_progress = time.monotonic()
        while pending:
            messages = self._consumer.consume(num_messages=BATCH_SIZE, timeout=0.5)
            for message in messages:
                record = self._record(message)
                if record is None or record.offset >= pending.get(record.partition, -1):
                    continue
                read += 1
                yield record
            finished = self._finished(pending)
            if messages or finished:
                last_progress = time.monotonic()
            for partition in finished:
                del pending[partition]
            if finished:
                # Whatever arrives after the end is not part of this read.
                self._consumer.pause(
                    [TopicPartition(self.topic, partition) for partition in finished]
                )
            if pending and time.monotonic() - last_progress > self._stall_timeout_s:
                raise TopicReadError(
                    f"reading {self.topic} made no progress for "
                    f"{self._stall_timeout_s:.0f} s with {len(pending)} partitions "
                    "short of their end"
                )
        logger.info("topic_read.finished topic=%s records=%d", self.topic, read)

    def _record(self, message: Any) -> SourceRecord | None:
        error = message.error()
        if error is not None:
            if error.retriable():
                logger.warning(
                    "topic_read.transient_error topic=%s error=%s; reading goes on",
                    self.topic,
                    error.str(),
                )
                return None
            raise TopicReadError(f"reading {self.topic} failed: {error.str()}")
        _kind, timestamp_ms = message.timestamp()
        return SourceRecord(
            topic=message.topic(),
            partition=message.partition(),
            offset=message.offset(),
            timestamp_ms=int(timestamp_ms),
            key=message.key(),
            value=message.value(),
            headers=header_list(message.headers()),
        )

    def _finished(self, pending: dict[int, int]) -> list[int]:
        positions = self._consumer.position(
            [TopicPartition(self.topic, partition) for partition in pending]
        )
        return [
            int(position.partition)
            for position in positions
            if position.offset >= pending[int(position.partition)]
        ]

    def close(self) -> None:
        """Leaves the cluster; there is nothing to commit."""
        self._consumer.close()

    def __enter__(self) -> TopicReader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
