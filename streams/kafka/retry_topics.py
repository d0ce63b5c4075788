"""Retry tier topics: where a record waits between rounds of LLM attempts.

When an event's in-process attempts run out on a transient failure, its
record is produced to the next tier's topic, named after the tier's delay
(``events.retry.30s``, ``events.retry.5m``, ``events.retry.1h``). The key and
value are the input's own bytes; the input's headers are kept and these are
added (any ``retry.*`` headers the record already carried are replaced), all
as UTF-8 text:

==========================  ================================================
header                      meaning
==========================  ================================================
retry.count                 tiers this record has been sent to, this one
                            included (1 in the first tier)
retry.due.timestamp         when it may be tried again, milliseconds since
                            the epoch
retry.first.error.reason    the reason code of the failure that sent it to
                            the first tier
retry.last.error.reason     the reason code of the failure that sent it here
retry.first.failure.time    RFC 3339, when it first failed
retry.original.topic        the input topic it was first read from
retry.original.partition    its partition there
retry.original.offset       its offset there
retry.original.timestamp    its timestamp, milliseconds since the epoch
==========================  ================================================

The ``retry.original.*`` and ``retry.first.*`` headers are written once, at
the first tier, and copied unchanged to later tiers, so the output or dead
letter of a retried record names the input it answers, never a tier topic.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from streams.errors import DecodeError
from streams.kafka.dead_letter import SourceRecord, rfc3339

if TYPE_CHECKING:
    from streams.settings import RetrySettings

PREFIX = "retry."
_UNITS = (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1_000))


class InvalidRetryHeadersError(DecodeError):
    """A tier record whose ``retry.*`` headers are missing or unreadable."""

    def __init__(self, message: str) -> None:
        super().__init__(message, reason="invalid_retry_headers")


@dataclass(frozen=True)
class RetryTier:
    """One delay tier and its topic."""

    delay_s: float
    topic: str

    @property
    def label(self) -> str:
        """The delay as it appears in the topic name, e.g. ``5m``."""
        return tier_label(self.delay_s)


@dataclass(frozen=True)
class RetryState:
    """What the ``retry.*`` headers of a tier record say."""

    count: int
    due_ms: int
    first_reason: str
    last_reason: str
    first_failure: datetime
    original_topic: str
    original_partition: int
    original_offset: int
    original_timestamp_ms: int

    def is_due(self, now_ms: int) -> bool:
        """Whether the record may be tried again at ``now_ms``."""
        return now_ms >= self.due_ms


def tier_label(seconds: float) -> str:
    """Renders a delay compactly, in the largest unit that divides it exactly.

    Days, hours, minutes, seconds, else whole milliseconds (rounded):
    ``90`` is ``90s``, ``300`` is ``5m``, ``7200`` is ``2h``, ``1.5`` is
    ``1500ms``.
    """
    millis = round(seconds * 1000)
    for unit, size in _UNITS:
        if millis >= size and millis % size == 0:
            return f"{millis // size}{unit}"
    return f"{millis}ms"


def check_tier_delays(delays_s: list[float]) -> None:
    """Checks that tier delays are usable as a sequence of distinct topics.

    Raises:
        ValueError: A delay is not a finite number of at least one
            millisecond, the delays do not strictly increase, or two delays
            would get the same topic name.
    """
    for delay in delays_s:
        if not math.isfinite(delay) or delay < 0.001:
            raise ValueError(f"a retry tier delay must be at least 1 ms, not {delay}")
    for earlier, later in itertools.pairwise(delays_s):
        if later <= earlier:
            raise ValueError(f"retry tiers must increase: {later} follows {earlier}")
    labels = [tier_label(delay) for delay in delays_s]
    if len(set(labels)) != len(labels):
        raise ValueError(f"retry tiers need distinct names, got {labels}")


def retry_tiers(settings: RetrySettings) -> tuple[RetryTier, ...]:
    """The configured tiers, shortest delay first."""
    return tuple(
        RetryTier(delay, f"{settings.topic_prefix}.{tier_label(delay)}")
        for delay in settings.tiers_s
    )


def next_tier(tiers: tuple[RetryTier, ...], source: SourceRecord) -> RetryTier | None:
    """The tier a failed record goes to next; None after the last one."""
    done = source.retry.count if source.retry is not None else 0
    return tiers[done] if done < len(tiers) else None


def retry_headers(
    source: SourceRecord, tier: RetryTier, reason: str, now: datetime
) -> list[tuple[str, bytes | None]]:
    """The headers of the record that sends ``source`` to ``tier``.

    Args:
        source: The failed record, with its original coordinates (for a
            record read from a tier, as :func:`read_retry_record` returns it).
        tier: Where it goes.
        reason: The reason code of the failure that sends it.
        now: The time of that failure.

    Returns:
        The record's own headers followed by the ``retry.*`` headers.
    """
    previous = source.retry
    state = RetryState(
        count=(previous.count if previous else 0) + 1,
        due_ms=math.ceil(now.timestamp() * 1000 + tier.delay_s * 1000),
        first_reason=previous.first_reason if previous else reason,
        last_reason=reason,
        first_failure=previous.first_failure if previous else now,
        original_topic=source.topic,
        original_partition=source.partition,
        original_offset=source.offset,
        original_timestamp_ms=source.timestamp_ms,
    )
    added = {
        "count": str(state.count),
        "due.timestamp": str(state.due_ms),
        "first.error.reason": state.first_reason,
        "last.error.reason": state.last_reason,
        "first.failure.time": rfc3339(state.first_failure),
        "original.topic": state.original_topic,
        "original.partition": str(state.original_partition),
        "original.offset": str(state.original_offset),
        "original.timestamp": str(state.original_timestamp_ms),
    }
    own = [(name, value) for name, value in source.headers if not _is_retry(name)]
    return own + [(PREFIX + name, value.encode()) for name, value in added.items()]


def read_retry_record(record: SourceRecord) -> SourceRecord:
    """The record as it was first read, from a record consumed from a tier.

    Coordinates and timestamp come from the ``retry.original.*`` headers,
    the ``retry.*`` headers move into :attr:`SourceRecord.retry`, and the
    key, value and the input's own headers stay as they are.

    Raises:
        InvalidRetryHeadersError: A header is missing or unreadable.
    """
    found: dict[str, str] = {}
    for name, raw in record.headers:
        if _is_retry(name):
            try:
                found[name[len(PREFIX) :]] = (raw or b"").decode()
            except UnicodeDecodeError:
                raise InvalidRetryHeadersError(f"{name} is not UTF-8") from None
    state = RetryState(
        count=_number(found, "count", minimum=1),
        due_ms=_number(found, "due.timestamp", minimum=0),
        first_reason=_text(found, "first.error.reason"),
        last_reason=_text(found, "last.error.reason"),
        first_failure=_time(found, "first.failure.time"),
        original_topic=_text(found, "original.topic"),
        original_partition=_number(found, "original.partition", minimum=0),
        original_offset=_number(found, "original.offset", minimum=0),
        original_timestamp_ms=_number(found, "original.timestamp"),
    )
    return replace(
        record,
        topic=state.original_topic,
        partition=state.original_partition,
        offset=state.original_offset,
        timestamp_ms=state.original_timestamp_ms,
        headers=[(name, raw) for name, raw in record.headers if not _is_retry(name)],
        retry=state,
    )


def _is_retry(name: str) -> bool:
    return name.startswith(PREFIX)


def _text(found: dict[str, str], name: str) -> str:
    value = found.get(name)
    if not value:
        raise InvalidRetryHeadersError(f"{PREFIX}{name} is missing or empty")
    return value


def _number(found: dict[str, str], name: str, minimum: int | None = None) -> int:
    text = _text(found, name)
    try:
        value = int(text)
    except ValueError:
        raise InvalidRetryHeadersError(f"{PREFIX}{name} is not an integer") from None
    if minimum is not None and value < minimum:
        raise InvalidRetryHeadersError(f"{PREFIX}{name} is below {minimum}")
    return value


def _time(found: dict[str, str], name: str) -> datetime:
    text = _text(found, name)
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidRetryHeadersError(f"{PREFIX}{name} is not RFC 3339") from None
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)
