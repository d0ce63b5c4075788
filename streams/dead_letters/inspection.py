"""What is in the dead-letter topic: counts by reason, pipeline, stage, hour
and retry tiers passed.

:func:`inspect_records` folds records into an :class:`Inspection` in one pass,
keeping only the counts and the sample, so a large topic needs little memory.
The sample is the most recently dead-lettered records (by the dead-letter
record's timestamp, then partition and offset), newest first. Records whose
header a count looks at is missing are counted under ``unknown``, so every
count adds up to ``matched``. The hour is the UTC hour of
``dlq.last.failure.time``, the failure that dead-lettered the record.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC
from typing import Any

from streams.dead_letters.preview import preview
from streams.dead_letters.record import DeadLetterRecord
from streams.dead_letters.selection import Selection, format_time

UNKNOWN = "unknown"
"""The bucket of records that lack the header a count looks at."""


@dataclass
class Inspection:
    """Counts over the selected dead-letter records, and a sample of them.

    Attributes:
        topic: The dead-letter topic read.
        selection: The filters applied.
        sample_size: How many records the sample holds at most.
        read: Records read from the topic.
        matched: Records that passed the filters; each count sums to this.
        by_reason: ``dlq.error.reason`` counts.
        by_pipeline: ``dlq.pipeline`` counts.
        by_stage: ``dlq.failure.stage`` counts.
        by_hour: Counts by the UTC hour of ``dlq.last.failure.time``.
        by_retry_tiers: Counts by retry tiers passed (``dlq.retry.count``).
        payloads_omitted: Matched records that carry a pointer, not the value.
        unreadable_headers: Matched records with a ``dlq.*`` header that did
            not decode.
        previously_replayed: Matched records that failed again after an
            earlier replay (they carry ``streams.replayed-from``).
    """

    topic: str
    selection: Selection
    sample_size: int
    read: int = 0
    matched: int = 0
    by_reason: Counter[str] = field(default_factory=Counter)
    by_pipeline: Counter[str] = field(default_factory=Counter)
    by_stage: Counter[str] = field(default_factory=Counter)
    by_hour: Counter[str] = field(default_factory=Counter)
    by_retry_tiers: Counter[str] = field(default_factory=Counter)
    payloads_omitted: int = 0
    unreadable_headers: int = 0
    previously_replayed: int = 0
    _newest: list[tuple[tuple[int, int, int], DeadLetterRecord]] = field(
        default_factory=list, repr=False
    )

    @property
    def sample(self) -> list[DeadLetterRecord]:
        """The most recently dead-lettered matched records, newest first."""
        newest_first = sorted(self._newest, key=lambda kept: kept[0], reverse=True)
        return [record for _order, record in newest_first]

    def add(self, record: DeadLetterRecord) -> None:
        """Counts one record read from the topic."""
        self.read += 1
        if not self.selection.matches(record):
            return
        self.matched += 1
        self.by_reason[record.reason or UNKNOWN] += 1
        self.by_pipeline[record.pipeline or UNKNOWN] += 1
        self.by_stage[record.stage or UNKNOWN] += 1
        self.by_hour[failure_hour(record)] += 1
        tiers = record.retry_tiers
        self.by_retry_tiers[UNKNOWN if tiers is None else str(tiers)] += 1
        self.payloads_omitted += record.payload_omitted
        self.unreadable_headers += bool(record.problems)
        self.previously_replayed += bool(record.replayed_from)
        self._keep_if_recent(record)

    def _keep_if_recent(self, record: DeadLetterRecord) -> None:
        if self.sample_size <= 0:
            return
        source = record.source
        order = (source.timestamp_ms, source.partition, source.offset)
        # A min-heap of the newest records: its root is the oldest one kept.
        if len(self._newest) < self.sample_size:
            heapq.heappush(self._newest, (order, record))
        elif order > self._newest[0][0]:
            heapq.heapreplace(self._newest, (order, record))

    def as_dict(self, *, show_payloads: bool = False) -> dict[str, Any]:
        """The whole inspection as one JSON-ready object.

        Args:
            show_payloads: Include each sampled record's key and value preview.
        """
        return {
            "topic": self.topic,
            "filters": self.selection.describe(),
            "read": self.read,
            "matched": self.matched,
            "by_reason": ranked(self.by_reason),
            "by_pipeline": ranked(self.by_pipeline),
            "by_stage": ranked(self.by_stage),
            "by_hour": dict(sorted(self.by_hour.items())),
            "by_retry_tiers": ranked(self.by_retry_tiers),
            "payloads_omitted": self.payloads_omitted,
            "unreadable_headers": self.unreadable_headers,
            "previously_replayed": self.previously_replayed,
            "sample": [
                sample_entry(record, show_payloads=show_payloads)
                for record in self.sample
            ],
        }


def inspect_records(
    records: Iterable[DeadLetterRecord],
    *,
    topic: str,
    selection: Selection,
    sample_size: int,
) -> Inspection:
    """Counts the records that pass the selection and keeps the newest ones.

    Args:
        records: Decoded dead-letter records, in any order.
        topic: The dead-letter topic, for the heading.
        selection: Which records count.
        sample_size: How many of the newest matched records to keep.

    Returns:
        The counts and the sample.
    """
    inspection = Inspection(topic=topic, selection=selection, sample_size=sample_size)
    for record in records:
        inspection.add(record)
    return inspection


def failure_hour(record: DeadLetterRecord) -> str:
    """The UTC hour of the last failure, ``2026-11-02T08:00Z``; ``unknown`` without."""
    moment = record.last_failure_time
    if moment is None:
        return UNKNOWN
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:00Z")


def ranked(counts: Counter[str]) -> dict[str, int]:
    """Counts from most to least frequent, ties by name."""
    return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))


def sample_entry(record: DeadLetterRecord, *, show_payloads: bool) -> dict[str, Any]:
    """One sampled record, JSON-ready; key and value only when asked for."""
    source = record.source
    entry: dict[str, Any] = {
        "dead_letter": {
            "topic": source.topic,
            "partition": source.partition,
            "offset": source.offset,
            "timestamp": format_time(record.timestamp),
        },
        "original": {
            "topic": record.original_topic,
            "partition": record.original_partition,
            "offset": record.original_offset,
        },
        "event_id": record.event_id,
        "pipeline": record.pipeline,
        "stage": record.stage,
        "reason": record.reason,
        "message": record.message,
        "attempts": record.attempts,
        "cost_usd": record.cost_usd,
        "payload_omitted": record.payload_omitted,
    }
    if record.problems:
        entry["unreadable_headers"] = list(record.problems)
    if record.replayed_from:
        entry["replayed_from"] = record.replayed_from
    if show_payloads:
        key, value = preview(source.key), preview(source.value)
        entry["key"] = key.as_dict() if key is not None else None
        entry["value"] = value.as_dict() if value is not None else None
    return entry
