"""Producing dead letters back to their original topics, each marked once.

Each record of :attr:`ReplayPlan.to_replay` is produced to its original topic
(and partition, while it exists) with its original key, value and the input's
own headers in their order, plus :data:`REPLAYED_FROM_HEADER` naming the dead
letter it came from. The producer is idempotent, so librdkafka's own retries
never store a record twice. Only after the broker acknowledged a replayed
record is its ledger entry produced; the replay is complete for a record once
that entry is acknowledged too.

Sends are pipelined and every delivery report is awaited, up to the
producer's delivery timeout and a grace period. The result keeps three lists:
``replayed`` (delivered and marked), ``failed`` (not delivered: replaying it
again is safe) and ``unmarked`` (delivered, but the ledger entry failed: the
record is on its topic and a later replay would send it again). Any entry in
the last two makes :func:`execute_replay` raise after the run.

Two replays over the same dead letters at the same moment both read the
ledger before either writes it, so both would send; the ledger protects
against repeating a finished replay, not against running two at once.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Producer

from streams.dead_letters.ledger import Delivery, ledger_entry
from streams.dead_letters.record import REPLAYED_FROM_HEADER, DeadLetterRecord
from streams.dead_letters.replay_plan import ReplayPlan
from streams.errors import FatalError

logger = logging.getLogger(__name__)

BACKPRESSURE_POLL_S = 0.1
DELIVERY_GRACE_S = 30.0
"""Waited beyond the producer's ``delivery.timeout.ms`` for the last reports."""


@dataclass(frozen=True)
class Failure:
    """A dead letter whose replay or ledger entry was not acknowledged."""

    record: DeadLetterRecord
    error: str


@dataclass
class ReplayResult:
    """What happened to every record of a plan.

    Attributes:
        plan: The plan that was carried out.
        replayed: Delivered to the original topic and marked in the ledger.
        failed: Not delivered; the ledger does not mark them.
        unmarked: Delivered, but their ledger entry failed, so a later replay
            would send them again.
    """

    plan: ReplayPlan
    replayed: list[Delivery] = field(default_factory=list)
    failed: list[Failure] = field(default_factory=list)
    unmarked: list[Failure] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """Whether every record to replay was delivered and marked."""
        return not self.failed and not self.unmarked


class ReplayFailedError(FatalError):
    """Some selected dead letters were not replayed, or not marked as replayed.

    Args:
        result: The whole result, for callers that show it.
        ledger_topic: The ledger the marks belong in.
    """

    def __init__(self, result: ReplayResult, ledger_topic: str) -> None:
        super().__init__(
            f"{len(result.failed)} records were not replayed and "
            f"{len(result.unmarked)} were replayed but not marked in {ledger_topic}",
            reason="replay_failed",
        )
        self.result = result


def replay_headers(record: DeadLetterRecord) -> list[tuple[str, bytes | None]]:
    """The input's own headers, then ``streams.replayed-from: <topic>:<p>:<o>``.

    A record replayed before, failed again and replayed once more carries one
    ``streams.replayed-from`` per replay, the newest last.
    """
    return [*record.original_headers, (REPLAYED_FROM_HEADER, record.key.encode())]


def execute_replay(
    plan: ReplayPlan,
    producer_config: dict[str, Any],
    *,
    ledger_topic: str,
    producer_factory: Callable[[dict[str, Any]], Any] = Producer,
) -> ReplayResult:
    """Produces every record of the plan and marks each delivered one.

    Args:
        plan: What to replay.
        producer_config: librdkafka producer properties; idempotence is
            switched on whatever they say.
        ledger_topic: The replay ledger to mark delivered records in.
        producer_factory: Builds the producer; tests pass a fake.

    Returns:
        The result; :attr:`ReplayResult.complete` is true.

    Raises:
        ReplayFailedError: A record was not delivered, or its ledger entry was
            not; the message counts both, and the result is on ``result``.
    """
    config = {**producer_config, "enable.idempotence": True, "acks": "all"}
    wait_s = int(config.get("delivery.timeout.ms", 120_000)) / 1000 + DELIVERY_GRACE_S
    result = ReplayResult(plan=plan)
    producer = producer_factory(config)
    try:
        _Replayer(producer, result, ledger_topic).run(wait_s)
    finally:
        producer.close()
    logger.info(
        "dlq_replay.finished replayed=%d failed=%d unmarked=%d "
        "already_replayed=%d skipped=%d",
        len(result.replayed),
        len(result.failed),
        len(result.unmarked),
        len(plan.already_replayed),
        len(plan.skipped),
    )
    if not result.complete:
        raise ReplayFailedError(result, ledger_topic)
    return result


class _Replayer:
    """Sends, awaits and marks; every callback runs inside ``poll``."""

    def __init__(self, producer: Any, result: ReplayResult, ledger_topic: str) -> None:
        self._producer = producer
        self._result = result
        self._ledger_topic = ledger_topic
        self._acknowledged: deque[Delivery] = deque()
        # Sends without a report yet, by (destination topic, dead-letter key).
        self._awaiting: dict[tuple[str, str], DeadLetterRecord] = {}

    def run(self, wait_s: float) -> None:
        plan = self._result.plan
        for record in plan.to_replay:
            self._send(
                record,
                record.original_topic or "",
                plan.destination_partition(record),
                record.source.value,
                replay_headers(record),
                partial(self._on_replayed, record),
            )
            self._mark_acknowledged()

        # Wait for every report; a delivered record's ledger entry is sent
        # as soon as its report arrives, so the loop also waits for those.
        deadline = time.monotonic() + wait_s
        while (self._awaiting or self._acknowledged) and time.monotonic() < deadline:
            self._producer.poll(BACKPRESSURE_POLL_S)
            self._mark_acknowledged()
        silent = f"no delivery report within {wait_s:.0f} s"
        for (topic, _key), record in self._awaiting.items():
            if topic == self._ledger_topic:
                self._result.unmarked.append(Failure(record, silent))
            else:
                self._result.failed.append(Failure(record, silent))

    def _send(
        self,
        record: DeadLetterRecord,
        topic: str,
        partition: int | None,
        value: bytes | None,
        headers: list[tuple[str, bytes | None]],
        on_report: Callable[[KafkaError | None, Any], None],
    ) -> None:
        """Produces one record; ``on_report`` gets the outcome exactly once."""
        awaited = (topic, record.key)
        key = record.source.key if topic != self._ledger_topic else record.key.encode()
        options: dict[str, Any] = {"key": key, "value": value, "headers": headers}
        if partition is not None:
            options["partition"] = partition

        def report(error: KafkaError | None, message: Any) -> None:
            self._awaiting.pop(awaited, None)
            on_report(error, message)

        self._awaiting[awaited] = record
        while True:
            try:
                self._producer.produce(topic, on_delivery=report, **options)
            except BufferError:
                # The local queue is full: serve reports, then try again.
                self._producer.poll(BACKPRESSURE_POLL_S)
            except KafkaException as exc:
                report(exc.args[0], None)
                return
            else:
                return

    def _on_replayed(
        self, record: DeadLetterRecord, error: KafkaError | None, message: Any
    ) -> None:
        if error is not None:
            logger.warning(
                "dlq_replay.failed dead_letter=%s error=%s; it stays unmarked",
                record.key,
                error.str(),
            )
            self._result.failed.append(Failure(record, error.str()))
            return
        delivery = Delivery(
            record, message.topic(), int(message.partition()), int(message.offset())
        )
        logger.debug(
            "dlq_replay.delivered dead_letter=%s topic=%s partition=%d offset=%d",
            record.key,
            delivery.topic,
            delivery.partition,
            delivery.offset,
        )
        self._acknowledged.append(delivery)

    def _mark_acknowledged(self) -> None:
        """Serves reports, then sends the ledger entry of each delivered record."""
        self._producer.poll(0)
        while self._acknowledged:
            delivery = self._acknowledged.popleft()
            self._send(
                delivery.record,
                self._ledger_topic,
                None,
                ledger_entry(delivery, datetime.now(UTC)),
                [],
                partial(self._on_marked, delivery),
            )

    def _on_marked(
        self, delivery: Delivery, error: KafkaError | None, _message: Any
    ) -> None:
        if error is None:
            self._result.replayed.append(delivery)
            return
        logger.error(
            "dlq_replay.unmarked dead_letter=%s error=%s; "
            "it was replayed and a later replay would send it again",
            delivery.record.key,
            error.str(),
        )
        self._result.unmarked.append(Failure(delivery.record, error.str()))
