"""Accounting for every input record by reading what the worker wrote.

The ledger reads the output and dead-letter topics from where they stood
before the run, and files each record under the coordinates (topic,
partition, offset) of the input it answers: enriched records name them in
``enrichment_metadata.source``, dead letters in their ``dlq.original.*``
headers. An input is accounted for once it has at least one outcome; more
than one outcome for one input is a duplicate (allowed after a crash,
recognisable by the event id).
"""

from __future__ import annotations

import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import (
    OFFSET_END,
    Consumer,
    KafkaError,
    KafkaException,
    TopicPartition,
)

from streams import json_codec
from streams.kafka.dead_letter import header_list

Coordinates = tuple[str, int, int]
WATERMARK_TIMEOUT_S = 30.0
_NOT_READY = (
    KafkaError.NOT_LEADER_FOR_PARTITION,
    KafkaError.LEADER_NOT_AVAILABLE,
    KafkaError.UNKNOWN_TOPIC_OR_PART,
)


@dataclass(frozen=True)
class Outcome:
    """One output record for one input."""

    kind: str
    """``enriched`` or ``dead_letter``."""
    event_id: str | None
    dedup: str | None = None
    reason: str | None = None
    stage: str | None = None
    value: bytes | None = None
    key: bytes | None = None
    headers: dict[str, bytes] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)


class OutputLedger:
    """Reads outcomes and files them by input coordinates.

    Args:
        client_config: librdkafka properties (bootstrap and security).
        output_topic: Enriched records.
        dead_letter_topic: Dead-letter records.
        from_beginning: Read whole topics instead of only what comes later.
    """

    def __init__(
        self,
        client_config: dict[str, Any],
        output_topic: str,
        dead_letter_topic: str,
        *,
        from_beginning: bool = False,
    ) -> None:
        self._output_topic = output_topic
        self._consumer = Consumer(
            {
                **client_config,
                "group.id": f"streams-ledger-{uuid.uuid4().hex[:8]}",
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
            }
        )
        self.outcomes: dict[Coordinates, list[Outcome]] = defaultdict(list)
        try:
            self._assign(output_topic, dead_letter_topic, from_beginning)
        except BaseException:
            self._consumer.close()
            raise

    def _assign(
        self, output_topic: str, dead_letter_topic: str, from_beginning: bool
    ) -> None:
        metadata = self._consumer.list_topics(timeout=30)
        partitions = []
        for topic in (output_topic, dead_letter_topic):
            for partition in metadata.topics[topic].partitions:
                if from_beginning:
                    start = 0
                else:
                    start = self._high_watermark(TopicPartition(topic, partition))
                partitions.append(TopicPartition(topic, partition, start))
        self._consumer.assign(partitions)

    def _high_watermark(self, partition: TopicPartition) -> int:
        """The partition's end offset, waiting out a leader that is not ready."""
        deadline = time.monotonic() + WATERMARK_TIMEOUT_S
        while True:
            try:
                _low, high = self._consumer.get_watermark_offsets(partition, timeout=10)
            except KafkaException as exc:
                code = exc.args[0].code()
                waiting = code in _NOT_READY or exc.args[0].retriable()
                if not waiting or time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
                continue
            return int(high) if high >= 0 else OFFSET_END

    def poll(self, timeout_s: float = 0.5, max_records: int = 5_000) -> int:
        """Reads what is available; returns how many records were filed."""
        messages = self._consumer.consume(num_messages=max_records, timeout=timeout_s)
        filed = 0
        for message in messages:
            if message.error() is not None:
                continue
            if message.topic() == self._output_topic:
                self._file_enriched(message.key(), message.value())
            else:
                self._file_dead_letter(
                    message.key(), message.value(), header_list(message.headers())
                )
            filed += 1
        return filed

    def _file_enriched(self, key: bytes | None, value: bytes | None) -> None:
        record = json_codec.loads(value or b"{}")
        metadata = record["enrichment_metadata"]
        source = metadata["source"]
        self.outcomes[(source["topic"], source["partition"], source["offset"])].append(
            Outcome(
                "enriched",
                record.get("id"),
                dedup=metadata["dedup"],
                value=value,
                key=key,
                metadata=metadata,
            )
        )

    def _file_dead_letter(
        self,
        key: bytes | None,
        value: bytes | None,
        headers: list[tuple[str, bytes | None]],
    ) -> None:
        found = {
            name: raw
            for name, raw in headers
            if name.startswith("dlq.") and raw is not None
        }

        def text(name: str) -> str | None:
            raw = found.get(name)
            return raw.decode() if raw is not None else None

        coordinates = (
            text("dlq.original.topic") or "",
            int(text("dlq.original.partition") or -1),
            int(text("dlq.original.offset") or -1),
        )
        self.outcomes[coordinates].append(
            Outcome(
                "dead_letter",
                text("dlq.event.id"),
                reason=text("dlq.error.reason"),
                stage=text("dlq.failure.stage"),
                value=value,
                key=key,
                headers=found,
            )
        )

    def missing(self, expected: set[Coordinates]) -> set[Coordinates]:
        """The expected inputs that have no outcome yet."""
        return {
            coordinates for coordinates in expected if coordinates not in self.outcomes
        }

    def close(self) -> None:
        """Closes the reader (it commits nothing)."""
        self._consumer.close()
