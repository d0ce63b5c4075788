"""Which dead-letter records a command works on.

Every filter is optional; an empty one lets everything through, and the
filters combine with "and". Values within one filter combine with "or":
``--reason timeout --reason rate_limited`` selects both reasons. Times are
the dead-letter record's own Kafka timestamp, the moment it was
dead-lettered: ``since`` is inclusive, ``until`` exclusive. Times without a
zone are read as UTC.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from streams.dead_letters.record import DeadLetterRecord

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3_600, "d": 86_400, "w": 604_800}


@dataclass(frozen=True)
class Selection:
    """Filters over dead-letter records.

    Attributes:
        reasons: ``dlq.error.reason`` values to keep; all when empty.
        pipelines: ``dlq.pipeline`` values to keep; all when empty.
        event_ids: ``dlq.event.id`` values to keep; all when empty.
        since: Keep records dead-lettered at or after this moment.
        until: Keep records dead-lettered before this moment.
    """

    reasons: frozenset[str] = frozenset()
    pipelines: frozenset[str] = frozenset()
    event_ids: frozenset[str] = frozenset()
    since: datetime | None = None
    until: datetime | None = None

    @classmethod
    def of(
        cls,
        *,
        reasons: Iterable[str] | None = None,
        pipelines: Iterable[str] | None = None,
        event_ids: Iterable[str] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> Selection:
        """Builds a selection from optional lists, as argparse hands them over."""
        return cls(
            reasons=frozenset(reasons or ()),
            pipelines=frozenset(pipelines or ()),
            event_ids=frozenset(event_ids or ()),
            since=since,
            until=until,
        )

    def matches(self, record: DeadLetterRecord) -> bool:
        """Whether the record passes every filter.

        A record without the header a filter looks at (no reason, no event id)
        never matches that filter when it is set.
        """
        if self.reasons and record.reason not in self.reasons:
            return False
        if self.pipelines and record.pipeline not in self.pipelines:
            return False
        if self.event_ids and record.event_id not in self.event_ids:
            return False
        if self.since is not None and record.timestamp < self.since:
            return False
        return self.until is None or record.timestamp < self.until

    def describe(self) -> dict[str, Any]:
        """The filters that are set, JSON-ready, for output headings."""
        described: dict[str, Any] = {}
        for name in ("reasons", "pipelines", "event_ids"):
            values: frozenset[str] = getattr(self, name)
            if values:
                described[name] = sorted(values)
        for name in ("since", "until"):
            moment: datetime | None = getattr(self, name)
            if moment is not None:
                described[name] = format_time(moment)
        return described


def parse_time(text: str) -> datetime:
    """Reads an ISO 8601 time such as ``2026-11-02T08:00Z`` or ``2026-11-02``.

    Raises:
        ValueError: The text is not an ISO 8601 date or time.
    """
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            f"{text!r} is not an ISO 8601 time (e.g. 2026-11-02T08:00:00Z)"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def parse_duration(text: str) -> timedelta:
    """Reads a duration such as ``90s``, ``45m``, ``2h``, ``1d``, ``1w`` or ``1h30m``.

    Raises:
        ValueError: The text is not one or more number-unit pairs, or is zero.
    """
    compact = text.strip().lower()
    parts = _DURATION_PART.findall(compact)
    if not parts or "".join(number + unit for number, unit in parts) != compact:
        raise ValueError(f"{text!r} is not a duration (e.g. 90s, 45m, 2h, 1d, 1h30m)")
    seconds = sum(float(number) * _DURATION_UNITS[unit] for number, unit in parts)
    if seconds <= 0:
        raise ValueError(f"{text!r} is not a positive duration")
    return timedelta(seconds=seconds)


def time_argument(text: str) -> datetime:
    """:func:`parse_time` for argparse, whose message then names the problem."""
    try:
        return parse_time(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def duration_argument(text: str) -> timedelta:
    """:func:`parse_duration` for argparse."""
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def format_time(moment: datetime) -> str:
    """RFC 3339 in UTC with a ``Z``, to the second."""
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
