"""One dead-letter record with its ``dlq.*`` headers decoded into typed fields.

The worker writes every ``dlq.*`` header as UTF-8 text (see
:mod:`streams.kafka.dead_letter`), but the dead-letter topic is an ordinary
topic that anyone may write to, so decoding never fails: a header that is
absent becomes ``None``, and a header that is present but not what the schema
says (not UTF-8, not an integer, not RFC 3339) becomes ``None`` too and is
named in :attr:`DeadLetterRecord.problems`, so the commands can show it
instead of hiding it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime

from streams.kafka.dead_letter import PREFIX, SourceRecord

REPLAYED_FROM_HEADER = "streams.replayed-from"
"""Added to every replayed record: ``<dead-letter topic>:<partition>:<offset>``."""


def ledger_key(topic: str, partition: int, offset: int) -> str:
    """The identity of a dead-letter record: ``<topic>:<partition>:<offset>``.

    Topic names cannot contain ``:``, so the key splits back unambiguously.
    """
    return f"{topic}:{partition}:{offset}"


@dataclass(frozen=True)
class DeadLetterRecord:
    """A record of the dead-letter topic, its bytes and its decoded reasons.

    Attributes:
        source: Where the dead-letter record itself sits, with its key, value
            and every header as read.
        original_topic: ``dlq.original.topic``, the input topic.
        original_partition: ``dlq.original.partition``.
        original_offset: ``dlq.original.offset``.
        original_timestamp_ms: ``dlq.original.timestamp``.
        consumer_group: ``dlq.consumer.group``.
        pipeline: ``dlq.pipeline``.
        event_id: ``dlq.event.id``; absent when the value never decoded.
        stage: ``dlq.failure.stage``: decode, enrich or produce.
        error_class: ``dlq.error.class``.
        reason: ``dlq.error.reason``.
        message: ``dlq.error.message``.
        attempts: ``dlq.attempts``.
        first_failure_time: ``dlq.first.failure.time``.
        last_failure_time: ``dlq.last.failure.time``.
        model: ``dlq.model``.
        http_status: ``dlq.http.status``.
        request_id: ``dlq.provider.request.id``.
        tokens: ``dlq.tokens``.
        cost_usd: ``dlq.cost.usd``.
        content_hash: ``dlq.content.hash``.
        payload_omitted: ``dlq.payload.omitted``: the value is a pointer, not
            the input's bytes.
        headers_omitted: ``dlq.headers.omitted``: the input's headers were
            dropped.
        retry_tiers: ``dlq.retry.count``: delayed retry tiers passed before
            the record was dead-lettered; None on records written before
            tiers existed.
        problems: Names of ``dlq.*`` headers that were present but unreadable.
    """

    source: SourceRecord
    original_topic: str | None = None
    original_partition: int | None = None
    original_offset: int | None = None
    original_timestamp_ms: int | None = None
    consumer_group: str | None = None
    pipeline: str | None = None
    event_id: str | None = None
    stage: str | None = None
    error_class: str | None = None
    reason: str | None = None
    message: str | None = None
    attempts: int | None = None
    first_failure_time: datetime | None = None
    last_failure_time: datetime | None = None
    model: str | None = None
    http_status: int | None = None
    request_id: str | None = None
    tokens: int | None = None
    cost_usd: float | None = None
    content_hash: str | None = None
    payload_omitted: bool = False
    headers_omitted: bool = False
    retry_tiers: int | None = None
    problems: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        """The record's identity in the replay ledger (see :func:`ledger_key`)."""
        return ledger_key(self.source.topic, self.source.partition, self.source.offset)

    @property
    def timestamp(self) -> datetime:
        """When the record was written to the dead-letter topic (UTC)."""
        return datetime.fromtimestamp(self.source.timestamp_ms / 1000, UTC)

    @property
    def replayed_from(self) -> list[str]:
        """Dead letters this record was replayed from before, oldest first.

        Not empty when the record failed again after an earlier replay.
        """
        return [
            value.decode(errors="replace")
            for name, value in self.original_headers
            if name == REPLAYED_FROM_HEADER and value is not None
        ]

    @property
    def original_headers(self) -> list[tuple[str, bytes | None]]:
        """The input's own headers, in order, without the ``dlq.*`` ones."""
        return [
            (name, value)
            for name, value in self.source.headers
            if not name.startswith(PREFIX)
        ]


class _Headers:
    """Typed reads of the ``dlq.*`` headers that remember what did not decode."""

    def __init__(self, headers: list[tuple[str, bytes | None]]) -> None:
        # A repeated name keeps its last value, as a map-like reader would.
        self._raw = {name: value for name, value in headers if name.startswith(PREFIX)}
        self.problems: list[str] = []

    def text(self, name: str) -> str | None:
        raw = self._raw.get(PREFIX + name)
        if raw is None:
            return None
        try:
            return raw.decode()
        except UnicodeDecodeError:
            self.problems.append(PREFIX + name)
            return None

    def integer(self, name: str) -> int | None:
        text = self.text(name)
        if text is None:
            return None
        try:
            return int(text)
        except ValueError:
            self.problems.append(PREFIX + name)
            return None

    def number(self, name: str) -> float | None:
        text = self.text(name)
        if text is None:
            return None
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            self.problems.append(PREFIX + name)
            return None
        return value

    def time(self, name: str) -> datetime | None:
        text = self.text(name)
        if text is None:
            return None
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            self.problems.append(PREFIX + name)
            return None
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)

    def flag(self, name: str) -> bool:
        text = self.text(name)
        if text not in (None, "true"):
            self.problems.append(PREFIX + name)
        return text == "true"


def decode_record(source: SourceRecord) -> DeadLetterRecord:
    """Decodes the ``dlq.*`` headers of one dead-letter record.

    Args:
        source: The record as read from the dead-letter topic.

    Returns:
        The record with typed fields; unreadable headers are ``None`` and
        listed in ``problems``.
    """
    headers = _Headers(source.headers)
    return DeadLetterRecord(
        source=source,
        original_topic=headers.text("original.topic"),
        original_partition=headers.integer("original.partition"),
        original_offset=headers.integer("original.offset"),
        original_timestamp_ms=headers.integer("original.timestamp"),
        consumer_group=headers.text("consumer.group"),
        pipeline=headers.text("pipeline"),
        event_id=headers.text("event.id"),
        stage=headers.text("failure.stage"),
        error_class=headers.text("error.class"),
        reason=headers.text("error.reason"),
        message=headers.text("error.message"),
        attempts=headers.integer("attempts"),
        first_failure_time=headers.time("first.failure.time"),
        last_failure_time=headers.time("last.failure.time"),
        model=headers.text("model"),
        http_status=headers.integer("http.status"),
        request_id=headers.text("provider.request.id"),
        tokens=headers.integer("tokens"),
        cost_usd=headers.number("cost.usd"),
        content_hash=headers.text("content.hash"),
        payload_omitted=headers.flag("payload.omitted"),
        headers_omitted=headers.flag("headers.omitted"),
        retry_tiers=headers.integer("retry.count"),
        # Keyword arguments are evaluated in order, so every read above has
        # already recorded its problem by now.
        problems=tuple(dict.fromkeys(headers.problems)),
    )
