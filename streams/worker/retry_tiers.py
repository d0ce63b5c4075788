"""Reading retry tier topics: each record runs when it is due, and no sooner.

The worker subscribes to the tier topics (see
:mod:`streams.kafka.retry_topics`) in the same group as the input topics. A
tier record that is due runs with the pipeline of the input topic its
headers name, under its original coordinates. One that is not due yet holds
its partition: the partition is paused and seeked back to that record, so
the record is neither tracked nor committed, and the records behind it in
the same batch are dropped (they are fetched again after the seek). Each
poll resumes the partitions whose head record has become due; nothing
sleeps, so other partitions and topics keep flowing meanwhile.

The partitions held here are a set of their own, apart from the poll loop's
back-pressure pauses: a partition held for both is resumed only when both
let go. A tier record with unreadable ``retry.*`` headers, or one whose
input topic no pipeline here reads, is dead-lettered with the reason
``invalid_retry_headers`` or ``unknown_pipeline``.

Due times are wall-clock milliseconds since the epoch, because the worker
that writes a tier record is not always the one that reads it.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Collection
from typing import NamedTuple

from confluent_kafka import Consumer, KafkaException, TopicPartition

from streams.errors import DecodeError, FatalError
from streams.kafka.dead_letter import SourceRecord
from streams.kafka.retry_topics import (
    InvalidRetryHeadersError,
    RetryTier,
    read_retry_record,
)
from streams.observability.metrics import Metrics
from streams.pipeline.config import Pipeline
from streams.worker.record_processor import RecordProcessor

logger = logging.getLogger(__name__)

PartitionKey = tuple[str, int]
Finish = Callable[[], None]


class Admitted(NamedTuple):
    """A due tier record: the pipeline label to count it under, and its work."""

    pipeline_name: str
    process: Callable[[Finish], Awaitable[None]]


class RetryTierIntake:
    """Admits due tier records and holds the partitions of the others.

    Args:
        tiers: The configured tiers.
        pipelines: Pipelines keyed by input topic.
        consumer: The worker's consumer, to pause, seek and resume.
        processor: Runs admitted records.
        metrics: Where the number of held partitions is shown.
        clock: Wall-clock seconds since the epoch (tests pass their own).
    """

    def __init__(
        self,
        tiers: tuple[RetryTier, ...],
        pipelines: dict[str, Pipeline],
        consumer: Consumer,
        processor: RecordProcessor,
        metrics: Metrics,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.topics = [tier.topic for tier in tiers]
        self._tier_topics = frozenset(self.topics)
        self._pipelines = pipelines
        self._consumer = consumer
        self._processor = processor
        self._metrics = metrics
        self._clock = clock
        self._due_ms: dict[PartitionKey, int] = {}

    @property
    def waiting(self) -> set[PartitionKey]:
        """Partitions held until their head record is due."""
        return set(self._due_ms)

    def is_tier(self, topic: str) -> bool:
        """Whether the topic is one of the retry tiers."""
        return topic in self._tier_topics

    def holds(self, key: PartitionKey) -> bool:
        """Whether records of this partition are to be dropped for now."""
        return key in self._due_ms

    def admit(self, source: SourceRecord) -> Admitted | None:
        """Decides what to do with a record consumed from a tier topic.

        Returns:
            The work to run, or None when the record is not due: its
            partition is then paused and seeked back to it.
        """
        try:
            record = read_retry_record(source)
        except InvalidRetryHeadersError as exc:
            return Admitted(
                "unknown", functools.partial(self._processor.reject, source, exc)
            )
        assert record.retry is not None  # read_retry_record always sets it

        now_ms = self._now_ms()
        if not record.retry.is_due(now_ms):
            self._hold(source, record.retry.due_ms, now_ms)
            return None
        pipeline = self._pipelines.get(record.topic)
        if pipeline is None:
            error = DecodeError(
                f"the retry record's input topic {record.topic} has no pipeline here",
                reason="unknown_pipeline",
            )
            return Admitted(
                "unknown", functools.partial(self._processor.reject, record, error)
            )
        return Admitted(
            pipeline.name, functools.partial(self._processor.process, record, pipeline)
        )

    def _hold(self, source: SourceRecord, due_ms: int, now_ms: int) -> None:
        key = (source.topic, source.partition)
        self._consumer.pause([TopicPartition(source.topic, source.partition)])
        try:
            self._consumer.seek(
                TopicPartition(source.topic, source.partition, source.offset)
            )
        except KafkaException as exc:
            # Without the seek, resuming would skip the record and a later
            # commit would pass it: stopping (finished prefix only) loses nothing.
            raise FatalError(
                f"cannot seek {source.topic}[{source.partition}] back to "
                f"{source.offset}: {exc}",
                reason="kafka_seek",
            ) from exc
        self._due_ms[key] = due_ms
        self._metrics.retry_partitions_waiting.set(len(self._due_ms))
        logger.debug(
            "retry.partition_held topic=%s partition=%d offset=%d wait_s=%.3f",
            source.topic,
            source.partition,
            source.offset,
            (due_ms - now_ms) / 1000,
        )

    def release_due(self, paused_elsewhere: Collection[PartitionKey]) -> None:
        """Resumes the held partitions whose head record is due now.

        Args:
            paused_elsewhere: Partitions the poll loop paused for its own
                reasons; they are let go here but stay paused until the poll
                loop resumes them.
        """
        if not self._due_ms:
            return
        now_ms = self._now_ms()
        due = [key for key, due_ms in self._due_ms.items() if due_ms <= now_ms]
        if not due:
            return
        for key in due:
            del self._due_ms[key]
        to_resume = [
            TopicPartition(t, p) for t, p in due if (t, p) not in paused_elsewhere
        ]
        if to_resume:
            self._consumer.resume(to_resume)
        self._metrics.retry_partitions_waiting.set(len(self._due_ms))
        logger.debug("retry.partitions_released count=%d", len(due))

    def forget(self, keys: Collection[PartitionKey]) -> None:
        """Drops revoked or lost partitions; their new owner decides anew.

        They are resumed on the way out: librdkafka keeps a partition's pause
        across a revocation, so if this worker got it back, nothing would
        resume it. Call this while the partitions are still assigned (inside
        the rebalance callback).
        """
        held = [key for key in keys if key in self._due_ms]
        for key in held:
            del self._due_ms[key]
        if held:
            # A partition already gone cannot be resumed, and needs not be.
            with contextlib.suppress(KafkaException):
                self._consumer.resume([TopicPartition(t, p) for t, p in held])
        self._metrics.retry_partitions_waiting.set(len(self._due_ms))

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)
