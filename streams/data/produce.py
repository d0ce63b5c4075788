"""Write the sample events, their replays and the malformed records to Kafka.

The producer is idempotent (``enable.idempotence=true``, ``acks=all``), so the
broker never stores a record twice because librdkafka retried a send. The
replays that ``streams.data.plan`` adds are separate sends on purpose: they
model a client that gave up waiting and produced the same event again, which
idempotence cannot detect.

When librdkafka's local queue is full, ``produce`` raises ``BufferError``; the
producer then serves delivery reports for a moment and tries again, and gives
up with ``DeliveryFailedError`` only if the queue stays full for the whole
flush timeout. After the last record it flushes and raises
``DeliveryFailedError`` when any record failed or was not confirmed in time,
so a run either reports every record or fails loudly.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Final, Protocol

from confluent_kafka import Producer

from streams.data.events import PIPELINE_TOPICS
from streams.data.plan import PlannedRecord, plan_records
from streams.data.report import (
    DUPLICATE_KIND,
    EVENT_KIND,
    ProducedRecord,
    ProduceReport,
)
from streams.data.sample import load_pipeline_events
from streams.errors import FatalError

__all__ = [
    "DeliveryFailedError",
    "ProduceReport",
    "ProducedRecord",
    "ProducerLike",
    "produce_events",
    "producer_config",
    "send_records",
]

logger = logging.getLogger(__name__)

BACKPRESSURE_POLL_S: Final = 0.1
"""How long to serve delivery reports before retrying a send the full queue refused."""

DEFAULT_FLUSH_TIMEOUT_S: Final = 60.0


class DeliveryFailedError(FatalError):
    """Some records were not acknowledged by the broker; the run is incomplete.

    The answer key of an incomplete run would be wrong, so the run stops here
    instead of returning a partial report.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message, reason="delivery_failed")


class DeliveredMessage(Protocol):
    """The part of a delivered message the report needs."""

    def partition(self) -> int | None: ...

    def offset(self) -> int | None: ...


DeliveryCallback = Callable[[object | None, DeliveredMessage], None]
"""Called by the producer with the delivery error (or ``None``) and the message."""

ProducerHeaders = list[tuple[str, str | bytes | None]]


class ProducerLike(Protocol):
    """The part of ``confluent_kafka.Producer`` this module uses."""

    def produce(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        *,
        on_delivery: DeliveryCallback | None = None,
        headers: ProducerHeaders | None = None,
    ) -> None: ...

    def poll(self, timeout: float = -1) -> int: ...

    def flush(self, timeout: float = -1) -> int: ...


ProducerFactory = Callable[[dict[str, str]], ProducerLike]


def producer_config(
    bootstrap: str, extra_config: dict[str, str] | None = None
) -> dict[str, str]:
    """Return the librdkafka settings of the sample producer.

    Args:
        bootstrap: ``host:port`` list of the brokers.
        extra_config: librdkafka settings laid over the defaults, such as
            security settings; they may override any default.

    Returns:
        The settings, all as strings.
    """
    config = {
        "bootstrap.servers": bootstrap,
        "client.id": "streams-sample-producer",
        "enable.idempotence": "true",
        "acks": "all",
        "linger.ms": "5",
        "compression.type": "lz4",
    }
    config.update(extra_config or {})
    return config


class _DeliveryTracker:
    """Collects delivery reports, one slot per planned record."""

    def __init__(self, planned: Sequence[PlannedRecord]) -> None:
        self._planned = planned
        self.delivered: list[ProducedRecord | None] = [None] * len(planned)
        self.errors: list[str] = []

    def callback_for(self, index: int) -> DeliveryCallback:
        def on_delivery(error: object | None, message: DeliveredMessage) -> None:
            if error is not None:
                self.errors.append(str(error))
                return
            record = self._planned[index]
            partition, offset = message.partition(), message.offset()
            self.delivered[index] = ProducedRecord(
                topic=record.topic,
                partition=-1 if partition is None else partition,
                offset=-1 if offset is None else offset,
                event_id=record.event_id,
                kind=record.kind,
                expected_outcome=record.expected_outcome,
                expected_reason=record.expected_reason,
            )

        return on_delivery


def _send(
    producer: ProducerLike,
    record: PlannedRecord,
    on_delivery: DeliveryCallback,
    deadline: float,
) -> int:
    """Produce one record, waiting out a full queue; return how often it waited."""
    headers: ProducerHeaders | None = list(record.headers) or None
    waits = 0
    while True:
        try:
            producer.produce(
                record.topic,
                record.value,
                record.key,
                on_delivery=on_delivery,
                headers=headers,
            )
        except BufferError as exc:
            if time.monotonic() > deadline:
                raise DeliveryFailedError(
                    "the producer queue stayed full until the flush timeout"
                ) from exc
            waits += 1
            producer.poll(BACKPRESSURE_POLL_S)
        else:
            producer.poll(0)
            return waits


def send_records(
    producer: ProducerLike,
    planned: Sequence[PlannedRecord],
    *,
    flush_timeout_s: float = DEFAULT_FLUSH_TIMEOUT_S,
) -> ProduceReport:
    """Produce planned records in order, flush, and report their positions.

    Args:
        producer: A producer, normally ``confluent_kafka.Producer``.
        planned: The records, in produce order.
        flush_timeout_s: Longest wait for the final flush, and for a full queue.

    Returns:
        One report entry per record, in produce order.

    Raises:
        DeliveryFailedError: If a record failed or was not confirmed in time.
    """
    tracker = _DeliveryTracker(planned)
    waits = 0
    started = time.monotonic()
    for index, record in enumerate(planned):
        deadline = time.monotonic() + flush_timeout_s
        waits += _send(producer, record, tracker.callback_for(index), deadline)

    left_in_queue = producer.flush(flush_timeout_s)
    unconfirmed = sum(entry is None for entry in tracker.delivered)
    if tracker.errors or unconfirmed:
        logger.error(
            "produce.failed records=%d failed=%d unconfirmed=%d queued=%d",
            len(planned),
            len(tracker.errors),
            unconfirmed,
            left_in_queue,
        )
        first = tracker.errors[0] if tracker.errors else "flush timed out"
        raise DeliveryFailedError(
            f"{unconfirmed} of {len(planned)} records were not acknowledged "
            f"({len(tracker.errors)} failed; first error: {first})"
        )

    report = ProduceReport(tuple(e for e in tracker.delivered if e is not None))
    kinds = report.count_by_kind()
    logger.info(
        "produce.finished records=%d events=%d duplicates=%d malformed=%d "
        "backpressure_waits=%d elapsed_s=%.2f",
        report.total,
        kinds.get(EVENT_KIND, 0),
        kinds.get(DUPLICATE_KIND, 0),
        report.total - kinds.get(EVENT_KIND, 0) - kinds.get(DUPLICATE_KIND, 0),
        waits,
        time.monotonic() - started,
    )
    return report


def produce_events(
    bootstrap: str,
    *,
    data_dir: Path | None = None,
    pipelines: Iterable[str] | None = None,
    limit_per_source: int | None = None,
    duplicate_ratio: float = 0.1,
    malformed: bool = True,
    seed: int = 7,
    extra_config: dict[str, str] | None = None,
    topics: Mapping[str, str] | None = None,
    producer_factory: ProducerFactory = Producer,
    flush_timeout_s: float = DEFAULT_FLUSH_TIMEOUT_S,
) -> ProduceReport:
    """Load the sample data and write it to the pipelines' input topics.

    Args:
        bootstrap: ``host:port`` list of the brokers.
        data_dir: Directory holding the source files; ``None`` means the shipped
            sample, ``default_data_dir()``.
        pipelines: Pipelines to write, or ``None`` for all.
        limit_per_source: Read at most this many rows of each source file.
        duplicate_ratio: Share of each pipeline's events to replay, in [0, 1].
        malformed: Whether to add one malformed record of every kind per topic.
        seed: Selects which events are replayed.
        extra_config: librdkafka settings laid over the defaults.
        topics: Input topic per pipeline name, where it differs from the
            default ``events.<pipeline>`` (the pipelines' files decide).
        producer_factory: Builds the producer from its settings; tests pass a fake.
        flush_timeout_s: Longest wait for the final flush, and for a full queue.

    Returns:
        The answer key of the run: every record with its partition, offset and
        expected outcome.

    Raises:
        FileNotFoundError: If a source file is missing.
        ValueError: If a pipeline is unknown, a limit is negative or the ratio is
            outside [0, 1].
        DeliveryFailedError: If a record failed or was not confirmed in time.
    """
    events = load_pipeline_events(
        data_dir, pipelines=pipelines, limit_per_source=limit_per_source
    )
    planned = plan_records(
        events, duplicate_ratio=duplicate_ratio, malformed=malformed, seed=seed
    )
    logger.info(
        "produce.started records=%d topics=%d",
        len(planned),
        len({r.topic for r in planned}),
    )

    if topics:
        renamed = {PIPELINE_TOPICS[name]: topic for name, topic in topics.items()}
        planned = [
            dataclasses.replace(record, topic=renamed.get(record.topic, record.topic))
            for record in planned
        ]
    producer = producer_factory(producer_config(bootstrap, extra_config))
    try:
        return send_records(producer, planned, flush_timeout_s=flush_timeout_s)
    finally:
        close = getattr(producer, "close", None)
        if close is not None:
            close()
