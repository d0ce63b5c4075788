"""Dead-letter records: the original bytes untouched, the reason in headers.

The value and key are the input's own bytes; the input's headers are kept
(bytes as they came, undecodable or not) and these are added, all as UTF-8
text (see ``schemas/dead_letter.schema.json``):

==========================  ================================================
header                      meaning
==========================  ================================================
dlq.original.topic          where the record was read
dlq.original.partition      its partition
dlq.original.offset         its offset
dlq.original.timestamp      its timestamp, milliseconds since the epoch
dlq.consumer.group          the consumer group that failed it
dlq.pipeline                the pipeline that read it
dlq.event.id                the event id, when the record decoded that far
dlq.failure.stage           decode, enrich or produce
dlq.error.class             the error's class name
dlq.error.reason            a snake_case reason code (a small fixed set)
dlq.error.message           what went wrong, without payload text
dlq.attempts                LLM attempts made (0 before the LLM stage); for a
                            record that went through retry tiers, those of
                            the last round
dlq.retry.count             retry tiers the record went through (0 if none)
dlq.first.error.reason      the reason that sent it to its first retry tier
                            (only when dlq.retry.count is above 0)
dlq.first.failure.time      RFC 3339, first failure of this record (before
                            any retry tier)
dlq.last.failure.time       RFC 3339, the failure that dead-lettered it
dlq.model                   the model called, if any
dlq.http.status             the provider's last HTTP status, if any
dlq.provider.request.id     the provider's request id, if any
dlq.tokens                  tokens spent on it (prompt + completion)
dlq.cost.usd                what those tokens cost
dlq.content.hash            the content hash, when computed
dlq.payload.omitted         "true" when the record would not fit with the value;
                            the value is then a JSON pointer to the original
dlq.headers.omitted         "true" when it still would not fit; the input's own
                            headers are then dropped
==========================  ================================================
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from streams import json_codec

if TYPE_CHECKING:
    from streams.kafka.retry_topics import RetryState

PREFIX = "dlq."


@dataclass(frozen=True)
class DeadLetter:
    """Why one record is dead-lettered, and what was spent on it."""

    stage: str
    error_class: str
    reason: str
    message: str
    pipeline: str
    event_id: str | None = None
    attempts: int = 0
    model: str | None = None
    http_status: int | None = None
    request_id: str | None = None
    tokens: int = 0
    cost_usd: float = 0.0
    content_hash: str | None = None
    first_failure: datetime = field(default_factory=lambda: datetime.now(UTC))


@dataclass(frozen=True)
class SourceRecord:
    """Where a record came from, and its bytes.

    A record read from a retry tier carries the coordinates and headers of
    the input it was first read from, and its retry history in ``retry``.
    """

    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes | None]]
    retry: RetryState | None = None


def header_list(headers: object) -> list[tuple[str, bytes | None]]:
    """Headers as (name, bytes) pairs, in order; bytes stay as they came."""
    pairs = headers.items() if isinstance(headers, dict) else (headers or [])
    return [
        (name, value.encode() if isinstance(value, str) else value)
        for name, value in pairs  # type: ignore[attr-defined]  # list or dict of pairs
    ]


def rfc3339(at: datetime) -> str:
    """A UTC time as RFC 3339 text with milliseconds, e.g. ``...T08:15:02.125Z``."""
    return at.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def dead_letter_record(
    source: SourceRecord, letter: DeadLetter, group_id: str, max_bytes: int
) -> tuple[bytes | None, list[tuple[str, bytes | None]]]:
    """Builds the value and headers of the dead-letter record.

    Args:
        source: The failed record.
        letter: Why it failed.
        group_id: The consumer group.
        max_bytes: Largest value to carry; a larger one is replaced by a
            JSON pointer to the original record.

    Returns:
        The value to produce and the full header list.
    """
    now = datetime.now(UTC)
    added: dict[str, object] = {
        "original.topic": source.topic,
        "original.partition": source.partition,
        "original.offset": source.offset,
        "original.timestamp": source.timestamp_ms,
        "consumer.group": group_id,
        "pipeline": letter.pipeline,
        "event.id": letter.event_id,
        "failure.stage": letter.stage,
        "error.class": letter.error_class,
        "error.reason": letter.reason,
        "error.message": letter.message[:1000],
        "attempts": letter.attempts,
        "retry.count": source.retry.count if source.retry else 0,
        "first.error.reason": source.retry.first_reason if source.retry else None,
        "model": letter.model,
        "http.status": letter.http_status,
        "provider.request.id": letter.request_id,
        "tokens": letter.tokens,
        "cost.usd": f"{letter.cost_usd:.8f}",
        "content.hash": letter.content_hash,
    }
    own: list[tuple[str, bytes | None]] = [
        (PREFIX + name, str(value).encode())
        for name, value in added.items()
        if value is not None
    ]
    first_failure = source.retry.first_failure if source.retry else letter.first_failure
    own.append((PREFIX + "first.failure.time", rfc3339(first_failure).encode()))
    own.append((PREFIX + "last.failure.time", rfc3339(now).encode()))
    original = [
        (name, value) for name, value in source.headers if not name.startswith(PREFIX)
    ]

    # The whole record must fit: key, value and every header. The original
    # value gives way first (a pointer replaces it), then the original headers.
    value = source.value
    if record_size(source.key, value, original + own) > max_bytes:
        pointer = {
            "payload_omitted": True,
            "topic": source.topic,
            "partition": source.partition,
            "offset": source.offset,
            "size_bytes": len(value or b""),
        }
        value = json_codec.dumps(pointer)
        own.append((PREFIX + "payload.omitted", b"true"))
    if record_size(source.key, value, original + own) > max_bytes:
        original = []
        own.append((PREFIX + "headers.omitted", b"true"))
    return value, original + own


def record_size(
    key: bytes | None, value: bytes | None, headers: list[tuple[str, bytes | None]]
) -> int:
    """Bytes a record occupies, close to what the broker counts against its limit.

    Each header costs its name, its value and a small framing allowance.
    """
    header_bytes = sum(len(name) + len(raw or b"") + 8 for name, raw in headers)
    return len(key or b"") + len(value or b"") + header_bytes + 64
